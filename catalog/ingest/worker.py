"""`catalog worker`: an SQS long-poll loop over sync's per-object step, for S3 event notifications.

Each message is handled in a thread pool (labelling is I/O bound) and deleted only after its
result is committed. A message that cannot be processed (malformed, an object HeadObject may not
read, an unexpected error) is left alone: it becomes visible again and the queue's redrive policy
moves it to a dead-letter queue after maxReceiveCount receives. Only whole-run causes (the
credentials, the queue itself) stop a worker.

Timing follows the queue: its own VisibilityTimeout (GetQueueAttributes; --visibility-timeout
overrides) is how long a received message stays hidden, and also the lease of the objects the
worker claims. While work runs the worker extends both; a worker that dies stops extending them
and its work returns to the others after about that long (at once, for claims, when the dead
process was on the same machine).

Videos take sync's whole path (catalog.ingest.videos): a video's message stays in flight only
until its job is started; then the job belongs to the catalogue (stored JobId), is polled by this
worker or, with an SNS topic, collected from Rekognition's completion message by whichever worker
receives it; a worker also adopts stored jobs nobody polls (see catalog.ingest.video_events).

Like a sync, a worker keeps the bitmap index quick to read: every INDEX_CHECK_EVERY_S it rebuilds
it in a thread of its own when enough items changed (catalog.ingest.indexing).

SIGTERM or SIGINT stops receiving at once (an idle worker exits within about a second: its long
poll runs in its own thread and is abandoned), finishes what is in flight, gives back the
messages it did not finish, and returns.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from catalog.alerts.dispatch import AlertDispatcher
from catalog.aws.clients import AWSClients
from catalog.errors import CatalogError, MalformedEventError, UsageError
from catalog.ingest import indexing
from catalog.ingest.message_queue import MAX_WAIT_TIME_S, MessageQueue, ReceiveCall
from catalog.ingest.pipeline import SyncPipeline
from catalog.ingest.s3_events import CREATED, EventApplier, ObjectEvent, Scope, parse_message
from catalog.ingest.types import (
    EventHandler,
    EventKind,
    SyncEvent,
    SyncOptions,
    SyncReport,
    no_events,
)
from catalog.ingest.video_events import (
    EventVideos,
    JobCompletion,
    build_event_videos,
    parse_job_completion,
)
from catalog.labelling import ImageLabeller
from catalog.labelling import media as media_rules
from catalog.labelling.factory import build_labeller, build_text_reader
from catalog.labelling.features import TEXT
from catalog.labelling.rekognition_image import LABELLER_NAME as REKOGNITION
from catalog.sources.s3 import S3Source
from catalog.store import claims
from catalog.store.runs import finish_sync_run, start_sync_run
from catalog.store.schema import KIND_VIDEO

log = logging.getLogger(__name__)

ADOPT_EVERY_S = 30.0  # how often a polling worker looks for stored jobs nobody polls
# How often a worker checks whether the bitmap index wants rebuilding (catalog.ingest.indexing:
# never built, built by an older catalog, or REBUILD_AFTER items changed since). The rebuild runs
# in a thread of its own, so messages keep flowing; of several workers, one rebuild wins.
INDEX_CHECK_EVERY_S = 60.0


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker consumes its queue."""

    queue_url: str
    concurrency: int = 8
    wait_time_s: int = MAX_WAIT_TIME_S
    visibility_timeout_s: int | None = None  # None: the queue's own VisibilityTimeout
    buckets: tuple[str, ...] = ()  # events for other buckets are dropped (empty: any bucket)
    prefixes: tuple[str, ...] = ()  # events for keys under other prefixes are dropped


@dataclass
class WorkerReport:
    """What a worker did until it stopped."""

    queue_url: str
    visibility_timeout_s: int = 0
    received: int = 0
    deleted: int = 0  # messages settled and deleted
    returned: int = 0  # messages left to come back (claimed elsewhere, errors, malformed)
    malformed: int = 0
    test_events: int = 0
    dropped: int = 0  # events outside --bucket/--prefix
    unreadable: int = 0  # events whose object HeadObject may not read (403)
    completions: int = 0  # Rekognition job-completion messages collected
    video_jobs_started: int = 0
    video_jobs_resumed: int = 0  # stored jobs polled (adopted or named by an event)
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
        if sync_options.notification_topic_arn and not sync_options.role_arn:
            raise UsageError(
                "--notification-topic-arn needs --role-arn (the role Rekognition uses)"
            )
        self.clients = clients
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
        self.scope = Scope(options.buckets, options.prefixes)
        self.applier = EventApplier(clients.s3, sessions, self._make_pipeline, self.scope)
        self.report = WorkerReport(queue_url=options.queue_url)
        self.videos: EventVideos | None = None
        self._videos_report = SyncReport(source=f"{options.queue_url} (videos)")
        self._stop = threading.Event()
        self.queue = MessageQueue(
            clients.client("sqs"),
            options.queue_url,
            visibility_timeout_s=options.visibility_timeout_s,
            stop=self._stop,
            tally=self._count,
        )
        self._wake = threading.Event()
        self._fatal: CatalogError | None = None
        self._report_lock = threading.Lock()
        self._adopted_at = 0.0
        self._indexed_at = 0.0
        self._indexing: threading.Thread | None = None

    # -- pipelines and the video phase -------------------------------------------------------

    def _make_pipeline(self, source: S3Source) -> SyncPipeline:
        phase = self.videos.phase if self.videos is not None else None
        pipeline = SyncPipeline(
            source,
            self.labeller,
            self.sessions,
            self.sync_options,
            self.on_event,
            phase,
            text_reader=self.text_reader,
        )
        pipeline.claim_lease_s = float(self.queue.visibility_s)
        with self.sessions.begin() as session:
            pipeline.report.run_id = start_sync_run(
                session, f"{pipeline.report.source} (worker)", self.labeller.name
            ).id
        pipeline.writer.run_id = pipeline.report.run_id
        self.report.syncs.append(pipeline.report)
        return pipeline

    def _start_videos(self) -> None:
        """The video phase all buckets share (so --max-video-jobs holds for the whole worker)."""
        if not self.sync_options.videos or self.labeller.labels_videos:
            return  # videos skipped, or labelled inline by the labeller itself
        self.videos = build_event_videos(
            self.clients,
            self.sessions,
            self.sync_options,
            self.labeller,
            lease_s=float(self.queue.visibility_s),
            keep_polling=not self.sync_options.notification_topic_arn,
            scope=self.scope,
            report=self._videos_report,
            on_event=self.on_event,
            is_stopping=self._stop.is_set,
        )
        self.report.syncs.append(self._videos_report)

    def _adopt_if_due(self) -> None:
        """A polling worker takes over stored jobs nobody live polls (a killed worker's)."""
        videos = self.videos
        if videos is None or not videos.phase.keep_polling:
            return
        if time.monotonic() - self._adopted_at < min(ADOPT_EVERY_S, float(self.queue.visibility_s)):
            return
        self._adopted_at = time.monotonic()
        limit = self.sync_options.max_video_jobs - videos.phase.active()
        if videos.adopt(limit):
            self._wake.set()

    def _refresh_index_if_due(self) -> None:
        """Every INDEX_CHECK_EVERY_S, rebuild the bitmap index in a thread when it wants it."""
        if self._indexing is not None and self._indexing.is_alive():
            return
        if time.monotonic() - self._indexed_at < INDEX_CHECK_EVERY_S:
            return
        self._indexed_at = time.monotonic()
        self._indexing = threading.Thread(target=self._refresh_index, name="index", daemon=True)
        self._indexing.start()

    def _refresh_index(self) -> None:
        try:
            built = indexing.refresh_index(self.sessions, after=indexing.REBUILD_AFTER)
        except (CatalogError, SQLAlchemyError) as exc:  # the next check tries again
            self.on_event(SyncEvent(EventKind.LOG, "", f"could not rebuild the index: {exc}"))
            return
        if built is not None:
            self.on_event(
                SyncEvent(
                    EventKind.LOG,
                    "",
                    f"rebuilt the bitmap index (generation {built.generation}, "
                    f"{built.changes_folded:,} changes folded in)",
                )
            )

    # -- control -----------------------------------------------------------------------------

    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to stop receiving; in-flight messages are finished first."""
        if not self._stop.is_set():
            self.report.stopped_by = reason
            self.on_event(
                SyncEvent(EventKind.LOG, "", f"stopping ({reason}): finishing in-flight work")
            )
        self._stop.set()
        self._wake.set()

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
            self._start_videos()
            self._loop(pool, in_flight)
            while in_flight:  # stopping: finish (and commit) what is in flight
                self._heartbeat(in_flight)
                self._wake.wait(0.2)
                self._wake.clear()
                self._collect(in_flight)
        finally:
            pool.shutdown(wait=True)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._finish()
            alerts.close()
            self.report.elapsed_s = time.monotonic() - started
        if self._fatal is not None:
            raise self._fatal
        return self.report

    def _loop(self, pool: ThreadPoolExecutor, in_flight: dict[Future[bool], _Held]) -> None:
        poll: ReceiveCall | None = None
        while not self._stop.is_set():
            self._heartbeat(in_flight)
            self._collect(in_flight)
            self._adopt_if_due()
            self._refresh_index_if_due()
            if poll is not None and poll.done.is_set():
                if poll.error is not None:
                    raise poll.error
                for message in poll.messages:
                    if self._stop.is_set():
                        self.queue.release(message)
                        continue
                    held = _Held(message["MessageId"], message["ReceiptHandle"], time.monotonic())
                    future = pool.submit(self._handle, message, held)
                    future.add_done_callback(lambda _f: self._wake.set())
                    in_flight[future] = held
                poll = None
            room = self.options.concurrency - len(in_flight)
            if poll is None and room > 0 and not self._stop.is_set():
                # Always a long poll (cheap, and a message is picked up the moment it arrives):
                # it runs in its own thread, so results are still collected as they finish.
                poll = ReceiveCall(self.queue, min(10, room), self.options.wait_time_s, self._wake)
            self._wake.wait(0.5)
            self._wake.clear()

    # -- SQS ---------------------------------------------------------------------------------

    def _check_queue(self) -> None:
        """Open the queue and read its visibility timeout (unless --visibility-timeout is given)."""
        self.queue.open()
        self.report.visibility_timeout_s = self.queue.visibility_s

    def _heartbeat(self, in_flight: dict[Future[bool], _Held]) -> None:
        """Extend the visibility of long-running messages and the leases of claimed objects."""
        timeout = self.queue.visibility_s
        now = time.monotonic()
        due = [held for held in in_flight.values() if now - held.extended_at >= timeout / 3]
        if not due:
            return
        for held in due:
            if self.queue.extend(held.message_id, held.receipt):
                held.extended_at = now
        with self.sessions.begin() as session:
            for pipeline in list(self.applier.pipelines.values()):
                claims.renew_claims(session, owner=pipeline.claim_owner, lease_s=timeout)

    # -- messages ----------------------------------------------------------------------------

    def _handle(self, message: dict[str, Any], held: _Held) -> bool:
        """Process one message (in a pool thread) and delete it once settled; True if deleted."""
        if self._process(message):
            self.queue.delete(held.message_id, held.receipt)
            return True
        if self._stop.is_set():
            self.queue.release(message)  # unfinished because we are stopping: others take it now
        return False

    def _count(self, name: str, amount: int = 1) -> None:
        with self._report_lock:
            setattr(self.report, name, getattr(self.report, name) + amount)

    def _process(self, message: dict[str, Any]) -> bool:
        """Apply one message's events; True when they are all committed (or need nothing)."""
        message_id = message.get("MessageId")
        body = message.get("Body") or ""
        try:
            completion = parse_job_completion(body)
            if completion is not None:
                return self._collect_job(completion)
            events = parse_message(body)
            if not events:
                self._count("test_events")
            settled = True
            for event in events:
                settled = self._apply(event) and settled
            return settled
        except MalformedEventError as exc:
            self._count("malformed")
            log.warning("message %s left to the redrive policy: %s", message_id, exc)
            return False
        except CatalogError as exc:
            self._fatal = exc
            self.stop("error")
            return False
        except Exception as exc:  # a database hiccup: leave the message for another try
            log.warning("message %s failed: %s: %s", message_id, type(exc).__name__, exc)
            log.debug("message %s failed", message_id, exc_info=True)
            return False

    def _apply(self, event: ObjectEvent) -> bool:
        unreadable = self.applier.unreadable
        if not self.applier.apply(event):
            if self.applier.unreadable != unreadable:
                log.warning("message for %r left to the redrive policy: access denied", event.uri)
            return False
        if (
            self.videos is not None
            and event.action == CREATED
            and media_rules.kind_of(event.key) == KIND_VIDEO
        ):
            return self.videos.handover(event.uri)
        return True

    def _collect_job(self, completion: JobCompletion) -> bool:
        if self.videos is None:
            log.warning("job %s: this worker does not label videos; left", completion.job_id)
            return False
        return self.videos.collect(completion)

    def _collect(self, in_flight: dict[Future[bool], _Held]) -> None:
        for future in [f for f in in_flight if f.done()]:
            in_flight.pop(future)
            if not future.result():
                self._count("returned")

    def _finish(self) -> None:
        """Stop the video phase (its claims released) and close this worker's sync runs."""
        if self._indexing is not None:  # a rebuild cut short rolls back; the next one redoes it
            self._indexing.join(timeout=1.0)
        if self.videos is not None:
            counts = self.videos.phase.close()
            self.report.video_jobs_started = counts.started
            self.report.video_jobs_resumed = counts.resumed
            self.report.completions = self.videos.collected
        self.report.dropped = self.applier.dropped
        self.report.unreadable = self.applier.unreadable
        owners = [(p.claim_owner, p.report) for p in self.applier.pipelines.values()]
        if self.videos is not None:
            owners.append((self.videos.phase.claim_owner or "", self._videos_report))
        for owner, report in owners:
            if report.run_id is None:
                continue
            with self.sessions.begin() as session:
                claims.release_claims(session, owner=owner)
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
