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
    RekognitionVideoLabeller,
    VideoJobRequest,
)
from catalog.labelling.video import ProbeResult
from catalog.sources import SourceObject
from catalog.store.jobs import set_text_job, set_video_job
from catalog.store.schema import utcnow


@dataclass
class VideoItem:
    """One video on its way through the video phase."""

    obj: SourceObject
    media_id: int
    tickets: list[VideoTicket] = field(default_factory=list)
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

    @property
    def all_started(self) -> bool:
        """True once every job the video needs has a JobId."""
        return (not self.need_labels or self.job_id is not None) and (
            not self.need_text or self.text_job_id is not None
        )


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
    if item.need_labels and item.job_id is None:
        job_id = labeller.start(request)
        item.job_id, item.started_at = job_id, utcnow()
        with sessions.begin() as session:  # committed now: a crash resumes this job
            set_video_job(
                session,
                item.media_id,
                job_id=job_id,
                job_key=request.key,
                started_at=item.started_at,
            )
        started += 1
    if item.need_text and item.text_job_id is None and text_jobs is not None:
        text_request = replace(request, restart_of=item.text_restart_of)
        item.text_job_id = text_jobs.start(text_request)
        alone = not item.need_labels
        if alone:
            item.started_at = utcnow()
        with sessions.begin() as session:
            set_text_job(
                session,
                item.media_id,
                text_job_id=item.text_job_id,
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
    if item.need_labels and item.result is None and item.job_id:
        status = labeller.check(item.job_id, item.started_at)
        if status.state == STATE_SUCCEEDED:
            item.result = status.result
        elif status.state == STATE_EXPIRED:
            item.restart_of, item.job_id = item.job_id, None
        statuses.append(status)
    if item.need_text and item.text is None and item.text_job_id and text_jobs:
        status = text_jobs.check(item.text_job_id, item.started_at)
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
