"""One label's breakdowns: co-occurring labels, prefixes and months."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyroaring import BitMap
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, aliased

from catalog.errors import NotFoundError, StaleIndexError, UsageError
from catalog.read.folders import folder_prefix_counts, local_roots, media_prefix
from catalog.read.subsets import confidence_histogram, group_counts, label_counts, top_counts
from catalog.store.bitmaps import BitmapIndex, open_index
from catalog.store.schema import SOURCE_FILE, Detection, Label, LabelHistogram, Media
from catalog.store.units import fold

HISTOGRAM_BINS = 10
DEFAULT_RELATED = 10


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

    From the bitmap index when it can answer (one intersection count per label), otherwise
    grouped in SQL over the label's media.
    """
    index = open_index(session) if subset is None else None
    if index is not None:
        try:
            carrying = index.bitmap(f"label:{label_id}")
            shared = top_counts(session, label_counts(index, carrying, exclude=[label_id]), limit)
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


def _label_media_groups(
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


def label_spread(
    session: Session,
    name: str,
    *,
    subset: Select[Any] | None = None,
    related: int = DEFAULT_RELATED,
    prefix_depth: int = 1,
    selected: BitMap | None = None,
    index: BitmapIndex | None = None,
) -> LabelSpread:
    """One label's histogram, co-occurring labels, prefixes and months.

    The media considered are the label's, within `subset` (a SELECT of ids) or `selected` (the
    same as a bitmap, with the `index` it came from). With the bitmap index every figure is an
    exact intersection count; without it (or for deeper prefixes) they are grouped in SQL.
    """
    if prefix_depth < 1:
        raise UsageError(f"--prefix-depth must be at least 1 (got {prefix_depth})")
    label = find_label(session, name)
    if subset is None and prefix_depth == 1:
        index = index if index is not None else open_index(session)
        if index is not None:
            try:
                return _indexed_spread(session, index, label, selected, related)
            except StaleIndexError:
                pass
    if selected is not None:
        raise StaleIndexError("a bitmap selection needs the index it came from")
    histogram = label_histogram(session, label.id, subset)
    related_labels = cooccurring_labels(session, label.id, related, subset)
    prefixes: Counter[str] = Counter()
    months: Counter[str] = Counter()
    roots = local_roots(session)
    for source, key, month, count in _label_media_groups(session, label.id, subset, prefix_depth):
        prefixes[media_prefix(source, key, prefix_depth, roots)] += count
        months[month or "unknown"] += count
    return LabelSpread(
        name=label.name,
        media=sum(histogram),
        histogram=histogram,
        cooccurring=related_labels.labels,
        by_prefix=sorted(prefixes.items(), key=lambda item: (-item[1], item[0])),
        by_month=sorted(months.items()),
    )


def _indexed_spread(
    session: Session, index: BitmapIndex, label: Label, selected: BitMap | None, related: int
) -> LabelSpread:
    carrying = index.bitmap(f"label:{label.id}")
    if selected is not None:
        carrying &= selected
    histogram = confidence_histogram(index, label.id, carrying)
    shared = top_counts(session, label_counts(index, carrying, exclude=[label.id]), related)
    prefixes = folder_prefix_counts(index, carrying, local_roots(session))
    months = group_counts(index, "month", carrying)
    return LabelSpread(
        name=label.name,
        media=len(carrying),
        histogram=histogram,
        cooccurring=[(other, n) for _, other, n in shared],
        by_prefix=sorted(prefixes.items(), key=lambda item: (-item[1], item[0])),
        by_month=sorted(months.items()),
    )


def labels_by_month(
    session: Session, labels: Mapping[int, str], subset: Select[Any] | None = None
) -> dict[str, list[tuple[str, int]]]:
    """For each label (id -> name), media per month of LastModified (oldest first)."""
    return {name: _label_months(session, label_id, subset) for label_id, name in labels.items()}


@dataclass(frozen=True)
class LabelSpread:
    """One label in depth: confidence histogram, co-occurring labels, prefixes, months."""

    name: str
    media: int
    histogram: list[int]  # media per 10-point bin, bin i holds [10i, 10i+10), 100 in bin 9
    cooccurring: list[tuple[str, int]]  # other labels on the same media, most frequent first
    by_prefix: list[tuple[str, int]]  # first key segment(s) -> media, most first
    by_month: list[tuple[str, int]]  # YYYY-MM of LastModified -> media, oldest first
    # Co-occurrence is exact; kept (always None) for the JSON contract of earlier versions.
    cooccurring_sample: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `label` object of `catalog stats --label NAME --format json`."""
        return {
            "name": self.name,
            "media": self.media,
            "histogram": [
                {"bin": bin_label(i), "from": i * 10, "to": i * 10 + 10, "media": n}
                for i, n in enumerate(self.histogram)
            ],
            "cooccurring": [{"name": n, "media": c} for n, c in self.cooccurring],
            "cooccurring_sample": self.cooccurring_sample,
            "by_prefix": [{"prefix": p, "media": c} for p, c in self.by_prefix],
            "by_month": [{"month": m, "media": c} for m, c in self.by_month],
        }


def bin_label(index: int) -> str:
    """'90-100' for the top bin, '40-50' for bin 4."""
    return f"{index * 10}-{index * 10 + 10}"


def subset_ids(subset: Select[Any]) -> Any:
    """A single-column subquery of the selected media ids."""
    sub = subset.subquery()
    return select(next(iter(sub.c)))


def find_label(session: Session, name: str) -> Label:
    """The label called `name` (case-insensitive, aliases too); NotFoundError otherwise."""
    from catalog.store.schema import LabelAlias

    folded = fold(name)
    label = (
        session.execute(select(Label).where(Label.name == name)).scalar_one_or_none()
        or session.execute(
            select(Label).where(Label.name_folded == folded).order_by(Label.id).limit(1)
        ).scalar_one_or_none()
    )
    if label is None:
        label = session.execute(
            select(Label)
            .join(LabelAlias, LabelAlias.label_id == Label.id)
            .where(LabelAlias.alias_folded == folded)
            .order_by(Label.id)
            .limit(1)
        ).scalar_one_or_none()
    if label is None:
        raise NotFoundError(
            f"no label called '{name}' in the catalogue ('catalog stats' lists the labels)"
        )
    return label


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
