"""The offline labeller: images and sampled video frames through the cascades or an ONNX model."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from catalog.errors import ObjectError, UsageError
from catalog.labelling import (
    DetectedLabel,
    ImageInput,
    Instance,
    LabelResult,
    Moment,
    VideoInfo,
)
from catalog.labelling.local.boxes import to_ratio_box
from catalog.labelling.local.cascades import CascadeDetector
from catalog.labelling.local.onnx import OnnxDetector
from catalog.labelling.local.opencv import opencv
from catalog.labelling.local.taxonomy import make_labels

LABELLER_NAME = "local"
DEFAULT_FRAME_INTERVAL_MS = 1000
# Work on at most this many pixels along the longer side (cascades are scale-invariant enough).
MAX_SIDE = 800


class LocalLabeller:
    """Labels images and videos on this machine, with no network and nothing to download."""

    name = LABELLER_NAME
    # The pipeline hands this labeller the file's own bytes (no JPEG re-encoding, no S3 reference).
    reads_original_bytes = True
    labels_videos = True

    def __init__(
        self,
        *,
        min_confidence: float = 50.0,
        max_labels: int | None = None,
        model_path: str | Path | None = None,
        classes_path: str | Path | None = None,
        frame_interval_ms: int = DEFAULT_FRAME_INTERVAL_MS,
    ) -> None:
        if classes_path is not None and model_path is None:
            raise UsageError("--classes names the classes of an ONNX model; give --model too")
        self.min_confidence = min_confidence
        self.max_labels = max_labels
        self.frame_interval_ms = max(1, frame_interval_ms)
        self.onnx = OnnxDetector(model_path, classes_path) if model_path is not None else None
        self.cascades = CascadeDetector() if self.onnx is None else None
        cv2 = opencv()
        self.model_version = (
            self.onnx.version if self.onnx is not None else f"opencv-{cv2.__version__}-haar"
        )[:64]

    # -- frames --

    def detect(self, rgb: Any) -> list[DetectedLabel]:
        """Labels for one RGB frame (a numpy array), parents included, best first."""
        cv2 = opencv()
        height, width = rgb.shape[:2]
        scale = min(1.0, MAX_SIDE / max(width, height))
        if scale < 1.0:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if self.onnx is not None:
            found = self.onnx.detect(rgb, self.min_confidence / 100)
        else:
            assert self.cascades is not None
            found = self.cascades.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        small_h, small_w = rgb.shape[:2]
        instances = {
            name: [
                Instance(to_ratio_box(box, small_w, small_h), round(confidence, 3))
                for box, confidence in items
                if confidence >= self.min_confidence
            ]
            for name, items in found.items()
        }
        labels = make_labels(instances)
        if self.max_labels is not None:
            labels = labels[: self.max_labels]
        return labels

    # -- images --

    def label_image(self, image: ImageInput) -> LabelResult:
        """Label one image given as bytes (any format Pillow reads, EXIF orientation applied)."""
        import numpy as np

        from catalog.labelling.imaging import open_image

        if image.data is None:
            raise ObjectError("NoImageData", "the local labeller needs the image's bytes")
        picture = open_image(image.data)
        rgb = np.asarray(picture.convert("RGB"))
        return LabelResult(
            labeller=self.name,
            model_version=self.model_version,
            min_confidence=float(self.min_confidence),
            max_labels=self.max_labels,
            labels=self.detect(rgb),
            width=picture.width,
            height=picture.height,
        )

    # -- videos --

    def label_video(self, media: str | bytes) -> LabelResult:
        """Label a video (a file path or its bytes) by sampling a frame every interval."""
        import av

        source: Any = io.BytesIO(media) if isinstance(media, bytes) else media
        if isinstance(media, bytes) and not media:
            raise ObjectError("EmptyObject", "the object is empty (0 bytes)")
        try:
            container = av.open(source)
        except av.error.FFmpegError as exc:
            raise ObjectError("InvalidVideoFormat", f"not a readable video file: {exc}") from exc
        with container:
            if not container.streams.video:
                raise ObjectError("NoVideoStream", "the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            moments: list[Moment] = []
            next_ms = 0
            frames = 0
            try:
                for frame in container.decode(stream):
                    if frame.time is None:
                        continue
                    at_ms = round(frame.time * 1000)
                    if at_ms < next_ms:
                        continue
                    frames += 1
                    next_ms = (at_ms // self.frame_interval_ms + 1) * self.frame_interval_ms
                    for label in self.detect(frame.to_ndarray(format="rgb24")):
                        moments.append(Moment(at_ms, label))
            except av.error.FFmpegError as exc:
                raise ObjectError("CorruptVideo", f"the video cannot be decoded: {exc}") from exc
            if frames == 0:
                raise ObjectError("CorruptVideo", "no frame of the video could be decoded")
            info = VideoInfo(
                codec=stream.codec_context.name,
                container_format=container.format.name,
                duration_ms=_duration_ms(container, stream),
                frame_rate=float(stream.average_rate) if stream.average_rate else None,
                width=stream.codec_context.width or None,
                height=stream.codec_context.height or None,
            )
        return LabelResult(
            labeller=self.name,
            model_version=self.model_version,
            min_confidence=float(self.min_confidence),
            max_labels=self.max_labels,
            moments=moments,
            width=info.width,
            height=info.height,
            video=info,
        )


def _duration_ms(container: Any, stream: Any) -> int | None:
    if container.duration:
        return int(container.duration // 1000)  # microseconds (av.time_base)
    if stream.duration and stream.time_base:
        return int(stream.duration * stream.time_base * 1000)
    return None
