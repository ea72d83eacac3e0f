"""The sync pipeline: list -> diff -> label -> store, one committed transaction per object.

The main thread lists, diffs against the catalogue page by page and writes every result; a
thread pool runs the labelling calls. An interruption loses only the objects in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import CatalogError, ObjectError, SkippedObjectError
from catalog.ingest.indexing import refresh_index
from catalog.ingest.tasks import Outcome, Task, label_task
from catalog.ingest.types import (
    EventHandler,
    EventKind,
    SyncEvent,
    SyncOptions,
    SyncReport,
    VideoCounts,
    no_events,
)
from catalog.ingest.writer import ResultProvenance, ResultWriter
from catalog.labelling import ImageLabeller, TextReader
from catalog.labelling import media as media_rules
from catalog.labelling.features import TEXT
from catalog.labelling.rekognition_image import LABELLER_NAME as REKOGNITION
from catalog.labelling.rekognition_image import VIDEO_NEEDS_S3
from catalog.pricing import estimate_cost, estimate_text_cost
from catalog.sources import Source, SourceObject
from catalog.store import claims
from catalog.store.media import finish_sync_run, mark_deleted, record_pending, start_sync_run
from catalog.store.reads import StoredMedia, get_media, load_key_range, stored_media, touch_media
from catalog.store.schema import (
    KIND_IMAGE,
    KIND_VIDEO,
    STATUS_DELETED,
    STATUS_FAILED,
    STATUS_LABELLED,
    STATUS_PENDING,
)
from catalog.store.text import text_provenance
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
            ResultProvenance(
                labeller=labeller.name,
                model_version=labeller.model_version,
                min_confidence=options.min_confidence,
                max_labels=options.max_labels,
                text_reader=self.text_reader.name if self.text_reader else None,
                text_model_version=self.text_reader.model_version if self.text_reader else None,
            ),
            on_event=self.on_event,
            counts=self.report,
        )
        # (etag, size) of content being labelled now -> objects waiting to reuse its result.
        self._content_in_flight: dict[tuple[str, int], list[Task]] = {}
        # Work claims shared with other processes on the same catalogue (see catalog.store.claims).
        self.claim_owner = claims.make_owner()
        self.claim_lease_s = claims.DEFAULT_LEASE_S
        self._claims_renewed_at = time.monotonic()
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
            for task in self._iter_tasks():
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

    # -- listing and diffing -----------------------------------------------------------------

    def _iter_tasks(self) -> Iterator[Task]:
        after: str | None = None
        for page in self.source.iter_pages():
            if not page:
                continue
            upto = page[-1].key
            by_key = {row.key: row for row in self._stored_between(after, upto)}
            self.report.listed += len(page)
            self.on_event(SyncEvent(EventKind.LISTED, count=len(page)))
            for obj in page:
                task = self._diff(obj, by_key.pop(obj.key, None))
                if task is not None:
                    yield task
            self._delete_missing(list(by_key.values()))
            after = upto
        self._delete_missing(self._stored_between(after, None))

    def _stored_between(self, after: str | None, upto: str | None) -> list[StoredMedia]:
        """The catalogue's rows of this source with keys in (after, upto] (upto None: the rest)."""
        with self.sessions() as session:
            return load_key_range(
                session,
                source=self.source.scheme,
                bucket=self.source.bucket,
                after=after,
                upto=upto,
                prefix=self.source.prefix,
            )

    def _skip(self, obj: SourceObject, reason: str) -> None:
        self.report.skipped[reason] += 1
        self.on_event(SyncEvent(EventKind.SKIPPED, obj.uri, reason))

    def _diff(self, obj: SourceObject, stored: StoredMedia | None) -> Task | None:
        if obj.skip_reason is not None:
            self._skip(obj, obj.skip_reason)
            return None
        kind = media_rules.kind_of(obj.key)
        if kind is None:
            self._skip(obj, "not an image or video")
            return None
        if kind == KIND_IMAGE and not self.options.images:
            self._skip(obj, "images not selected")
            return None
        if kind == KIND_VIDEO and not self.options.videos:
            self._skip(obj, "videos not selected")
            return None
        if self.options.transcode_prefix and obj.key.startswith(self.options.transcode_prefix):
            self._skip(obj, "transcoded copy")
            return None
        if media_rules.is_archived(obj.storage_class, obj.restored):
            self._skip(obj, f"archived ({obj.storage_class})")
            return None
        confirmed = self._confirm_content(obj, kind, stored)
        if confirmed is None:
            return None
        obj = confirmed
        same = (
            stored is not None
            and stored.status != STATUS_DELETED
            and stored.etag == obj.etag
            and stored.size_bytes == obj.size_bytes
        )
        inline_video = kind == KIND_VIDEO and self._labels_videos_inline()
        wants_text = self.text_reader is not None
        if same and stored is not None:
            labels_current = stored.status == STATUS_LABELLED and self._is_current_labeller(stored)
            if labels_current and wants_text and not self._is_current_text(stored):
                return self._text_only(obj, kind, stored, inline_video)
            if labels_current or (
                stored.status == STATUS_FAILED
                and not self.options.retry_failed
                and not self._can_do_better(stored)
            ):
                self.report.unchanged += 1
                if stored.status == STATUS_FAILED:
                    self.report.still_failed += 1
                self.on_event(SyncEvent(EventKind.UNCHANGED, obj.uri))
                if stored.last_modified_at != obj.last_modified_at and not self.options.dry_run:
                    with self.sessions.begin() as session:
                        touch_media(session, stored.id, obj.last_modified_at)
                return None
            if stored.status == STATUS_PENDING and kind == KIND_VIDEO and not inline_video:
                if self.options.dry_run:
                    self._plan_video(obj)
                    return None
                # Its job (if one started) is resumed, not started again.
                self.report.pending += 1
                self.on_event(SyncEvent(EventKind.PENDING, obj.uri, "video"))
                if self.video_step is not None:
                    self.video_step.submit(obj, stored.id, need_text=wants_text)
                return None
        if self.options.dry_run:
            if kind == KIND_IMAGE:
                self.report.to_label_images += 1
                self.report.to_read_text_images += int(wants_text)
            else:
                self._plan_video(obj)
            self.on_event(SyncEvent(EventKind.PLANNED, obj.uri, kind))
            return None
        if kind == KIND_VIDEO and not inline_video:
            with self.sessions.begin() as session:
                media_id = record_pending(session, obj, KIND_VIDEO).id
            self.report.pending += 1
            self.on_event(SyncEvent(EventKind.PENDING, obj.uri, "video"))
            if self.video_step is not None:
                retry = stored is not None and stored.status == STATUS_FAILED
                self.video_step.submit(obj, media_id, retry=retry, need_text=wants_text)
            return None
        return Task(obj, kind, stored, need_text=wants_text)

    def _text_only(
        self, obj: SourceObject, kind: str, stored: StoredMedia, inline_video: bool
    ) -> Task | None:
        """Labels are current and only the text is missing: read the text alone."""
        if self.options.dry_run:
            if kind == KIND_IMAGE:
                self.report.to_read_text_images += 1
            elif self.video_step is not None and not inline_video:
                self.report.video_ms_to_read_text += self.video_step.estimate_ms(obj)
            self.on_event(SyncEvent(EventKind.PLANNED, obj.uri, f"{kind} text"))
            return None
        if kind == KIND_VIDEO and not inline_video:
            self.report.pending += 1
            self.on_event(SyncEvent(EventKind.PENDING, obj.uri, "video text"))
            if self.video_step is not None:
                self.video_step.submit(obj, stored.id, need_labels=False, need_text=True)
            return None
        return Task(obj, kind, stored, need_labels=False, need_text=True)

    def _confirm_content(
        self, obj: SourceObject, kind: str, stored: StoredMedia | None
    ) -> SourceObject | None:
        """Give a local file its content hash as ETag, hashing only when size or mtime moved.

        Sources whose listing carries no ETag (local folders) offer `content_etag`. A file whose
        size and mtime equal the stored ones keeps the stored hash; any other file is hashed, so
        a touched-but-unchanged file is recognised as unchanged and an edited one as changed.
        """
        hasher = getattr(self.source, "content_etag", None)
        if obj.etag is not None or hasher is None:
            return obj
        if (
            stored is not None
            and stored.status != STATUS_DELETED
            and stored.etag
            and stored.size_bytes == obj.size_bytes
            and stored.last_modified_at == obj.last_modified_at
        ):
            return replace(obj, etag=stored.etag)
        try:
            return replace(obj, etag=hasher(obj))
        except SkippedObjectError as exc:
            self._skip(obj, exc.message)
            return None
        except ObjectError as exc:
            if not self.options.dry_run:
                self.writer.fail(obj, kind, exc)
            return None

    def _is_current_labeller(self, stored: StoredMedia) -> bool:
        """True when the stored labels come from the labeller (and model) this run uses."""
        if stored.labeller is None:
            return True  # labelled before provenance was kept: nothing to compare
        if stored.labeller != self.labeller.name:
            return False
        wanted = self.labeller.model_version
        return wanted is None or stored.model_version == wanted

    def _is_current_text(self, stored: StoredMedia) -> bool:
        """True when the stored text comes from the reader (and model) this run uses."""
        reader = self.text_reader
        if reader is None:
            return True
        if stored.text_reader != reader.name:
            return False
        return reader.model_version is None or stored.text_model_version == reader.model_version

    def _can_do_better(self, stored: StoredMedia) -> bool:
        """A failure that was the labeller's limit, and this labeller has no such limit."""
        return stored.error_code == VIDEO_NEEDS_S3 and self.labeller.labels_videos

    def _labels_videos_inline(self) -> bool:
        """Videos are labelled in the pool (local labeller, or a folder that cannot use S3 jobs)."""
        return self.labeller.labels_videos or self.source.scheme != "s3"

    def _plan_video(self, obj: SourceObject) -> None:
        self.report.to_label_videos += 1
        if self.video_step is not None:
            estimate = self.video_step.estimate_ms(obj)
            self.report.video_ms_to_label += estimate
            if self.text_reader is not None:
                self.report.video_ms_to_read_text += estimate

    def _delete_missing(self, rows: list[StoredMedia]) -> None:
        gone = [row for row in rows if row.status != STATUS_DELETED]
        if not gone:
            return
        if self.options.dry_run:
            self.report.deleted += len(gone)
            return
        for row in gone:
            with self.sessions.begin() as session:
                self.report.deleted += mark_deleted(session, [row.id])
            self.on_event(
                SyncEvent(
                    EventKind.DELETED, format_uri(self.source.scheme, self.source.bucket, row.key)
                )
            )

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
                self._skip(skipped.obj, error.message)
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
        self._skip(task.obj, "handled by another process")
        return False

    def _renew_claims_if_due(self) -> None:
        if time.monotonic() - self._claims_renewed_at < self.claim_lease_s / 3:
            return
        self._claims_renewed_at = time.monotonic()
        with self.sessions.begin() as session:
            claims.renew_claims(session, owner=self.claim_owner, lease_s=self.claim_lease_s)

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
            task = self._diff(obj, stored)
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
