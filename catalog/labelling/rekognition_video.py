"""Stored-video jobs (idempotent starts, status checks, result pages, expiry); label detection."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from catalog.aws.errors import error_code, error_message
from catalog.aws.ratelimit import RateLimiter
from catalog.errors import JobLimitError
from catalog.labelling import LabelResult, Moment, TextResult, VideoInfo
from catalog.labelling.rekognition_image import (
    LABELLER_NAME,
    call_with_throttle_retries,
    parse_label,
    rekognition_error,
    s3_object,
)
from catalog.store.schema import utcnow

# Rekognition keeps a job's results for 7 days (aws-facts §2.4); after that the job is gone.
RESULTS_RETENTION = timedelta(days=7)
MAX_RESULTS = 1000  # the most GetLabelDetection returns per page
START_TPS = 5.0  # default StartLabelDetection quota
GET_TPS = 10.0  # half the default GetLabelDetection quota: polling must not starve result pages
# Get errors that mean "this job id is unknown here": the results expired (or never existed).
_GONE_CODES = frozenset({"ResourceNotFoundException", "InvalidParameterException"})

STATE_RUNNING = "running"
STATE_SUCCEEDED = "succeeded"
STATE_FAILED = "failed"
STATE_EXPIRED = "expired"


@dataclass
class JobStatus:
    """Where a job stands: running, succeeded (with its result), failed or expired (message).

    A finished label job carries `result`, a finished text job `text`.
    """

    state: str
    result: LabelResult | None = None
    message: str = ""
    text: TextResult | None = None


@dataclass(frozen=True)
class VideoJobRequest:
    """What to label: the S3 object Rekognition reads, and the content it stands for."""

    bucket: str
    key: str
    etag: str | None
    version_id: str | None = None
    restart_of: str | None = None  # the expired job this one replaces (gives a fresh token)
    extra: Mapping[str, str] = field(default_factory=dict)


def is_expired(started_at: datetime | None, now: datetime | None = None) -> bool:
    """True when a job started so long ago that Rekognition no longer keeps its results."""
    if started_at is None:
        return False
    return (now or utcnow()) - started_at >= RESULTS_RETENTION


def client_request_token(request: VideoJobRequest, parameters: Mapping[str, Any]) -> str:
    """A deterministic idempotency token (<= 64 chars of [A-Za-z0-9_-]).

    It is derived from bucket, key, version, ETag and every other request parameter, so a
    retried start returns the same job, and a start with changed parameters (another
    --min-confidence) is a new job instead of an IdempotentParameterMismatchException.
    """
    material = json.dumps(
        {
            "bucket": request.bucket,
            "key": request.key,
            "version": request.version_id,
            "etag": request.etag,
            "restart_of": request.restart_of,
            "parameters": parameters,
        },
        sort_keys=True,
        default=str,
    )
    return "catalog-" + hashlib.sha256(material.encode()).hexdigest()[:56]


def parse_video_metadata(data: Mapping[str, Any] | None) -> VideoInfo:
    """Rekognition's VideoMetadata as VideoInfo."""
    data = data or {}
    duration = data.get("DurationMillis")
    rate = data.get("FrameRate")
    return VideoInfo(
        codec=data.get("Codec"),
        container_format=data.get("Format"),
        duration_ms=int(duration) if duration is not None else None,
        frame_rate=round(float(rate), 3) if rate is not None else None,
        width=int(data["FrameWidth"]) if data.get("FrameWidth") else None,
        height=int(data["FrameHeight"]) if data.get("FrameHeight") else None,
    )


def iter_job_pages(
    first: dict[str, Any], next_page: Callable[[str], dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """A Get*Detection job's first page and every page after it, following NextToken."""
    page = first
    while True:
        yield page
        token = page.get("NextToken")
        if not token:
            return
        page = next_page(token)


def iter_detections(
    pages: Iterable[Mapping[str, Any]], items: str, detection: str, name: str
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(timestamp ms, detection) for each detection on a job's pages that has its `name` field.

    E.g. items "Labels", detection "Label", name "Name" for GetLabelDetection's pages.
    """
    for page in pages:
        for item in page.get(items) or ():
            found = item.get(detection)
            if found and found.get(name):
                yield int(item.get("Timestamp", 0)), found


class RekognitionVideoJobs:
    """Rekognition's asynchronous jobs on stored videos: idempotent starts, checks, result pages.

    Label and text detection differ only in their operations, parameters and results: a
    subclass names its operations and turns a finished job's pages into a JobStatus.
    """

    name = LABELLER_NAME
    detection = ""  # what the job detects, for messages: "label detection"
    start_operation = ""  # the client method starting a job: "start_label_detection"
    get_operation = ""  # the client method reading one: "get_label_detection"
    get_parameters: Mapping[str, Any] = MappingProxyType({})  # extra Get*Detection parameters

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
        """The Start*Detection parameters besides the video and the token."""
        parameters: dict[str, Any] = {}
        if self.notification_topic_arn and self.role_arn:
            parameters["NotificationChannel"] = {
                "SNSTopicArn": self.notification_topic_arn,
                "RoleArn": self.role_arn,
            }
        return parameters

    def _token(self, request: VideoJobRequest, parameters: Mapping[str, Any]) -> str:
        return client_request_token(request, parameters)

    def start(self, request: VideoJobRequest) -> str:
        """Start*Detection with an idempotent token; returns the JobId.

        Raises JobLimitError when the concurrent-job quota is full (keep the video queued),
        ObjectError for a per-object refusal, CatalogError for credentials or permissions.
        """
        parameters = self._parameters()
        try:
            response = call_with_throttle_retries(
                getattr(self.client, self.start_operation),
                self.start_limiter,
                Video={"S3Object": s3_object(request.bucket, request.key, request.version_id)},
                ClientRequestToken=self._token(request, parameters),
                **parameters,
            )
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) == "LimitExceededException":
                raise JobLimitError(error_message(exc)) from exc
            raise rekognition_error(exc, f"starting Rekognition {self.detection}") from exc
        return str(response["JobId"])

    def check(self, job_id: str, started_at: datetime | None = None) -> JobStatus:
        """One status check; for a finished job, every result page."""
        what = f"reading Rekognition {self.detection} results"
        if is_expired(started_at):
            return JobStatus(STATE_EXPIRED, message="the job's results are older than 7 days")
        try:
            first = self._get(job_id, None)
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) in _GONE_CODES:
                return JobStatus(STATE_EXPIRED, message=error_message(exc))
            raise rekognition_error(exc, what) from exc
        status = self._status(first)
        if status == "IN_PROGRESS":
            return JobStatus(STATE_RUNNING)
        if status != "SUCCEEDED":
            return JobStatus(
                STATE_FAILED, message=first.get("StatusMessage") or f"the job ended {status}"
            )
        try:
            return self._finished(job_id, first)
        except (ClientError, BotoCoreError) as exc:
            raise rekognition_error(exc, what) from exc

    def _status(self, first: Mapping[str, Any]) -> Any:
        """The job's status as its first page gives it."""
        return first.get("JobStatus")

    def _finished(self, job_id: str, first: dict[str, Any]) -> JobStatus:
        """The succeeded job's status, carrying the result read from every page."""
        raise NotImplementedError

    def _get(self, job_id: str, next_token: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"JobId": job_id, "MaxResults": MAX_RESULTS, **self.get_parameters}
        if next_token:
            kwargs["NextToken"] = next_token
        response: dict[str, Any] = call_with_throttle_retries(
            getattr(self.client, self.get_operation), self.get_limiter, **kwargs
        )
        return response

    def iter_pages(self, job_id: str, first: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The first page and every page after it, following NextToken."""
        return iter_job_pages(first, lambda token: self._get(job_id, token))


class RekognitionVideoLabeller(RekognitionVideoJobs):
    """Labels stored videos with Rekognition's asynchronous label detection."""

    detection = "label detection"
    start_operation = "start_label_detection"
    get_operation = "get_label_detection"
    get_parameters = MappingProxyType({"SortBy": "TIMESTAMP"})

    def __init__(
        self,
        client: Any,
        *,
        min_confidence: float = 50.0,
        notification_topic_arn: str | None = None,
        role_arn: str | None = None,
        start_limiter: RateLimiter | None = None,
        get_limiter: RateLimiter | None = None,
    ) -> None:
        super().__init__(
            client,
            notification_topic_arn=notification_topic_arn,
            role_arn=role_arn,
            start_limiter=start_limiter,
            get_limiter=get_limiter,
        )
        self.min_confidence = min_confidence

    def _parameters(self) -> dict[str, Any]:
        return {
            "MinConfidence": float(self.min_confidence),
            "Features": ["GENERAL_LABELS"],
            **super()._parameters(),
        }

    def _status(self, first: Mapping[str, Any]) -> Any:
        status = first.get("JobStatus")
        if status is None and ("VideoMetadata" in first or first.get("Labels")):
            # AWS's own samples (2017, the SEGMENTS one) carry results without a JobStatus.
            status = "SUCCEEDED"
        return status

    def _finished(self, job_id: str, first: dict[str, Any]) -> JobStatus:
        """Every label moment of a succeeded job, sorted by timestamp."""
        moments: list[Moment] = []
        pages = self.iter_pages(job_id, first)
        for timestamp_ms, label in iter_detections(pages, "Labels", "Label", "Name"):
            parsed = parse_label(label)
            if parsed.confidence < self.min_confidence:
                continue  # a resumed job may have been started with a lower threshold
            moments.append(Moment(timestamp_ms, parsed))
        moments.sort(key=lambda moment: moment.timestamp_ms)
        video = parse_video_metadata(first.get("VideoMetadata"))
        result = LabelResult(
            labeller=LABELLER_NAME,
            model_version=first.get("LabelModelVersion"),
            min_confidence=float(self.min_confidence),
            moments=moments,
            width=video.width,
            height=video.height,
            video=video,
            billed_video_ms=video.duration_ms or 0,
        )
        return JobStatus(STATE_SUCCEEDED, result=result)


__all__ = [
    "RESULTS_RETENTION",
    "JobStatus",
    "RekognitionVideoJobs",
    "RekognitionVideoLabeller",
    "VideoJobRequest",
    "client_request_token",
    "is_expired",
    "parse_video_metadata",
]
