"""The video phase's scheduler thread: claim, resume or prepare, start within quota, poll, store.

VideoPhase (catalog.ingest.videos) owns what submitters see (tickets, the videos in the phase);
this thread owns the work: it takes submitted videos, resumes their stored jobs or probes them
(and with --transcode converts them) in a small pool, starts jobs within --max-video-jobs (a
full quota keeps them queued), polls running jobs with backoff and stores each result in its
own transaction.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import CatalogError, JobLimitError, ObjectError
from catalog.ingest.leases import ClaimRenewal
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
)
from catalog.ingest.video_jobs import VideoItem, check_jobs, resume_stored_jobs, start_jobs
from catalog.ingest.video_prepare import describe_original, prepare_video
from catalog.ingest.writer import ResultWriter
from catalog.labelling.rekognition_text import RekognitionTextJobs
from catalog.labelling.rekognition_video import (
    STATE_EXPIRED,
    STATE_RUNNING,
    STATE_SUCCEEDED,
    RekognitionVideoLabeller,
    VideoJobRequest,
)
from catalog.store import claims
from catalog.store.jobs import get_video_job
from catalog.store.schema import KIND_VIDEO

MAX_CHECK_ERRORS = 3  # a job whose status cannot be read this many times in a row fails
MAX_RESTARTS = 1  # expired jobs started again per video and run


class Phase(Protocol):
    """What the scheduler reads and calls on its VideoPhase (settled before the first submit)."""

    s3: Any
    labeller: RekognitionVideoLabeller
    text_jobs: RekognitionTextJobs | None
    options: SyncOptions
    claim_owner: str | None
    claim_lease_s: float
    keep_polling: bool
    counts: VideoCounts  # counted here, handed to the pipeline when the phase closes

    def active(self) -> int:
        """Videos in the phase now."""
        ...

    def leave(self, item: VideoItem, outcome: str, *, release: bool = False) -> None:
        """The video leaves the phase: its tickets resolve, its claim goes when asked."""
        ...

    def resolve_all(self, outcome: str) -> None:
        """Every video still in the phase leaves it with `outcome`."""
        ...


class VideoScheduler:
    """The thread that runs a phase's videos from submission to a stored result.

    Created (and started) by the phase on its first submission, once the writer, the claim
    owner and the options are final.
    """

    def __init__(
        self,
        phase: Phase,
        writer: ResultWriter,
        *,
        stop: threading.Event,
        no_more: threading.Event,
    ) -> None:
        self.phase = phase
        self.writer = writer
        options = phase.options
        self.poll_interval_s = max(0.001, options.poll_interval_s)
        self.max_poll_interval_s = max(self.poll_interval_s, min(60.0, 6 * self.poll_interval_s))
        # With an SNS channel, jobs report there: the sync waits only until every job started.
        self.wait_for_jobs = not options.notification_topic_arn
        self._stop = stop
        self._no_more = no_more
        self._renewal = ClaimRenewal()
        self._intake: queue.SimpleQueue[VideoItem] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._finished = threading.Event()  # set by the scheduler thread as it ends
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, min(4, options.max_video_jobs)), thread_name_prefix="video-prepare"
        )
        self._thread = threading.Thread(target=self._run, name="video-jobs", daemon=True)
        self._preparing: dict[Future[VideoItem], VideoItem] = {}
        self._ready: deque[VideoItem] = deque()
        self._running: list[VideoItem] = []
        self._start_blocked_until = 0.0
        self._start_backoff_s = 0.0
        self._jobs_shown = -1
        self.error: BaseException | None = None
        self._thread.start()

    # -- called by the phase -----------------------------------------------------------------

    def put(self, item: VideoItem) -> None:
        """Take one video (already in the roster) into the queue."""
        self._intake.put(item)
        self._wake.set()

    def finish(self) -> None:
        """Wait until every video is labelled, failed, or (with SNS) started."""
        self._wake.set()
        # An Event, not Thread.join: a join interrupted by Ctrl-C can leave the thread
        # marked as stopped while it still runs (CPython bpo-45274's fix).
        while not self._finished.wait(0.2):
            pass

    def stop(self) -> None:
        """After the phase's stop flag is set: let a result being written commit, drop the rest."""
        self._wake.set()
        self._finished.wait(10.0)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def raise_error(self) -> None:
        """Raise what ended the thread, if anything did."""
        if self.error is not None:
            raise self.error

    # -- the thread --------------------------------------------------------------------------

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
            self.error = exc
        finally:
            self.phase.resolve_all(STOPPED)
            self._finished.set()

    def _renew_claims(self) -> None:
        if self.phase.claim_owner is None or not self.phase.active():
            return
        self._renewal.renew_if_due(self._sessions, self.phase.claim_owner, self.phase.claim_lease_s)

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
        if self._ready and self._open_jobs() < self.phase.options.max_video_jobs:
            due.append(self._start_blocked_until)
        longest = 5.0 if self.phase.claim_owner is None else min(5.0, self.phase.claim_lease_s / 3)
        if not due:
            return longest  # nothing is due: submissions and prepared videos wake us
        return min(longest, max(0.0, min(due) - now))

    def _emit(self, event: SyncEvent) -> None:
        self.writer.on_event(event)

    def _settled(self, item: VideoItem) -> None:
        """One video left the waiting set (labelled, reused or failed)."""
        self.phase.counts.settled += 1
        self._emit(SyncEvent(EventKind.PENDING, item.obj.uri, count=-1))
        self.phase.leave(item, SETTLED)

    def _show_jobs(self) -> None:
        if self._open_jobs() != self._jobs_shown:
            self._jobs_shown = self._open_jobs()
            self._emit(SyncEvent(EventKind.JOBS, count=self._jobs_shown))

    @property
    def _sessions(self) -> sessionmaker[Session]:
        return self.writer.sessions

    # -- taking videos in: claim, resume, reuse or prepare -----------------------------------

    def _take_intake(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._intake.get_nowait()
            except queue.Empty:
                return
            if not self._claim(item):
                self._emit(SyncEvent(EventKind.SKIPPED, item.obj.uri, "handled by another process"))
                self.phase.leave(item, BUSY)
                continue
            with self._sessions() as session:
                stored = get_video_job(session, item.media_id)
            if resume_stored_jobs(item, stored):
                self.phase.counts.resumed += 1
                if not item.all_started:
                    self._ready.append(item)  # one job is running, the other one starts now
                    continue
                item.poll_every_s = self.poll_interval_s
                item.next_poll_at = 0.0  # look at a resumed job at once
                self._running.append(item)
                if self.phase.keep_polling:
                    for ticket in item.tickets:
                        ticket.resolve(STARTED)
                continue
            if item.need_labels and self._reuse(item):
                continue
            self._prepare_later(item)

    def _claim(self, item: VideoItem) -> bool:
        if self.phase.claim_owner is None:
            return True
        with self._sessions.begin() as session:
            return claims.claim_pending_video(
                session,
                item.media_id,
                owner=self.phase.claim_owner,
                lease_s=self.phase.claim_lease_s,
                pending_only=item.need_labels,  # a text job alone runs for a labelled video
            )

    def _reuse(self, item: VideoItem) -> bool:
        """Copy the labels of an already-labelled video with the same content, if any."""
        if not self.phase.options.reuse:
            return False
        if not self.writer.reuse(item.obj, KIND_VIDEO, exclude_media_id=item.media_id):
            return False
        self._settled(item)
        return True

    def _prepare_later(self, item: VideoItem) -> None:
        future = self._pool.submit(self._prepare, item)
        self._preparing[future] = item
        future.add_done_callback(lambda _f: self._wake.set())

    def _prepare(self, item: VideoItem) -> VideoItem:
        """In a pool thread: probe, check and (with --transcode) convert."""
        item.probe, item.job_key = prepare_video(self.phase.s3, item.obj, self.phase.options)
        return item

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

    # -- starting and polling jobs -----------------------------------------------------------

    def _start_ready(self) -> None:
        while (
            self._ready
            and self._open_jobs() < self.phase.options.max_video_jobs
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
            )
            try:
                self.phase.counts.started += start_jobs(
                    item, request, self.phase.labeller, self.phase.text_jobs, self._sessions
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
            if not self.phase.keep_polling:  # its completion message brings it back
                self.phase.leave(item, STARTED, release=True)
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
                status = check_jobs(item, self.phase.labeller, self.phase.text_jobs)
            except ObjectError as exc:
                item.check_errors += 1
                if item.check_errors >= MAX_CHECK_ERRORS:
                    self._running.remove(item)
                    self._fail(item, exc)
                else:
                    self._poll_later(item)
                continue
            item.check_errors = 0
            if status.state == STATE_RUNNING and not self.phase.keep_polling:
                self._running.remove(item)
                self.phase.leave(item, RUNNING, release=True)
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

    # -- storing (one transaction each) ------------------------------------------------------

    def _store(self, item: VideoItem) -> None:
        result = item.result
        if result is None:  # its labels were current: only the text was read
            if item.text is not None:
                self.writer.store_text(item.obj, KIND_VIDEO, item.text)
            self._settled(item)
            return
        if item.job_key and item.job_key != item.obj.key:
            describe_original(self.phase.s3, item.obj, item.probe, result)
        self.writer.store(item.obj, KIND_VIDEO, result, item.text)
        self._settled(item)

    def _fail(self, item: VideoItem, error: ObjectError) -> None:
        self.writer.fail(item.obj, KIND_VIDEO, error)
        self._settled(item)
