"""The SQS queue a worker consumes: its visibility timeout, long polls, deletes and give-backs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from catalog.aws.errors import error_code, is_credentials_error, translate_error
from catalog.errors import AWSError, CatalogError

log = logging.getLogger(__name__)

MAX_WAIT_TIME_S = 20  # SQS's longest long poll
DEFAULT_VISIBILITY_TIMEOUT_S = 30  # SQS's default, when the queue does not say
_QUEUE_GONE = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "InvalidAddress"}
)


class MessageQueue:
    """One SQS queue of S3 event notifications, as a worker consumes it (thread-safe).

    A message that cannot be deleted, given back or extended is logged, never raised: it comes
    back to the queue and settles again. `tally(name, amount)` counts what was received and
    deleted into the worker's report.
    """

    def __init__(
        self,
        sqs: Any,
        url: str,
        *,
        visibility_timeout_s: int | None,
        stop: threading.Event,
        tally: Callable[[str, int], None],
    ) -> None:
        self.sqs = sqs
        self.url = url
        self.visibility_timeout_s = visibility_timeout_s  # given: overrides the queue's own
        self.visibility_s = visibility_timeout_s or DEFAULT_VISIBILITY_TIMEOUT_S
        self.stop = stop  # set when the worker stops: a failed receive waits on it
        self.tally = tally

    def open(self) -> None:
        """Open the queue and read its visibility timeout (unless one was given)."""
        try:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["QueueArn", "VisibilityTimeout"]
            ).get("Attributes", {})
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "opening the queue") from exc
        if self.visibility_timeout_s is None:
            queue_value = str(attributes.get("VisibilityTimeout") or "")
            if queue_value.isdigit() and int(queue_value) > 0:
                self.visibility_s = int(queue_value)

    def _error(self, exc: BaseException, what: str) -> CatalogError:
        if error_code(exc) in _QUEUE_GONE:
            return AWSError(
                f"no such queue {self.url}; check the URL and the region", error_code(exc)
            )
        return translate_error(exc, what)

    def receive(self, count: int, wait_s: int) -> list[dict[str, Any]]:
        """One long poll; a passing failure is logged and returns no messages."""
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": count,
            "WaitTimeSeconds": wait_s,
        }
        if self.visibility_timeout_s is not None:
            kwargs["VisibilityTimeout"] = self.visibility_timeout_s
        try:
            response = self.sqs.receive_message(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if is_credentials_error(exc) or error_code(exc) in _QUEUE_GONE:
                raise self._error(exc, "receiving messages") from exc
            log.warning("receiving from SQS failed (%s); retrying", exc)
            self.stop.wait(2.0)
            return []
        messages: list[dict[str, Any]] = response.get("Messages") or []
        self.tally("received", len(messages))
        return messages

    def delete(self, message_id: str, receipt: str) -> None:
        """Delete a settled message."""
        try:
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)
            self.tally("deleted", 1)
        except (ClientError, BotoCoreError) as exc:
            # The receipt expired (the message went back to the queue): it will be seen again
            # and settle as unchanged.
            log.warning("could not delete message %s: %s", message_id, exc)

    def release(self, message: dict[str, Any]) -> None:
        """Give a message back at once (received or left unfinished while stopping)."""
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not release message %s: %s", message.get("MessageId"), exc)

    def extend(self, message_id: str, receipt: str) -> bool:
        """Keep a message hidden for another visibility timeout; False when that failed."""
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=receipt, VisibilityTimeout=self.visibility_s
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not extend message %s: %s", message_id, exc)
            return False
        return True


class ReceiveCall:
    """One ReceiveMessage call in its own (daemon) thread, so a long poll never delays a stop.

    Messages that arrive once the queue's stop is set are given straight back. `wake` is set
    when the call is done.
    """

    def __init__(self, queue: MessageQueue, count: int, wait_s: int, wake: threading.Event) -> None:
        self.queue = queue
        self.messages: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._wake = wake
        thread = threading.Thread(
            target=self._run, args=(count, wait_s), name="sqs-receive", daemon=True
        )
        thread.start()

    def _run(self, count: int, wait_s: int) -> None:
        try:
            messages = self.queue.receive(count, wait_s)
            if self.queue.stop.is_set():  # stopped meanwhile: give them straight back
                for message in messages:
                    self.queue.release(message)
                messages = []
            self.messages = messages
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()
            self._wake.set()
