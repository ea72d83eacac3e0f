"""Fast bulk write path for large (synthetic or migrated) catalogues: Core executemany inserts.

`store_result` keeps the summary tables exact one object at a time, which is right for sync and
too slow for tens of millions of rows. Here the caller inserts whole batches of rows (ids chosen
by the caller, so no RETURNING round trips), then `rebuild_summaries` recomputes label_stats,
label_histograms and media_totals from what was inserted, and `analyze` refreshes the planner's
statistics. Use it on a new catalogue (or one nobody else writes to while it runs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, case, delete, func, insert, literal, select

from catalog.store.schema import (
    STATUS_LABELLED,
    Detection,
    Instance,
    Label,
    LabelAlias,
    LabelCategory,
    LabelHistogram,
    LabelStat,
    Media,
    MediaTotal,
    VideoMoment,
    VideoSegment,
)
from catalog.store.units import fold

# Column orders of the tuple rows a BulkBatch carries for the large tables.
DETECTION_COLUMNS = ("label_id", "media_id", "confidence_x100", "instance_count", "detection_count")
INSTANCE_COLUMNS = (
    "media_id",
    "label_id",
    "idx",
    "timestamp_ms",
    "confidence_x100",
    "left",
    "top",
    "width",
    "height",
)
MOMENT_COLUMNS = ("media_id", "label_id", "timestamp_ms", "confidence_x100", "instance_count")
SEGMENT_COLUMNS = ("media_id", "label_id", "start_ms", "end_ms", "confidence_x100")


@dataclass
class BulkBatch:
    """Rows for one batch: media as dicts (with their own `id`), the rest as tuples.

    Tuples follow DETECTION_COLUMNS, INSTANCE_COLUMNS, MOMENT_COLUMNS and SEGMENT_COLUMNS; they
    skip SQLAlchemy's per-row dict processing, which dominates at tens of millions of rows.
    """

    media: list[dict[str, Any]] = field(default_factory=list)
    detections: list[tuple[Any, ...]] = field(default_factory=list)
    instances: list[tuple[Any, ...]] = field(default_factory=list)
    moments: list[tuple[Any, ...]] = field(default_factory=list)
    segments: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        """Rows in the batch, over every table."""
        return (
            len(self.media)
            + len(self.detections)
            + len(self.instances)
            + len(self.moments)
            + len(self.segments)
        )


def insert_labels(
    connection: Connection,
    names: Sequence[str],
    aliases: Mapping[str, Sequence[str]] | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, int]:
    """Insert a vocabulary (with aliases and categories); returns name -> label id."""
    existing = dict(connection.execute(select(Label.name, Label.id)).tuples().all())
    missing = [n for n in dict.fromkeys(names) if n not in existing]
    if missing:
        connection.execute(insert(Label), [{"name": n, "name_folded": fold(n)} for n in missing])
        existing = dict(connection.execute(select(Label.name, Label.id)).tuples().all())
    alias_rows = [
        {"label_id": existing[n], "alias": a, "alias_folded": fold(a)}
        for n, items in (aliases or {}).items()
        for a in dict.fromkeys(items)
    ]
    if alias_rows:
        connection.execute(
            insert(LabelAlias).prefix_with("OR IGNORE", dialect="sqlite"), alias_rows
        )
    category_rows = [
        {"label_id": existing[n], "category": c, "category_folded": fold(c)}
        for n, items in (categories or {}).items()
        for c in dict.fromkeys(items)
    ]
    if category_rows:
        connection.execute(
            insert(LabelCategory).prefix_with("OR IGNORE", dialect="sqlite"), category_rows
        )
    return {n: existing[n] for n in names}


def _insert_tuples(connection: Connection, model: Any, columns: Sequence[str], rows: Any) -> None:
    # The statement is SQLAlchemy's own compiled INSERT (parameterised); only the executemany
    # goes straight to the driver, with tuples in `columns` order.
    stmt = insert(model).compile(dialect=connection.dialect, column_keys=list(columns))
    positional = stmt.positiontup or []
    if list(positional) != list(columns):
        order = [list(columns).index(name) for name in positional]
        rows = [tuple(row[k] for k in order) for row in rows]
    connection.exec_driver_sql(str(stmt), rows)


def insert_batch(connection: Connection, batch: BulkBatch) -> None:
    """Insert one batch with executemany, table by table (the caller frames the transaction)."""
    if batch.media:
        connection.execute(insert(Media), batch.media)
    for model, columns, rows in (
        (Detection, DETECTION_COLUMNS, batch.detections),
        (Instance, INSTANCE_COLUMNS, batch.instances),
        (VideoMoment, MOMENT_COLUMNS, batch.moments),
        (VideoSegment, SEGMENT_COLUMNS, batch.segments),
    ):
        if rows:
            _insert_tuples(connection, model, columns, rows)


def bulk_load(connection: Connection, batches: Iterable[BulkBatch]) -> int:
    """Insert every batch, each in its own transaction; returns the rows inserted.

    Pass a connection outside a transaction; summaries are not touched (see rebuild_summaries).
    """
    total = 0
    for batch in batches:
        with connection.begin():
            insert_batch(connection, batch)
        total += batch.row_count
    return total


BULK_TABLES = (Media, Detection, Instance, VideoMoment, VideoSegment)


def drop_secondary_indexes(connection: Connection) -> list[Any]:
    """Drop the bulk tables' secondary indexes (rebuilding them once is faster than upkeep).

    Returns the dropped indexes for `create_indexes`; unique constraints stay in place.
    """
    dropped = []
    for model in BULK_TABLES:
        for index in sorted(model.__table__.indexes, key=lambda i: str(i.name)):  # type: ignore[attr-defined]
            index.drop(connection, checkfirst=True)
            dropped.append(index)
    return dropped


def create_indexes(connection: Connection, indexes: Sequence[Any]) -> None:
    """Recreate indexes dropped by `drop_secondary_indexes`."""
    for index in indexes:
        index.create(connection, checkfirst=True)


def rebuild_summaries(connection: Connection) -> None:
    """Recompute label_stats, label_histograms and media_totals from the stored rows."""
    is_image = case((Media.kind == "image", 1), else_=0)
    is_video = case((Media.kind == "video", 1), else_=0)
    connection.execute(delete(LabelStat))
    connection.execute(delete(LabelHistogram))
    connection.execute(delete(MediaTotal))
    stats = (
        select(
            Detection.label_id,
            func.count(),
            func.sum(is_image),
            func.sum(is_video),
            func.sum(Detection.detection_count),
            func.sum(Detection.confidence_x100),
        )
        .join(Media, Media.id == Detection.media_id)
        .group_by(Detection.label_id)
    )
    connection.execute(
        insert(LabelStat).from_select(
            [
                "label_id",
                "media_count",
                "image_count",
                "video_count",
                "detection_count",
                "confidence_sum_x100",
            ],
            stats,
        )
    )
    bin_: Any = func.min(literal(9), Detection.confidence_x100 // 1000)
    if connection.dialect.name != "sqlite":
        bin_ = func.least(literal(9), Detection.confidence_x100 // 1000)
    hist = select(Detection.label_id, bin_.label("bin"), func.count()).group_by(
        Detection.label_id, bin_
    )
    connection.execute(insert(LabelHistogram).from_select(["label_id", "bin", "media_count"], hist))
    totals = select(
        Media.kind,
        Media.status,
        func.count(),
        func.coalesce(func.sum(Media.size_bytes), 0),
        func.coalesce(func.sum(Media.duration_ms), 0),
    ).group_by(Media.kind, Media.status)
    connection.execute(
        insert(MediaTotal).from_select(
            ["kind", "status", "media_count", "size_bytes", "duration_ms"], totals
        )
    )


def analyze(connection: Connection) -> None:
    """Refresh the query planner's statistics after a bulk load."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA analysis_limit=1000")
    connection.exec_driver_sql("ANALYZE")


__all__ = [
    "STATUS_LABELLED",
    "BulkBatch",
    "analyze",
    "bulk_load",
    "create_indexes",
    "drop_secondary_indexes",
    "insert_batch",
    "insert_labels",
    "rebuild_summaries",
]
