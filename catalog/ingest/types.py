"""What a sync is asked to do and what it reports: options, events, reports and video tickets."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from catalog.labelling.features import DEFAULT_FEATURES

DEFAULT_CONCURRENCY = 16
DEFAULT_MAX_VIDEO_JOBS = 20  # Rekognition's default concurrent stored-video job quota
DEFAULT_TRANSCODE_PREFIX = "catalog-transcoded/"
DEFAULT_POLL_INTERVAL_S = 5.0


@dataclass(frozen=True)
class SyncOptions:
    """What a sync should do."""

    min_confidence: float = 50.0
    max_labels: int | None = None
    images: bool = True
    videos: bool = True
    reuse: bool = True
    retry_failed: bool = False
    dry_run: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    # Videos: Rekognition's asynchronous jobs (see VideoPhase).
    max_video_jobs: int = DEFAULT_MAX_VIDEO_JOBS
    transcode: bool = False
    transcode_prefix: str = DEFAULT_TRANSCODE_PREFIX
    notification_topic_arn: str | None = None
    role_arn: str | None = None
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    # What to read from each item: labels, and with "text" the text it shows.
    features: frozenset[str] = DEFAULT_FEATURES
    # Local folders: keep hidden and junk names; follow links that lead outside the folder.
    include_hidden: bool = False
    follow_outside_links: bool = False


class EventKind(StrEnum):
    """What a SyncEvent says happened (a StrEnum: it compares equal to its value)."""

    LISTED = "listed"  # `count` objects were listed
    PLANNED = "planned"  # a dry run would label this object (`detail`: its kind)
    LABELLED = "labelled"  # a new result was stored
    REUSED = "reused"  # an identical object's result was copied
    UNCHANGED = "unchanged"  # already labelled, nothing to do
    SKIPPED = "skipped"  # not labelled (`detail`: the reason)
    FAILED = "failed"  # a per-object failure was stored (`detail`: code and message)
    DELETED = "deleted"  # the object is gone from the source
    # `count` videos joined (positive) or left (negative: labelled, reused or failed) the set
    # of videos waiting for their asynchronous jobs.
    PENDING = "pending"
    JOBS = "jobs"  # `count` video jobs are running now
    LOG = "log"  # a line worth showing (`detail`)


@dataclass(frozen=True)
class SyncEvent:
    """Something the pipeline reports as it goes (for progress displays and logs)."""

    kind: EventKind
    uri: str = ""
    detail: str = ""
    count: int = 1


@dataclass
class FailureRecord:
    """One object that failed in this run."""

    uri: str
    kind: str
    code: str
    message: str


@dataclass
class SyncReport:
    """What a sync did."""

    source: str
    run_id: int | None = None
    listed: int = 0
    labelled: int = 0
    reused: int = 0
    unchanged: int = 0
    failed: int = 0
    still_failed: int = 0  # unchanged objects that failed in an earlier run (not retried)
    deleted: int = 0
    pending: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    to_label_images: int = 0
    to_label_videos: int = 0
    video_ms_to_label: int = 0
    video_jobs_started: int = 0
    video_jobs_resumed: int = 0
    estimated_cost_usd: float = 0.0
    # A dry run with --features text: what reading text would add (images, video ms, dollars).
    to_read_text_images: int = 0
    video_ms_to_read_text: int = 0
    estimated_text_cost_usd: float = 0.0
    dry_run: bool = False
    interrupted: bool = False
    elapsed_s: float = 0.0
    failures: list[FailureRecord] = field(default_factory=list)

    @property
    def skipped_total(self) -> int:
        """All objects skipped, whatever the reason."""
        return sum(self.skipped.values())

    def counts(self) -> dict[str, int]:
        """The counters stored on the sync run row."""
        return {
            "listed": self.listed,
            "labelled": self.labelled,
            "reused": self.reused,
            "unchanged": self.unchanged,
            "skipped": self.skipped_total,
            "failed": self.failed,
            "deleted": self.deleted,
            "pending": self.pending,
        }


@dataclass
class VideoCounts:
    """What a sync's video phase did: videos settled (labelled, reused or failed), jobs."""

    settled: int = 0
    started: int = 0
    resumed: int = 0


# How a ticket ends (see VideoTicket).
STARTED = "started"  # the job is started and its JobId committed: the catalogue owns it now
SETTLED = "settled"  # labelled, reused or failed
BUSY = "busy"  # another live process holds the video's claim
RUNNING = "running"  # looked at once (no polling here): the job still runs
STOPPED = "stopped"  # the phase stopped first


class VideoTicket:
    """Lets the one who submitted a video wait until it no longer needs them (thread-safe).

    A queue worker keeps the video's message in flight until then: while the video is probed
    and its job started. `outcome` is one of STARTED, SETTLED, BUSY, RUNNING, STOPPED.
    """

    def __init__(self) -> None:
        self.outcome = ""
        self._done = threading.Event()

    def resolve(self, outcome: str) -> None:
        """Record the outcome (the first one wins) and wake the waiter."""
        if not self._done.is_set():
            self.outcome = outcome
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once resolved (False when `timeout` passed first)."""
        return self._done.wait(timeout)


EventHandler = Callable[[SyncEvent], None]


def no_events(_event: SyncEvent) -> None:
    """The default event handler: ignores everything."""
    return None
