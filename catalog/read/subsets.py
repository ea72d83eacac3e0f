"""Figures over any set of media from the bitmap index: counts, sums, top labels, groups.

A subset is a Roaring bitmap of media ids (a compiled query's `bitmap()`, a label's media, or
both intersected). Every figure here is exact: counts are intersection cardinalities, sums and
maxima come from bit-sliced values (catalog.store.bitslices), so nothing scans label rows.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyroaring import BitMap

from catalog.store.bitmaps import BitmapIndex
from catalog.store.sql import Db, Reader, db_of
from catalog.store.values import KINDS, STATUS_FAILED, STATUS_LABELLED, STATUS_PENDING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DEFAULT_RELATED = 10  # co-occurring labels a breakdown shows


@dataclass(frozen=True)
class SubsetFigures:
    """Media of a subset by status and kind, their bytes, and labelled video time."""

    labelled: int
    failed: int
    pending: int
    images: int
    videos: int
    size_bytes: int
    labelled_video_ms: int


def subset_figures(index: BitmapIndex, subset: BitMap) -> SubsetFigures:
    """Status and kind counts, total size and labelled video duration of `subset`."""
    live = subset & index.bitmap("live")
    labelled = index.bitmap(f"status:{STATUS_LABELLED}")
    videos = index.bitmap("kind:video")
    return SubsetFigures(
        labelled=live.intersection_cardinality(labelled),
        failed=live.intersection_cardinality(index.bitmap(f"status:{STATUS_FAILED}")),
        pending=live.intersection_cardinality(index.bitmap(f"status:{STATUS_PENDING}")),
        images=live.intersection_cardinality(index.bitmap("kind:image")),
        videos=live.intersection_cardinality(videos),
        size_bytes=index.slices("size").total(live),
        labelled_video_ms=index.slices("duration").total(live & videos & labelled),
    )


@dataclass(frozen=True)
class LabelFigures:
    """One label within a subset: media, detections, confidence sum and maximum (hundredths)."""

    label_id: int
    name: str
    media: int
    detections: int
    confidence_sum_x100: int
    confidence_max_x100: int


# Labels by how many media carry them (label_stats is exact: the size of each `label:` set).
_LABELS_BY_SIZE = (
    "SELECT label_id, media_count FROM label_stats WHERE media_count > 0 "
    "ORDER BY media_count DESC, label_id"
)
_SIZE_BATCH = 16  # label sets read per round trip while looking for the top shared labels


def top_shared_labels(
    db: Db, index: BitmapIndex, subset: BitMap, top: int, *, exclude: Iterable[int] = ()
) -> list[tuple[int, str, int]]:
    """The `top` (label id, name, media) sharing the most media with `subset`, exact.

    Labels are visited largest first: a label shares at most the media it carries, so once the
    next one carries fewer than the `top`-th count found so far, no later label can enter (or
    tie), and the rest of the index is never read: the same answer as counting every label.
    """
    skip = set(exclude)
    sizes = [(label_id, n) for label_id, n in db.rows(_LABELS_BY_SIZE) if label_id not in skip]
    counts: dict[int, int] = {}
    best: list[int] = []  # a min-heap of the `top` largest counts so far
    for start in range(0, len(sizes), _SIZE_BATCH):
        batch = [(i, n) for i, n in sizes[start : start + _SIZE_BATCH] if not _full(best, top, n)]
        if not batch:
            break
        sets = index.bitmaps([f"label:{label_id}" for label_id, _ in batch])
        for label_id, size in batch:
            if _full(best, top, size):
                break
            n = sets[f"label:{label_id}"].intersection_cardinality(subset)
            if n:
                counts[label_id] = n
                (heapq.heappush if len(best) < top else heapq.heappushpop)(best, n)
    return top_counts(db, counts, top)


def _full(best: list[int], top: int, size: int) -> bool:
    """True when a label of `size` media can no longer reach the `top` counts in `best`."""
    return top > 0 and len(best) >= top and size < best[0]


def label_names(source: Session | Reader | Db, label_ids: Iterable[int]) -> dict[int, str]:
    """Label id -> name for the given ids."""
    wanted = sorted(set(label_ids))
    if not wanted:
        return {}
    rows = db_of(source).rows("SELECT id, name FROM labels WHERE id IN (:ids)", {"ids": wanted})
    return {label_id: name for label_id, name in rows}


def top_counts(
    source: Session | Reader | Db, counts: dict[int, int], top: int
) -> list[tuple[int, str, int]]:
    """The `top` (label id, name, count) by count, then name (names fetched for those only)."""
    if not counts or top < 1:
        return []
    cutoff = heapq.nlargest(top, counts.values())[-1]
    candidates = {label_id: n for label_id, n in counts.items() if n >= cutoff}
    names = label_names(source, candidates)
    ranked = sorted(candidates.items(), key=lambda item: (-item[1], names.get(item[0], "")))
    return [(label_id, names.get(label_id, str(label_id)), n) for label_id, n in ranked[:top]]


def top_label_figures(
    index: BitmapIndex, subset: BitMap, ranked: list[tuple[int, str, int]]
) -> list[LabelFigures]:
    """The labels `ranked` (label id, name, media of `subset`; `top_shared_labels`) with their
    exact detections, confidence sums and maxima over `subset`."""
    figures = []
    for label_id, name, media in ranked:
        conf = index.slices(f"conf:{label_id}", keep=False)
        figures.append(
            LabelFigures(
                label_id=label_id,
                name=name,
                media=media,
                detections=index.slices(f"dets:{label_id}", keep=False).total(subset),
                confidence_sum_x100=conf.total(subset),
                confidence_max_x100=conf.maximum(subset) or 0,
            )
        )
    return figures


def confidence_histogram(index: BitmapIndex, label_id: int, subset: BitMap | None) -> list[int]:
    """Media per 10-point confidence bin (ten counts) of one label within `subset`."""
    conf = index.slices(f"conf:{label_id}")
    carrying = conf.exist if subset is None else conf.exist & subset
    counts = [0] * 10
    above = len(carrying)
    for b in range(1, 10):
        at_least = conf.at_least(b * 1000).intersection_cardinality(carrying)
        counts[b - 1] = above - at_least
        above = at_least
    counts[9] = above
    return counts


def group_counts(index: BitmapIndex, kind: str, subset: BitMap) -> dict[str, int]:
    """Media of `subset` per value of a grouping ('prefix', 'month', 'kind'), zeros left out."""
    counts = {}
    for value, bm in index.group(kind).items():
        n = bm.intersection_cardinality(subset)
        if n:
            counts[value] = n
    return counts


def kind_counts(index: BitmapIndex, subset: BitMap) -> dict[str, int]:
    """Media of `subset` per kind (image, video), zeros left out."""
    counts = {}
    for kind in KINDS:
        n = index.bitmap(f"kind:{kind}").intersection_cardinality(subset)
        if n:
            counts[kind] = n
    return counts
