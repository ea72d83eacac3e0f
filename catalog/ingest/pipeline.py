"""The sync pipeline: list -> diff -> label -> store, one committed transaction per object.

The main thread lists, diffs against the catalogue page by page (catalog.ingest.diff) and
writes every result; a thread pool runs the labelling calls. An interruption loses only the
objects in flight.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import CatalogError, ObjectError, SkippedObjectError
from catalog.ingest.diff import SourceDiff
from catalog.ingest.indexing import refresh_index
from catalog.ingest.leases import ClaimRenewal
from catalog.ingest.tasks import Outcome, Task, label_task
from catalog.ingest.types import (
    EventHandler,
    SyncEvent,
    SyncOptions,
    SyncReport,
    VideoCounts,
    no_events,
)
from catalog.ingest.writer import ResultProvenance, ResultWriter
from catalog.labelling import ImageLabeller, TextReader
from catalog.labelling.features import TEXT
from catalog.labelling.rekognition_image import LABELLER_NAME as REKOGNITION
from catalog.pricing import estimate_cost, estimate_text_cost
from catalog.sources import Source, SourceObject
from catalog.store import claims
from catalog.store.reads import get_media, stored_media
from catalog.store.runs import finish_sync_run, start_sync_run
from catalog.store.text_rows import text_provenance
from catalog.uris import format_uri

if TYPE_CHECKING:
    from catalog.ingest.videos import VideoPhase


class SyncPipeline:
    """One sync of one source into one catalogue."""

    def __init__(
        self,
        source: Source,
        labeller: ImageLabeller,
        sessions: sessionmaker[Session],
        options: SyncOptions,
        on_event: EventHandler = no_events,
        video_step: VideoPhase | None = None,
        text_reader: TextReader | None = None,
    ) -> None:
        self.source = source
        self.labeller = labeller
        # Reads the text too when the options ask for it (--features labels,text).
        self.text_reader = text_reader if TEXT in options.features else None
        self.sessions = sessions
        self.options = options
        # Video jobs report from their own thread: events reach the handler one at a time.
        self.on_event = _serialised(on_event) if video_step is not None else on_event
        self.video_step = video_step
        self.report = SyncReport(
            source=format_uri(source.scheme, source.bucket, source.prefix), dry_run=options.dry_run
        )
        self.writer = ResultWriter(
            sessions,
            ResultProvenance.of(labeller, options, self.text_reader),
            on_event=self.on_event,
            counts=self.report,
        )
        self.diff = SourceDiff(
            source,
            labeller,
            self.text_reader,
            sessions,
            options,
            self.report,
            self.writer,
            self.on_event,
            video_step,
        )
        # (etag, size) of content being labelled now -> objects waiting to reuse its result.
        self._content_in_flight: dict[tuple[str, int], list[Task]] = {}
        # Work claims shared with other processes on the same catalogue (see catalog.store.claims).
        self.claim_owner = claims.make_owner()
        self.claim_lease_s = claims.DEFAULT_LEASE_S
        self._claims_renewal = ClaimRenewal()
        self._step_lock = threading.RLock()

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> SyncReport:
        """List, diff, label and store; returns the report (also when interrupted)."""
        started = time.monotonic()
        self.source.check()
        if not self.options.dry_run:
            with self.sessions.begin() as session:
                self.report.run_id = start_sync_run(
                    session, self.report.source, self.labeller.name
                ).id
            self.writer.run_id = self.report.run_id
        if self.video_step is not None:
            self.video_step.attach(self.writer)
        pool = ThreadPoolExecutor(
            max_workers=max(1, self.options.concurrency), thread_name_prefix="label"
        )
        in_flight: dict[Future[Outcome], Task] = {}
        status = "finished"
        try:
            for task in self.diff.iter_tasks():
                if self.options.dry_run:
                    continue
                if not self._claim(task):
                    continue
                if self._wait_for_same_content(task):
                    continue
                while len(in_flight) >= 2 * self.options.concurrency:
                    self._collect(in_flight, block=True)
                in_flight[
                    pool.submit(label_task, task, self.labeller, self.text_reader, self.source)
                ] = task
                self._collect(in_flight, block=False)
            while in_flight:
                self._collect(in_flight, block=True)
            if self.video_step is not None and not self.options.dry_run:
                self.video_step.wait()
        except KeyboardInterrupt:
            status = "interrupted"
            self.report.interrupted = True
            raise
        except CatalogError:
            status = "error"
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            if self.video_step is not None:
                self._merge_video_counts(self.video_step.close())
            self.report.elapsed_s = time.monotonic() - started
            if self.options.dry_run and self.labeller.name == REKOGNITION:
                self.report.estimated_text_cost_usd = estimate_text_cost(
                    images=self.report.to_read_text_images,
                    video_ms=self.report.video_ms_to_read_text,
                )
                self.report.estimated_cost_usd = (
                    estimate_cost(
                        images=self.report.to_label_images, video_ms=self.report.video_ms_to_label
                    )
                    + self.report.estimated_text_cost_usd
                )
            elif self.report.run_id is not None:
                self._release_claims()
                with self.sessions.begin() as session:
                    finish_sync_run(session, self.report.run_id, status, self.report.counts())
                if not self.report.interrupted:
                    refresh_index(self.sessions)
        return self.report

    # -- reuse ---------------------------------------------------------------------------------

    def _content_key(self, obj: SourceObject) -> tuple[str, int] | None:
        if not self.options.reuse or obj.is_multipart_etag or not obj.etag:
            return None
        return (obj.etag, obj.size_bytes)

    def _task_content_key(self, task: Task) -> tuple[str, int] | None:
        """Tasks that read text alone are not shared: their labels are their own."""
        return self._content_key(task.obj) if task.need_labels else None

    def _wait_for_same_content(self, task: Task) -> bool:
        """Queue the task behind an in-flight labelling of the same content, or try the catalogue."""
        content = self._task_content_key(task)
        if content is None:
            return False
        waiting = self._content_in_flight.get(content)
        if waiting is not None:
            waiting.append(task)
            return True
        if self._reuse_stored(task):
            return True
        self._content_in_flight[content] = []
        return False

    def _reuse_stored(self, task: Task) -> bool:
        return self.writer.reuse(
            task.obj, task.kind, exclude_media_id=task.stored.id if task.stored else None
        )

    # -- storing (main thread) ---------------------------------------------------------------

    def _collect(self, in_flight: dict[Future[Outcome], Task], *, block: bool) -> None:
        self._renew_claims_if_due()
        if not in_flight:
            return
        done, _ = wait(list(in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            del in_flight[future]
            self._store(future.result())

    def _store(self, outcome: Outcome) -> None:
        task = outcome.task
        content = self._task_content_key(task)
        waiting = self._content_in_flight.pop(content, []) if content else []
        if outcome.error is None and not task.need_labels and outcome.text is not None:
            self.writer.store_text(task.obj, task.kind, outcome.text)
            return
        if outcome.error is None and outcome.result is not None:
            media_id = self.writer.store(task.obj, task.kind, outcome.result, outcome.text)
            for other in waiting:
                self.writer.copy(other.obj, other.kind, outcome.result, media_id, outcome.text)
            return
        error = outcome.error or ObjectError("Unknown", "no result")
        if isinstance(error, SkippedObjectError):
            for skipped in (task, *waiting):
                self.diff.skip(skipped.obj, error.message)
            return
        for failed in (task, *waiting):
            self.writer.fail(failed.obj, failed.kind, error)

    def _merge_video_counts(self, counts: VideoCounts) -> None:
        self.report.pending -= counts.settled
        self.report.video_jobs_started += counts.started
        self.report.video_jobs_resumed += counts.resumed

    # -- claims shared with other processes -------------------------------------------------

    def _claim(self, task: Task) -> bool:
        """Claim the object's row; False (and a skip) when another process has it or did it."""
        if claims.claim_object(
            self.sessions,
            task.obj,
            task.kind,
            task.stored,
            owner=self.claim_owner,
            lease_s=self.claim_lease_s,
        ):
            return True
        self.diff.skip(task.obj, "handled by another process")
        return False

    def _renew_claims_if_due(self) -> None:
        self._claims_renewal.renew_if_due(self.sessions, self.claim_owner, self.claim_lease_s)

    def _release_claims(self) -> None:
        with self.sessions.begin() as session:
            claims.release_claims(session, owner=self.claim_owner)

    # -- one object at a time (queue workers, Lambda) ------------------------------------------

    def process_object(self, obj: SourceObject) -> bool:
        """Diff, claim, label (or reuse) and store one object now, as a listing sync would.

        The per-object step of `catalog worker` and the Lambda handler; videos take the same
        path as in a listing sync (recorded pending). Thread-safe. Returns False when another
        process holds the object's claim (try again later), True when the object is settled.
        """
        with self._step_lock:
            with self.sessions() as session:
                row = get_media(session, obj.source, obj.bucket, obj.key)
                stored = stored_media(row) if row is not None else None
                if stored is not None and self.text_reader is not None:
                    read = text_provenance(session, stored.id)
                    if read is not None:
                        stored = replace(
                            stored, text_reader=read.reader, text_model_version=read.model_version
                        )
            task = self.diff.decide(obj, stored)
            if task is None:
                return True
            if not self._claim(task):
                return False
            content = self._task_content_key(task)
            if content is not None and self._reuse_stored(task):
                return True
        outcome = label_task(task, self.labeller, self.text_reader, self.source)
        with self._step_lock:
            self._store(outcome)
        return True


def _serialised(handler: EventHandler) -> EventHandler:
    lock = threading.Lock()

    def emit(event: SyncEvent) -> None:
        with lock:
            handler(event)

    return emit
