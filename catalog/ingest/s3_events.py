"""S3 event notifications: parse them (SQS, SNS, Lambda shapes) and apply them to the catalogue.

Parsing accepts an S3 notification (`Records[]`), the same wrapped in an SNS envelope (`Type:
Notification`, the S3 JSON in `Message`), and skips `s3:TestEvent`. Keys arrive form-encoded
(`+` for spaces, `%2F` from some producers) and are decoded with `unquote_plus`.

Applying an event goes through the sync pipeline's per-object step (`SyncPipeline.
process_object`), so a queue worker or a Lambda labels exactly as `catalog sync` does. The object
is looked up with HeadObject first: events may arrive late, twice or out of order, and what is
labelled is what the bucket holds now. A stored sequencer drops events older than the last one
applied to the key. An optional scope (buckets, key prefixes) drops events for anything else.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import MalformedEventError, ObjectError
from catalog.ingest.pipeline import SyncPipeline
from catalog.ingest.types import EventKind, SyncEvent
from catalog.labelling import media as media_rules
from catalog.sources import SourceObject
from catalog.sources.s3 import S3Source
from catalog.store import claims
from catalog.store.media import is_stale_sequencer, mark_deleted, record_sequencer
from catalog.store.reads import get_media
from catalog.store.schema import STATUS_DELETED, STATUS_LABELLED
from catalog.uris import format_uri

log = logging.getLogger(__name__)

CREATED = "created"
REMOVED = "removed"


@dataclass(frozen=True)
class ObjectEvent:
    """One S3 object event: an object created (or overwritten) or removed."""

    action: str  # CREATED | REMOVED
    bucket: str
    key: str
    name: str = ""  # S3's eventName, e.g. ObjectCreated:Put
    size_bytes: int | None = None
    etag: str | None = None
    sequencer: str | None = None

    @property
    def uri(self) -> str:
        """The object's s3:// URI."""
        return format_uri("s3", self.bucket, self.key)


@dataclass(frozen=True)
class Scope:
    """Which objects events may touch: these buckets and key prefixes (empty: any)."""

    buckets: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def allows(self, bucket: str, key: str) -> bool:
        """True when the object is in one of the buckets and under one of the prefixes."""
        if self.buckets and bucket not in self.buckets:
            return False
        return not self.prefixes or key.startswith(self.prefixes)


def load_json_object(body: str | Mapping[str, Any]) -> Mapping[str, Any]:
    """A message body as a JSON object; MalformedEventError when it is not one."""
    data: Any = body
    if isinstance(body, str):
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise MalformedEventError(f"not JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise MalformedEventError("not a JSON object")
    return data


def parse_message(body: str | Mapping[str, Any]) -> list[ObjectEvent]:
    """The object events in one SQS message body ([] for a test event or other event types).

    Raises MalformedEventError when the body is not an S3 notification at all.
    """
    data = load_json_object(body)
    if data.get("Type") == "Notification" and "Message" in data:  # SNS envelope
        return parse_message(str(data["Message"]))
    if data.get("Event") == "s3:TestEvent":
        return []
    if "Records" not in data:
        raise MalformedEventError("no Records: not an S3 event notification")
    return parse_records(data["Records"])


def parse_records(records: Any) -> list[ObjectEvent]:
    """ObjectCreated/ObjectRemoved events from a `Records` list; other event types are skipped."""
    if not isinstance(records, list):
        raise MalformedEventError("Records is not a list")
    events: list[ObjectEvent] = []
    for record in records:
        if not isinstance(record, Mapping):
            raise MalformedEventError("a record is not a JSON object")
        name = str(record.get("eventName") or "")
        if name.startswith("s3:"):
            name = name[3:]
        if name.startswith("ObjectCreated:"):
            action = CREATED
        elif name.startswith("ObjectRemoved:"):
            action = REMOVED
        else:
            continue
        try:
            s3 = record["s3"]
            bucket = str(s3["bucket"]["name"])
            obj = s3["object"]
            key = unquote_plus(str(obj["key"]))
            size = obj.get("size")
            events.append(
                ObjectEvent(
                    action=action,
                    bucket=bucket,
                    key=key,
                    name=name,
                    size_bytes=int(size) if size is not None else None,
                    etag=str(obj["eTag"]).strip('"') if obj.get("eTag") else None,
                    sequencer=str(obj["sequencer"]) if obj.get("sequencer") else None,
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedEventError(
                f"an {name} record lacks a valid s3.bucket.name/object.key/size"
            ) from exc
    return events


PipelineFactory = Callable[[S3Source], SyncPipeline]


class EventApplier:
    """Applies object events to one catalogue, with one sync pipeline per bucket."""

    def __init__(
        self,
        s3_client: Any,
        sessions: sessionmaker[Session],
        make_pipeline: PipelineFactory,
        scope: Scope | None = None,
    ) -> None:
        self.s3_client = s3_client
        self.sessions = sessions
        self.make_pipeline = make_pipeline
        self.scope = scope or Scope()
        self.pipelines: dict[str, SyncPipeline] = {}
        self.dropped = 0  # events outside the scope
        self.unreadable = 0  # events whose object could not be looked at (403 and the like)
        self._lock = threading.Lock()

    def pipeline(self, bucket: str) -> SyncPipeline:
        """The pipeline (and its source) for one bucket, built on first use (thread-safe)."""
        with self._lock:
            if bucket not in self.pipelines:
                self.pipelines[bucket] = self.make_pipeline(S3Source(self.s3_client, bucket, ""))
            return self.pipelines[bucket]

    def apply(self, event: ObjectEvent) -> bool:
        """Apply one event; True when it is settled (committed or not needed), False to retry.

        False means another process holds the object's claim right now: try again later.
        Per-object failures are recorded like sync's: an object HeadObject may not read (403)
        is recorded failed and its event left to come back (and to the redrive policy).
        Whole-run errors (credentials) raise.
        """
        if not self.scope.allows(event.bucket, event.key):
            with self._lock:
                self.dropped += 1
            log.warning("dropped %s %r: outside the --bucket/--prefix scope", event.name, event.uri)
            return True
        pipeline = self.pipeline(event.bucket)
        source: S3Source = pipeline.source  # type: ignore[assignment]
        with self.sessions() as session:
            row = get_media(session, "s3", event.bucket, event.key)
            if row is not None and is_stale_sequencer(row.sequencer, event.sequencer):
                pipeline.on_event(
                    SyncEvent(EventKind.LOG, event.uri, f"stale {event.name} dropped")
                )
                return True
        try:
            current = source.head(event.key)
        except ObjectError as exc:
            self._unreadable(pipeline, event, exc)
            return False
        if event.action == REMOVED or current is None:
            if current is not None:
                return True  # written again since: its ObjectCreated event labels it
            return self._remove(pipeline, event)
        if not pipeline.process_object(current):
            return False
        self._record_sequencer(event)
        return True

    def _unreadable(self, pipeline: SyncPipeline, event: ObjectEvent, error: ObjectError) -> None:
        with self._lock:
            self.unreadable += 1
        kind = media_rules.kind_of(event.key)
        with self.sessions() as session:
            row = get_media(session, "s3", event.bucket, event.key)
            labelled = row is not None and row.status == STATUS_LABELLED
        if kind is None or event.action == REMOVED or labelled:
            # Nothing to record (or labels to keep): say it, and let the event come back.
            pipeline.on_event(SyncEvent(EventKind.LOG, event.uri, f"{error.code}: {error.message}"))
            return
        obj = SourceObject("s3", event.bucket, event.key, event.size_bytes or 0, event.etag)
        pipeline.writer.fail(obj, kind, error)

    def _remove(self, pipeline: SyncPipeline, event: ObjectEvent) -> bool:
        with self.sessions.begin() as session:
            row = get_media(session, "s3", event.bucket, event.key, for_update=True)
            if row is None:
                return True
            if claims.is_claimed_by_other(session, row.id, pipeline.claim_owner):
                return False
            removed = row.status != STATUS_DELETED and mark_deleted(session, [row.id]) > 0
            record_sequencer(session, "s3", event.bucket, event.key, event.sequencer)
        if removed:
            pipeline.report.deleted += 1
            pipeline.on_event(SyncEvent(EventKind.DELETED, event.uri))
        return True

    def _record_sequencer(self, event: ObjectEvent) -> None:
        if event.sequencer:
            with self.sessions.begin() as session:
                record_sequencer(session, "s3", event.bucket, event.key, event.sequencer)

    def apply_all(self, events: Iterable[ObjectEvent]) -> bool:
        """Apply every event in order; True only when all are settled."""
        settled = True
        for event in events:
            settled = self.apply(event) and settled
        return settled
