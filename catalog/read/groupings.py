"""One label's breakdowns grouped in SQL: over a subset of media (a search's ids), or at
prefix depths the bitmap index does not hold (catalog.read.breakdowns answers from the index
first and comes here otherwise)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, aliased

from catalog.errors import StaleIndexError
from catalog.read.subsets import DEFAULT_RELATED, top_shared_labels
from catalog.store.bitmaps import open_index
from catalog.store.schema import SOURCE_FILE, Detection, Label, LabelHistogram, Media

HISTOGRAM_BINS = 10


@dataclass(frozen=True)
class Cooccurrence:
    """Labels sharing media with one label, by how many media they share (exact)."""

    labels: list[tuple[str, int]]


def cooccurring_labels(
    session: Session,
    label_id: int,
    limit: int = DEFAULT_RELATED,
    subset: Select[Any] | None = None,
) -> Cooccurrence:
    """Other labels on the media carrying `label_id` (within `subset`), most shared first.

    From the bitmap index when it can answer (intersection counts, largest labels first, see
    catalog.read.subsets.top_shared_labels), otherwise grouped in SQL over the label's media.
    """
    index = open_index(session) if subset is None else None
    if index is not None:
        try:
            carrying = index.bitmap(f"label:{label_id}")
            shared = top_shared_labels(index.db, index, carrying, limit, exclude=[label_id])
            return Cooccurrence([(name, n) for _, name, n in shared])
        except StaleIndexError:
            pass
    mine = aliased(Detection)
    other = aliased(Detection)
    conditions: list[Any] = [mine.label_id == label_id]
    if subset is not None:
        conditions.append(mine.media_id.in_(subset_ids(subset)))
    # Group by id first (at most one row per label), then name the groups: joining names
    # before grouping would look a name up for every co-occurrence.
    pairs = select(mine.media_id).where(*conditions).subquery()
    grouped = (
        select(other.label_id, func.count().label("shared"))
        .join(pairs, other.media_id == pairs.c.media_id)
        .where(other.label_id != label_id)
        .group_by(other.label_id)
        .subquery()
    )
    stmt = (
        select(Label.name, grouped.c.shared)
        .join(Label, Label.id == grouped.c.label_id)
        .order_by(grouped.c.shared.desc(), Label.name)
        .limit(limit)
    )
    return Cooccurrence([(name, int(count)) for name, count in session.execute(stmt)])


def _month_expr(session: Session) -> Any:
    """'YYYY-MM' of LastModified, in UTC, computed by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Media.last_modified_at), "YYYY-MM")
    return func.strftime("%Y-%m", Media.last_modified_at)


def prefix_expr(session: Session, depth: int) -> Any:
    """The first key segment for S3 keys (depth 1), else the whole key, for Python to cut with
    catalog.read.folders.media_prefix."""
    if depth != 1:
        return Media.key
    slash = (
        func.strpos(Media.key, "/")
        if session.get_bind().dialect.name == "postgresql"
        else func.instr(Media.key, "/")
    )
    return case((Media.source == SOURCE_FILE, Media.key), else_=func.substr(Media.key, 1, slash))


def label_media_groups(
    session: Session, label_id: int, subset: Select[Any] | None, depth: int
) -> list[tuple[str, str, str | None, int]]:
    """(source, prefix-or-key, month, media) groups of the media carrying a label."""
    prefix = prefix_expr(session, depth).label("prefix")
    month = _month_expr(session).label("month")
    stmt = (
        select(Media.source, prefix, month, func.count())
        .join(Detection, Detection.media_id == Media.id)
        .where(Detection.label_id == label_id)
        .group_by(Media.source, prefix, month)
    )
    if subset is not None:
        stmt = stmt.where(Media.id.in_(subset_ids(subset)))
    return [(source, key, m, int(n)) for source, key, m, n in session.execute(stmt)]


def _label_months(
    session: Session, label_id: int, subset: Select[Any] | None
) -> list[tuple[str, int]]:
    month = _month_expr(session).label("month")
    stmt = (
        select(month, func.count())
        .join(Detection, Detection.media_id == Media.id)
        .where(Detection.label_id == label_id)
        .group_by(month)
    )
    if subset is not None:
        stmt = stmt.where(Media.id.in_(subset_ids(subset)))
    counts: Counter[str] = Counter()
    for m, n in session.execute(stmt):
        counts[m or "unknown"] += int(n)
    return sorted(counts.items())


def labels_by_month(
    session: Session, labels: Mapping[int, str], subset: Select[Any] | None = None
) -> dict[str, list[tuple[str, int]]]:
    """For each label (id -> name), media per month of LastModified (oldest first)."""
    return {name: _label_months(session, label_id, subset) for label_id, name in labels.items()}


def subset_ids(subset: Select[Any]) -> Any:
    """A single-column subquery of the selected media ids."""
    sub = subset.subquery()
    return select(next(iter(sub.c)))


def label_histogram(
    session: Session, label_id: int, subset: Select[Any] | None = None
) -> list[int]:
    """Media per 10-point confidence bin (ten counts) for one label."""
    counts = [0] * HISTOGRAM_BINS
    if subset is None:
        rows = session.execute(
            select(LabelHistogram.bin, LabelHistogram.media_count).where(
                LabelHistogram.label_id == label_id
            )
        ).all()
        for bin_index, count in rows:
            counts[bin_index] += count
        return counts
    bin_expr = (Detection.confidence_x100 // 1000).label("bin")
    for bin_index, count in session.execute(
        select(bin_expr, func.count())
        .where(Detection.label_id == label_id, Detection.media_id.in_(subset_ids(subset)))
        .group_by(bin_expr)
    ):
        counts[min(int(bin_index), HISTOGRAM_BINS - 1)] += int(count)  # 100% joins bin 9
    return counts
