"""A Rekognition stand-in reached through AWS_ENDPOINT_URL_REKOGNITION.

It speaks the service's JSON protocol over HTTP, reads S3 objects from the same (moto) S3 the
code under test uses, and answers DetectLabels from what the picture shows: saturated colour
blocks become labelled instances (red Car, blue Person, green Dog, yellow Cat) with their
bounding boxes, and the overall brightness gives a scene label. Every response is checked
against botocore's service model before it is sent, as botocore's Stubber checks them; errors
use the service's error codes. Latency, a request-rate cap and forced errors are settings, so
tests and benchmarks can make throttling storms and slow services.
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
    pixels = small.load()
    assert pixels is not None
    found: dict[tuple[int, int, int], list[int]] = {}
    counts: Counter[tuple[int, int, int]] = Counter()
    for y in range(height):
        for x in range(width):
            r, g, b = pixels[x, y][:3]
            for colour in PALETTE:
                if all(abs(c - t) < 60 for c, t in zip((r, g, b), colour, strict=True)):
                    counts[colour] += 1
                    box = found.setdefault(colour, [x, y, x, y])
                    box[0], box[1] = min(box[0], x), min(box[1], y)
                    box[2], box[3] = max(box[2], x), max(box[3], y)
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
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    throttled: int = 0

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

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                target = self.headers.get("X-Amz-Target", "")
                operation = target.rsplit(".", 1)[-1]
                status, payload = fake.handle(operation, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", hashlib.md5(data).hexdigest())
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
            self.fail_keys.clear()
            self.canned.clear()
            self.latency_s = 0.0
            self.rate_limit = None
            self.throttle_next = 0
            self.throttled = 0
            self._recent.clear()

    def count(self, operation: str) -> int:
        """How many calls of one operation were received (throttled ones included)."""
        with self._lock:
            return sum(1 for op, _ in self.calls if op == operation)

    # -- dispatch ---------------------------------------------------------------------------

    def handle(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one request: (HTTP status, JSON body)."""
        with self._lock:
            self.calls.append((operation, body))
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
            validate_parameters(response, _MODEL.operation_model(operation).output_shape)
            return 200, response
        except RekognitionFault as fault:
            return fault.status, {"__type": fault.code, "Message": fault.message}

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

    def op_DetectLabels(self, body: dict[str, Any]) -> dict[str, Any]:
        data, key, _ = self._image_bytes(body.get("Image") or {})
        if key is not None and key in self.fail_keys:
            code, message = self.fail_keys[key]
            raise RekognitionFault(code, message)
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
