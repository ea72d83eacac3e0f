"""The sync pipeline: list -> diff -> label -> store, one committed transaction per object.

The main thread lists, diffs against the catalogue page by page and writes every result; a
thread pool runs the labelling calls. An interruption loses only the objects in flight.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from catalog import claims, store
from catalog import media as media_rules
from catalog.aws import (
    AWSClients,
)
from catalog.errors import CatalogError, ObjectError, UsageError
from catalog.imaging import prepare_image
from catalog.labelling import ImageInput, ImageLabeller, LabelResult
from catalog.labelling.rekognition_image import LABELLER_NAME as REKOGNITION
from catalog.labelling.rekognition_image import RekognitionImageLabeller
from catalog.models import KIND_IMAGE, KIND_VIDEO
from catalog.pricing import estimate_cost
from catalog.ratelimit import RateLimiter
from catalog.sources import Source, SourceObject
from catalog.sources.s3 import S3Source
from catalog.store import StoredMedia
from catalog.uris import MediaURI

DEFAULT_CONCURRENCY = 16
DEFAULT_TPS = 50.0  # Rekognition's default DetectLabels quota
LOCAL = "local"
LABELLERS = (REKOGNITION, LOCAL)
# Failures that belong to the labeller, not the object: a labeller that can do better retries them.
VIDEO_NEEDS_S3 = "VideoNeedsS3"
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


@dataclass(frozen=True)
class SyncEvent:
    """Something the pipeline reports as it goes (for progress displays and logs)."""

    kind: str  # listed | labelled | reused | unchanged | skipped | failed | deleted | pending | log
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
    deleted: int = 0
    pending: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    to_label_images: int = 0
    to_label_videos: int = 0
    video_ms_to_label: int = 0
    video_jobs_started: int = 0
    video_jobs_resumed: int = 0
    estimated_cost_usd: float = 0.0
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


EventHandler = Callable[[SyncEvent], None]
VideoHandler = Callable[..., None]


def _no_events(_event: SyncEvent) -> None:
    return None


@dataclass
class _Task:
    obj: SourceObject
    kind: str
    stored: StoredMedia | None


@dataclass
class _Outcome:
    task: _Task
    result: LabelResult | None = None
    error: ObjectError | None = None


class SyncPipeline:
    """One sync of one source into one catalogue."""

    def __init__(
        self,
        source: Source,
        labeller: ImageLabeller,
        sessions: sessionmaker[Session],
        options: SyncOptions,
        on_event: EventHandler = _no_events,
        video_step: Any = None,
    ) -> None:
        self.source = source
        self.labeller = labeller
        self.sessions = sessions
        self.options = options
        # Video jobs report from their own thread: events reach the handler one at a time.
        self.on_event = _serialised(on_event) if video_step is not None else on_event
        self.video_step = video_step
        self.report = SyncReport(source=_root_uri(source), dry_run=options.dry_run)
        # (etag, size) of content being labelled now -> objects waiting to reuse its result.
        self._content_in_flight: dict[tuple[str, int], list[_Task]] = {}
        # Work claims shared with other processes on the same catalogue (see catalog.claims).
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
                self.report.run_id = store.start_sync_run(
                    session, self.report.source, self.labeller.name
                ).id
        pool = ThreadPoolExecutor(
            max_workers=max(1, self.options.concurrency), thread_name_prefix="label"
        )
        in_flight: dict[Future[_Outcome], _Task] = {}
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
                in_flight[pool.submit(self._label, task)] = task
                self._collect(in_flight, block=False)
            while in_flight:
                self._collect(in_flight, block=True)
            if self.video_step is not None and not self.options.dry_run:
                self.video_step(self)
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
                self.video_step.close(self)
            self.report.elapsed_s = time.monotonic() - started
            if self.options.dry_run and self.labeller.name == REKOGNITION:
                self.report.estimated_cost_usd = estimate_cost(
                    images=self.report.to_label_images, video_ms=self.report.video_ms_to_label
                )
            elif self.report.run_id is not None:
                self._release_claims()
                with self.sessions.begin() as session:
                    store.finish_sync_run(session, self.report.run_id, status, self.report.counts())
        return self.report

    # -- listing and diffing -----------------------------------------------------------------

    def _iter_tasks(self) -> Iterator[_Task]:
        prefix = self.source.prefix
        after: str | None = None
        for page in self.source.iter_pages():
            if not page:
                continue
            upto = page[-1].key
            with self.sessions() as session:
                stored = store.load_key_range(
                    session,
                    source=self.source.scheme,
                    bucket=self.source.bucket,
                    after=after,
                    upto=upto,
                    prefix=prefix,
                )
            by_key = {row.key: row for row in stored}
            self.report.listed += len(page)
            self.on_event(SyncEvent("listed", count=len(page)))
            for obj in page:
                task = self._diff(obj, by_key.pop(obj.key, None))
                if task is not None:
                    yield task
            self._delete_missing(list(by_key.values()))
            after = upto
        with self.sessions() as session:
            rest = store.load_key_range(
                session,
                source=self.source.scheme,
                bucket=self.source.bucket,
                after=after,
                upto=None,
                prefix=prefix,
            )
        self._delete_missing(rest)

    def _skip(self, obj: SourceObject, reason: str) -> None:
        self.report.skipped[reason] += 1
        self.on_event(SyncEvent("skipped", obj.uri, reason))

    def _diff(self, obj: SourceObject, stored: StoredMedia | None) -> _Task | None:
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
            and stored.status != store.STATUS_DELETED
            and stored.etag == obj.etag
            and stored.size_bytes == obj.size_bytes
        )
        inline_video = kind == KIND_VIDEO and self._labels_videos_inline()
        if same and stored is not None:
            if (stored.status == store.STATUS_LABELLED and self._is_current_labeller(stored)) or (
                stored.status == store.STATUS_FAILED
                and not self.options.retry_failed
                and not self._can_do_better(stored)
            ):
                self.report.unchanged += 1
                self.on_event(SyncEvent("unchanged", obj.uri))
                if stored.last_modified_at != obj.last_modified_at and not self.options.dry_run:
                    with self.sessions.begin() as session:
                        store.touch_media(session, stored.id, obj.last_modified_at)
                return None
            if stored.status == store.STATUS_PENDING and kind == KIND_VIDEO and not inline_video:
                if self.options.dry_run:
                    self._plan_video(obj)
                    return None
                # Its job (if one started) is resumed, not started again.
                self.report.pending += 1
                self.on_event(SyncEvent("pending", obj.uri, "video"))
                if self.video_step is not None:
                    self.video_step.submit(self, obj, stored.id)
                return None
        if self.options.dry_run:
            if kind == KIND_IMAGE:
                self.report.to_label_images += 1
            else:
                self._plan_video(obj)
            self.on_event(SyncEvent("planned", obj.uri, kind))
            return None
        if kind == KIND_VIDEO and not inline_video:
            with self.sessions.begin() as session:
                media_id = store.record_pending(session, obj, KIND_VIDEO).id
            self.report.pending += 1
            self.on_event(SyncEvent("pending", obj.uri, "video"))
            if self.video_step is not None:
                retry = stored is not None and stored.status == store.STATUS_FAILED
                self.video_step.submit(self, obj, media_id, retry=retry)
            return None
        return _Task(obj, kind, stored)

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
            and stored.status != store.STATUS_DELETED
            and stored.etag
            and stored.size_bytes == obj.size_bytes
            and stored.last_modified_at == obj.last_modified_at
        ):
            return replace(obj, etag=stored.etag)
        try:
            return replace(obj, etag=hasher(obj))
        except ObjectError as exc:
            if not self.options.dry_run:
                self.record_failure(obj, kind, exc)
            return None

    def _is_current_labeller(self, stored: StoredMedia) -> bool:
        """True when the stored labels come from the labeller (and model) this run uses."""
        if stored.labeller is None:
            return True  # labelled before provenance was kept: nothing to compare
        if stored.labeller != self.labeller.name:
            return False
        wanted = getattr(self.labeller, "model_version", None)
        return wanted is None or stored.model_version == wanted

    def _can_do_better(self, stored: StoredMedia) -> bool:
        """A failure that was the labeller's limit, and this labeller has no such limit."""
        return stored.error_code == VIDEO_NEEDS_S3 and bool(
            getattr(self.labeller, "labels_videos", False)
        )

    def _labels_videos_inline(self) -> bool:
        """Videos are labelled in the pool (local labeller, or a folder that cannot use S3 jobs)."""
        return bool(getattr(self.labeller, "labels_videos", False)) or self.source.scheme != "s3"

    def _plan_video(self, obj: SourceObject) -> None:
        self.report.to_label_videos += 1
        if self.video_step is not None:
            self.report.video_ms_to_label += self.video_step.estimate_ms(obj)

    def _delete_missing(self, rows: list[StoredMedia]) -> None:
        gone = [row for row in rows if row.status != store.STATUS_DELETED]
        if not gone:
            return
        if self.options.dry_run:
            self.report.deleted += len(gone)
            return
        for row in gone:
            with self.sessions.begin() as session:
                self.report.deleted += store.mark_deleted(session, [row.id])
            self.on_event(SyncEvent("deleted", _uri_of(self.source, row.key)))

    # -- reuse ---------------------------------------------------------------------------------

    def _content_key(self, obj: SourceObject) -> tuple[str, int] | None:
        if not self.options.reuse or obj.is_multipart_etag or not obj.etag:
            return None
        return (obj.etag, obj.size_bytes)

    def _wait_for_same_content(self, task: _Task) -> bool:
        """Queue the task behind an in-flight labelling of the same content, or try the catalogue."""
        content = self._content_key(task.obj)
        if content is None:
            return False
        waiting = self._content_in_flight.get(content)
        if waiting is not None:
            waiting.append(task)
            return True
        if self._reuse_stored(task, content):
            return True
        self._content_in_flight[content] = []
        return False

    def _reuse_stored(self, task: _Task, content: tuple[str, int]) -> bool:
        with self.sessions.begin() as session:
            source_id = store.find_reusable(
                session,
                etag=content[0],
                size_bytes=content[1],
                min_confidence=self.options.min_confidence,
                labeller=self.labeller.name,
                kind=task.kind,
                exclude_media_id=task.stored.id if task.stored else None,
                model_version=getattr(self.labeller, "model_version", None),
            )
            if source_id is None:
                return False
            result = store.load_result(session, source_id, self.options.min_confidence)
            store.store_result(
                session,
                task.obj,
                task.kind,
                result,
                sync_run_id=self.report.run_id,
                reused_from_media_id=source_id,
            )
        self.report.reused += 1
        self.on_event(SyncEvent("reused", task.obj.uri))
        return True

    # -- labelling (worker threads) -----------------------------------------------------------

    def _label(self, task: _Task) -> _Outcome:
        obj = task.obj
        try:
            if obj.size_bytes == 0:
                raise ObjectError("EmptyObject", "the object is empty (0 bytes)")
            if task.kind == KIND_VIDEO:
                return _Outcome(task, result=self._label_video(obj))
            if getattr(self.labeller, "reads_original_bytes", False):
                image = ImageInput(data=self.source.read_bytes(obj))
            elif obj.source == "s3" and media_rules.is_sendable_by_reference(
                obj.key, obj.size_bytes
            ):
                image = ImageInput(bucket=obj.bucket, key=obj.key, version_id=obj.version_id)
            else:
                prepared = prepare_image(self.source.read_bytes(obj))
                image = ImageInput(data=prepared.data, width=prepared.width, height=prepared.height)
            return _Outcome(task, result=self.labeller.label_image(image))
        except ObjectError as exc:
            return _Outcome(task, error=exc)
        except CatalogError:
            raise  # whole-run errors (credentials, permissions) end the run
        except Exception as exc:  # a per-object problem nobody foresaw is still data
            return _Outcome(task, error=ObjectError(type(exc).__name__, str(exc) or repr(exc)))

    def _label_video(self, obj: SourceObject) -> LabelResult:
        label_video = getattr(self.labeller, "label_video", None)
        if label_video is None:
            raise ObjectError(
                VIDEO_NEEDS_S3,
                "Rekognition labels stored videos only from S3; use --labeller local for videos "
                "in a folder, or sync them from an S3 prefix",
            )
        media: str | bytes = obj.key if obj.source == "file" else self.source.read_bytes(obj)
        result: LabelResult = label_video(media)
        return result

    # -- storing (main thread) ---------------------------------------------------------------

    def _collect(self, in_flight: dict[Future[_Outcome], _Task], *, block: bool) -> None:
        self._renew_claims_if_due()
        if not in_flight:
            return
        done, _ = wait(list(in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            del in_flight[future]
            self._store(future.result())

    def _store(self, outcome: _Outcome) -> None:
        task = outcome.task
        content = self._content_key(task.obj)
        waiting = self._content_in_flight.pop(content, []) if content else []
        if outcome.result is not None:
            with self.sessions.begin() as session:
                media = store.store_result(
                    session, task.obj, task.kind, outcome.result, sync_run_id=self.report.run_id
                )
                store.add_billing(session, self.report.run_id, images=outcome.result.billed_images)
                media_id = media.id
            self.report.labelled += 1
            self.on_event(SyncEvent("labelled", task.obj.uri))
            for other in waiting:
                with self.sessions.begin() as session:
                    store.store_result(
                        session,
                        other.obj,
                        other.kind,
                        outcome.result,
                        sync_run_id=self.report.run_id,
                        reused_from_media_id=media_id,
                    )
                self.report.reused += 1
                self.on_event(SyncEvent("reused", other.obj.uri))
            return
        error = outcome.error or ObjectError("Unknown", "no result")
        for failed in (task, *waiting):
            self.record_failure(failed.obj, failed.kind, error)

    # -- claims shared with other processes -------------------------------------------------

    def _claim(self, task: _Task) -> bool:
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
                row = store.get_media(session, obj.source, obj.bucket, obj.key)
                stored = store.stored_media(row) if row is not None else None
            task = self._diff(obj, stored)
            if task is None:
                return True
            if not self._claim(task):
                return False
            content = self._content_key(task.obj)
            if content is not None and self._reuse_stored(task, content):
                return True
        outcome = self._label(task)
        with self._step_lock:
            self._store(outcome)
        return True

    def record_failure(self, obj: SourceObject, kind: str, error: ObjectError) -> None:
        """Store a per-object failure and report it."""
        with self.sessions.begin() as session:
            store.store_failure(session, obj, kind, error.code, error.message)
        self.report.failed += 1
        self.report.failures.append(FailureRecord(obj.uri, kind, error.code, error.message))
        self.on_event(SyncEvent("failed", obj.uri, f"{error.code}: {error.message}"))


def _serialised(handler: EventHandler) -> EventHandler:
    lock = threading.Lock()

    def emit(event: SyncEvent) -> None:
        with lock:
            handler(event)

    return emit


def _root_uri(source: Source) -> str:
    if source.scheme == "file":
        return f"file://{source.prefix}"
    return f"s3://{source.bucket}/{source.prefix}"


def _uri_of(source: Source, key: str) -> str:
    if source.scheme == "file":
        return f"file://{key}"
    return f"s3://{source.bucket}/{key}"


def run_sync(
    uri: MediaURI,
    *,
    sessions: sessionmaker[Session],
    clients: AWSClients | None,
    options: SyncOptions,
    tps: float | None = DEFAULT_TPS,
    on_event: EventHandler = _no_events,
    labeller: str | None = None,
    model_path: str | Path | None = None,
    classes_path: str | Path | None = None,
) -> SyncReport:
    """Sync one S3 prefix or local folder into the catalogue and return what happened.

    The labeller defaults to Rekognition for S3 and to the local (OpenCV) labeller for folders;
    a folder labelled by Rekognition sends each image's bytes.
    """
    choice = labeller or (REKOGNITION if uri.is_s3 else LOCAL)
    if choice not in LABELLERS:
        raise UsageError(f"unknown labeller '{choice}'; use one of: {', '.join(LABELLERS)}")
    if (model_path is not None or classes_path is not None) and choice != LOCAL:
        raise UsageError("--model and --classes belong to the local labeller; add --labeller local")
    source: Source
    if uri.is_s3:
        if clients is None:
            raise UsageError("an S3 sync needs AWS clients")
        source = S3Source(clients.s3, uri.bucket, uri.key)
    else:
        from catalog.sources.local import LocalSource

        source = LocalSource(uri.key)
    chosen: ImageLabeller
    if choice == REKOGNITION:
        if clients is None:
            raise UsageError("labelling with Rekognition needs AWS clients")
        chosen = RekognitionImageLabeller(
            clients.rekognition,
            min_confidence=options.min_confidence,
            max_labels=options.max_labels,
            limiter=RateLimiter(tps),
        )
    else:
        from catalog.labelling.local import LocalLabeller

        chosen = LocalLabeller(
            min_confidence=options.min_confidence,
            max_labels=options.max_labels,
            model_path=model_path,
            classes_path=classes_path,
        )
        # CPU-bound: more threads than cores only adds memory.
        options = replace(options, concurrency=min(options.concurrency, os.cpu_count() or 1))
    from catalog.video_phase import make_video_phase

    video_step = (
        make_video_phase(clients, options)
        if options.videos and uri.is_s3 and choice == REKOGNITION and clients is not None
        else None
    )
    return SyncPipeline(source, chosen, sessions, options, on_event, video_step=video_step).run()
