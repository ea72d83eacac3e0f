"""A Rekognition stand-in reached through AWS_ENDPOINT_URL_REKOGNITION.

It speaks the service's JSON protocol over HTTP, reads S3 objects from the same (moto) S3 the
code under test uses, and answers DetectLabels from what the picture shows: saturated colour
blocks become labelled instances (red Car, blue Person, green Dog, yellow Cat) with their
bounding boxes, and the overall brightness gives a scene label. DetectText and the text jobs
answer with the text a test says an object shows (`texts`, `video_texts`: what it drew), as
LINE and WORD detections numbered and nested the way the service nests them. Every response is checked
against botocore's service model before it is sent, as botocore's Stubber checks them; errors
use the service's error codes. Latency, a request-rate cap and forced errors are settings, so
tests and benchmarks can make throttling storms and slow services.

`verbatim` replays captured responses: DetectLabels for that key, or every GetLabelDetection of a
job on that key, is answered with the given body byte for byte (an error body, one with
`__type`, as HTTP 400). The body is still checked against botocore's output shape, after
dropping what SDKs add and the service never sends: boto3's `ResponseMetadata` and members an SDK
serialiser wrote as `null` (botocore's parser reads a null member as absent).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.session
import numpy
from botocore.validate import validate_parameters
from PIL import Image, ImageStat

_MODEL = botocore.session.get_session().get_service_model("rekognition")

# colour -> (label, parents, aliases, categories)
PALETTE: dict[tuple[int, int, int], tuple[str, list[str], list[str], list[str]]] = {
    (255, 0, 0): (
        "Car",
        ["Vehicle", "Transportation"],
        ["Automobile"],
        ["Vehicles and Automotive"],
    ),
    (0, 0, 255): ("Person", [], ["Human"], ["Person Description"]),
    (0, 255, 0): ("Dog", ["Animal", "Canine", "Mammal", "Pet"], ["Puppy"], ["Animals and Pets"]),
    (255, 255, 0): ("Cat", ["Animal", "Mammal", "Pet"], ["Kitten"], ["Animals and Pets"]),
}
MODEL_VERSION = "3.0"
TEXT_MODEL_VERSION = "3.0"


def text_detections(
    lines: list[tuple[str, tuple[float, float, float, float]]], confidence: float = 99.0
) -> list[dict[str, Any]]:
    """DetectText's TextDetections for lines drawn in boxes (left, top, width, height ratios).

    Each LINE gets Id 0..n-1 in order; its WORDs follow with ParentId = the LINE's Id and boxes
    that split the line's width by word length, as the service returns them (lines first).
    """
    found: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []
    next_id = len(lines)
    for line_id, (text, (left, top, width, height)) in enumerate(lines):
        found.append(_text_item(text, "LINE", line_id, None, confidence, left, top, width, height))
        parts = text.split()
        total = sum(len(p) for p in parts) or 1
        x = left
        for part in parts:
            part_width = width * len(part) / total
            words.append(
                _text_item(part, "WORD", next_id, line_id, confidence, x, top, part_width, height)
            )
            next_id += 1
            x += part_width
    return found + words


def _text_item(
    text: str,
    kind: str,
    item_id: int,
    parent: int | None,
    confidence: float,
    left: float,
    top: float,
    width: float,
    height: float,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "DetectedText": text,
        "Type": kind,
        "Id": item_id,
        "Confidence": confidence,
        "Geometry": {
            "BoundingBox": {"Width": width, "Height": height, "Left": left, "Top": top},
            "Polygon": [
                {"X": left, "Y": top},
                {"X": left + width, "Y": top},
                {"X": left + width, "Y": top + height},
                {"X": left, "Y": top + height},
            ],
        },
    }
    if parent is not None:
        item["ParentId"] = parent
    return item


class RekognitionFault(Exception):
    """An error response: the service's code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _label(
    name: str,
    confidence: float,
    parents: list[str],
    aliases: list[str],
    categories: list[str],
    instances: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "Name": name,
        "Confidence": confidence,
        "Instances": instances,
        "Parents": [{"Name": p} for p in parents],
        "Aliases": [{"Name": a} for a in aliases],
        "Categories": [{"Name": c} for c in categories],
    }


def labels_for_image(image: Image.Image, min_confidence: float = 55.0) -> list[dict[str, Any]]:
    """Rekognition-shaped labels for what the picture shows (see the module docstring)."""
    rgb = image.convert("RGB")
    small = rgb.copy()
    small.thumbnail((160, 160))
    width, height = small.size
    pixels = numpy.asarray(small, dtype=numpy.int16)
    found: dict[tuple[int, int, int], list[int]] = {}
    counts: dict[tuple[int, int, int], int] = {}
    for colour in PALETTE:
        mask = (numpy.abs(pixels - numpy.array(colour, dtype=numpy.int16)) < 60).all(axis=-1)
        ys, xs = numpy.nonzero(mask)
        if len(xs):
            found[colour] = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
            counts[colour] = int(mask.sum())
    labels = []
    for colour, (name, parents, aliases, categories) in PALETTE.items():
        if colour not in found:
            continue
        x0, y0, x1, y1 = found[colour]
        area = (x1 - x0 + 1) * (y1 - y0 + 1)
        fill = counts[colour] / area
        confidence = round(50.0 + 49.5 * fill, 3)
        if confidence < min_confidence:
            continue
        box = {
            "Left": x0 / width,
            "Top": y0 / height,
            "Width": (x1 - x0 + 1) / width,
            "Height": (y1 - y0 + 1) / height,
        }
        labels.append(
            _label(
                name,
                confidence,
                parents,
                aliases,
                categories,
                [{"BoundingBox": box, "Confidence": confidence}],
            )
        )
        for parent in parents:
            labels.append(
                _label(parent, confidence, [p for p in parents if p != parent], [], categories, [])
            )
    brightness = ImageStat.Stat(rgb.convert("L")).mean[0]
    scene = ("Daylight", 80.0) if brightness >= 128 else ("Night", 70.0)
    if scene[1] >= min_confidence:
        labels.append(_label(scene[0], scene[1], ["Nature"], [], ["Nature and Outdoors"], []))
    # Parents may repeat (Dog and Cat both give Animal): keep the best of each name.
    best: dict[str, dict[str, Any]] = {}
    for label in labels:
        if label["Name"] not in best or label["Confidence"] > best[label["Name"]]["Confidence"]:
            best[label["Name"]] = label
    return sorted(best.values(), key=lambda item: -item["Confidence"])


@dataclass
class FakeRekognition:
    """The stand-in's state and settings; `start()` serves it on 127.0.0.1."""

    s3: Any = None  # a boto3 S3 client for S3Object references
    latency_s: float = 0.0
    rate_limit: float | None = None  # requests per second before ThrottlingException
    throttle_code: str = "ThrottlingException"
    throttle_next: int = 0  # throttle this many requests regardless of rate
    fail_keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (code, message)
    canned: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # key -> Labels
    default_labels: list[dict[str, Any]] | None = None  # answer every image with these, unread
    verbatim: dict[str, bytes] = field(default_factory=dict)  # key -> a captured response body
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    throttled: int = 0
    first_call_at: dict[str, float] = field(default_factory=dict)  # operation -> epoch seconds
    # key (or sha256 of sent bytes) -> the lines of text the picture shows, with their boxes
    texts: dict[str, list[tuple[str, tuple[float, float, float, float]]]] = field(
        default_factory=dict
    )
    # video key -> (timestamp_ms, text, box) of each line shown
    video_texts: dict[str, list[tuple[int, str, tuple[float, float, float, float]]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: deque[float] = deque()
        self._server: ThreadingHTTPServer | None = None

    # -- serving ----------------------------------------------------------------------------

    def start(self) -> str:
        """Serve on an ephemeral port; returns the endpoint URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                # /_stats: call counts for benchmarks that run the double in another process.
                with fake._lock:
                    counts = Counter(op for op, _ in fake.calls)
                    first = dict(fake.first_call_at)
                data = json.dumps(
                    {"calls": dict(counts), "throttled": fake.throttled, "first_call_at": first}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.path == "/_config":
                    # Change settings from another process: latency_s, rate_limit, default_labels.
                    settings = json.loads(self.rfile.read(length) or b"{}")
                    for name, value in settings.items():
                        setattr(fake, name, value)
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except (ValueError, OSError):
                    return  # the client went away mid-request (a killed process)
                target = self.headers.get("X-Amz-Target", "")
                operation = target.rsplit(".", 1)[-1]
                status, payload = fake.handle(operation, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", hashlib.md5(data).hexdigest())
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    return  # the client went away (a killed process)

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                return None  # killed clients are part of the tests

        self._server = QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        """Forget calls and settings between tests."""
        with self._lock:
            self.calls.clear()
            self.first_call_at.clear()
            self.fail_keys.clear()
            self.canned.clear()
            self.verbatim.clear()
            self.texts.clear()
            self.video_texts.clear()
            self.latency_s = 0.0
            self.rate_limit = None
            self.default_labels = None
            self.throttle_next = 0
            self.throttled = 0
            self._recent.clear()
            self._reset_videos()

    def count(self, operation: str) -> int:
        """How many calls of one operation were received (throttled ones included)."""
        with self._lock:
            return sum(1 for op, _ in self.calls if op == operation)

    # -- dispatch ---------------------------------------------------------------------------

    def handle(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | bytes]:
        """Answer one request: (HTTP status, JSON body, or a verbatim body's bytes)."""
        with self._lock:
            self.calls.append((operation, body))
            self.first_call_at.setdefault(operation, time.time())
        if self.latency_s:
            time.sleep(self.latency_s)
        try:
            self._throttle()
            handler = getattr(self, f"op_{operation}", None)
            if handler is None:
                raise RekognitionFault(
                    "InvalidParameterException", f"{operation} is not supported here"
                )
            response = handler(body)
            if isinstance(response, bytes):
                return self._replay(operation, response)
            validate_parameters(response, _MODEL.operation_model(operation).output_shape)
            return 200, response
        except RekognitionFault as fault:
            return fault.status, {"__type": fault.code, "Message": fault.message}

    @staticmethod
    def _replay(operation: str, data: bytes) -> tuple[int, bytes]:
        """A captured body as is: HTTP 400 for an error body, else checked against the model."""
        parsed = json.loads(data)
        if "__type" in parsed:
            return 400, data
        validate_parameters(
            _without_sdk_members(parsed), _MODEL.operation_model(operation).output_shape
        )
        return 200, data

    def _throttle(self) -> None:
        with self._lock:
            if self.throttle_next > 0:
                self.throttle_next -= 1
                self.throttled += 1
                raise RekognitionFault(self.throttle_code, "Rate exceeded")
            if self.rate_limit:
                now = time.monotonic()
                while self._recent and now - self._recent[0] >= 1.0:
                    self._recent.popleft()
                if len(self._recent) >= self.rate_limit:
                    self.throttled += 1
                    raise RekognitionFault(self.throttle_code, "Rate exceeded")
                self._recent.append(now)

    # -- images -----------------------------------------------------------------------------

    def _image_bytes(self, image: dict[str, Any]) -> tuple[bytes, str | None, int]:
        if "Bytes" in image:
            data = base64.b64decode(image["Bytes"])
            if len(data) > 5_242_880:
                raise RekognitionFault("ImageTooLargeException", "Image size is too large.")
            return data, None, 5_242_880
        ref = image.get("S3Object") or {}
        key = ref.get("Name")
        if self.s3 is None:
            raise RekognitionFault(
                "InvalidS3ObjectException", "Unable to get object metadata from S3."
            )
        try:
            obj = self.s3.get_object(Bucket=ref.get("Bucket"), Key=key)
        except Exception as exc:
            raise RekognitionFault(
                "InvalidS3ObjectException",
                "Unable to get object metadata from S3. Check object key, region and/or access permissions.",
            ) from exc
        data = obj["Body"].read()
        if len(data) > 15 * 1024 * 1024:
            raise RekognitionFault("ImageTooLargeException", "Image size is too large.")
        return data, key, 15 * 1024 * 1024

    def op_DetectLabels(self, body: dict[str, Any]) -> dict[str, Any] | bytes:
        if self.default_labels is not None:
            return {"Labels": self.default_labels, "LabelModelVersion": MODEL_VERSION}
        data, key, _ = self._image_bytes(body.get("Image") or {})
        if key is not None and key in self.fail_keys:
            code, message = self.fail_keys[key]
            raise RekognitionFault(code, message)
        if key is not None and key in self.verbatim:
            return self.verbatim[key]
        if key is not None and key in self.canned:
            return {"Labels": self.canned[key], "LabelModelVersion": MODEL_VERSION}
        try:
            image = Image.open(io.BytesIO(data))
            fmt = image.format
            image.load()
        except Exception as exc:
            raise RekognitionFault(
                "InvalidImageFormatException", "Request has invalid image format"
            ) from exc
        if fmt not in ("JPEG", "PNG"):
            raise RekognitionFault(
                "InvalidImageFormatException", "Request has invalid image format"
            )
        if min(image.size) < 80:
            raise RekognitionFault("InvalidParameterException", "Request has invalid parameters")
        labels = labels_for_image(image, float(body.get("MinConfidence", 55.0)))
        if body.get("MaxLabels"):
            labels = labels[: int(body["MaxLabels"])]
        return {"Labels": labels, "LabelModelVersion": MODEL_VERSION}

    def op_DetectText(self, body: dict[str, Any]) -> dict[str, Any]:
        data, key, _ = self._image_bytes(body.get("Image") or {})
        if key is not None and key in self.fail_keys:
            code, message = self.fail_keys[key]
            raise RekognitionFault(code, message)
        try:
            image = Image.open(io.BytesIO(data))
            fmt = image.format
            image.load()
        except Exception as exc:
            raise RekognitionFault(
                "InvalidImageFormatException", "Request has invalid image format"
            ) from exc
        if fmt not in ("JPEG", "PNG"):
            raise RekognitionFault(
                "InvalidImageFormatException", "Request has invalid image format"
            )
        if min(image.size) < 80:
            raise RekognitionFault("InvalidParameterException", "Request has invalid parameters")
        lines = self.texts.get(key) if key is not None else None
        if lines is None:
            lines = self.texts.get(hashlib.sha256(data).hexdigest(), [])
        return {"TextDetections": text_detections(lines), "TextModelVersion": TEXT_MODEL_VERSION}

    # -- videos -----------------------------------------------------------------------------
    # Start/GetLabelDetection: a job answers IN_PROGRESS to `video_polls` Gets, then decodes the
    # video (H.264 in MP4/MOV only, like the service) and reports the colour-block labels of a
    # frame every `video_sample_ms`, or ends FAILED. Tokens are idempotent for 7 days as in the
    # service; `expire()` plays the 7 days passing. `complete_jobs()` ends every running job at
    # once and, for jobs started with a NotificationChannel, publishes Rekognition's completion
    # message to the topic through `sns` (a boto3 SNS client, e.g. on moto).

    sns: Any = None

    video_polls: int = 1  # Get calls answered IN_PROGRESS before the job finishes
    max_concurrent_jobs: int = 20  # LimitExceededException above this many running jobs
    video_sample_ms: int = 500
    fail_jobs: dict[str, str] = field(default_factory=dict)  # key -> StatusMessage of a FAILED job
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # JobId -> job
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> (params, JobId)
    limit_exceeded: int = 0
    max_results_cap: int = 1000  # the most labels one GetLabelDetection page holds

    def _reset_videos(self) -> None:
        self.max_results_cap = 1000
        self.video_polls = 1
        self.max_concurrent_jobs = 20
        self.video_sample_ms = 500
        self.fail_jobs.clear()
        self.jobs.clear()
        self.tokens.clear()
        self.limit_exceeded = 0

    def expire(self, job_id: str | None = None) -> None:
        """Play 7 days passing for one job (or all): its results and its token are gone."""
        with self._lock:
            for jid, job in self.jobs.items():
                if job_id is None or jid == job_id:
                    job["expired"] = True
            for token, (_, jid) in list(self.tokens.items()):
                if job_id is None or jid == job_id:
                    del self.tokens[token]

    def running_jobs(self) -> int:
        """Jobs that have not finished."""
        with self._lock:
            return sum(
                1 for j in self.jobs.values() if j["status"] == "IN_PROGRESS" and not j["expired"]
            )

    def op_StartLabelDetection(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._start_job(body, "labels")

    def op_StartTextDetection(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._start_job(body, "text")

    def _start_job(self, body: dict[str, Any], job_type: str) -> dict[str, Any]:
        ref = (body.get("Video") or {}).get("S3Object") or {}
        if not ref.get("Bucket") or not ref.get("Name"):
            raise RekognitionFault("InvalidParameterException", "Request has invalid parameters")
        if self.s3 is None:
            raise RekognitionFault(
                "InvalidS3ObjectException", "Unable to get object metadata from S3."
            )
        try:
            head = self.s3.head_object(Bucket=ref["Bucket"], Key=ref["Name"])
        except Exception as exc:
            raise RekognitionFault(
                "InvalidS3ObjectException",
                "Unable to get object metadata from S3. Check object key, region and/or access permissions.",
            ) from exc
        if int(head.get("ContentLength", 0)) > 10 * 1024**3:
            raise RekognitionFault("VideoTooLargeException", "Video size is too large.")
        params = json.dumps(
            {"type": job_type, **{k: v for k, v in body.items() if k != "ClientRequestToken"}},
            sort_keys=True,
        )
        token = body.get("ClientRequestToken")
        with self._lock:
            if token and token in self.tokens:
                known_params, job_id = self.tokens[token]
                if known_params != params:
                    raise RekognitionFault(
                        "IdempotentParameterMismatchException",
                        "ClientRequestToken: " + token + " was used with different parameters.",
                    )
                return {"JobId": job_id}
            running = sum(
                1 for j in self.jobs.values() if j["status"] == "IN_PROGRESS" and not j["expired"]
            )
            if running >= self.max_concurrent_jobs:
                self.limit_exceeded += 1
                raise RekognitionFault(
                    "LimitExceededException",
                    f"{running + 1} open Jobs for User 123456789012 Maximum limit: {self.max_concurrent_jobs}",
                )
            job_id = hashlib.sha256(
                f"{len(self.jobs)}:{params}:{time.time_ns()}".encode()
            ).hexdigest()
            self.jobs[job_id] = {
                "status": "IN_PROGRESS",
                "polls_left": self.video_polls,
                "bucket": ref["Bucket"],
                "key": ref["Name"],
                "min_confidence": float(body.get("MinConfidence", 50.0)),
                "expired": False,
                "labels": [],
                "texts": [],
                "metadata": None,
                "message": None,
                "type": job_type,
                "channel": body.get("NotificationChannel"),
                "job_tag": body.get("JobTag"),
            }
            if token:
                self.tokens[token] = (params, job_id)
        return {"JobId": job_id}

    def op_GetTextDetection(self, body: dict[str, Any]) -> dict[str, Any]:
        job_id = body.get("JobId")
        job = self._job_to_report(job_id, "text")
        response: dict[str, Any] = {
            "JobId": job_id,
            "JobStatus": job["status"],
            "Video": {"S3Object": {"Bucket": job["bucket"], "Name": job["key"]}},
        }
        if job["status"] == "FAILED":
            response["StatusMessage"] = job["message"]
            return response
        if job["status"] != "SUCCEEDED":
            return response
        items = job["texts"]
        offset, page_size = self._page(body, job_id)
        response["TextDetections"] = items[offset : offset + page_size]
        response["VideoMetadata"] = job["metadata"]
        response["TextModelVersion"] = TEXT_MODEL_VERSION
        if offset + page_size < len(items):
            response["NextToken"] = base64.urlsafe_b64encode(
                f"{job_id}:{offset + page_size}".encode()
            ).decode()
        return response

    def _page(self, body: dict[str, Any], job_id: str | None) -> tuple[int, int]:
        """(offset, page size) of a Get* request: its NextToken checked, MaxResults capped."""
        page_size = min(self.max_results_cap, int(body.get("MaxResults") or 1000))
        if not body.get("NextToken"):
            return 0, page_size
        try:
            token_job, token_offset = (
                base64.urlsafe_b64decode(body["NextToken"]).decode().split(":")
            )
            if token_job != job_id:
                raise ValueError(token_job)
            return int(token_offset), page_size
        except Exception as exc:
            raise RekognitionFault(
                "InvalidPaginationTokenException", "Invalid pagination token."
            ) from exc

    def _job_to_report(self, job_id: str | None, job_type: str) -> dict[str, Any]:
        """The job a Get* call asks about, finished when its in-progress polls are used up."""
        with self._lock:
            job = self.jobs.get(job_id or "")
            if job is None or job["expired"] or job["type"] != job_type:
                raise RekognitionFault(
                    "ResourceNotFoundException",
                    "The resource specified in the request cannot be found.",
                )
            finish = False
            if job["status"] == "IN_PROGRESS":
                if job["polls_left"] > 0:
                    job["polls_left"] -= 1
                else:
                    finish = True
        if finish:
            self._finish_job(job)
        return job

    def op_GetLabelDetection(self, body: dict[str, Any]) -> dict[str, Any] | bytes:
        job_id = body.get("JobId")
        with self._lock:
            job = self.jobs.get(job_id or "")
            if job is None or job["expired"] or job["type"] != "labels":
                raise RekognitionFault(
                    "ResourceNotFoundException",
                    "The resource specified in the request cannot be found.",
                )
            if job["key"] in self.verbatim:
                return self._verbatim_page(self.verbatim[job["key"]], body.get("NextToken"))
            finish = False
            if job["status"] == "IN_PROGRESS":
                if job["polls_left"] > 0:
                    job["polls_left"] -= 1
                else:
                    finish = True
        if finish:
            self._finish_job(job)
        response: dict[str, Any] = {
            "JobId": job_id,
            "JobStatus": job["status"],
            "Video": {"S3Object": {"Bucket": job["bucket"], "Name": job["key"]}},
            "GetRequestMetadata": {
                "SortBy": body.get("SortBy", "TIMESTAMP"),
                "AggregateBy": "TIMESTAMPS",
            },
        }
        if job["status"] == "FAILED":
            response["StatusMessage"] = job["message"]
            return response
        if job["status"] != "SUCCEEDED":
            return response
        labels = list(job["labels"])
        if body.get("SortBy") == "NAME":
            labels.sort(
                key=lambda item: (
                    item["Label"]["Name"],
                    -item["Label"]["Confidence"],
                    item["Timestamp"],
                )
            )
        page_size = min(self.max_results_cap, int(body.get("MaxResults") or 1000))
        offset = 0
        if body.get("NextToken"):
            try:
                token_job, token_offset = (
                    base64.urlsafe_b64decode(body["NextToken"]).decode().split(":")
                )
                offset = int(token_offset)
                if token_job != job_id:
                    raise ValueError(token_job)
            except Exception as exc:
                raise RekognitionFault(
                    "InvalidPaginationTokenException", "Invalid pagination token."
                ) from exc
        response["Labels"] = labels[offset : offset + page_size]
        response["VideoMetadata"] = job["metadata"]
        response["LabelModelVersion"] = MODEL_VERSION
        if offset + page_size < len(labels):
            response["NextToken"] = base64.urlsafe_b64encode(
                f"{job_id}:{offset + page_size}".encode()
            ).decode()
        return response

    @staticmethod
    def _verbatim_page(data: bytes, token: str | None) -> dict[str, Any] | bytes:
        """The captured page; asked for the page after it (never captured), an empty last page."""
        if not token:
            return data
        captured = json.loads(data)
        if token != captured.get("NextToken"):
            raise RekognitionFault("InvalidPaginationTokenException", "Invalid Token")
        page: dict[str, Any] = {"Labels": []}
        for name in ("JobStatus", "LabelModelVersion", "VideoMetadata"):
            if name in captured:
                page[name] = captured[name]
        return page

    def complete_jobs(self) -> list[str]:
        """Finish every running job now and announce each on its SNS topic; returns their ids."""
        with self._lock:
            running = [
                (job_id, job)
                for job_id, job in self.jobs.items()
                if job["status"] == "IN_PROGRESS" and not job["expired"]
            ]
        for job_id, job in running:
            self._finish_job(job)
            channel = job.get("channel")
            if channel and self.sns is not None:
                message = {
                    "JobId": job_id,
                    "Status": job["status"],
                    "API": (
                        "StartTextDetection" if job["type"] == "text" else "StartLabelDetection"
                    ),
                    "Timestamp": int(time.time() * 1000),
                    "Video": {"S3ObjectName": job["key"], "S3Bucket": job["bucket"]},
                }
                if job.get("job_tag"):
                    message["JobTag"] = job["job_tag"]
                self.sns.publish(TopicArn=channel["SNSTopicArn"], Message=json.dumps(message))
        return [job_id for job_id, _ in running]

    def _finish_job(self, job: dict[str, Any]) -> None:
        """Decode the video and label it, or fail it the way the service does."""
        status, message, labels, metadata = "FAILED", "Unsupported codec/format.", [], None
        if job["key"] in self.fail_jobs:
            message = self.fail_jobs[job["key"]]
        else:
            try:
                data = self.s3.get_object(Bucket=job["bucket"], Key=job["key"])["Body"].read()
                labels, metadata = self._label_video(data, job["min_confidence"])
                status, message = "SUCCEEDED", None
            except Exception:
                pass
        texts: list[dict[str, Any]] = []
        if job["type"] == "text":
            labels = []
            for at_ms, text, box in self.video_texts.get(job["key"], []):
                for item in text_detections([(text, box)]):
                    texts.append({"Timestamp": at_ms, "TextDetection": item})
            texts.sort(key=lambda item: item["Timestamp"])
        with self._lock:
            job.update(
                status=status, message=message, labels=labels, metadata=metadata, texts=texts
            )

    def _label_video(
        self, data: bytes, min_confidence: float
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        # Decoding and colour-matching in pure Python is slow: the same content gives the same
        # answer, so it is worked out once per process.
        cache_key = (hashlib.sha256(data).hexdigest(), min_confidence, self.video_sample_ms)
        if cache_key not in _VIDEO_LABELS:
            _VIDEO_LABELS[cache_key] = self._decode_and_label(data, min_confidence)
        labels, metadata = _VIDEO_LABELS[cache_key]
        return [dict(item) for item in labels], dict(metadata)

    def _decode_and_label(
        self, data: bytes, min_confidence: float
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        import av

        labels: list[dict[str, Any]] = []
        with av.open(io.BytesIO(data)) as container:
            if container.format.name != "mov,mp4,m4a,3gp,3g2,mj2":
                raise ValueError("container")
            stream = container.streams.video[0]
            if stream.codec_context.name != "h264":
                raise ValueError("codec")
            next_sample = 0
            for frame in container.decode(stream):
                at_ms = round((frame.time or 0.0) * 1000)
                if at_ms < next_sample:
                    continue
                next_sample = at_ms + self.video_sample_ms
                for label in labels_for_image(frame.to_image(), min_confidence):
                    labels.append({"Timestamp": at_ms, "Label": label})
            rate = stream.average_rate or 0
            metadata = {
                "Codec": "h264",
                "DurationMillis": int((container.duration or 0) // 1000),
                "Format": "QuickTime / MOV",  # what the service reports for MP4 and MOV alike
                "FrameRate": float(rate),
                "FrameHeight": stream.codec_context.height,
                "FrameWidth": stream.codec_context.width,
                "ColorRange": "LIMITED",
            }
        labels.sort(key=lambda item: (item["Timestamp"], item["Label"]["Name"]))
        return labels, metadata


_VIDEO_LABELS: dict[tuple[str, float, int], tuple[list[dict[str, Any]], dict[str, Any]]] = {}


def main() -> None:
    """Serve moto (S3, SQS) and the double in their own process; print their endpoints as JSON."""
    import argparse
    import logging
    import os
    import sys

    import boto3
    from moto.server import ThreadedMotoServer

    parser = argparse.ArgumentParser(description="Serve moto and the Rekognition double.")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=None)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_endpoint = f"http://{host}:{port}"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    fake = FakeRekognition(s3=s3, latency_s=args.latency, rate_limit=args.rate)
    endpoint = fake.start()
    print(json.dumps({"moto": moto_endpoint, "rekognition": endpoint}), flush=True)
    try:
        sys.stdin.read()  # serve until the parent closes our stdin
    finally:
        fake.stop()
        moto.stop()


if __name__ == "__main__":
    main()


def _without_sdk_members(value: Any) -> Any:
    """A captured body without boto3's ResponseMetadata and without null members."""
    if isinstance(value, dict):
        return {
            k: _without_sdk_members(v)
            for k, v in value.items()
            if v is not None and k != "ResponseMetadata"
        }
    if isinstance(value, list):
        return [_without_sdk_members(v) for v in value]
    return value
