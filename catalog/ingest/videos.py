"""Video labelling: Rekognition label (and text) detection jobs started, resumed, polled, stored.

Runs beside the image pipeline in catalog.sync, which hands it every new, changed or pending
video, and inside `catalog worker` and the Lambda handler, which hand it the videos their events
name and the jobs Rekognition reports finished; see VideoPhase. The work itself runs in the
phase's scheduler thread (catalog.ingest.video_scheduler).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from catalog.aws.clients import AWSClients
from catalog.errors import ObjectError, UsageError
from catalog.ingest.types import STARTED, STOPPED, SyncOptions, VideoCounts, VideoTicket
from catalog.ingest.video_jobs import JobSlot, VideoItem
from catalog.ingest.video_scheduler import VideoScheduler
from catalog.ingest.writer import ResultWriter
from catalog.labelling.features import TEXT
from catalog.labelling.rekognition_text import RekognitionTextJobs
from catalog.labelling.rekognition_video import RekognitionVideoLabeller
from catalog.labelling.video import probe_s3
from catalog.sources import SourceObject
from catalog.store import claims


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
        self._writer: ResultWriter | None = None
        self._stop = threading.Event()
        self._no_more = threading.Event()
        self._scheduler: VideoScheduler | None = None  # started by the first submission
        self._merged = False
        # Counted by the scheduler, handed to the pipeline at the end (its thread owns the report).
        self.counts = VideoCounts()

    # -- called by the pipeline, worker or Lambda --------------------------------------------

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
            if self._scheduler is None:
                self._scheduler = self._start_scheduler(self._writer)
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
                labels=JobSlot(needed=need_labels),
                text_job=JobSlot(needed=need_text and self.text_jobs is not None),
            )
            self._active[media_id] = item
        self._scheduler.put(item)
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

    def leave(self, item: VideoItem, outcome: str, *, release: bool = False) -> None:
        """The video leaves the phase: its tickets resolve, and its claim goes when asked."""
        with self._active_lock:
            if self._active.get(item.media_id) is item:
                del self._active[item.media_id]
        if release and self.claim_owner is not None:
            with self._sessions.begin() as session:
                claims.release_claim(session, item.media_id, owner=self.claim_owner)
        for ticket in item.tickets:
            ticket.resolve(outcome)

    def resolve_all(self, outcome: str) -> None:
        """Every video still in the phase leaves it with `outcome`."""
        with self._active_lock:
            items = list(self._active.values())
            self._active.clear()
        for item in items:
            for ticket in item.tickets:
                ticket.resolve(outcome)

    def wait(self) -> None:
        """After the images: wait until every video is labelled, failed, or (with SNS) started."""
        self._no_more.set()
        if self._scheduler is not None:
            self._scheduler.finish()
        self._raise_error()

    def close(self) -> VideoCounts:
        """Stop the scheduler (on any exit); returns what it did (once: later calls count 0).

        A claiming phase releases its claims: its running jobs stay stored, for the next
        process to resume.
        """
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.stop()
        self.resolve_all(STOPPED)
        if self.claim_owner is not None and self._scheduler is not None:
            with self._sessions.begin() as session:
                claims.release_claims(session, owner=self.claim_owner)
        if self._merged:
            return VideoCounts()
        self._merged = True
        return self.counts

    def _raise_error(self) -> None:
        if self._scheduler is not None:
            self._scheduler.raise_error()

    def _start_scheduler(self, writer: ResultWriter) -> VideoScheduler:
        return VideoScheduler(self, writer, stop=self._stop, no_more=self._no_more)

    @property
    def _sessions(self) -> sessionmaker[Session]:
        assert self._writer is not None
        return self._writer.sessions


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
