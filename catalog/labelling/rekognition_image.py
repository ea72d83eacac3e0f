"""DetectLabels -> LabelResult, with throttling retried and per-object errors recorded."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from catalog.aws.errors import (
    THROTTLING_CODES,
    is_throttling,
    object_error,
)
from catalog.aws.ratelimit import RateLimiter
from catalog.errors import AWSError, CatalogError, ObjectError
from catalog.labelling import (
    REKOGNITION,
    BoundingBox,
    DetectedLabel,
    ImageInput,
    Instance,
    LabelResult,
)

LABELLER_NAME = REKOGNITION
# A failure that belongs to the labeller, not the object: a labeller that can do better retries it.
VIDEO_NEEDS_S3 = "VideoNeedsS3"
# After botocore's own retries give up on throttling, we keep trying this many more rounds.
THROTTLE_ROUNDS = 8
# Errors that are about the whole account or request setup, not one image.
_FATAL_CODES = frozenset({"AccessDeniedException"})


def parse_label(data: Mapping[str, Any]) -> DetectedLabel:
    """One Rekognition `Label` structure as a DetectedLabel."""
    instances = tuple(
        Instance(
            box=BoundingBox(
                left=float(inst.get("BoundingBox", {}).get("Left", 0.0)),
                top=float(inst.get("BoundingBox", {}).get("Top", 0.0)),
                width=float(inst.get("BoundingBox", {}).get("Width", 0.0)),
                height=float(inst.get("BoundingBox", {}).get("Height", 0.0)),
            ),
            confidence=float(inst.get("Confidence", data.get("Confidence", 0.0))),
        )
        for inst in data.get("Instances") or ()
        if inst.get("BoundingBox")
    )
    return DetectedLabel(
        name=str(data["Name"]),
        confidence=float(data.get("Confidence", 0.0)),
        instances=instances,
        parents=tuple(str(p["Name"]) for p in data.get("Parents") or () if p.get("Name")),
        aliases=tuple(str(a["Name"]) for a in data.get("Aliases") or () if a.get("Name")),
        categories=tuple(str(c["Name"]) for c in data.get("Categories") or () if c.get("Name")),
    )


def video_needs_s3(does: str) -> ObjectError:
    """The failure of a Rekognition image call asked for a video that is not in S3."""
    return ObjectError(
        VIDEO_NEEDS_S3,
        f"Rekognition {does} stored videos only from S3; use --labeller local for videos in a "
        "folder, or sync them from an S3 prefix",
    )


def s3_object(bucket: str, key: str, version_id: str | None) -> dict[str, str]:
    """Rekognition's S3Object structure (naming the version only when one is known)."""
    found: dict[str, str] = {"Bucket": bucket, "Name": key}
    if version_id:
        found["Version"] = version_id
    return found


def image_source(image: ImageInput) -> dict[str, Any]:
    """Rekognition's Image structure: the bytes when the image carries them, else its S3 object."""
    if image.data is not None:
        return {"Bytes": image.data}
    return {"S3Object": s3_object(str(image.bucket), str(image.key), image.version_id)}


def rekognition_error(exc: BaseException, what: str) -> ObjectError | CatalogError:
    """A failed Rekognition call: this object's ObjectError, or the run's for credentials/access."""
    return object_error(exc, what, default_code="RekognitionError", fatal_codes=_FATAL_CODES)


def watch_throttling(client: Any, operation: str, limiter: RateLimiter) -> None:
    """Tell `limiter` about every throttling answer, including those botocore retries itself."""

    def on_attempt(response: Any = None, **_: Any) -> None:
        if response is not None and isinstance(response, tuple) and len(response) == 2:
            parsed = response[1] or {}
            if parsed.get("Error", {}).get("Code") in THROTTLING_CODES:
                limiter.throttled()

    client.meta.events.register(
        f"needs-retry.rekognition.{operation}",
        on_attempt,
        unique_id=f"catalog-limiter-{id(limiter)}",
    )


def call_with_throttle_retries(call: Any, limiter: RateLimiter | None, **kwargs: Any) -> Any:
    """Call a Rekognition operation; throttling is retried with backoff beyond botocore's own."""
    for attempt in range(THROTTLE_ROUNDS + 1):
        if limiter is not None:
            limiter.acquire()
        try:
            return call(**kwargs)
        except ClientError as exc:
            if is_throttling(exc) and attempt < THROTTLE_ROUNDS:
                time.sleep(min(20.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2))
                continue
            raise
    raise AssertionError("unreachable")


def detect_in_image(
    call: Any, limiter: RateLimiter | None, image: ImageInput, what: str, **kwargs: Any
) -> Any:
    """Call a Detect* operation for one image; a failure raises `rekognition_error`."""
    try:
        return call_with_throttle_retries(call, limiter, Image=image_source(image), **kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise rekognition_error(exc, what) from exc


class RekognitionImageLabeller:
    """Labels images with Amazon Rekognition DetectLabels."""

    name = LABELLER_NAME
    model_version: str | None = None  # reported per response (LabelModelVersion)
    reads_original_bytes = False
    labels_videos = False  # stored videos go through RekognitionVideoLabeller's jobs

    def __init__(
        self,
        client: Any,
        *,
        min_confidence: float = 50.0,
        max_labels: int | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.client = client
        self.min_confidence = min_confidence
        self.max_labels = max_labels
        self.limiter = limiter
        if limiter is not None:
            watch_throttling(client, "DetectLabels", limiter)

    def label_image(self, image: ImageInput) -> LabelResult:
        """Call DetectLabels for one image (S3 reference or bytes)."""
        request: dict[str, Any] = {"MinConfidence": float(self.min_confidence)}
        if self.max_labels is not None:
            request["MaxLabels"] = int(self.max_labels)
        what = "calling Rekognition DetectLabels"
        response = detect_in_image(self.client.detect_labels, self.limiter, image, what, **request)
        return LabelResult(
            labeller=LABELLER_NAME,
            model_version=response.get("LabelModelVersion"),
            min_confidence=float(self.min_confidence),
            max_labels=self.max_labels,
            labels=[parse_label(label) for label in response.get("Labels") or ()],
            width=image.width,
            height=image.height,
            billed_images=1,
        )

    def label_video(self, media: str | bytes) -> LabelResult:
        """DetectLabels has no video form: stored videos are labelled by asynchronous jobs."""
        raise video_needs_s3("labels")


__all__ = ["LABELLER_NAME", "AWSError", "RekognitionImageLabeller", "parse_label"]
