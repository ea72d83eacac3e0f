"""One video's Rekognition jobs: what it needs (labels, text or both), starting and checking them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from catalog.ingest.types import VideoTicket
from catalog.labelling import LabelResult, TextResult
from catalog.labelling.rekognition_text import RekognitionTextJobs
from catalog.labelling.rekognition_video import (
    STATE_EXPIRED,
    STATE_FAILED,
    STATE_RUNNING,
    STATE_SUCCEEDED,
    JobStatus,
    RekognitionVideoJobs,
    RekognitionVideoLabeller,
    VideoJobRequest,
)
from catalog.labelling.video import ProbeResult
from catalog.sources import SourceObject
from catalog.store.jobs import VideoJob, set_text_job, set_video_job
from catalog.store.schema import utcnow


@dataclass
class JobSlot:
    """One of a video's two jobs (its labels or its text): needed, running, finished."""

    needed: bool = False
    job_id: str | None = None
    restart_of: str | None = None  # the job a new one replaces (expired, or failed before)
    finished: JobStatus | None = None  # the succeeded job's status, with its result

    @property
    def is_open(self) -> bool:
        """Started and not finished: a job Rekognition holds open for this video."""
        return self.job_id is not None and self.finished is None

    @property
    def is_started(self) -> bool:
        """Not needed, or started (it has a JobId)."""
        return not self.needed or self.job_id is not None


@dataclass
class VideoItem:
    """One video on its way through the video phase."""

    obj: SourceObject
    media_id: int
    tickets: list[VideoTicket] = field(default_factory=list)
    retry: bool = False  # it failed before: a stored job is replaced, not resumed
    # Its label job and, with --features text, its text job (alone when labels are current).
    labels: JobSlot = field(default_factory=lambda: JobSlot(needed=True))
    text_job: JobSlot = field(default_factory=JobSlot)
    job_key: str | None = None
    started_at: datetime | None = None
    probe: ProbeResult | None = None
    restarts: int = 0
    check_errors: int = 0
    poll_every_s: float = 0.0
    next_poll_at: float = 0.0

    @property
    def need_labels(self) -> bool:
        """True when the video's labels are wanted (not only its text)."""
        return self.labels.needed

    @property
    def result(self) -> LabelResult | None:
        """The labels of the finished label job."""
        return self.labels.finished.result if self.labels.finished else None

    @property
    def text(self) -> TextResult | None:
        """The text of the finished text job."""
        return self.text_job.finished.text if self.text_job.finished else None

    @property
    def job_count(self) -> int:
        """Rekognition jobs this video holds open now."""
        return int(self.labels.is_open) + int(self.text_job.is_open)

    @property
    def all_started(self) -> bool:
        """True once every job the video needs has a JobId."""
        return self.labels.is_started and self.text_job.is_started


def resume_stored_jobs(item: VideoItem, stored: VideoJob) -> bool:
    """Take over the video's stored jobs; True when one is resumed (none is, for a retry).

    Jobs that are not resumed are remembered as replaced, so a new job gets a fresh token.
    """
    label_job = stored.job_id if item.labels.needed else None
    text_job = stored.text_job_id if item.text_job.needed else None
    if (label_job or text_job) and not item.retry:
        item.labels.job_id, item.text_job.job_id = label_job, text_job
        item.job_key, item.started_at = stored.job_key, stored.started_at
        return True
    if stored.job_id:
        item.labels.restart_of = stored.job_id  # a new job, not the failed one again
    if stored.text_job_id:
        item.text_job.restart_of = stored.text_job_id
    return False


def start_jobs(
    item: VideoItem,
    request: VideoJobRequest,
    labeller: RekognitionVideoLabeller,
    text_jobs: RekognitionTextJobs | None,
    sessions: sessionmaker[Session],
) -> int:
    """Start the jobs the video still lacks, committing each JobId the moment it starts.

    Returns how many started. A quota refusal (JobLimitError) after the first job started
    leaves that job stored: the video waits in the queue and only the missing job starts later.
    """
    started = 0
    if not item.labels.is_started:
        job_id = labeller.start(replace(request, restart_of=item.labels.restart_of))
        item.labels.job_id, item.started_at = job_id, utcnow()
        with sessions.begin() as session:  # committed now: a crash resumes this job
            set_video_job(
                session,
                item.media_id,
                job_id=job_id,
                job_key=request.key,
                started_at=item.started_at,
            )
        started += 1
    if not item.text_job.is_started and text_jobs is not None:
        text_job_id = text_jobs.start(replace(request, restart_of=item.text_job.restart_of))
        item.text_job.job_id = text_job_id
        alone = not item.labels.needed
        if alone:
            item.started_at = utcnow()
        with sessions.begin() as session:
            set_text_job(
                session,
                item.media_id,
                text_job_id=text_job_id,
                job_key=request.key,
                started_at=item.started_at if alone else None,
            )
        started += 1
    return started


def check_jobs(
    item: VideoItem, labeller: RekognitionVideoLabeller, text_jobs: RekognitionTextJobs | None
) -> JobStatus:
    """Check each job still open; the video's state is the worst of them.

    A failed job fails the video, an expired one is restarted (its id forgotten), and the
    video succeeds once every job it needs has succeeded.
    """
    statuses: list[JobStatus] = []
    checks: tuple[tuple[JobSlot, RekognitionVideoJobs | None], ...] = (
        (item.labels, labeller),
        (item.text_job, text_jobs),
    )
    for slot, jobs in checks:
        if not slot.needed or slot.finished is not None or not slot.job_id or jobs is None:
            continue
        status = jobs.check(slot.job_id, item.started_at)
        if status.state == STATE_SUCCEEDED:
            slot.finished = status
        elif status.state == STATE_EXPIRED:
            slot.restart_of, slot.job_id = slot.job_id, None
        statuses.append(status)
    for state in (STATE_FAILED, STATE_EXPIRED, STATE_RUNNING):
        for status in statuses:
            if status.state == state:
                return status
    return JobStatus(STATE_SUCCEEDED)
