"""The Labeller protocol and the results every labeller returns (Rekognition's shapes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from catalog.store.values import LABELLER_REKOGNITION

REKOGNITION = LABELLER_REKOGNITION  # the Rekognition labeller's name, as stored in each result


@dataclass(frozen=True)
class BoundingBox:
    """A box as ratios of the frame, origin top-left (may run past the edges)."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class Instance:
    """One located occurrence of a label."""

    box: BoundingBox
    confidence: float  # percent 0-100


@dataclass(frozen=True)
class DetectedLabel:
    """A label on an image (or at one moment of a video) with its instances and taxonomy."""

    name: str
    confidence: float  # percent 0-100
    instances: tuple[Instance, ...] = ()
    parents: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Moment:
    """A label seen at one timestamp of a video."""

    timestamp_ms: int
    label: DetectedLabel


@dataclass
class VideoInfo:
    """Video metadata as Rekognition or the probe reports it."""

    codec: str | None = None
    container_format: str | None = None
    duration_ms: int | None = None
    frame_rate: float | None = None
    width: int | None = None
    height: int | None = None


@dataclass
class LabelResult:
    """What one labeller said about one media item."""

    labeller: str
    model_version: str | None
    min_confidence: float
    labels: list[DetectedLabel] = field(default_factory=list)
    moments: list[Moment] = field(default_factory=list)
    max_labels: int | None = None
    width: int | None = None
    height: int | None = None
    video: VideoInfo | None = None
    billed_images: int = 0
    billed_video_ms: int = 0


@dataclass(frozen=True)
class DetectedText:
    """One LINE or WORD of text as Rekognition's TextDetection gives it (video: at a moment).

    `idx` is the detection's Id within its result (within its moment, for video) and
    `parent_idx` a WORD's LINE; `box` is in ratios of the frame.
    """

    text: str
    kind: str  # "LINE" or "WORD"
    confidence: float  # percent 0-100
    box: BoundingBox
    idx: int = 0
    parent_idx: int | None = None
    timestamp_ms: int | None = None


@dataclass
class TextResult:
    """What one text reader read on one media item."""

    reader: str
    model_version: str | None
    texts: list[DetectedText] = field(default_factory=list)
    billed_images: int = 0
    billed_video_ms: int = 0

    @property
    def lines(self) -> list[DetectedText]:
        """The LINE detections, in order."""
        return [t for t in self.texts if t.kind == "LINE"]


@dataclass(frozen=True)
class ImageInput:
    """An image to label: an S3 object Rekognition reads itself, or bytes we send."""

    bucket: str | None = None
    key: str | None = None
    version_id: str | None = None
    data: bytes | None = None
    width: int | None = None
    height: int | None = None


class ImageLabeller(Protocol):
    """Anything that turns an image into labels, with the capabilities the pipeline asks about.

    - `model_version`: the model a result will come from, when known before labelling (the local
      labeller knows it; Rekognition reports it in each response, so it is None here).
    - `max_labels`: the cap on labels per result it was built with (None: no cap).
    - `reads_original_bytes`: hand it the object's own bytes (no S3 reference, no re-encoding).
    - `labels_videos`: it labels a video itself through `label_video` (no asynchronous job).
    """

    @property
    def name(self) -> str:
        """The labeller's name, stored as each result's provenance."""
        ...

    @property
    def model_version(self) -> str | None:
        """The model its results come from, when known before labelling."""
        ...

    @property
    def max_labels(self) -> int | None:
        """The cap on labels per result (None: no cap)."""
        ...

    @property
    def reads_original_bytes(self) -> bool:
        """Hand it the object's own bytes."""
        ...

    @property
    def labels_videos(self) -> bool:
        """It labels whole videos itself."""
        ...

    def label_image(self, image: ImageInput) -> LabelResult:
        """Label one image; raises ObjectError for a per-object failure."""
        ...

    def label_video(self, media: str | bytes) -> LabelResult:
        """Label a whole video (a local path or its bytes); only when `labels_videos`."""
        ...


class TextReader(Protocol):
    """Anything that reads the text in an image (DetectText, or the offline OCR)."""

    @property
    def name(self) -> str:
        """The reader's name, stored as each text result's provenance."""
        ...

    @property
    def model_version(self) -> str | None:
        """The model its results come from, when known before reading."""
        ...

    @property
    def reads_original_bytes(self) -> bool:
        """Hand it the object's own bytes."""
        ...

    @property
    def reads_videos(self) -> bool:
        """It reads whole videos itself (no asynchronous job)."""
        ...

    def read_image(self, image: ImageInput) -> TextResult:
        """Read one image's text; raises ObjectError for a per-object failure."""
        ...

    def read_video(self, media: str | bytes) -> TextResult:
        """Read a whole video's text (a local path or its bytes); only when `reads_videos`."""
        ...
