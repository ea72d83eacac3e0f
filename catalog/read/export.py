"""Streaming export of every (media, label, confidence, instances) row, in constant memory.

Media ids are read through one streaming cursor; each batch of ids then fetches its labels and
boxes with two indexed queries, so memory stays flat however large the catalogue is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from catalog.read.stats import matching_media
from catalog.store.schema import STATUS_DELETED, Detection, Label, Media
from catalog.store.schema import Instance as InstanceRow
from catalog.uris import format_uri

BATCH_SIZE = 1000


@dataclass(frozen=True)
class ExportRow:
    """One label on one media item, with its boxes (label "" for an item without labels)."""

    uri: str
    bucket: str
    key: str
    kind: str
    last_modified_at: datetime | None
    label: str
    confidence: float | None  # percent (None for an item without labels)
    instance_count: int
    instances: list[dict[str, Any]]  # {"left","top","width","height","confidence"[,"timestamp_ms"]}

    def to_dict(self) -> dict[str, Any]:
        """One JSON Lines record (CSV writes `instances` as a JSON array in one cell)."""
        return {
            "uri": self.uri,
            "bucket": self.bucket,
            "key": self.key,
            "kind": self.kind,
            "last_modified": self.last_modified_at,
            "label": self.label,
            "confidence": self.confidence,
            "instance_count": self.instance_count,
            "instances": self.instances,
        }


def _id_stream(session: Session, subset: Select[Any] | None) -> Iterator[int]:
    if subset is None:
        stmt: Any = select(Media.id).where(Media.status != STATUS_DELETED).order_by(Media.id)
    else:
        sub = subset.subquery()
        column = next(iter(sub.c))
        stmt = select(column).order_by(column)
    yield from session.execute(stmt.execution_options(yield_per=BATCH_SIZE)).scalars()


def _batches(ids: Iterator[int], size: int) -> Iterator[list[int]]:
    batch: list[int] = []
    for media_id in ids:
        batch.append(media_id)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _rows_for(session: Session, ids: list[int]) -> Iterator[ExportRow]:
    boxes: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for inst in session.execute(
        select(InstanceRow)
        .where(InstanceRow.media_id.in_(ids))
        .order_by(InstanceRow.media_id, InstanceRow.label_id, InstanceRow.idx)
    ).scalars():
        box: dict[str, Any] = {
            "left": inst.left,
            "top": inst.top,
            "width": inst.width,
            "height": inst.height,
            "confidence": inst.confidence_x100 / 100,
        }
        if inst.timestamp_ms is not None:
            box["timestamp_ms"] = inst.timestamp_ms
        boxes[(inst.media_id, inst.label_id)].append(box)
    rows = session.execute(
        select(
            Media.id,
            Media.source,
            Media.bucket,
            Media.key,
            Media.kind,
            Media.last_modified_at,
            Detection.label_id,
            Label.name,
            Detection.confidence_x100,
            Detection.instance_count,
        )
        .outerjoin(Detection, Detection.media_id == Media.id)
        .outerjoin(Label, Label.id == Detection.label_id)
        .where(Media.id.in_(ids), Media.status != STATUS_DELETED)
        .order_by(Media.id, Detection.confidence_x100.desc(), Label.name)
    )
    for row in rows:
        yield ExportRow(
            uri=format_uri(row.source, row.bucket, row.key),
            bucket=row.bucket,
            key=row.key,
            kind=row.kind,
            last_modified_at=row.last_modified_at,
            label=row.name or "",
            confidence=row.confidence_x100 / 100 if row.confidence_x100 is not None else None,
            instance_count=row.instance_count or 0,
            instances=boxes.get((row.id, row.label_id), []),
        )


def iter_export_rows(
    session: Session,
    *,
    where: str | None = None,
    subset: Select[Any] | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[ExportRow]:
    """Every label of every catalogued (or selected) media item, media in id order, best first;
    an item without labels is one row with an empty label, so the export is the whole catalogue.

    `where` is compiled here, before any row: a malformed query raises QueryError at once.
    """
    if subset is None:
        subset = matching_media(where, session)
    return _iter_rows(session, subset, batch_size)


def _iter_rows(
    session: Session, subset: Select[Any] | None, batch_size: int
) -> Iterator[ExportRow]:
    for ids in _batches(_id_stream(session, subset), batch_size):
        yield from _rows_for(session, ids)
