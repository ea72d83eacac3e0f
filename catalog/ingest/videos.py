"""Video labelling: Rekognition label (and text) detection jobs started, resumed, polled, stored.

Runs beside the image pipeline in catalog.sync, which hands it every new, changed or pending
video, and inside `catalog worker` and the Lambda handler, which hand it the videos their events
name and the jobs Rekognition reports finished; see VideoPhase.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from catalog.aws.clients import AWSClients
from catalog.errors import CatalogError, JobLimitError, ObjectError, UsageError
from catalog.ingest.types import (
    BUSY,
    RUNNING,
    SETTLED,
    STARTED,
    STOPPED,
    EventKind,
    SyncEvent,
    SyncOptions,
    VideoCounts,
    VideoTicket,
)
from catalog.ingest.video_jobs import VideoItem, check_jobs, start_jobs
from catalog.ingest.video_prepare import describe_original, prepare_video
from catalog.ingest.writer import ResultWriter
from catalog.labelling.features import TEXT
from catalog.labelling.rekognition_text import RekognitionTextJobs
from catalog.labelling.rekognition_video import (
    STATE_EXPIRED,
    STATE_RUNNING,
    STATE_SUCCEEDED,
    RekognitionVideoLabeller,
    VideoJobRequest,
)
from catalog.labelling.video import probe_s3
from catalog.sources import SourceObject
from catalog.store import claims
from catalog.store.jobs import get_video_job
from catalog.store.schema import KIND_VIDEO

MAX_CHECK_ERRORS = 3  # a job whose status cannot be read this many times in a row fails
MAX_RESTARTS = 1  # expired jobs started again per video and run


class VideoPhase:
    """Labels videos with asynchronous Rekognition jobs while the image pipeline keeps going.

    The pipeline hands every new, changed or pending video to `submit`; a scheduler thread
    resumes stored jobs, probes (and with --transcode converts) the rest in a small pool,
    starts jobs within --max-video-jobs (a full quota keeps them queued), polls running jobs
    with backoff and stores each result in its own transaction. A JobId is committed the moment
    its job starts, so a killed sync resumes the job instead of paying for another.
    """

    def __init__(
        self,
        s3: Any,
        labeller: RekognitionVideoLabeller,
        options: SyncOptions,
        text_jobs: RekognitionTextJobs | None = None,
        *,
        claim_owner: str | None = None,
        claim_lease_s: float = claims.DEFAULT_LEASE_S,
        keep_polling: bool = True,
    ) -> None:
        self.s3 = s3
        self.labeller = labeller
        self.text_jobs = text_jobs  # text-detection jobs, with --features text
        self.options = options
        # With an owner, each video is claimed before its job is started or polled, so two
        # processes never poll the same job; the leases are renewed while the phase runs.
        self.claim_owner = claim_owner
        self.claim_lease_s = claim_lease_s
        # False (event-driven, with an SNS channel): a started job is left to its completion
        # message, and a resumed one is looked at once instead of polled.
        self.keep_polling = keep_polling
        self._active: dict[int, VideoItem] = {}  # media id -> its video, from submit to the end
        self._active_lock = threading.Lock()
        self.keep_tickets = False  # True: `take_ticket` finds the tickets of `submit`
        self._tickets: dict[str, list[VideoTicket]] = {}  # uri -> tickets not yet taken
        self._renewed_at = time.monotonic()
        self.poll_interval_s = max(0.001, options.poll_interval_s)
        self.max_poll_interval_s = max(self.poll_interval_s, min(60.0, 6 * self.poll_interval_s))
        # With an SNS channel, jobs report there: the sync waits only until every job started.
        self.wait_for_jobs = not options.notification_topic_arn
        self._writer: ResultWriter | None = None
        self._intake: queue.SimpleQueue[VideoItem] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._no_more = threading.Event()
        self._finished = threading.Event()  # set by the scheduler thread as it ends
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._preparing: dict[Future[VideoItem], VideoItem] = {}
        self._ready: deque[VideoItem] = deque()
        self._running: list[VideoItem] = []
        self._start_blocked_until = 0.0
        self._start_backoff_s = 0.0
        self._jobs_shown = -1
        self._error: BaseException | None = None
        self._merged = False
        # Counted here and handed to the pipeline at the end (the main thread owns the report).
        self.counts = VideoCounts()

    # -- called by the pipeline (main thread) -------------------------------------------------

    def estimate_ms(self, obj: SourceObject) -> int:
        """A dry run's duration estimate for one video: probed through ranged reads (0 if not)."""
        with contextlib.suppress(ObjectError):
            probed = probe_s3(self.s3, obj.bucket, obj.key, obj.size_bytes, obj.version_id)
            return probed.duration_ms or 0
        return 0

    def attach(self, writer: ResultWriter) -> None:
        """Store results through `writer` (the run's writer: same run, events and counts)."""
        self._writer = writer

    def submit(
        self,
        obj: SourceObject,
        media_id: int,
        *,
        retry: bool = False,
        register: bool = True,
        need_labels: bool = True,
        need_text: bool = False,
    ) -> VideoTicket:
        """Queue one pending video (its labels, its text or both); the scheduler starts on the first.

        The returned ticket (also kept for `take_ticket` with keep_tickets and `register`) says
        when the video stops needing its submitter. A video already in the phase is not queued
        twice.
        """
        self._raise_error()
        if self._writer is None:
            raise RuntimeError("VideoPhase.attach(writer) must come before submit()")
        ticket = VideoTicket()
        with self._active_lock:
            if self.keep_tickets and register:
                self._tickets.setdefault(obj.uri, []).append(ticket)
            if self._stop.is_set():
                ticket.resolve(STOPPED)
                return ticket
            if self._thread is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(1, min(4, self.options.max_video_jobs)),
                    thread_name_prefix="video-prepare",
                )
                self._thread = threading.Thread(target=self._run, name="video-jobs", daemon=True)
                self._thread.start()
            known = self._active.get(media_id)
            if known is not None:
                known.tickets.append(ticket)
                if known.all_started and self.keep_polling:
                    ticket.resolve(STARTED)
                return ticket
            item = VideoItem(
                obj,
                media_id,
                retry=retry,
                tickets=[ticket],
                need_labels=need_labels,
                need_text=need_text and self.text_jobs is not None,
            )
            self._active[media_id] = item
        self._intake.put(item)
        self._wake.set()
        return ticket

    def take_ticket(self, uri: str) -> VideoTicket | None:
        """The oldest ticket of a video submitted for `uri` not taken yet (with keep_tickets)."""
        with self._active_lock:
            waiting = self._tickets.get(uri)
            if not waiting:
                return None
            ticket = waiting.pop(0)
            if not waiting:
                del self._tickets[uri]
            return ticket

    def active(self) -> int:
        """Videos in the phase now (queued, being prepared, waiting to start or running)."""
        with self._active_lock:
            return len(self._active)

    def _leave(self, item: VideoItem, outcome: str, *, release: bool = False) -> None:
        """The video leaves the phase: its tickets resolve, and its claim goes when asked."""
        with self._active_lock:
            if self._active.get(item.media_id) is item:
                del self._active[item.media_id]
        if release and self.claim_owner is not None:
            with self._sessions.begin() as session:
                claims.release_claim(session, item.media_id, owner=self.claim_owner)
        for ticket in item.tickets:
            ticket.resolve(outcome)

    def _resolve_all(self, outcome: str) -> None:
        with self._active_lock:
            items = list(self._active.values())
            self._active.clear()
        for item in items:
            for ticket in item.tickets:
                ticket.resolve(outcome)

    def wait(self) -> None:
        """After the images: wait until every video is labelled, failed, or (with SNS) started."""
        self._no_more.set()
        self._wake.set()
        if self._thread is not None:
            # An Event, not Thread.join: a join interrupted by Ctrl-C can leave the thread
            # marked as stopped while it still runs (CPython bpo-45274's fix).
            while not self._finished.wait(0.2):
                pass
        self._raise_error()

    def close(self) -> VideoCounts:
        """Stop the scheduler (on any exit); returns what it did (once: later calls count 0).

        A claiming phase releases its claims: its running jobs stay stored, for the next
        process to resume.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._finished.wait(10.0)  # let a result being written commit
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._resolve_all(STOPPED)
        if self.claim_owner is not None and self._writer is not None and self._thread is not None:
            with self._sessions.begin() as session:
                claims.release_claims(session, owner=self.claim_owner)
        if self._merged:
            return VideoCounts()
        self._merged = True
        return self.counts

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the scheduler thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.clear()
                self._take_intake()
                self._take_prepared()
                self._start_ready()
                self._poll_due()
                self._show_jobs()
                self._renew_claims()
                if self._is_done():
                    return
                self._wake.wait(self._sleep_s())
        except BaseException as exc:  # handed to the main thread, which ends the run
            self._error = exc
        finally:
            self._resolve_all(STOPPED)
            self._finished.set()

    def _renew_claims(self) -> None:
        if self.claim_owner is None or not self._active:
            return
        if time.monotonic() - self._renewed_at < self.claim_lease_s / 3:
            return
        self._renewed_at = time.monotonic()
        with self._sessions.begin() as session:
            claims.renew_claims(session, owner=self.claim_owner, lease_s=self.claim_lease_s)

    def _is_done(self) -> bool:
        return (
            self._no_more.is_set()
            and self._intake.empty()
            and not self._preparing
            and not self._ready
            and (not self._running or not self.wait_for_jobs)
        )

    def _open_jobs(self) -> int:
        return sum(item.job_count for item in self._running)

    def _sleep_s(self) -> float:
        now = time.monotonic()
        due = [item.next_poll_at for item in self._running]
        if self._ready and self._open_jobs() < self.options.max_video_jobs:
            due.append(self._start_blocked_until)
        longest = 5.0 if self.claim_owner is None else min(5.0, self.claim_lease_s / 3)
        if not due:
            return longest  # nothing is due: submissions and prepared videos wake us
        return min(longest, max(0.0, min(due) - now))

    @property
    def _out(self) -> ResultWriter:
        assert self._writer is not None
        return self._writer

    def _emit(self, event: SyncEvent) -> None:
        self._out.on_event(event)

    def _settled(self, item: VideoItem) -> None:
        """One video left the waiting set (labelled, reused or failed)."""
        self.counts.settled += 1
        self._emit(SyncEvent(EventKind.PENDING, item.obj.uri, count=-1))
        self._leave(item, SETTLED)

    def _show_jobs(self) -> None:
        if self._open_jobs() != self._jobs_shown:
            self._jobs_shown = self._open_jobs()
            self._emit(SyncEvent(EventKind.JOBS, count=self._jobs_shown))

    @property
    def _sessions(self) -> sessionmaker[Session]:
        return self._out.sessions

    def _take_intake(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._intake.get_nowait()
            except queue.Empty:
                return
            if not self._claim(item):
                self._emit(SyncEvent(EventKind.SKIPPED, item.obj.uri, "handled by another process"))
                self._leave(item, BUSY)
                continue
            with self._sessions() as session:
                job = get_video_job(session, item.media_id)
            label_job = job.job_id if item.need_labels else None
            text_job = job.text_job_id if item.need_text else None
            if (label_job or text_job) and not item.retry:
                item.job_id, item.text_job_id = label_job, text_job
                item.job_key, item.started_at = job.job_key, job.started_at
                self.counts.resumed += 1
                if not item.all_started:
                    self._ready.append(item)  # one job is running, the other one starts now
                    continue
                item.poll_every_s = self.poll_interval_s
                item.next_poll_at = 0.0  # look at a resumed job at once
                self._running.append(item)
                if self.keep_polling:
                    for ticket in item.tickets:
                        ticket.resolve(STARTED)
                continue
            if job.job_id:
                item.restart_of = job.job_id  # a new job, not the failed one again
            if job.text_job_id:
                item.text_restart_of = job.text_job_id
            if item.need_labels and self._reuse(item):
                continue
            self._prepare_later(item)

    def _claim(self, item: VideoItem) -> bool:
        if self.claim_owner is None:
            return True
        with self._sessions.begin() as session:
            return claims.claim_pending_video(
                session,
                item.media_id,
                owner=self.claim_owner,
                lease_s=self.claim_lease_s,
                pending_only=item.need_labels,  # a text job alone runs for a labelled video
            )

    def _reuse(self, item: VideoItem) -> bool:
        """Copy the labels of an already-labelled video with the same content, if any."""
        if not self.options.reuse:
            return False
        if not self._out.reuse(item.obj, KIND_VIDEO, exclude_media_id=item.media_id):
            return False
        self._settled(item)
        return True

    def _prepare_later(self, item: VideoItem) -> None:
        assert self._pool is not None
        future = self._pool.submit(self._prepare, item)
        self._preparing[future] = item
        future.add_done_callback(lambda _f: self._wake.set())

    def _take_prepared(self) -> None:
        for future in [f for f in self._preparing if f.done()]:
            item = self._preparing.pop(future)
            try:
                self._ready.append(future.result())
            except ObjectError as exc:
                self._fail(item, exc)
            except CatalogError:
                raise
            except Exception as exc:
                self._fail(item, ObjectError(type(exc).__name__, str(exc) or repr(exc)))

    # -- preparing (pool threads): probe, check, transcode ---------------------------------------

    def _prepare(self, item: VideoItem) -> VideoItem:
        item.probe, item.job_key = prepare_video(self.s3, item.obj, self.options)
        return item

    # -- starting and polling jobs -----------------------------------------------------------------

    def _start_ready(self) -> None:
        while (
            self._ready
            and self._open_jobs() < self.options.max_video_jobs
            and time.monotonic() >= self._start_blocked_until
            and not self._stop.is_set()
        ):
            item = self._ready.popleft()
            obj = item.obj
            request = VideoJobRequest(
                bucket=obj.bucket,
                key=item.job_key or obj.key,
                etag=obj.etag,
                version_id=obj.version_id if item.job_key == obj.key else None,
                restart_of=item.restart_of,
            )
            try:
                self.counts.started += start_jobs(
                    item, request, self.labeller, self.text_jobs, self._sessions
                )
            except JobLimitError as exc:
                self._ready.appendleft(item)
                if not self._start_backoff_s:
                    self._emit(
                        SyncEvent(EventKind.LOG, detail=f"video job quota full, waiting: {exc}")
                    )
                self._start_backoff_s = min(
                    60.0, max(self.poll_interval_s, 2 * self._start_backoff_s)
                )
                self._start_blocked_until = time.monotonic() + self._start_backoff_s
                return
            except ObjectError as exc:
                self._fail(item, exc)
                continue
            self._start_backoff_s = 0.0
            if not self.keep_polling:  # its completion message brings it back
                self._leave(item, STARTED, release=True)
                continue
            for ticket in item.tickets:
                ticket.resolve(STARTED)
            item.poll_every_s = self.poll_interval_s
            item.next_poll_at = time.monotonic() + self.poll_interval_s
            self._running.append(item)

    def _poll_due(self) -> None:
        now = time.monotonic()
        for item in [i for i in self._running if i.next_poll_at <= now]:
            if self._stop.is_set():
                return
            try:
                status = check_jobs(item, self.labeller, self.text_jobs)
            except ObjectError as exc:
                item.check_errors += 1
                if item.check_errors >= MAX_CHECK_ERRORS:
                    self._running.remove(item)
                    self._fail(item, exc)
                else:
                    self._poll_later(item)
                continue
            item.check_errors = 0
            if status.state == STATE_RUNNING and not self.keep_polling:
                self._running.remove(item)
                self._leave(item, RUNNING, release=True)
                continue
            if status.state == STATE_RUNNING:
                self._poll_later(item)
                continue
            self._running.remove(item)
            if status.state == STATE_SUCCEEDED:
                self._store(item)
            elif status.state == STATE_EXPIRED and item.restarts < MAX_RESTARTS:
                item.restarts += 1  # check_jobs forgot the expired job's id
                self._prepare_later(item)
            elif status.state == STATE_EXPIRED:
                self._fail(item, ObjectError("ResultsExpired", status.message))
            else:
                self._fail(item, ObjectError("VideoJobFailed", status.message))

    def _poll_later(self, item: VideoItem) -> None:
        item.poll_every_s = min(self.max_poll_interval_s, item.poll_every_s * 1.5)
        item.next_poll_at = time.monotonic() + item.poll_every_s

    # -- storing (scheduler thread, one transaction each) -----------------------------------------

    def _store(self, item: VideoItem) -> None:
        result = item.result
        if result is None:  # its labels were current: only the text was read
            if item.text is not None:
                self._out.store_text(item.obj, KIND_VIDEO, item.text)
            self._settled(item)
            return
        if item.job_key and item.job_key != item.obj.key:
            describe_original(self.s3, item.obj, item.probe, result)
        self._out.store(item.obj, KIND_VIDEO, result, item.text)
        self._settled(item)

    def _fail(self, item: VideoItem, error: ObjectError) -> None:
        self._out.fail(item.obj, KIND_VIDEO, error)
        self._settled(item)


def make_video_phase(
    clients: AWSClients,
    options: SyncOptions,
    *,
    claim_owner: str | None = None,
    claim_lease_s: float = claims.DEFAULT_LEASE_S,
    keep_polling: bool = True,
) -> VideoPhase:
    """The video phase for one S3 sync or worker, or a UsageError for options that cannot work."""
    if options.notification_topic_arn and not options.role_arn:
        raise UsageError("--notification-topic-arn needs --role-arn (the role Rekognition uses)")
    if options.transcode and not options.transcode_prefix.strip("/"):
        raise UsageError("--transcode-prefix must name a folder, e.g. catalog-transcoded/")
    labeller = RekognitionVideoLabeller(
        clients.rekognition_jobs,
        min_confidence=options.min_confidence,
        notification_topic_arn=options.notification_topic_arn,
        role_arn=options.role_arn,
    )
    text_jobs = None
    if TEXT in options.features:
        text_jobs = RekognitionTextJobs(
            clients.rekognition_jobs,
            notification_topic_arn=options.notification_topic_arn,
            role_arn=options.role_arn,
        )
    return VideoPhase(
        clients.s3,
        labeller,
        options,
        text_jobs,
        claim_owner=claim_owner,
        claim_lease_s=claim_lease_s,
        keep_polling=keep_polling,
    )
