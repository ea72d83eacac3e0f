"""`catalog worker`: an SQS long-poll loop over sync's per-object step, for S3 event notifications.

Each message is handled in a thread pool (labelling is I/O bound) and deleted only after its
result is committed. A message that cannot be processed (malformed, an unexpected error) is left
alone: it becomes visible again and the queue's redrive policy moves it to a dead-letter queue
after maxReceiveCount receives. While work runs, the worker extends the visibility of the
messages it holds and the leases of the objects it claimed, so a long job is not handed to
another worker; a worker that dies stops extending both and its work returns to the others.
SIGTERM or SIGINT stops receiving, finishes what is in flight, and returns.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.orm import Session, sessionmaker

from catalog.alerts.dispatch import AlertDispatcher
from catalog.aws.clients import AWSClients
from catalog.aws.errors import error_code, is_credentials_error, translate_error
from catalog.errors import AWSError, CatalogError, MalformedEventError, UsageError
from catalog.ingest.pipeline import SyncPipeline
from catalog.ingest.s3_events import EventApplier, parse_message
from catalog.ingest.types import (
    EventHandler,
    EventKind,
    SyncEvent,
    SyncOptions,
    SyncReport,
    no_events,
)
from catalog.labelling import ImageLabeller
from catalog.labelling.factory import build_labeller, build_text_reader
from catalog.labelling.features import TEXT
from catalog.labelling.rekognition_image import LABELLER_NAME as REKOGNITION
from catalog.sources.s3 import S3Source
from catalog.store import claims
from catalog.store.media import finish_sync_run, start_sync_run

log = logging.getLogger(__name__)

MAX_WAIT_TIME_S = 20  # SQS's longest long poll
_QUEUE_GONE = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "InvalidAddress"}
)


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker consumes its queue."""

    queue_url: str
    concurrency: int = 8
    wait_time_s: int = MAX_WAIT_TIME_S
    visibility_timeout_s: int = 300


@dataclass
class WorkerReport:
    """What a worker did until it stopped."""

    queue_url: str
    received: int = 0
    deleted: int = 0  # messages settled and deleted
    returned: int = 0  # messages left to come back (claimed elsewhere, errors, malformed)
    malformed: int = 0
    test_events: int = 0
    stopped_by: str = ""
    elapsed_s: float = 0.0
    syncs: list[SyncReport] = field(default_factory=list)

    def total(self, name: str) -> int:
        """A sync counter (labelled, reused, failed, ...) summed over every bucket."""
        return sum(getattr(report, name) for report in self.syncs)


@dataclass
class _Held:
    message_id: str
    receipt: str
    extended_at: float


class Worker:
    """Consumes one SQS queue of S3 event notifications into one catalogue."""

    def __init__(
        self,
        clients: AWSClients,
        sessions: sessionmaker[Session],
        options: WorkerOptions,
        sync_options: SyncOptions,
        *,
        labeller: ImageLabeller | None = None,
        tps: float | None = None,
        on_event: EventHandler = no_events,
    ) -> None:
        if not options.queue_url.startswith(("https://", "http://")):
            raise UsageError(f"'{options.queue_url}' is not an SQS queue URL (https://sqs...)")
        self.clients = clients
        self.sqs = clients.client("sqs")
        self.sessions = sessions
        self.options = options
        self.sync_options = sync_options
        self.on_event = on_event
        self.labeller = labeller or build_labeller(
            REKOGNITION,
            clients=clients,
            min_confidence=sync_options.min_confidence,
            max_labels=sync_options.max_labels,
            tps=tps,
        )
        self.text_reader = (
            build_text_reader(REKOGNITION, clients=clients, tps=tps)
            if TEXT in sync_options.features
            else None
        )
        self.applier = EventApplier(clients.s3, sessions, self._make_pipeline)
        self.report = WorkerReport(queue_url=options.queue_url)
        self._stop = threading.Event()
        self._fatal: CatalogError | None = None
        self._report_lock = threading.Lock()

    # -- pipelines ---------------------------------------------------------------------------

    def _make_pipeline(self, source: S3Source) -> SyncPipeline:
        pipeline = SyncPipeline(
            source,
            self.labeller,
            self.sessions,
            self.sync_options,
            self.on_event,
            text_reader=self.text_reader,
        )
        pipeline.claim_lease_s = float(self.options.visibility_timeout_s)
        with self.sessions.begin() as session:
            pipeline.report.run_id = start_sync_run(
                session, f"{pipeline.report.source} (worker)", self.labeller.name
            ).id
        self.report.syncs.append(pipeline.report)
        return pipeline

    # -- control -----------------------------------------------------------------------------

    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to stop receiving; in-flight messages are finished first."""
        if not self._stop.is_set():
            self.report.stopped_by = reason
            self.on_event(
                SyncEvent(EventKind.LOG, "", f"stopping ({reason}): finishing in-flight work")
            )
        self._stop.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop(signal.Signals(signum).name)

    def run(self) -> WorkerReport:
        """Consume the queue until stopped (SIGTERM/SIGINT or stop()); returns the report."""
        started = time.monotonic()
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_signal)
        pool = ThreadPoolExecutor(max_workers=self.options.concurrency, thread_name_prefix="msg")
        in_flight: dict[Future[bool], _Held] = {}
        alerts = AlertDispatcher(self.sessions, self.clients)
        alerts.start()  # alerts are evaluated and delivered while the worker runs
        try:
            self._check_queue()
            while not self._stop.is_set():
                self._heartbeat(in_flight)
                # While work runs, finish it promptly and top up with short polls; when idle,
                # long-poll (cheap, and a new message is picked up the moment it arrives).
                self._collect(in_flight, timeout=0.2 if in_flight else 0)
                room = self.options.concurrency - len(in_flight)
                if room <= 0:
                    continue
                wait_s = 0 if in_flight else self.options.wait_time_s
                for message in self._receive(min(10, room), wait_s):
                    if self._stop.is_set():
                        self._release(message)
                        continue
                    held = _Held(message["MessageId"], message["ReceiptHandle"], time.monotonic())
                    in_flight[pool.submit(self._handle, message, held)] = held
            while in_flight:
                self._heartbeat(in_flight)
                self._collect(in_flight, timeout=1.0)
        finally:
            pool.shutdown(wait=True)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._finish_runs()
            alerts.close()
            self.report.elapsed_s = time.monotonic() - started
        if self._fatal is not None:
            raise self._fatal
        return self.report

    # -- SQS ---------------------------------------------------------------------------------

    def _check_queue(self) -> None:
        try:
            self.sqs.get_queue_attributes(
                QueueUrl=self.options.queue_url, AttributeNames=["QueueArn"]
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._queue_error(exc, "opening the queue") from exc

    def _queue_error(self, exc: BaseException, what: str) -> CatalogError:
        if error_code(exc) in _QUEUE_GONE:
            return AWSError(
                f"no such queue {self.options.queue_url}; check the URL and the region",
                error_code(exc),
            )
        return translate_error(exc, what)

    def _receive(self, count: int, wait_s: int) -> list[dict[str, Any]]:
        try:
            response = self.sqs.receive_message(
                QueueUrl=self.options.queue_url,
                MaxNumberOfMessages=count,
                WaitTimeSeconds=wait_s,
                VisibilityTimeout=self.options.visibility_timeout_s,
            )
        except (ClientError, BotoCoreError) as exc:
            if is_credentials_error(exc) or error_code(exc) in _QUEUE_GONE:
                raise self._queue_error(exc, "receiving messages") from exc
            log.warning("receiving from SQS failed (%s); retrying", exc)
            self._stop.wait(2.0)
            return []
        messages: list[dict[str, Any]] = response.get("Messages") or []
        self.report.received += len(messages)
        return messages

    def _delete(self, held: _Held) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.options.queue_url, ReceiptHandle=held.receipt)
            self._count("deleted")
        except (ClientError, BotoCoreError) as exc:
            # The receipt expired (the message went back to the queue): it will be seen again
            # and settle as unchanged.
            log.warning("could not delete message %s: %s", held.message_id, exc)

    def _release(self, message: dict[str, Any]) -> None:
        """Give a message back at once (received while stopping)."""
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.options.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not release message %s: %s", message.get("MessageId"), exc)

    def _heartbeat(self, in_flight: dict[Future[bool], _Held]) -> None:
        """Extend the visibility of long-running messages and the leases of claimed objects."""
        timeout = self.options.visibility_timeout_s
        now = time.monotonic()
        due = [held for held in in_flight.values() if now - held.extended_at >= timeout / 3]
        if not due:
            return
        for held in due:
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.options.queue_url,
                    ReceiptHandle=held.receipt,
                    VisibilityTimeout=timeout,
                )
                held.extended_at = now
            except (ClientError, BotoCoreError) as exc:
                log.warning("could not extend message %s: %s", held.message_id, exc)
        with self.sessions.begin() as session:
            for pipeline in list(self.applier.pipelines.values()):
                claims.renew_claims(session, owner=pipeline.claim_owner, lease_s=timeout)

    # -- messages ----------------------------------------------------------------------------

    def _handle(self, message: dict[str, Any], held: _Held) -> bool:
        """Process one message (in a pool thread) and delete it once settled; True if deleted."""
        if self._process(message):
            self._delete(held)
            return True
        return False

    def _count(self, name: str) -> None:
        with self._report_lock:
            setattr(self.report, name, getattr(self.report, name) + 1)

    def _process(self, message: dict[str, Any]) -> bool:
        """Apply one message's events; True when they are all committed (or need nothing)."""
        try:
            events = parse_message(message.get("Body") or "")
            if not events:
                self._count("test_events")
            return self.applier.apply_all(events)
        except MalformedEventError as exc:
            self._count("malformed")
            self.on_event(
                SyncEvent(
                    EventKind.LOG, "", f"message {message.get('MessageId')} left to redrive: {exc}"
                )
            )
            return False
        except CatalogError as exc:
            self._fatal = exc
            self.stop("error")
            return False
        except Exception as exc:  # a database hiccup: leave the message for another try
            log.warning("message %s failed: %s", message.get("MessageId"), exc, exc_info=True)
            self.on_event(
                SyncEvent(EventKind.LOG, "", f"message {message.get('MessageId')} failed: {exc}")
            )
            return False

    def _collect(self, in_flight: dict[Future[bool], _Held], timeout: float) -> None:
        if not in_flight:
            if timeout:
                self._stop.wait(timeout)
            return
        done, _ = wait(list(in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            in_flight.pop(future)
            if not future.result():
                self._count("returned")

    def _finish_runs(self) -> None:
        for pipeline in list(self.applier.pipelines.values()):
            report = pipeline.report
            if report.run_id is None:
                continue
            with self.sessions.begin() as session:
                claims.release_claims(session, owner=pipeline.claim_owner)
                finish_sync_run(
                    session,
                    report.run_id,
                    "error" if self._fatal else "finished",
                    report.counts(),
                )


def run_worker(
    *,
    clients: AWSClients,
    sessions: sessionmaker[Session],
    options: WorkerOptions,
    sync_options: SyncOptions,
    tps: float | None = None,
    on_event: EventHandler = no_events,
) -> WorkerReport:
    """Run a queue worker until SIGTERM/SIGINT and return what it did."""
    worker = Worker(clients, sessions, options, sync_options, tps=tps, on_event=on_event)
    return worker.run()
