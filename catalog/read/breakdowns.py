"""One label's breakdowns: confidence histogram, co-occurring labels, prefixes and months.

From the bitmap index when it can answer (exact intersection counts, no SQLAlchemy); over a
search's subset or at deeper prefixes, grouped in SQL by catalog.read.groupings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from pyroaring import BitMap

from catalog.errors import NotFoundError, StaleIndexError, UsageError
from catalog.read.folders import folder_prefix_counts, local_roots, media_prefix
from catalog.read.subsets import (
    DEFAULT_RELATED,
    confidence_histogram,
    group_counts,
    top_shared_labels,
)
from catalog.store.bitmaps import BitmapIndex, open_index
from catalog.store.sql import Reader, as_reader
from catalog.store.units import fold

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.orm import Session


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


class LabelRef(NamedTuple):
    """A label's id and name."""

    id: int
    name: str


_FIND_LABEL = """
SELECT id, name, 0 FROM labels WHERE name = :name
UNION ALL SELECT id, name, 1 FROM labels WHERE name_folded = :folded
UNION ALL SELECT l.id, l.name, 2 FROM labels l JOIN label_aliases a ON a.label_id = l.id
WHERE a.alias_folded = :folded
ORDER BY 3, 1 LIMIT 1
"""


def find_label(source: Session | Reader, name: str) -> LabelRef:
    """The label called `name` (exactly, else case-insensitively, else by an alias; the oldest
    label when several fold alike); NotFoundError otherwise."""
    found = as_reader(source).db.first(_FIND_LABEL, {"name": name, "folded": fold(name)})
    if found is None:
        raise NotFoundError(
            f"no label called '{name}' in the catalogue ('catalog stats' lists the labels)"
        )
    return LabelRef(found[0], found[1])


def label_spread(
    session: Session | Reader,
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
    reader = as_reader(session)
    label = find_label(reader, name)
    if subset is None and prefix_depth == 1:
        index = index if index is not None else open_index(reader.db)
        if index is not None:
            try:
                return _indexed_spread(reader, index, label, selected, related)
            except StaleIndexError:
                pass
    if selected is not None:
        raise StaleIndexError("a bitmap selection needs the index it came from")
    from catalog.read.groupings import cooccurring_labels, label_histogram, label_media_groups

    sql = reader.session()
    histogram = label_histogram(sql, label.id, subset)
    related_labels = cooccurring_labels(sql, label.id, related, subset)
    prefixes: Counter[str] = Counter()
    months: Counter[str] = Counter()
    roots = local_roots(reader.db)
    for source, key, month, count in label_media_groups(sql, label.id, subset, prefix_depth):
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
    reader: Reader, index: BitmapIndex, label: LabelRef, selected: BitMap | None, related: int
) -> LabelSpread:
    carrying = index.bitmap(f"label:{label.id}")
    if selected is not None:
        carrying &= selected
    histogram = confidence_histogram(index, label.id, carrying)
    shared = top_shared_labels(reader.db, index, carrying, related, exclude=[label.id])
    prefixes = folder_prefix_counts(index, carrying, local_roots(reader.db))
    months = group_counts(index, "month", carrying)
    return LabelSpread(
        name=label.name,
        media=len(carrying),
        histogram=histogram,
        cooccurring=[(other, n) for _, other, n in shared],
        by_prefix=sorted(prefixes.items(), key=lambda item: (-item[1], item[0])),
        by_month=sorted(months.items()),
    )
