"""DetectText for images and Start/GetTextDetection jobs for stored videos -> TextResult."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from catalog.aws.errors import error_code, error_message, is_credentials_error, translate_error
from catalog.aws.ratelimit import RateLimiter
from catalog.errors import JobLimitError, ObjectError
from catalog.labelling import BoundingBox, DetectedText, ImageInput, TextResult
from catalog.labelling.rekognition_image import (
    LABELLER_NAME,
    VIDEO_NEEDS_S3,
    call_with_throttle_retries,
    watch_throttling,
)
from catalog.labelling.rekognition_video import (
    GET_TPS,
    MAX_RESULTS,
    START_TPS,
    STATE_EXPIRED,
    STATE_FAILED,
    STATE_RUNNING,
    STATE_SUCCEEDED,
    JobStatus,
    VideoJobRequest,
    client_request_token,
    is_expired,
    iter_job_pages,
    parse_video_metadata,
)

READER_NAME = LABELLER_NAME  # "rekognition"
_GONE_CODES = frozenset({"ResourceNotFoundException", "InvalidParameterException"})
_FATAL_CODES = frozenset({"AccessDeniedException"})


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


def _error(exc: Exception, what: str) -> Exception:
    """Credentials and permissions end the run; anything else is this object's failure."""
    code = error_code(exc)
    if is_credentials_error(exc) or code in _FATAL_CODES:
        return translate_error(exc, what)
    if isinstance(exc, ClientError):
        return ObjectError(code or "RekognitionError", error_message(exc))
    return ObjectError(type(exc).__name__, str(exc))


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
        if image.data is not None:
            request: dict[str, Any] = {"Image": {"Bytes": image.data}}
        else:
            s3_object: dict[str, str] = {"Bucket": str(image.bucket), "Name": str(image.key)}
            if image.version_id:
                s3_object["Version"] = image.version_id
            request = {"Image": {"S3Object": s3_object}}
        try:
            response = call_with_throttle_retries(self.client.detect_text, self.limiter, **request)
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, "calling Rekognition DetectText") from exc
        return TextResult(
            reader=READER_NAME,
            model_version=response.get("TextModelVersion"),
            texts=[parse_text_detection(item) for item in response.get("TextDetections") or ()],
            billed_images=1,
        )

    def read_video(self, media: str | bytes) -> TextResult:
        """DetectText has no video form: stored videos are read by asynchronous text jobs."""
        raise ObjectError(
            VIDEO_NEEDS_S3,
            "Rekognition reads text in stored videos only from S3; use --labeller local for "
            "videos in a folder, or sync them from an S3 prefix",
        )


class RekognitionTextJobs:
    """Reads the text in stored videos with Rekognition's asynchronous text detection.

    The same contract as RekognitionVideoLabeller (start -> JobId, check -> JobStatus) so the
    video phase runs both kinds of job alike; a finished job's JobStatus carries `text`.
    """

    name = READER_NAME

    def __init__(
        self,
        client: Any,
        *,
        notification_topic_arn: str | None = None,
        role_arn: str | None = None,
        start_limiter: RateLimiter | None = None,
        get_limiter: RateLimiter | None = None,
    ) -> None:
        self.client = client
        self.notification_topic_arn = notification_topic_arn
        self.role_arn = role_arn
        self.start_limiter = start_limiter or RateLimiter(START_TPS)
        self.get_limiter = get_limiter or RateLimiter(GET_TPS)

    def _parameters(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {}
        if self.notification_topic_arn and self.role_arn:
            parameters["NotificationChannel"] = {
                "SNSTopicArn": self.notification_topic_arn,
                "RoleArn": self.role_arn,
            }
        return parameters

    def start(self, request: VideoJobRequest) -> str:
        """StartTextDetection with an idempotent token; returns the JobId.

        The token covers the operation too, so the text job of a video never collides with its
        label job. Raises JobLimitError when the concurrent-job quota is full.
        """
        parameters = self._parameters()
        s3_object: dict[str, str] = {"Bucket": request.bucket, "Name": request.key}
        if request.version_id:
            s3_object["Version"] = request.version_id
        token = client_request_token(request, {"operation": "StartTextDetection", **parameters})
        try:
            response = call_with_throttle_retries(
                self.client.start_text_detection,
                self.start_limiter,
                Video={"S3Object": s3_object},
                ClientRequestToken=token,
                **parameters,
            )
        except ClientError as exc:
            if error_code(exc) == "LimitExceededException":
                raise JobLimitError(error_message(exc)) from exc
            raise _error(exc, "starting Rekognition text detection") from exc
        except BotoCoreError as exc:
            raise _error(exc, "starting Rekognition text detection") from exc
        return str(response["JobId"])

    def check(self, job_id: str, started_at: datetime | None = None) -> JobStatus:
        """One status check; for a finished job, every result page."""
        what = "reading Rekognition text detection results"
        if is_expired(started_at):
            return JobStatus(STATE_EXPIRED, message="the job's results are older than 7 days")
        try:
            first = self._get(job_id, None)
        except ClientError as exc:
            if error_code(exc) in _GONE_CODES:
                return JobStatus(STATE_EXPIRED, message=error_message(exc))
            raise _error(exc, what) from exc
        except BotoCoreError as exc:
            raise _error(exc, what) from exc
        status = first.get("JobStatus")
        if status == "IN_PROGRESS":
            return JobStatus(STATE_RUNNING)
        if status != "SUCCEEDED":
            return JobStatus(
                STATE_FAILED, message=first.get("StatusMessage") or f"the job ended {status}"
            )
        try:
            return JobStatus(STATE_SUCCEEDED, text=self._result(job_id, first))
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, what) from exc

    def _get(self, job_id: str, next_token: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"JobId": job_id, "MaxResults": MAX_RESULTS}
        if next_token:
            kwargs["NextToken"] = next_token
        response: dict[str, Any] = call_with_throttle_retries(
            self.client.get_text_detection, self.get_limiter, **kwargs
        )
        return response

    def iter_pages(self, job_id: str, first: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The first page and every page after it, following NextToken."""
        return iter_job_pages(first, lambda token: self._get(job_id, token))

    def _result(self, job_id: str, first: dict[str, Any]) -> TextResult:
        texts: list[DetectedText] = []
        for page in self.iter_pages(job_id, first):
            for item in page.get("TextDetections") or ():
                detection = item.get("TextDetection")
                if not detection or not detection.get("DetectedText"):
                    continue
                texts.append(parse_text_detection(detection, int(item.get("Timestamp", 0))))
        texts.sort(key=lambda t: (t.timestamp_ms or 0, t.idx))
        video = parse_video_metadata(first.get("VideoMetadata"))
        return TextResult(
            reader=READER_NAME,
            model_version=first.get("TextModelVersion"),
            texts=texts,
            billed_video_ms=video.duration_ms or 0,
        )


__all__ = [
    "READER_NAME",
    "RekognitionTextJobs",
    "RekognitionTextReader",
    "parse_text_detection",
]
