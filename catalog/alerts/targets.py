"""Alert targets: parse `sns:ARN`, `sqs:URL`, `https://...` and `file:PATH`, and send to them.

A webhook gets the JSON body in a POST; with a secret, the header `X-Catalog-Signature-256`
carries `sha256=` and the hex HMAC-SHA256 of the exact body under the secret (GitHub's
`X-Hub-Signature-256` scheme), and `X-Catalog-Event-Id` the event id. Any 2xx answer is
success; redirects are not followed. A `file:` target appends one JSON object per line.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalog import __version__
from catalog.errors import DeliveryError, UsageError

if TYPE_CHECKING:
    from catalog.aws.clients import AWSClients

SNS = "sns"
SQS = "sqs"
WEBHOOK = "webhook"
FILE = "file"

SIGNATURE_HEADER = "X-Catalog-Signature-256"
EVENT_ID_HEADER = "X-Catalog-Event-Id"
WEBHOOK_TIMEOUT_S = 10.0

_SNS_ARN = re.compile(r"^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w.-]{1,256}$")


@dataclass(frozen=True)
class Target:
    """One parsed target: its kind and address (topic ARN, queue URL, webhook URL, path)."""

    kind: str
    address: str

    @property
    def text(self) -> str:
        """The canonical text form, as stored and shown."""
        if self.kind in (SNS, SQS, FILE):
            return f"{self.kind}:{self.address}"
        return self.address

    @property
    def is_aws(self) -> bool:
        """True for SNS and SQS targets (they need AWS clients)."""
        return self.kind in (SNS, SQS)


def parse_target(text: str) -> Target:
    """Parse a target; raises UsageError naming what is accepted."""
    value = text.strip()
    if any(ord(c) < 32 for c in value):
        raise UsageError("a --notify target cannot contain control characters")
    if value.startswith("sns:"):
        arn = value[4:]
        if not _SNS_ARN.match(arn):
            raise UsageError(f"'{arn}' is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")
        return Target(SNS, arn)
    if value.startswith("sqs:"):
        url = value[4:]
        if not url.startswith(("https://", "http://")):
            raise UsageError(f"'{url}' is not an SQS queue URL (sqs:https://sqs...)")
        return Target(SQS, url)
    if value.startswith(("https://", "http://")):
        return Target(WEBHOOK, value)
    if value.startswith("file:"):
        path = value[5:]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise UsageError("a file: target needs a path (file:PATH)")
        return Target(FILE, str(Path(path).expanduser().resolve()))
    raise UsageError(
        f"'{text}' is not a target; use sns:TOPIC_ARN, sqs:QUEUE_URL, https://WEBHOOK or file:PATH"
    )


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: 'sha256=' and the hex HMAC-SHA256 of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def post_webhook(url: str, body: str, event_id: str, secret: str | None) -> None:
    """POST the body; raises DeliveryError unless the answer is 2xx."""
    data = body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"catalog/{__version__}",
        EVENT_ID_HEADER: event_id,
    }
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, data)
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=WEBHOOK_TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"{url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{url}: {reason}") from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"{url} answered HTTP {status}")


def append_line(path: str, body: str) -> None:
    """Append the body and a newline in one write (O_APPEND keeps concurrent lines whole)."""
    line = (body.replace("\n", " ") + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        raise DeliveryError(f"cannot append to {path}: {exc.strerror or exc}") from exc


def send(
    target: Target, body: str, event_id: str, secret: str | None, clients: AWSClients | None
) -> None:
    """Deliver one message to one target; raises DeliveryError on any failure."""
    if target.kind == WEBHOOK:
        post_webhook(target.address, body, event_id, secret)
    elif target.kind == FILE:
        append_line(target.address, body)
    else:
        if clients is None:
            raise DeliveryError(f"no AWS clients to reach {target.text}")
        from catalog.aws.publish import publish_to_topic, send_to_queue

        if target.kind == SNS:
            publish_to_topic(clients, target.address, body, event_id)
        else:
            send_to_queue(clients, target.address, body, event_id)
