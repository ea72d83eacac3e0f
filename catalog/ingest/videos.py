"""The video phase of a sync: Rekognition label-detection jobs started, resumed and polled.

Runs beside the image pipeline in catalog.sync, which hands it every new, changed or pending
video; see VideoPhase.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from catalog.aws.clients import AWSClients
from catalog.errors import CatalogError, JobLimitError, ObjectError, UsageError
from catalog.ingest.types import EventKind, SyncEvent, SyncOptions, VideoCounts
from catalog.ingest.writer import ResultWriter
from catalog.labelling import LabelResult, TextResult
from catalog.labelling.features import TEXT
from catalog.labelling.rekognition_text import RekognitionTextJobs
from catalog.labelling.rekognition_video import (
    STATE_EXPIRED,
    STATE_FAILED,
    STATE_RUNNING,
    STATE_SUCCEEDED,
    JobStatus,
    RekognitionVideoLabeller,
    VideoJobRequest,
)
from catalog.labelling.video import (
    ProbeResult,
    check_limits,
    probe_s3,
    transcode_s3_copy,
    unsupported_reason,
)
from catalog.sources import SourceObject
from catalog.store.jobs import get_video_job, set_text_job, set_video_job
from catalog.store.schema import KIND_VIDEO, utcnow


@dataclass
class _Video:
    """One video on its way through the phase."""

    obj: SourceObject
    media_id: int
    retry: bool = False  # it failed before: a stored job is replaced, not resumed
    job_id: str | None = None
    job_key: str | None = None
    started_at: datetime | None = None
    probe: ProbeResult | None = None
    restart_of: str | None = None
    restarts: int = 0
    check_errors: int = 0
    poll_every_s: float = 0.0
    next_poll_at: float = 0.0
    # --features text: the text job beside the label job (or alone, when labels are current).
    need_labels: bool = True
    need_text: bool = False
    text_job_id: str | None = None
    text_restart_of: str | None = None
    result: LabelResult | None = None
    text: TextResult | None = None

    @property
    def job_count(self) -> int:
        """Rekognition jobs this video holds open now."""
        return int(self.job_id is not None and self.result is None) + int(
            self.text_job_id is not None and self.text is None
        )


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
    ) -> None:
        self.s3 = s3
        self.labeller = labeller
        self.text_jobs = text_jobs  # text-detection jobs, with --features text
        self.options = options
        self.poll_interval_s = max(0.001, options.poll_interval_s)
        self.max_poll_interval_s = max(self.poll_interval_s, min(60.0, 6 * self.poll_interval_s))
        # With an SNS channel, jobs report there: the sync waits only until every job started.
        self.wait_for_jobs = not options.notification_topic_arn
        self._writer: ResultWriter | None = None
        self._intake: queue.SimpleQueue[_Video] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._no_more = threading.Event()
        self._finished = threading.Event()  # set by the scheduler thread as it ends
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._preparing: dict[Future[_Video], _Video] = {}
        self._ready: deque[_Video] = deque()
        self._running: list[_Video] = []
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
        try:
            return (
                probe_s3(self.s3, obj.bucket, obj.key, obj.size_bytes, obj.version_id).duration_ms
                or 0
            )
        except ObjectError:
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
        need_labels: bool = True,
        need_text: bool = False,
    ) -> None:
        """Queue one pending video (its labels, its text or both); the scheduler starts on the first."""
        self._raise_error()
        if self._writer is None:
            raise RuntimeError("VideoPhase.attach(writer) must come before submit()")
        if self._thread is None:
            self._pool = ThreadPoolExecutor(
                max_workers=max(1, min(4, self.options.max_video_jobs)),
                thread_name_prefix="video-prepare",
            )
            self._thread = threading.Thread(target=self._run, name="video-jobs", daemon=True)
            self._thread.start()
        need_text = need_text and self.text_jobs is not None
        self._intake.put(
            _Video(obj, media_id, retry=retry, need_labels=need_labels, need_text=need_text)
        )
        self._wake.set()

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
        """Stop the scheduler (on any exit); returns what it did (once: later calls count 0)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._finished.wait(10.0)  # let a result being written commit
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
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
                if self._is_done():
                    return
                self._wake.wait(self._sleep_s())
        except BaseException as exc:  # handed to the main thread, which ends the run
            self._error = exc
        finally:
            self._finished.set()

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
        if not due:
            return 5.0  # nothing is due: submissions and prepared videos wake us
        return min(5.0, max(0.0, min(due) - now))

    @property
    def _out(self) -> ResultWriter:
        assert self._writer is not None
        return self._writer

    def _emit(self, event: SyncEvent) -> None:
        self._out.on_event(event)

    def _settled(self, obj: SourceObject) -> None:
        """One video left the waiting set (labelled, reused or failed)."""
        self.counts.settled += 1
        self._emit(SyncEvent(EventKind.PENDING, obj.uri, count=-1))

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
            with self._sessions() as session:
                job = get_video_job(session, item.media_id)
            label_job = job.job_id if item.need_labels else None
            text_job = job.text_job_id if item.need_text else None
            if (label_job or text_job) and not item.retry:
                item.job_id, item.text_job_id = label_job, text_job
                item.job_key, item.started_at = job.job_key, job.started_at
                self.counts.resumed += 1
                if (item.need_labels and not label_job) or (item.need_text and not text_job):
                    self._ready.append(item)  # one job is running, the other one starts now
                    continue
                item.poll_every_s = self.poll_interval_s
                item.next_poll_at = 0.0  # look at a resumed job at once
                self._running.append(item)
                continue
            if job.job_id:
                item.restart_of = job.job_id  # a new job, not the failed one again
            if job.text_job_id:
                item.text_restart_of = job.text_job_id
            if item.need_labels and self._reuse(item):
                continue
            self._prepare_later(item)

    def _reuse(self, item: _Video) -> bool:
        """Copy the labels of an already-labelled video with the same content, if any."""
        if not self.options.reuse:
            return False
        if not self._out.reuse(item.obj, KIND_VIDEO, exclude_media_id=item.media_id):
            return False
        self._settled(item.obj)
        return True

    def _prepare_later(self, item: _Video) -> None:
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

    def _prepare(self, item: _Video) -> _Video:
        obj = item.obj
        check_limits(obj.size_bytes)
        probed = probe_s3(self.s3, obj.bucket, obj.key, obj.size_bytes, obj.version_id)
        check_limits(obj.size_bytes, probed)
        item.probe = probed
        reason = unsupported_reason(probed)
        if reason is None:
            item.job_key = obj.key
        elif not self.options.transcode:
            raise reason
        else:
            item.job_key = transcode_s3_copy(
                self.s3,
                obj.bucket,
                obj.key,
                etag=obj.etag,
                version_id=obj.version_id,
                prefix=self.options.transcode_prefix,
            )
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
                self._start_jobs(item, request)
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
            item.poll_every_s = self.poll_interval_s
            item.next_poll_at = time.monotonic() + self.poll_interval_s
            self._running.append(item)

    def _start_jobs(self, item: _Video, request: VideoJobRequest) -> None:
        """Start the jobs the video still lacks, committing each JobId the moment it starts.

        A quota refusal (JobLimitError) after the first job started leaves that job stored:
        the video waits in the queue and only the missing job starts later.
        """
        if item.need_labels and item.job_id is None:
            job_id = self.labeller.start(request)
            item.job_id, item.started_at = job_id, utcnow()
            with self._sessions.begin() as session:  # committed now: a crash resumes this job
                set_video_job(
                    session,
                    item.media_id,
                    job_id=job_id,
                    job_key=request.key,
                    started_at=item.started_at,
                )
            self.counts.started += 1
        if item.need_text and item.text_job_id is None and self.text_jobs is not None:
            text_request = replace(request, restart_of=item.text_restart_of)
            item.text_job_id = self.text_jobs.start(text_request)
            alone = not item.need_labels
            if alone:
                item.started_at = utcnow()
            with self._sessions.begin() as session:
                set_text_job(
                    session,
                    item.media_id,
                    text_job_id=item.text_job_id,
                    job_key=request.key,
                    started_at=item.started_at if alone else None,
                )
            self.counts.started += 1

    def _check_jobs(self, item: _Video) -> JobStatus:
        """Check each job still open; the video's state is the worst of them.

        A failed job fails the video, an expired one is restarted (its id forgotten), and the
        video succeeds once every job it needs has succeeded.
        """
        statuses: list[JobStatus] = []
        if item.need_labels and item.result is None and item.job_id:
            status = self.labeller.check(item.job_id, item.started_at)
            if status.state == STATE_SUCCEEDED:
                item.result = status.result
            elif status.state == STATE_EXPIRED:
                item.restart_of, item.job_id = item.job_id, None
            statuses.append(status)
        if item.need_text and item.text is None and item.text_job_id and self.text_jobs:
            status = self.text_jobs.check(item.text_job_id, item.started_at)
            if status.state == STATE_SUCCEEDED:
                item.text = status.text
            elif status.state == STATE_EXPIRED:
                item.text_restart_of, item.text_job_id = item.text_job_id, None
            statuses.append(status)
        for state in (STATE_FAILED, STATE_EXPIRED, STATE_RUNNING):
            for status in statuses:
                if status.state == state:
                    return status
        return JobStatus(STATE_SUCCEEDED)

    def _poll_due(self) -> None:
        now = time.monotonic()
        for item in [i for i in self._running if i.next_poll_at <= now]:
            if self._stop.is_set():
                return
            try:
                status = self._check_jobs(item)
            except ObjectError as exc:
                item.check_errors += 1
                if item.check_errors >= MAX_CHECK_ERRORS:
                    self._running.remove(item)
                    self._fail(item, exc)
                else:
                    self._poll_later(item)
                continue
            item.check_errors = 0
            if status.state == STATE_RUNNING:
                self._poll_later(item)
                continue
            self._running.remove(item)
            if status.state == STATE_SUCCEEDED:
                self._store(item)
            elif status.state == STATE_EXPIRED and item.restarts < MAX_RESTARTS:
                item.restarts += 1
                self._prepare_later(item)
            elif status.state == STATE_EXPIRED:
                self._fail(item, ObjectError("ResultsExpired", status.message))
            else:
                self._fail(item, ObjectError("VideoJobFailed", status.message))

    def _poll_later(self, item: _Video) -> None:
        item.poll_every_s = min(self.max_poll_interval_s, item.poll_every_s * 1.5)
        item.next_poll_at = time.monotonic() + item.poll_every_s

    # -- storing (scheduler thread, one transaction each) -----------------------------------------

    def _store(self, item: _Video) -> None:
        obj = item.obj
        result = item.result
        if result is None:  # its labels were current: only the text was read
            self._settled(obj)
            if item.text is not None:
                self._out.store_text(obj, KIND_VIDEO, item.text)
            return
        if item.job_key and item.job_key != obj.key:
            # Rekognition described the transcoded copy; the catalogue describes the original.
            probed = item.probe
            if probed is None:
                with contextlib.suppress(ObjectError):
                    probed = probe_s3(self.s3, obj.bucket, obj.key, obj.size_bytes, obj.version_id)
            if probed is not None and result.video is not None:
                result.video.codec = probed.codec
                result.video.container_format = probed.container_format
        self._settled(obj)
        self._out.store(obj, KIND_VIDEO, result, item.text)

    def _fail(self, item: _Video, error: ObjectError) -> None:
        self._settled(item.obj)
        self._out.fail(item.obj, KIND_VIDEO, error)


def make_video_phase(clients: AWSClients, options: SyncOptions) -> VideoPhase:
    """The video phase for one S3 sync, or a UsageError for options that cannot work."""
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
    return VideoPhase(clients.s3, labeller, options, text_jobs)
