"""Library statistics: totals, top labels and one label's spread, as dataclasses (no printing).

The default view and any label's histogram read only the summary tables that `store.py` keeps
exact on every write (label_stats, label_histograms, media_totals) plus one index probe per
shown label for its maximum confidence, so they cost the same at a thousand media as at a
million. With `where`, every figure is aggregated over the media the search query selects.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Integer, Select, bindparam, case, func, select
from sqlalchemy.orm import Session

from catalog.errors import NotFoundError, UsageError
from catalog.models import (
    KIND_IMAGE,
    KIND_VIDEO,
    SOURCE_FILE,
    STATUS_DELETED,
    STATUS_FAILED,
    STATUS_LABELLED,
    STATUS_PENDING,
    Detection,
    Label,
    LabelHistogram,
    LabelStat,
    Media,
    MediaTotal,
    SyncRun,
)
from catalog.pricing import estimate_cost
from catalog.store import fold

HISTOGRAM_BINS = 10
DEFAULT_TOP = 20
DEFAULT_RELATED = 10


@dataclass(frozen=True)
class MediaCounts:
    """Media by kind and status; `total` excludes deleted media, reported on their own."""

    total: int = 0
    images: int = 0
    videos: int = 0
    labelled: int = 0
    failed: int = 0
    pending: int = 0
    deleted: int = 0
    size_bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        """The `media` object of `catalog stats --format json`."""
        return {
            "total": self.total,
            "images": self.images,
            "videos": self.videos,
            "labelled": self.labelled,
            "failed": self.failed,
            "pending": self.pending,
            "deleted": self.deleted,
            "size_bytes": self.size_bytes,
        }


@dataclass(frozen=True)
class LabelSummary:
    """One label across the library (or the selected media)."""

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
class LabelSpread:
    """One label in depth: confidence histogram, co-occurring labels, prefixes, months."""

    name: str
    media: int
    histogram: list[int]  # media per 10-point bin, bin i holds [10i, 10i+10), 100 in bin 9
    cooccurring: list[tuple[str, int]]  # other labels on the same media, most frequent first
    by_prefix: list[tuple[str, int]]  # first key segment(s) -> media, most first
    by_month: list[tuple[str, int]]  # YYYY-MM of LastModified -> media, oldest first
    cooccurring_sample: int | None = None  # media sampled when co-occurrence was estimated

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


def bin_label(index: int) -> str:
    """'90-100' for the top bin, '40-50' for bin 4."""
    return f"{index * 10}-{index * 10 + 10}"


# -- selection --------------------------------------------------------------------------------


def matching_media(where: str | None, session: Session | None = None) -> Select[Any] | None:
    """The SELECT of media ids a search query picks (None for the whole library).

    Raises QueryError for a malformed query.
    """
    if where is None or not where.strip():
        return None
    from catalog.search import matching_media_ids

    return matching_media_ids(where, session=session)


def _subset_ids(subset: Select[Any]) -> Any:
    """A single-column subquery of the selected media ids."""
    sub = subset.subquery()
    return select(next(iter(sub.c)))


# -- totals ------------------------------------------------------------------------------------


def media_counts(session: Session, subset: Select[Any] | None = None) -> MediaCounts:
    """Media by kind and status from media_totals (or counted over the selected media)."""
    if subset is None:
        rows = session.execute(
            select(
                MediaTotal.kind, MediaTotal.status, MediaTotal.media_count, MediaTotal.size_bytes
            )
        ).all()
    else:
        rows = session.execute(
            select(
                Media.kind, Media.status, func.count(), func.coalesce(func.sum(Media.size_bytes), 0)
            )
            .where(Media.id.in_(_subset_ids(subset)), Media.status != STATUS_DELETED)
            .group_by(Media.kind, Media.status)
        ).all()
    by: Counter[str] = Counter()
    size = 0
    for kind, status, count, size_bytes in rows:
        by[status] += count
        if status != STATUS_DELETED:
            by[kind] += count
            size += int(size_bytes or 0)
    return MediaCounts(
        total=by[STATUS_LABELLED] + by[STATUS_FAILED] + by[STATUS_PENDING],
        images=by[KIND_IMAGE],
        videos=by[KIND_VIDEO],
        labelled=by[STATUS_LABELLED],
        failed=by[STATUS_FAILED],
        pending=by[STATUS_PENDING],
        deleted=by[STATUS_DELETED],
        size_bytes=size,
    )


def _labelled_video_ms(session: Session, subset: Select[Any] | None) -> int:
    if subset is None:
        value = session.execute(
            select(MediaTotal.duration_ms).where(
                MediaTotal.kind == KIND_VIDEO, MediaTotal.status == STATUS_LABELLED
            )
        ).scalar_one_or_none()
    else:
        value = session.execute(
            select(func.sum(Media.duration_ms)).where(
                Media.id.in_(_subset_ids(subset)),
                Media.kind == KIND_VIDEO,
                Media.status == STATUS_LABELLED,
            )
        ).scalar_one_or_none()
    return int(value or 0)


def estimated_spend(session: Session) -> float:
    """Estimated Rekognition charge in US dollars for everything every sync run paid for."""
    images, video_ms = session.execute(
        select(
            func.coalesce(func.sum(SyncRun.billed_images), 0),
            func.coalesce(func.sum(SyncRun.billed_video_ms), 0),
        )
    ).one()
    return estimate_cost(images=int(images), video_ms=int(video_ms))


# -- labels ------------------------------------------------------------------------------------


def _max_confidence_x100(label_id: Any) -> Any:
    """A correlated probe: one descent of detections(label_id, confidence_x100)."""
    return (
        select(func.max(Detection.confidence_x100))
        .where(Detection.label_id == label_id)
        .scalar_subquery()
    )


@cache
def _top_labels_stmt() -> Select[Any]:
    """Built once: constructing the statement costs more than running it."""
    best = (
        select(
            LabelStat.label_id,
            LabelStat.media_count,
            LabelStat.detection_count,
            LabelStat.confidence_sum_x100,
            Label.name,
        )
        .join(Label, Label.id == LabelStat.label_id)
        .where(LabelStat.media_count > 0)
        .order_by(LabelStat.media_count.desc(), Label.name)
        .limit(bindparam("top", type_=Integer))
        .subquery()
    )
    # The max probes run for the `top` rows only, after the sort.
    return select(
        best.c.name,
        best.c.media_count,
        best.c.detection_count,
        best.c.confidence_sum_x100,
        _max_confidence_x100(best.c.label_id),
    ).order_by(best.c.media_count.desc(), best.c.name)


def top_labels(
    session: Session,
    top: int = DEFAULT_TOP,
    subset: Select[Any] | None = None,
    labelled: int | None = None,
) -> list[LabelSummary]:
    """The `top` labels by media count, then name: detections, mean/max confidence, share.

    `labelled` (the share's denominator) is counted when not given.
    """
    if top < 1:
        raise UsageError(f"--top must be at least 1 (got {top})")
    if labelled is None:
        labelled = media_counts(session, subset).labelled
    if subset is None:
        rows = session.execute(_top_labels_stmt(), {"top": top}).all()
    else:
        media_count = func.count().label("media_count")
        rows = session.execute(
            select(
                Label.name,
                media_count,
                func.sum(Detection.detection_count),
                func.sum(Detection.confidence_x100),
                func.max(Detection.confidence_x100),
            )
            .join(Label, Label.id == Detection.label_id)
            .where(Detection.media_id.in_(_subset_ids(subset)))
            .group_by(Detection.label_id, Label.name)
            .order_by(media_count.desc(), Label.name)
            .limit(top)
        ).all()
    return [
        LabelSummary(
            name=name,
            media=int(media),
            detections=int(detections or 0),
            mean_confidence=(int(conf_sum or 0) / media / 100) if media else 0.0,
            max_confidence=int(conf_max or 0) / 100,
            share=(media / labelled) if labelled else 0.0,
        )
        for name, media, detections, conf_sum, conf_max in rows
    ]


def distinct_labels(session: Session, subset: Select[Any] | None = None) -> int:
    """How many labels are on at least one (selected) media item."""
    if subset is None:
        stmt = select(func.count()).select_from(LabelStat).where(LabelStat.media_count > 0)
    else:
        stmt = select(func.count(func.distinct(Detection.label_id))).where(
            Detection.media_id.in_(_subset_ids(subset))
        )
    return int(session.execute(stmt).scalar_one())


def find_label(session: Session, name: str) -> Label:
    """The label called `name` (case-insensitive, aliases too); NotFoundError otherwise."""
    from catalog.models import LabelAlias

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
        .where(Detection.label_id == label_id, Detection.media_id.in_(_subset_ids(subset)))
        .group_by(bin_expr)
    ):
        counts[min(int(bin_index), HISTOGRAM_BINS - 1)] += int(count)  # 100% joins bin 9
    return counts


# Above this many media, co-occurrence is estimated from a hashed sample of about this many.
COOCCURRENCE_SAMPLE = 20_000
_HASH_MULTIPLIER = 2_654_435_761  # Knuth's multiplicative hash: media ids -> pseudo-random
_HASH_MODULUS = 1_000_003


@dataclass(frozen=True)
class Cooccurrence:
    """Labels sharing media with one label; `sample` is set when the counts are estimates."""

    labels: list[tuple[str, int]]
    sample: int | None = None


def cooccurring_labels(
    session: Session,
    label_id: int,
    limit: int = DEFAULT_RELATED,
    subset: Select[Any] | None = None,
    *,
    media: int | None = None,
    sample_size: int = COOCCURRENCE_SAMPLE,
) -> Cooccurrence:
    """Other labels on the media carrying `label_id`, by how many media they share.

    Exact up to `sample_size` media (`media`, the label's count, decides). Beyond that, pairing
    every media item's labels costs seconds (a million-media library holds labels on 800k media),
    so the counts come from a pseudo-random sample of about `sample_size` of the label's media
    and are scaled up; the ranking is what matters and a 20k sample ranks reliably.
    """
    from sqlalchemy.orm import aliased

    mine = aliased(Detection)
    other = aliased(Detection)
    conditions: list[Any] = [mine.label_id == label_id]
    if subset is not None:
        conditions.append(mine.media_id.in_(_subset_ids(subset)))
    sampled: int | None = None
    scale = 1.0
    if media is not None and media > sample_size:
        threshold = max(1, _HASH_MODULUS * sample_size // media)
        conditions.append((mine.media_id * _HASH_MULTIPLIER) % _HASH_MODULUS < threshold)
        sampled = int(
            session.execute(select(func.count()).select_from(mine).where(*conditions)).scalar_one()
        )
        scale = media / sampled if sampled else 0.0
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
    return Cooccurrence(
        [(name, round(int(count) * scale)) for name, count in session.execute(stmt)], sampled
    )


def key_prefix(key: str, depth: int = 1) -> str:
    """The first `depth` path segments of a key ('2024/06/a.jpg' -> '2024/'); '' at the root."""
    parts = key.split("/")
    if len(parts) <= 1:
        return ""
    return "/".join(parts[: min(depth, len(parts) - 1)]) + "/"


def _month_expr(session: Session) -> Any:
    """'YYYY-MM' of LastModified, in UTC, computed by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Media.last_modified_at), "YYYY-MM")
    return func.strftime("%Y-%m", Media.last_modified_at)


def _prefix_expr(session: Session, depth: int) -> Any:
    """The first key segment for S3 keys (depth 1), else the whole key for Python to cut."""
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
    prefix = _prefix_expr(session, depth).label("prefix")
    month = _month_expr(session).label("month")
    stmt = (
        select(Media.source, prefix, month, func.count())
        .join(Detection, Detection.media_id == Media.id)
        .where(Detection.label_id == label_id)
        .group_by(Media.source, prefix, month)
    )
    if subset is not None:
        stmt = stmt.where(Media.id.in_(_subset_ids(subset)))
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
        stmt = stmt.where(Media.id.in_(_subset_ids(subset)))
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
) -> LabelSpread:
    """One label's histogram, co-occurring labels, prefixes and months."""
    if prefix_depth < 1:
        raise UsageError(f"--prefix-depth must be at least 1 (got {prefix_depth})")
    label = find_label(session, name)
    histogram = label_histogram(session, label.id, subset)
    related_labels = cooccurring_labels(session, label.id, related, subset, media=sum(histogram))
    prefixes: Counter[str] = Counter()
    months: Counter[str] = Counter()
    for source, key, month, count in _label_media_groups(session, label.id, subset, prefix_depth):
        # Local files carry absolute paths: skip the empty root segment.
        prefixes[key_prefix(key.lstrip("/") if source == SOURCE_FILE else key, prefix_depth)] += (
            count
        )
        months[month or "unknown"] += count
    return LabelSpread(
        name=label.name,
        media=sum(histogram),
        histogram=histogram,
        cooccurring=related_labels.labels,
        cooccurring_sample=related_labels.sample,
        by_prefix=sorted(prefixes.items(), key=lambda item: (-item[1], item[0])),
        by_month=sorted(months.items()),
    )


# -- the whole view ----------------------------------------------------------------------------


@cache
def _library_figures_stmt() -> Select[Any]:
    """Labelled video time, billed counts and distinct labels in one round trip."""
    return select(
        select(MediaTotal.duration_ms)
        .where(MediaTotal.kind == KIND_VIDEO, MediaTotal.status == STATUS_LABELLED)
        .scalar_subquery(),
        select(func.sum(SyncRun.billed_images)).scalar_subquery(),
        select(func.sum(SyncRun.billed_video_ms)).scalar_subquery(),
        select(func.count())
        .select_from(LabelStat)
        .where(LabelStat.media_count > 0)
        .scalar_subquery(),
    )


def library_stats(
    session: Session,
    *,
    top: int = DEFAULT_TOP,
    label: str | None = None,
    where: str | None = None,
    prefix_depth: int = 1,
    subset: Select[Any] | None = None,
) -> LibraryStats:
    """Totals and top labels; with `label`, that label's spread; with `where`, the selected media.

    `subset` (a SELECT of media ids) is the already-compiled form of `where`.
    """
    if subset is None:
        subset = matching_media(where, session)
    counts = media_counts(session, subset)
    if subset is None:
        video_ms, billed_images, billed_video_ms, distinct = session.execute(
            _library_figures_stmt()
        ).one()
        video_ms = int(video_ms or 0)
        spend = estimate_cost(images=int(billed_images or 0), video_ms=int(billed_video_ms or 0))
        distinct = int(distinct)
    else:
        video_ms = _labelled_video_ms(session, subset)
        # What labelling the selected (labelled) media cost: one call per image, video by the minute.
        spend = estimate_cost(images=counts.images, video_ms=video_ms)
        distinct = distinct_labels(session, subset)
    return LibraryStats(
        media=counts,
        distinct_labels=distinct,
        video_minutes_labelled=video_ms / 60_000,
        estimated_spend_usd=spend,
        labels=top_labels(session, top, subset, counts.labelled),
        label=label_spread(session, label, subset=subset, prefix_depth=prefix_depth)
        if label
        else None,
        where=where if where and where.strip() else None,
    )


@dataclass(frozen=True)
class FailureReason:
    """Failed media grouped by error code."""

    code: str
    media: int


def failures_by_reason(session: Session) -> list[FailureReason]:
    """Failed media per error code, most first."""
    count = func.count().label("n")
    rows = session.execute(
        select(Media.error_code, count)
        .where(Media.status == STATUS_FAILED)
        .group_by(Media.error_code)
        .order_by(count.desc(), Media.error_code)
    ).all()
    return [FailureReason(code or "Unknown", int(n)) for code, n in rows]


def labels_by_month(
    session: Session, names: list[str], subset: Select[Any] | None = None
) -> dict[str, list[tuple[str, int]]]:
    """For each named label, media per month of LastModified (oldest first)."""
    result: dict[str, list[tuple[str, int]]] = {}
    for name in names:
        label = find_label(session, name)
        result[label.name] = _label_months(session, label.id, subset)
    return result


@dataclass(frozen=True)
class TopMedia:
    """One of a label's highest-confidence media items."""

    uri: str
    kind: str
    label: str
    confidence: float


def top_media_for_label(
    session: Session, name: str, limit: int = 4, subset: Select[Any] | None = None
) -> list[TopMedia]:
    """A label's highest-confidence media (an index range scan from the top)."""
    label = find_label(session, name)
    stmt = (
        select(Media, Detection.confidence_x100)
        .join(Detection, Detection.media_id == Media.id)
        .where(Detection.label_id == label.id, Media.status == STATUS_LABELLED)
        .order_by(Detection.confidence_x100.desc(), Detection.media_id)
        .limit(limit)
    )
    if subset is not None:
        stmt = stmt.where(Media.id.in_(_subset_ids(subset)))
    return [
        TopMedia(media.uri, media.kind, label.name, conf / 100)
        for media, conf in session.execute(stmt)
    ]
