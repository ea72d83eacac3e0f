"""Videos in event-driven ingestion: job hand-over, Rekognition's completion messages, adoption.

A queue worker or a Lambda invocation hands a video from an S3 event to the VideoPhase and waits
only until its job is started (the JobId committed) or it settled; from then on the job belongs
to the catalogue, not to the message. Where Rekognition was given an SNS topic, its completion
message (via SQS, or SNS invoking Lambda) names the JobId, and whoever receives it collects the
result. A polling worker also adopts stored jobs nobody live polls (a stopped or killed worker's)
and polls them to the end.

Rekognition's completion payload (api-video.md): `{"JobId", "Status": SUCCEEDED|FAILED|ERROR,
"API": "StartLabelDetection" (or "StartTextDetection"), "JobTag", "Timestamp", "Video":
{"S3ObjectName", "S3Bucket"}}`, inside an SNS envelope's `Message` unless raw delivery is on;
one documented sample says `JobType: LABEL_DETECTION` instead of `API`, so both are accepted.
A video with a label and a text job is settled once both have finished.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from catalog.aws.clients import AWSClients
from catalog.ingest.s3_events import Scope
from catalog.ingest.types import (
    BUSY,
    RUNNING,
    SETTLED,
    STARTED,
    EventHandler,
    SyncOptions,
    SyncReport,
    VideoTicket,
    no_events,
)
from catalog.ingest.videos import VideoPhase, make_video_phase
from catalog.ingest.writer import ResultProvenance, ResultWriter
from catalog.labelling import ImageLabeller
from catalog.store import claims
from catalog.store.jobs import pending_video
from catalog.store.reads import get_media
from catalog.store.runs import start_sync_run
from catalog.store.schema import STATUS_PENDING

log = logging.getLogger(__name__)

LABEL_DETECTION_APIS = frozenset({"StartLabelDetection", "LABEL_DETECTION"})
TEXT_DETECTION_APIS = frozenset({"StartTextDetection", "TEXT_DETECTION"})


@dataclass(frozen=True)
class JobCompletion:
    """Rekognition's word that a video job ended."""

    job_id: str
    status: str  # SUCCEEDED | FAILED | ERROR
    api: str
    bucket: str | None = None
    key: str | None = None

    @property
    def is_label_detection(self) -> bool:
        """True for StartLabelDetection jobs."""
        return self.api in LABEL_DETECTION_APIS or not self.api

    @property
    def is_text_detection(self) -> bool:
        """True for StartTextDetection jobs (--features text)."""
        return self.api in TEXT_DETECTION_APIS


def parse_job_completion(body: str | Mapping[str, Any]) -> JobCompletion | None:
    """The completion a message body carries (SNS envelope or raw), or None if it is not one."""
    data: Any = body
    if isinstance(body, str):
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            return None
    if isinstance(data, Mapping) and data.get("Type") == "Notification" and "Message" in data:
        return parse_job_completion(str(data["Message"]))
    if not isinstance(data, Mapping) or not isinstance(data.get("JobId"), str):
        return None
    if "Status" not in data and "JobType" not in data and "API" not in data:
        return None
    video: Mapping[str, Any] = data["Video"] if isinstance(data.get("Video"), Mapping) else {}
    return JobCompletion(
        job_id=data["JobId"],
        status=str(data.get("Status") or ""),
        api=str(data.get("API") or data.get("JobType") or ""),
        bucket=str(video["S3Bucket"]) if video.get("S3Bucket") else None,
        key=str(video["S3ObjectName"]) if video.get("S3ObjectName") else None,
    )


class EventVideos:
    """The video side of a worker or Lambda: hand-over waits, completions and adoption."""

    def __init__(
        self,
        phase: VideoPhase,
        sessions: sessionmaker[Session],
        *,
        scope: Scope | None = None,
        is_stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.phase = phase
        self.sessions = sessions
        self.scope = scope or Scope()
        self.is_stopping = is_stopping
        self.collected = 0  # completion messages that settled their video
        self.adopted = 0  # stored jobs taken over from processes that stopped or died
        self._lock = threading.Lock()

    def wait(self, ticket: VideoTicket, timeout_s: float | None = None) -> str:
        """Wait for a ticket's outcome ('' when stopping or out of time first)."""
        waited = 0.0
        while not ticket.wait(0.2):
            waited += 0.2
            if self.is_stopping() or (timeout_s is not None and waited >= timeout_s):
                return ""
        return ticket.outcome

    def handover(self, uri: str, timeout_s: float | None = None) -> bool:
        """After an S3 event for `uri` was applied: True once its video needs the message no more.

        That is when its job is started (or was already), or it settled. False leaves the
        message to come back: another process is still starting the job, or we are stopping.
        """
        ticket = self.phase.take_ticket(uri)
        if ticket is None:
            return True  # not a video handed to the phase (an image, unchanged, skipped)
        outcome = self.wait(ticket, timeout_s)
        if outcome in (STARTED, SETTLED, RUNNING):  # RUNNING: its stored job still runs
            return True
        if outcome == BUSY:  # another process has it: settled once its job is stored
            return self._has_stored_job(uri)
        return False

    def _has_stored_job(self, uri: str) -> bool:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        with self.sessions() as session:
            row = get_media(session, "s3", bucket, key)
            return row is None or row.status != STATUS_PENDING or row.job_id is not None

    def collect(self, completion: JobCompletion, timeout_s: float | None = None) -> bool:
        """Store the result of a job Rekognition reports finished; True when settled.

        A completion for a job no pending video has (collected already, replaced, or not ours)
        is settled at once. False leaves the message to come back (another process holds the
        video now, or Get still says IN_PROGRESS).
        """
        if not (completion.is_label_detection or completion.is_text_detection):
            log.warning("ignored a %s completion (job %s)", completion.api, completion.job_id)
            return True
        with self.sessions() as session:
            found = pending_video(session, job_id=completion.job_id)
        if found is None:
            log.info("job %s: no pending video has it (collected already)", completion.job_id)
            return True
        obj = found.obj
        if not self.scope.allows(obj.bucket, obj.key):
            log.warning(
                "dropped the completion of %r: outside the --bucket/--prefix scope", obj.uri
            )
            return True
        ticket = self.phase.submit(
            obj,
            found.media_id,
            register=False,
            need_labels=found.need_labels,
            need_text=found.need_text,
        )
        outcome = self.wait(ticket, timeout_s)
        if outcome == SETTLED:
            with self._lock:
                self.collected += 1
            return True
        # STARTED: a polling phase took the job over and polls it to the end.
        return outcome == STARTED

    def adopt(self, limit: int) -> int:
        """Claim stored jobs nobody live polls (up to `limit`) and hand them to the phase."""
        owner = self.phase.claim_owner
        if owner is None or limit <= 0:
            return 0
        with self.sessions.begin() as session:
            ids = claims.claim_stored_jobs(
                session,
                owner=owner,
                limit=limit,
                lease_s=self.phase.claim_lease_s,
                buckets=self.scope.buckets,
            )
            found = [pending_video(session, media_id=media_id) for media_id in ids]
        adopted = 0
        for item in found:
            if item is None:
                continue
            if not self.scope.allows(item.obj.bucket, item.obj.key):
                with self.sessions.begin() as session:
                    claims.release_claim(session, item.media_id, owner=owner)
                continue
            self.phase.submit(
                item.obj,
                item.media_id,
                register=False,
                need_labels=item.need_labels,
                need_text=item.need_text,
            )
            adopted += 1
        with self._lock:
            self.adopted += adopted
        return adopted


def build_event_videos(
    clients: AWSClients,
    sessions: sessionmaker[Session],
    options: SyncOptions,
    labeller: ImageLabeller,
    *,
    lease_s: float,
    keep_polling: bool,
    scope: Scope,
    report: SyncReport | None = None,
    on_event: EventHandler = no_events,
    is_stopping: Callable[[], bool] = lambda: False,
) -> EventVideos:
    """The video side of a worker or a Lambda container: a claiming phase keeping its tickets.

    Results are stored with `labeller`'s provenance; with a `report`, they are counted into it
    and recorded under a sync run started for it here.
    """
    phase = make_video_phase(
        clients,
        options,
        claim_owner=claims.make_owner(),
        claim_lease_s=lease_s,
        keep_polling=keep_polling,
    )
    phase.keep_tickets = True
    if report is not None:
        with sessions.begin() as session:
            report.run_id = start_sync_run(session, report.source, labeller.name).id
    phase.attach(
        ResultWriter(
            sessions,
            ResultProvenance.of(labeller, options),
            run_id=report.run_id if report is not None else None,
            on_event=on_event,
            counts=report,
        )
    )
    return EventVideos(phase, sessions, scope=scope, is_stopping=is_stopping)
