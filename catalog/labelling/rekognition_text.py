"""DetectText for images and Start/GetTextDetection jobs for stored videos -> TextResult."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalog.aws.ratelimit import RateLimiter
from catalog.labelling import BoundingBox, DetectedText, ImageInput, TextResult
from catalog.labelling.rekognition_image import (
    LABELLER_NAME,
    detect_in_image,
    video_needs_s3,
    watch_throttling,
)
from catalog.labelling.rekognition_video import (
    STATE_SUCCEEDED,
    JobStatus,
    RekognitionVideoJobs,
    VideoJobRequest,
    client_request_token,
    iter_detections,
    parse_video_metadata,
)

READER_NAME = LABELLER_NAME  # "rekognition"


def parse_text_detection(data: Mapping[str, Any], timestamp_ms: int | None = None) -> DetectedText:
    """One Rekognition `TextDetection` structure as a DetectedText."""
    box = (data.get("Geometry") or {}).get("BoundingBox") or {}
    parent = data.get("ParentId")
    return DetectedText(
        text=str(data.get("DetectedText") or ""),
        kind=str(data.get("Type") or "LINE"),
        confidence=float(data.get("Confidence", 0.0)),
        box=BoundingBox(
            left=float(box.get("Left", 0.0)),
            top=float(box.get("Top", 0.0)),
            width=float(box.get("Width", 0.0)),
            height=float(box.get("Height", 0.0)),
        ),
        idx=int(data.get("Id", 0)),
        parent_idx=int(parent) if parent is not None else None,
        timestamp_ms=timestamp_ms,
    )


class RekognitionTextReader:
    """Reads the text in images with DetectText (an S3 reference or bytes, as for labels)."""

    name = READER_NAME
    model_version: str | None = None  # reported per response (TextModelVersion)
    reads_original_bytes = False
    reads_videos = False  # stored videos go through RekognitionTextJobs

    def __init__(self, client: Any, *, limiter: RateLimiter | None = None) -> None:
        self.client = client
        self.limiter = limiter
        if limiter is not None:
            watch_throttling(client, "DetectText", limiter)

    def read_image(self, image: ImageInput) -> TextResult:
        """Call DetectText for one image."""
        what = "calling Rekognition DetectText"
        response = detect_in_image(self.client.detect_text, self.limiter, image, what)
        return TextResult(
            reader=READER_NAME,
            model_version=response.get("TextModelVersion"),
            texts=[parse_text_detection(item) for item in response.get("TextDetections") or ()],
            billed_images=1,
        )

    def read_video(self, media: str | bytes) -> TextResult:
        """DetectText has no video form: stored videos are read by asynchronous text jobs."""
        raise video_needs_s3("reads text in")


class RekognitionTextJobs(RekognitionVideoJobs):
    """Reads the text in stored videos with Rekognition's asynchronous text detection.

    The same contract as RekognitionVideoLabeller (start -> JobId, check -> JobStatus) so the
    video phase runs both kinds of job alike; a finished job's JobStatus carries `text`.
    """

    name = READER_NAME
    detection = "text detection"
    start_operation = "start_text_detection"
    get_operation = "get_text_detection"

    def _token(self, request: VideoJobRequest, parameters: Mapping[str, Any]) -> str:
        # The token covers the operation too, so the text job of a video never collides with
        # its label job.
        return client_request_token(request, {"operation": "StartTextDetection", **parameters})

    def _finished(self, job_id: str, first: dict[str, Any]) -> JobStatus:
        """Every line and word of a succeeded job, in order of timestamp and id."""
        pages = self.iter_pages(job_id, first)
        texts = [
            parse_text_detection(detection, timestamp_ms)
            for timestamp_ms, detection in iter_detections(
                pages, "TextDetections", "TextDetection", "DetectedText"
            )
        ]
        texts.sort(key=lambda t: (t.timestamp_ms or 0, t.idx))
        video = parse_video_metadata(first.get("VideoMetadata"))
        text = TextResult(
            reader=READER_NAME,
            model_version=first.get("TextModelVersion"),
            texts=texts,
            billed_video_ms=video.duration_ms or 0,
        )
        return JobStatus(STATE_SUCCEEDED, text=text)


__all__ = [
    "READER_NAME",
    "RekognitionTextJobs",
    "RekognitionTextReader",
    "parse_text_detection",
]
