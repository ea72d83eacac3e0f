"""One object's labelling work, run on a worker thread: its labels and/or its text.

The pipeline decides what an object needs (a Task) and stores what comes back (an Outcome) on
the main thread; this module only makes the calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.errors import CatalogError, ObjectError
from catalog.labelling import ImageInput, ImageLabeller, LabelResult, TextReader, TextResult
from catalog.labelling import media as media_rules
from catalog.labelling.imaging import prepare_image
from catalog.sources import Source, SourceObject
from catalog.store.reads import StoredMedia
from catalog.store.schema import KIND_VIDEO


@dataclass
class Task:
    """An object to label (and read): what is stored for it and what it still needs."""

    obj: SourceObject
    kind: str
    stored: StoredMedia | None
    need_labels: bool = True  # False: the labels are current, only the text is missing
    need_text: bool = False


@dataclass
class Outcome:
    """What labelling one object gave: labels and/or text, or the per-object error."""

    task: Task
    result: LabelResult | None = None
    error: ObjectError | None = None
    text: TextResult | None = None


def label_task(
    task: Task, labeller: ImageLabeller, text_reader: TextReader | None, source: Source
) -> Outcome:
    """Label one object (and read its text when the task needs it); errors become data."""
    obj = task.obj
    try:
        if obj.size_bytes == 0:
            raise ObjectError("EmptyObject", "the object is empty (0 bytes)")
        outcome = Outcome(task)
        if task.kind == KIND_VIDEO:
            if task.need_labels:
                outcome.result = labeller.label_video(_video_media(obj, source))
            if task.need_text and text_reader is not None:
                outcome.text = text_reader.read_video(_video_media(obj, source))
            return outcome
        inputs: dict[bool, ImageInput] = {}  # by "reads original bytes": each made once
        if task.need_labels:
            image = _image_input(obj, source, labeller.reads_original_bytes, inputs)
            outcome.result = labeller.label_image(image)
        if task.need_text and text_reader is not None:
            image = _image_input(obj, source, text_reader.reads_original_bytes, inputs)
            outcome.text = text_reader.read_image(image)
        return outcome
    except ObjectError as exc:
        return Outcome(task, error=exc)
    except CatalogError:
        raise  # whole-run errors (credentials, permissions) end the run
    except Exception as exc:  # a per-object problem nobody foresaw is still data
        return Outcome(task, error=ObjectError(type(exc).__name__, str(exc) or repr(exc)))


def _video_media(obj: SourceObject, source: Source) -> str | bytes:
    """A local video's path once it is known to be a regular file in the root; else its bytes."""
    opener = getattr(source, "checked_path", None)
    if obj.source == "file" and opener is not None:
        return str(opener(obj))
    return obj.key if obj.source == "file" else source.read_bytes(obj)


def _image_input(
    obj: SourceObject, source: Source, original: bool, made: dict[bool, ImageInput]
) -> ImageInput:
    """What a labeller or text reader is sent: the S3 object, or (prepared) bytes."""
    if original not in made:
        if original:
            made[original] = ImageInput(data=source.read_bytes(obj))
        elif obj.source == "s3" and media_rules.is_sendable_by_reference(obj.key, obj.size_bytes):
            made[original] = ImageInput(bucket=obj.bucket, key=obj.key, version_id=obj.version_id)
        else:
            prepared = prepare_image(source.read_bytes(obj))
            made[original] = ImageInput(
                data=prepared.data, width=prepared.width, height=prepared.height
            )
    return made[original]
