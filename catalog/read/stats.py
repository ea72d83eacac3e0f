"""Library statistics: totals, top labels and histograms, as dataclasses (no printing).

The default view and any label's histogram read only the summary tables that the store keeps
exact on every write (label_stats, label_histograms, media_totals) plus one index probe per
shown label for its maximum confidence, so they cost the same at a thousand media as at a
million. With `where`, every figure is aggregated over the media the search query selects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyroaring import BitMap

from catalog.errors import StaleIndexError, UsageError
from catalog.pricing import estimate_cost
from catalog.read.breakdowns import LabelSpread, label_spread
from catalog.read.labels import LABELS_BY_MEDIA_COUNT
from catalog.read.subsets import subset_figures, top_label_figures, top_shared_labels
from catalog.read.totals import (
    MediaCounts,
    has_offline_runs,
    labelled_video_ms,
    media_counts,
    rekognition_spend,
)
from catalog.store.bitmaps import BitmapIndex
from catalog.store.sql import Reader, as_reader
from catalog.store.values import KIND_VIDEO, STATUS_FAILED, STATUS_LABELLED

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.orm import Session

    from catalog.query.compiled import CompiledQuery

DEFAULT_TOP = 20


@dataclass(frozen=True)
class LabelSummary:
    """One label across the library (or the selected media)."""

    label_id: int
    name: str
    media: int  # media items carrying the label
    detections: int  # boxes (or 1) per image, moments per video
    mean_confidence: float  # percent, mean over media of the label's best confidence
    max_confidence: float  # percent
    share: float  # fraction of labelled media carrying the label

    def to_dict(self) -> dict[str, Any]:
        """One entry of the `labels` list."""
        return {
            "name": self.name,
            "media": self.media,
            "detections": self.detections,
            "mean_confidence": round(self.mean_confidence, 2),
            "max_confidence": round(self.max_confidence, 2),
            "share": round(self.share, 4),
        }


@dataclass(frozen=True)
class LibraryStats:
    """What `catalog stats` reports."""

    media: MediaCounts
    distinct_labels: int
    video_minutes_labelled: float
    estimated_spend_usd: float
    labels: list[LabelSummary]
    label: LabelSpread | None = None
    where: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `catalog stats --format json`."""
        data: dict[str, Any] = {
            "media": self.media.to_dict(),
            "distinct_labels": self.distinct_labels,
            "video_minutes_labelled": round(self.video_minutes_labelled, 2),
            "estimated_spend_usd": round(self.estimated_spend_usd, 4),
            "labels": [label.to_dict() for label in self.labels],
        }
        if self.where is not None:
            data["where"] = self.where
        if self.label is not None:
            data["label"] = self.label.to_dict()
        return data


# -- selection --------------------------------------------------------------------------------


def matching_media(where: str | None, session: Session) -> Select[Any] | None:
    """The SELECT of media ids a search query picks (None for the whole library).

    Raises QueryError for a malformed query.
    """
    if where is None or not where.strip():
        return None
    from catalog.read.search import matching_media_ids

    return matching_media_ids(where, session=session)


# -- labels ----------------------------------------------------------------------------------

# The `top` labels by media count, then name, from label_stats; the max-confidence probe (one
# descent of detections(label_id, confidence_x100)) runs for those rows only, after the sort.
_TOP_LABELS = f"""
SELECT b.label_id, b.name, b.media_count, b.detection_count, b.confidence_sum_x100,
       (SELECT max(d.confidence_x100) FROM detections d WHERE d.label_id = b.label_id)
FROM ({LABELS_BY_MEDIA_COUNT} LIMIT :top) b
ORDER BY b.media_count DESC, b.name
"""


def top_labels(
    session: Session | Reader,
    top: int = DEFAULT_TOP,
    subset: Select[Any] | None = None,
    labelled: int | None = None,
) -> list[LabelSummary]:
    """The `top` labels by media count, then name: detections, mean/max confidence, share.

    `labelled` (the share's denominator) is counted when not given.
    """
    if top < 1:
        raise UsageError(f"--top must be at least 1 (got {top})")
    reader = as_reader(session)
    if labelled is None:
        labelled = media_counts(reader, subset).labelled
    rows: Any
    if subset is None:
        rows = reader.db.rows(_TOP_LABELS, {"top": top})
    else:
        from sqlalchemy import func, select

        from catalog.read.groupings import subset_ids
        from catalog.store.schema import Detection, Label

        media_count = func.count().label("media_count")
        rows = (
            reader.session()
            .execute(
                select(
                    Detection.label_id,
                    Label.name,
                    media_count,
                    func.sum(Detection.detection_count),
                    func.sum(Detection.confidence_x100),
                    func.max(Detection.confidence_x100),
                )
                .join(Label, Label.id == Detection.label_id)
                .where(Detection.media_id.in_(subset_ids(subset)))
                .group_by(Detection.label_id, Label.name)
                .order_by(media_count.desc(), Label.name)
                .limit(top)
            )
            .all()
        )
    return [
        LabelSummary(
            label_id=label_id,
            name=name,
            media=int(media),
            detections=int(detections or 0),
            mean_confidence=(int(conf_sum or 0) / media / 100) if media else 0.0,
            max_confidence=int(conf_max or 0) / 100,
            share=(media / labelled) if labelled else 0.0,
        )
        for label_id, name, media, detections, conf_sum, conf_max in rows
    ]


def distinct_labels(session: Session, subset: Select[Any]) -> int:
    """How many labels are on at least one selected media item."""
    from sqlalchemy import func, select

    from catalog.read.groupings import subset_ids
    from catalog.store.schema import Detection

    stmt = select(func.count(func.distinct(Detection.label_id))).where(
        Detection.media_id.in_(subset_ids(subset))
    )
    return int(session.execute(stmt).scalar_one())


# -- the whole view ----------------------------------------------------------------------------


# Labelled video time, billed counts and distinct labels in one round trip.
_LIBRARY_FIGURES = """
SELECT (SELECT duration_ms FROM media_totals WHERE kind = :video AND status = :labelled),
       (SELECT sum(billed_images) FROM sync_runs),
       (SELECT sum(billed_video_ms) FROM sync_runs),
       (SELECT count(*) FROM label_stats WHERE media_count > 0)
"""


def library_stats(
    session: Session | Reader,
    *,
    top: int = DEFAULT_TOP,
    label: str | None = None,
    where: str | None = None,
    prefix_depth: int = 1,
    subset: Select[Any] | None = None,
) -> LibraryStats:
    """Totals and top labels; with `label`, that label's spread; with `where`, the selected media.

    `subset` (a SELECT of media ids) is the already-compiled form of `where`. A `where` the
    bitmap index can answer is counted from bitmaps (milliseconds at a million media); others
    are aggregated in SQL over the matching ids.
    """
    if top < 1:
        raise UsageError(f"--top must be at least 1 (got {top})")
    reader = as_reader(session)
    if subset is None and where is not None and where.strip():
        from catalog.query.compiled import compile_query  # the query language loads only here

        compiled = compile_query(reader, where)
        selected, index = compiled.bitmap(), compiled.index()
        if selected is not None and index is not None:
            try:
                return _indexed_stats(
                    compiled, index, selected, top=top, label=label, prefix_depth=prefix_depth
                )
            except StaleIndexError:
                pass
        subset = compiled.ids()
    counts = media_counts(reader, subset)
    if subset is None:
        figures = reader.db.first(
            _LIBRARY_FIGURES, {"video": KIND_VIDEO, "labelled": STATUS_LABELLED}
        ) or (0, 0, 0, 0)
        video_ms, billed_images, billed_video_ms, distinct = figures
        video_ms = int(video_ms or 0)
        spend = estimate_cost(images=int(billed_images or 0), video_ms=int(billed_video_ms or 0))
        distinct = int(distinct)
    else:
        video_ms = labelled_video_ms(reader, subset)
        spend = rekognition_spend(reader.session(), subset)
        distinct = distinct_labels(reader.session(), subset)
    return LibraryStats(
        media=counts,
        distinct_labels=distinct,
        video_minutes_labelled=video_ms / 60_000,
        estimated_spend_usd=spend,
        labels=top_labels(reader, top, subset, counts.labelled),
        label=label_spread(reader, label, subset=subset, prefix_depth=prefix_depth)
        if label
        else None,
        where=where if where and where.strip() else None,
    )


def _indexed_stats(
    compiled: CompiledQuery,
    index: BitmapIndex,
    selected: BitMap,
    *,
    top: int,
    label: str | None,
    prefix_depth: int,
) -> LibraryStats:
    """`library_stats` over a selection held as a bitmap: the same figures, from the index."""
    reader = compiled.reader
    figures = subset_figures(index, selected)
    counts = MediaCounts(
        total=figures.labelled + figures.failed + figures.pending,
        images=figures.images,
        videos=figures.videos,
        labelled=figures.labelled,
        failed=figures.failed,
        pending=figures.pending,
        size_bytes=figures.size_bytes,
    )
    # Every label's set is read once: whether it meets the selection is a cheap test, and only
    # the labels that can still make the top list are counted (largest first).
    distinct = sum(1 for bm in index.group("label").values() if bm.intersect(selected))
    ranked = top_shared_labels(reader.db, index, selected, top)
    labels = [
        LabelSummary(
            label_id=f.label_id,
            name=f.name,
            media=f.media,
            detections=f.detections,
            mean_confidence=f.confidence_sum_x100 / f.media / 100,
            max_confidence=f.confidence_max_x100 / 100,
            share=(f.media / counts.labelled) if counts.labelled else 0.0,
        )
        for f in top_label_figures(index, selected, ranked)
    ]
    return LibraryStats(
        media=counts,
        distinct_labels=distinct,
        video_minutes_labelled=figures.labelled_video_ms / 60_000,
        estimated_spend_usd=(
            rekognition_spend(reader.session(), compiled.ids())
            if has_offline_runs(reader)
            else estimate_cost(images=counts.images, video_ms=figures.labelled_video_ms)
        ),
        labels=labels,
        label=label_spread(reader, label, selected=selected, index=index, prefix_depth=prefix_depth)
        if label
        else None,
        where=compiled.text,
    )


@dataclass(frozen=True)
class FailureReason:
    """Failed media grouped by error code."""

    code: str
    media: int


def failures_by_reason(session: Session) -> list[FailureReason]:
    """Failed media per error code, most first."""
    from sqlalchemy import func, select

    from catalog.store.schema import Media

    count = func.count().label("n")
    rows = session.execute(
        select(Media.error_code, count)
        .where(Media.status == STATUS_FAILED)
        .group_by(Media.error_code)
        .order_by(count.desc(), Media.error_code)
    ).all()
    return [FailureReason(code or "Unknown", int(n)) for code, n in rows]


@dataclass(frozen=True)
class TopMedia:
    """One of a label's highest-confidence media items."""

    media_id: int
    uri: str
    kind: str
    label: str
    confidence: float


def top_media_for_label(
    session: Session,
    label_id: int,
    name: str,
    limit: int = 4,
    subset: Select[Any] | None = None,
) -> list[TopMedia]:
    """A label's highest-confidence media (an index range scan from the top)."""
    from sqlalchemy import select

    from catalog.read.groupings import subset_ids
    from catalog.store.schema import Detection, Media

    stmt = (
        select(Media, Detection.confidence_x100)
        .join(Detection, Detection.media_id == Media.id)
        .where(Detection.label_id == label_id, Media.status == STATUS_LABELLED)
        .order_by(Detection.confidence_x100.desc(), Detection.media_id)
        .limit(limit)
    )
    if subset is not None:
        stmt = stmt.where(Media.id.in_(subset_ids(subset)))
    return [
        TopMedia(media.id, media.uri, media.kind, name, conf / 100)
        for media, conf in session.execute(stmt)
    ]
