"""Storing what labelling produced: a result, a reuse of stored labels, or a failure.

One ResultWriter serves a whole sync (images on the main thread, videos on the jobs thread),
a worker or a Lambda invocation. Each call is one committed transaction, so an interruption
loses only what was in flight, and each call counts what it stored and reports it as an event.
A stored result is queued for alert-rule evaluation in that same transaction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import ObjectError
from catalog.ingest.types import (
    EventHandler,
    EventKind,
    FailureRecord,
    SyncEvent,
    SyncOptions,
    no_events,
)
from catalog.labelling import ImageLabeller, LabelResult, TextReader, TextResult
from catalog.sources import SourceObject
from catalog.store.alerts import queue_evaluation
from catalog.store.media import add_billing, store_failure, store_result
from catalog.store.reads import find_reusable, get_media, load_result
from catalog.store.schema import KIND_VIDEO
from catalog.store.text import add_text_billing, store_text
from catalog.store.text_rows import load_text


@dataclass(frozen=True)
class ResultProvenance:
    """What a stored result must have been made with to be copied for new content."""

    labeller: str
    model_version: str | None
    min_confidence: float
    max_labels: int | None
    # With --features text: the reader whose text must come along (None: labels only).
    text_reader: str | None = None
    text_model_version: str | None = None

    @classmethod
    def of(
        cls, labeller: ImageLabeller, options: SyncOptions, text_reader: TextReader | None = None
    ) -> ResultProvenance:
        """The provenance of what `labeller` (and `text_reader`) make under `options`."""
        labels = cls(
            labeller.name, labeller.model_version, options.min_confidence, options.max_labels
        )
        if text_reader is None:
            return labels
        return replace(
            labels, text_reader=text_reader.name, text_model_version=text_reader.model_version
        )


class Tally(Protocol):
    """Where a writer counts what it stored (a SyncReport is one)."""

    labelled: int
    reused: int
    failed: int
    failures: list[FailureRecord]


@dataclass
class WriteCounts:
    """What a writer stored, when no report is given to count into."""

    labelled: int = 0
    reused: int = 0
    failed: int = 0
    failures: list[FailureRecord] = field(default_factory=list)


class ResultWriter:
    """Stores results, reuses and failures for one run, one transaction each (thread-safe)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        provenance: ResultProvenance,
        *,
        run_id: int | None = None,
        on_event: EventHandler = no_events,
        counts: Tally | None = None,
    ) -> None:
        self.sessions = sessions
        self.provenance = provenance
        self.run_id = run_id
        self.on_event = on_event
        self.counts: Tally = counts if counts is not None else WriteCounts()
        self._lock = threading.Lock()

    def store(
        self, obj: SourceObject, kind: str, result: LabelResult, text: TextResult | None = None
    ) -> int:
        """Store a new result, with its text when read (and what both billed); the media id."""
        with self.sessions.begin() as session:
            media = store_result(session, obj, kind, result, sync_run_id=self.run_id, text=text)
            queue_evaluation(session, media.id)
            add_billing(
                session,
                self.run_id,
                images=result.billed_images,
                video_ms=result.billed_video_ms,
            )
            if text is not None:
                add_text_billing(session, self.run_id, text.billed_images, text.billed_video_ms)
            queue_evaluation(session, media.id)  # alerts on text: the item may match now
            media_id = media.id
        with self._lock:
            self.counts.labelled += 1
        self.on_event(SyncEvent(EventKind.LABELLED, obj.uri, "video" if kind == KIND_VIDEO else ""))
        return media_id

    def store_text(self, obj: SourceObject, kind: str, text: TextResult) -> int | None:
        """Add text to an item whose labels are current (they stay as they are); the media id.

        None when the item is no longer stored (deleted meanwhile): nothing is written.
        """
        with self.sessions.begin() as session:
            media = get_media(session, obj.source, obj.bucket, obj.key, for_update=True)
            if media is None:
                return None
            store_text(session, media, text, sync_run_id=self.run_id)
            # As for a labelling result: the claim ends, and the changed attempt count tells
            # other processes that their view of this row is stale (catalog.store.claims).
            media.attempts = (media.attempts or 0) + 1
            media.claimed_by = None
            media.claim_expires_at = None
            add_text_billing(session, self.run_id, text.billed_images, text.billed_video_ms)
            queue_evaluation(session, media.id)  # alerts on text: the item may match now
            media_id = media.id
        with self._lock:
            self.counts.labelled += 1
        self.on_event(SyncEvent(EventKind.LABELLED, obj.uri, "text"))
        return media_id

    def copy(
        self,
        obj: SourceObject,
        kind: str,
        result: LabelResult,
        source_media_id: int,
        text: TextResult | None = None,
    ) -> None:
        """Store another object's result for `obj` (same content, labelled in this run)."""
        with self.sessions.begin() as session:
            self._store_copy(session, obj, kind, result, source_media_id, text)
        self._reused(obj)

    def reuse(self, obj: SourceObject, kind: str, *, exclude_media_id: int | None = None) -> bool:
        """Copy the stored result of identical content made the same way, if there is one."""
        if obj.is_multipart_etag or not obj.etag:
            return False
        wanted = self.provenance
        with self.sessions.begin() as session:
            source_id = find_reusable(
                session,
                etag=obj.etag,
                size_bytes=obj.size_bytes,
                kind=kind,
                labeller=wanted.labeller,
                model_version=wanted.model_version,
                min_confidence=wanted.min_confidence,
                max_labels=wanted.max_labels,
                exclude_media_id=exclude_media_id,
                text_reader=wanted.text_reader,
                text_model_version=wanted.text_model_version,
            )
            if source_id is None:
                return False
            result = load_result(
                session, source_id, wanted.min_confidence, max_labels=wanted.max_labels
            )
            text = load_text(session, source_id) if wanted.text_reader is not None else None
            self._store_copy(session, obj, kind, result, source_id, text)
        self._reused(obj)
        return True

    def fail(self, obj: SourceObject, kind: str, error: ObjectError) -> None:
        """Store a per-object failure."""
        with self.sessions.begin() as session:
            store_failure(session, obj, kind, error.code, error.message)
        with self._lock:
            self.counts.failed += 1
            self.counts.failures.append(FailureRecord(obj.uri, kind, error.code, error.message))
        self.on_event(SyncEvent(EventKind.FAILED, obj.uri, f"{error.code}: {error.message}"))

    def _store_copy(
        self,
        session: Session,
        obj: SourceObject,
        kind: str,
        result: LabelResult,
        source_id: int,
        text: TextResult | None,
    ) -> None:
        media = store_result(
            session,
            obj,
            kind,
            result,
            sync_run_id=self.run_id,
            reused_from_media_id=source_id,
            text=text,
        )
        queue_evaluation(session, media.id)  # alerts: evaluated for this new result

    def _reused(self, obj: SourceObject) -> None:
        with self._lock:
            self.counts.reused += 1
        self.on_event(SyncEvent(EventKind.REUSED, obj.uri))
