"""Offline text reading with RapidOCR (PP-OCR ONNX models shipped in its wheel) -> TextResult.

Results take Rekognition's shape: one LINE per text region RapidOCR finds and a WORD for each
word box inside it (Id/ParentId as DetectText numbers them), confidences in percent, boxes as
ratios of the image. Videos are read a frame every second, like the local labeller's moments.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from typing import Any

from catalog.errors import ObjectError, UsageError
from catalog.labelling import BoundingBox, DetectedText, ImageInput, TextResult

READER_NAME = "local"
DEFAULT_FRAME_INTERVAL_MS = 1000
MIN_SCORE = 0.5  # RapidOCR's own default text score
_INSTALL_HINT = "reading text offline needs the OCR extra: pip install 'catalog[ocr]'"


def _engine_class() -> Any:
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:  # rapidocr itself, or onnxruntime it needs but does not declare
        raise UsageError(f"{_INSTALL_HINT} ({exc})") from exc
    return RapidOCR


def model_version() -> str:
    """The RapidOCR release whose bundled models read the text (stored as provenance)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"rapidocr-{version('rapidocr')}"
    except PackageNotFoundError as exc:
        raise UsageError(_INSTALL_HINT) from exc


def _ratio_box(points: Sequence[Sequence[float]], width: int, height: int) -> BoundingBox:
    """A quadrilateral in pixels -> its enclosing box in ratios of the frame."""
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    left, top = max(0.0, min(xs)), max(0.0, min(ys))
    right, bottom = min(float(width), max(xs)), min(float(height), max(ys))
    return BoundingBox(
        left=left / width,
        top=top / height,
        width=max(0.0, right - left) / width,
        height=max(0.0, bottom - top) / height,
    )


def to_detections(
    output: Any, width: int, height: int, timestamp_ms: int | None = None
) -> list[DetectedText]:
    """RapidOCR's output (lines, scores, boxes and word boxes) as LINE and WORD detections."""
    found: list[DetectedText] = []
    lines = list(getattr(output, "txts", None) or ())
    scores = list(getattr(output, "scores", None) or ())
    boxes = getattr(output, "boxes", None)
    words = list(getattr(output, "word_results", None) or ())
    next_id = 0
    for index, line in enumerate(lines):
        text = " ".join(str(line).split())
        if not text or boxes is None:
            continue
        line_id = next_id
        next_id += 1
        found.append(
            DetectedText(
                text=text,
                kind="LINE",
                confidence=float(scores[index]) * 100 if index < len(scores) else 0.0,
                box=_ratio_box(boxes[index], width, height),
                idx=line_id,
                timestamp_ms=timestamp_ms,
            )
        )
        line_words = words[index] if index < len(words) else ()
        for word in line_words or ():
            word_text, score, points = word[0], word[1], word[2]
            if not str(word_text).strip():
                continue
            found.append(
                DetectedText(
                    text=str(word_text).strip(),
                    kind="WORD",
                    confidence=float(score) * 100,
                    box=_ratio_box(points, width, height),
                    idx=next_id,
                    parent_idx=line_id,
                    timestamp_ms=timestamp_ms,
                )
            )
            next_id += 1
    return found


class LocalTextReader:
    """Reads text offline with RapidOCR on ONNX Runtime (thread-safe: one engine, one lock)."""

    name = READER_NAME
    reads_original_bytes = True
    reads_videos = True

    def __init__(
        self, *, min_score: float = MIN_SCORE, frame_interval_ms: int = DEFAULT_FRAME_INTERVAL_MS
    ) -> None:
        engine_class = _engine_class()
        self.model_version: str | None = model_version()
        self.min_score = min_score
        self.frame_interval_ms = frame_interval_ms
        self._engine = engine_class(params={"Global.log_level": "error"})
        self._lock = threading.Lock()

    def read_pixels(self, rgb: Any, timestamp_ms: int | None = None) -> list[DetectedText]:
        """Read an RGB array (height x width x 3)."""
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        with self._lock:
            output = self._engine(rgb, return_word_box=True, text_score=self.min_score)
        return to_detections(output, width, height, timestamp_ms)

    def read_image(self, image: ImageInput) -> TextResult:
        """Read one image's text from its bytes."""
        import numpy
        from PIL import Image, ImageOps, UnidentifiedImageError

        if not image.data:
            raise ObjectError("EmptyObject", "the object is empty (0 bytes)")
        try:
            with Image.open(io.BytesIO(image.data)) as opened:
                rgb = numpy.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ObjectError("InvalidImageFormat", f"not a readable image: {exc}") from exc
        return TextResult(self.name, self.model_version, self.read_pixels(rgb))

    def read_video(self, media: str | bytes) -> TextResult:
        """Read a video's text a frame every `frame_interval_ms` (a file path or its bytes)."""
        import av

        if isinstance(media, bytes) and not media:
            raise ObjectError("EmptyObject", "the object is empty (0 bytes)")
        source: Any = io.BytesIO(media) if isinstance(media, bytes) else media
        texts: list[DetectedText] = []
        try:
            with av.open(source) as container:
                if not container.streams.video:
                    raise ObjectError("NoVideoStream", "the file has no video stream")
                stream = container.streams.video[0]
                next_ms = 0
                for frame in container.decode(stream):
                    if frame.time is None or round(frame.time * 1000) < next_ms:
                        continue
                    at_ms = round(frame.time * 1000)
                    next_ms = (at_ms // self.frame_interval_ms + 1) * self.frame_interval_ms
                    texts.extend(self.read_pixels(frame.to_ndarray(format="rgb24"), at_ms))
        except av.error.FFmpegError as exc:
            raise ObjectError("InvalidVideoFormat", f"not a readable video file: {exc}") from exc
        return TextResult(self.name, self.model_version, texts)
