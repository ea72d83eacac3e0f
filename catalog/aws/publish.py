"""Publishing one alert message to an SNS topic or an SQS queue.

Both services cap a message at 256 KiB (262,144 bytes, body and attributes together); the
caller keeps bodies under MAX_MESSAGE_BYTES. FIFO topics and queues (names ending in `.fifo`)
get the event id as their deduplication id, so a retried send is dropped by AWS itself.
"""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from catalog.aws.clients import AWSClients
from catalog.aws.errors import error_code, error_message
from catalog.errors import DeliveryError

MAX_MESSAGE_BYTES = 262_144
MAX_BODY_BYTES = MAX_MESSAGE_BYTES - 1024  # room for the event_id message attribute
EVENT_ID_ATTRIBUTE = "event_id"


def _attributes(event_id: str) -> dict[str, Any]:
    return {EVENT_ID_ATTRIBUTE: {"DataType": "String", "StringValue": event_id}}


def _dedup_id(event_id: str) -> str:
    return hashlib.sha256(event_id.encode()).hexdigest()  # 64 chars, within the 128 allowed


def _failure(exc: BaseException, where: str) -> DeliveryError:
    if isinstance(exc, ClientError):
        return DeliveryError(f"{where}: {error_code(exc)}: {error_message(exc)}")
    return DeliveryError(f"{where}: {exc}")


def publish_to_topic(clients: AWSClients, topic_arn: str, body: str, event_id: str) -> None:
    """Publish `body` to an SNS topic; raises DeliveryError when SNS refuses it."""
    params = {"TopicArn": topic_arn, "Message": body}
    _send(clients.client("sns").publish, params, topic_arn, event_id, f"SNS {topic_arn}")


def send_to_queue(clients: AWSClients, queue_url: str, body: str, event_id: str) -> None:
    """Send `body` to an SQS queue; raises DeliveryError when SQS refuses it."""
    params = {"QueueUrl": queue_url, "MessageBody": body}
    _send(clients.client("sqs").send_message, params, queue_url, event_id, f"SQS {queue_url}")


def _send(call: Any, params: dict[str, Any], target: str, event_id: str, where: str) -> None:
    """One SNS/SQS send: the event id as an attribute (and FIFO deduplication id)."""
    params = {**params, "MessageAttributes": _attributes(event_id)}
    if target.endswith(".fifo"):
        params["MessageGroupId"] = "catalog-alerts"
        params["MessageDeduplicationId"] = _dedup_id(event_id)
    try:
        call(**params)
    except (ClientError, BotoCoreError) as exc:
        raise _failure(exc, where) from exc
