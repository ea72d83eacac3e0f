"""What a sync has to do: the source listed against the catalogue, one decision per object.

Each listed object is compared with its stored row: unchanged ones are left alone (their mtime
refreshed), skipped ones counted with a reason, new or changed ones become labelling Tasks,
videos for Rekognition jobs are recorded pending and handed to the video phase, and rows whose
objects are gone are marked deleted. A dry run only counts what it would do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import ObjectError, SkippedObjectError
from catalog.ingest.tasks import Task
from catalog.ingest.types import EventHandler, EventKind, SyncEvent, SyncOptions, SyncReport
from catalog.ingest.writer import ResultWriter
from catalog.labelling import ImageLabeller, TextReader
from catalog.labelling import media as media_rules
from catalog.labelling.rekognition_image import VIDEO_NEEDS_S3
from catalog.sources import Source, SourceObject
from catalog.store.media import mark_deleted, record_pending
from catalog.store.reads import StoredMedia, load_key_range, touch_media
from catalog.store.schema import (
    KIND_IMAGE,
    KIND_VIDEO,
    STATUS_DELETED,
    STATUS_FAILED,
    STATUS_LABELLED,
    STATUS_PENDING,
)
from catalog.uris import format_uri

if TYPE_CHECKING:
    from catalog.ingest.videos import VideoPhase


@dataclass
class SourceDiff:
    """Decides, object by object, what one sync of one source has to do (see the module doc)."""

    source: Source
    labeller: ImageLabeller
    text_reader: TextReader | None  # None: no text is read in this sync
    sessions: sessionmaker[Session]
    options: SyncOptions
    report: SyncReport
    writer: ResultWriter
    on_event: EventHandler
    video_step: VideoPhase | None

    def iter_tasks(self) -> Iterator[Task]:
        """List the source page by page; yield what needs labelling, mark the missing deleted."""
        after: str | None = None
        for page in self.source.iter_pages():
            if not page:
                continue
            upto = page[-1].key
            by_key = {row.key: row for row in self._stored_between(after, upto)}
            self.report.listed += len(page)
            self.on_event(SyncEvent(EventKind.LISTED, count=len(page)))
            for obj in page:
                task = self.decide(obj, by_key.pop(obj.key, None))
                if task is not None:
                    yield task
            self._delete_missing(list(by_key.values()))
            after = upto
        self._delete_missing(self._stored_between(after, None))

    def _stored_between(self, after: str | None, upto: str | None) -> list[StoredMedia]:
        """The catalogue's rows of this source with keys in (after, upto] (upto None: the rest)."""
        with self.sessions() as session:
            return load_key_range(
                session,
                source=self.source.scheme,
                bucket=self.source.bucket,
                after=after,
                upto=upto,
                prefix=self.source.prefix,
            )

    def skip(self, obj: SourceObject, reason: str) -> None:
        """Count and report one object left alone."""
        self.report.skipped[reason] += 1
        self.on_event(SyncEvent(EventKind.SKIPPED, obj.uri, reason))

    def decide(self, obj: SourceObject, stored: StoredMedia | None) -> Task | None:
        """What one listed object needs, given its stored row: a Task to label, or None.

        None when nothing is to be labelled here: unchanged, skipped, planned (dry run) or a
        video handed to the video phase; each is counted and reported as it is decided.
        """
        if obj.skip_reason is not None:
            self.skip(obj, obj.skip_reason)
            return None
        kind = media_rules.kind_of(obj.key)
        if kind is None:
            self.skip(obj, "not an image or video")
            return None
        if kind == KIND_IMAGE and not self.options.images:
            self.skip(obj, "images not selected")
            return None
        if kind == KIND_VIDEO and not self.options.videos:
            self.skip(obj, "videos not selected")
            return None
        if self.options.transcode_prefix and obj.key.startswith(self.options.transcode_prefix):
            self.skip(obj, "transcoded copy")
            return None
        if media_rules.is_archived(obj.storage_class, obj.restored):
            self.skip(obj, f"archived ({obj.storage_class})")
            return None
        confirmed = self._confirm_content(obj, kind, stored)
        if confirmed is None:
            return None
        obj = confirmed
        same = (
            stored is not None
            and stored.status != STATUS_DELETED
            and stored.etag == obj.etag
            and stored.size_bytes == obj.size_bytes
        )
        inline_video = kind == KIND_VIDEO and self._labels_videos_inline()
        wants_text = self.text_reader is not None
        if same and stored is not None:
            labels_current = stored.status == STATUS_LABELLED and self._is_current_labeller(stored)
            if labels_current and wants_text and not self._is_current_text(stored):
                return self._text_only(obj, kind, stored, inline_video)
            if labels_current or (
                stored.status == STATUS_FAILED
                and not self.options.retry_failed
                and not self._can_do_better(stored)
            ):
                self.report.unchanged += 1
                if stored.status == STATUS_FAILED:
                    self.report.still_failed += 1
                self.on_event(SyncEvent(EventKind.UNCHANGED, obj.uri))
                if stored.last_modified_at != obj.last_modified_at and not self.options.dry_run:
                    with self.sessions.begin() as session:
                        touch_media(session, stored.id, obj.last_modified_at)
                return None
            if stored.status == STATUS_PENDING and kind == KIND_VIDEO and not inline_video:
                if self.options.dry_run:
                    self._plan_video(obj)
                    return None
                # Its job (if one started) is resumed, not started again.
                self.report.pending += 1
                self.on_event(SyncEvent(EventKind.PENDING, obj.uri, "video"))
                if self.video_step is not None:
                    self.video_step.submit(obj, stored.id, need_text=wants_text)
                return None
        if self.options.dry_run:
            if kind == KIND_IMAGE:
                self.report.to_label_images += 1
                self.report.to_read_text_images += int(wants_text)
            else:
                self._plan_video(obj)
            self.on_event(SyncEvent(EventKind.PLANNED, obj.uri, kind))
            return None
        if kind == KIND_VIDEO and not inline_video:
            with self.sessions.begin() as session:
                media_id = record_pending(session, obj, KIND_VIDEO).id
            self.report.pending += 1
            self.on_event(SyncEvent(EventKind.PENDING, obj.uri, "video"))
            if self.video_step is not None:
                retry = stored is not None and stored.status == STATUS_FAILED
                self.video_step.submit(obj, media_id, retry=retry, need_text=wants_text)
            return None
        return Task(obj, kind, stored, need_text=wants_text)

    def _text_only(
        self, obj: SourceObject, kind: str, stored: StoredMedia, inline_video: bool
    ) -> Task | None:
        """Labels are current and only the text is missing: read the text alone."""
        if self.options.dry_run:
            if kind == KIND_IMAGE:
                self.report.to_read_text_images += 1
            elif self.video_step is not None and not inline_video:
                self.report.video_ms_to_read_text += self.video_step.estimate_ms(obj)
            self.on_event(SyncEvent(EventKind.PLANNED, obj.uri, f"{kind} text"))
            return None
        if kind == KIND_VIDEO and not inline_video:
            self.report.pending += 1
            self.on_event(SyncEvent(EventKind.PENDING, obj.uri, "video text"))
            if self.video_step is not None:
                self.video_step.submit(obj, stored.id, need_labels=False, need_text=True)
            return None
        return Task(obj, kind, stored, need_labels=False, need_text=True)

    def _confirm_content(
        self, obj: SourceObject, kind: str, stored: StoredMedia | None
    ) -> SourceObject | None:
        """Give a local file its content hash as ETag, hashing only when size or mtime moved.

        Sources whose listing carries no ETag (local folders) offer `content_etag`. A file whose
        size and mtime equal the stored ones keeps the stored hash; any other file is hashed, so
        a touched-but-unchanged file is recognised as unchanged and an edited one as changed.
        """
        hasher = getattr(self.source, "content_etag", None)
        if obj.etag is not None or hasher is None:
            return obj
        if (
            stored is not None
            and stored.status != STATUS_DELETED
            and stored.etag
            and stored.size_bytes == obj.size_bytes
            and stored.last_modified_at == obj.last_modified_at
        ):
            return replace(obj, etag=stored.etag)
        try:
            return replace(obj, etag=hasher(obj))
        except SkippedObjectError as exc:
            self.skip(obj, exc.message)
            return None
        except ObjectError as exc:
            if not self.options.dry_run:
                self.writer.fail(obj, kind, exc)
            return None

    def _is_current_labeller(self, stored: StoredMedia) -> bool:
        """True when the stored labels come from the labeller (and model) this run uses."""
        if stored.labeller is None:
            return True  # labelled before provenance was kept: nothing to compare
        if stored.labeller != self.labeller.name:
            return False
        wanted = self.labeller.model_version
        return wanted is None or stored.model_version == wanted

    def _is_current_text(self, stored: StoredMedia) -> bool:
        """True when the stored text comes from the reader (and model) this run uses."""
        reader = self.text_reader
        if reader is None:
            return True
        if stored.text_reader != reader.name:
            return False
        return reader.model_version is None or stored.text_model_version == reader.model_version

    def _can_do_better(self, stored: StoredMedia) -> bool:
        """A failure that was the labeller's limit, and this labeller has no such limit."""
        return stored.error_code == VIDEO_NEEDS_S3 and self.labeller.labels_videos

    def _labels_videos_inline(self) -> bool:
        """Videos are labelled in the pool (local labeller, or a folder that cannot use S3 jobs)."""
        return self.labeller.labels_videos or self.source.scheme != "s3"

    def _plan_video(self, obj: SourceObject) -> None:
        self.report.to_label_videos += 1
        if self.video_step is not None:
            estimate = self.video_step.estimate_ms(obj)
            self.report.video_ms_to_label += estimate
            if self.text_reader is not None:
                self.report.video_ms_to_read_text += estimate

    def _delete_missing(self, rows: list[StoredMedia]) -> None:
        gone = [row for row in rows if row.status != STATUS_DELETED]
        if not gone:
            return
        if self.options.dry_run:
            self.report.deleted += len(gone)
            return
        for row in gone:
            with self.sessions.begin() as session:
                self.report.deleted += mark_deleted(session, [row.id])
            self.on_event(
                SyncEvent(
                    EventKind.DELETED, format_uri(self.source.scheme, self.source.bucket, row.key)
                )
            )
