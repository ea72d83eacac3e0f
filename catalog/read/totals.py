"""Library totals: media by kind and status, video minutes labelled and Rekognition spend.

Over the whole library they come from media_totals (kept exact on every write); over a subset
(a search query's media) they are aggregated over the selected media.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalog.pricing import estimate_cost
from catalog.store.sql import Reader, as_reader
from catalog.store.values import (
    KIND_IMAGE,
    KIND_VIDEO,
    LABELLER_REKOGNITION,
    STATUS_DELETED,
    STATUS_FAILED,
    STATUS_LABELLED,
    STATUS_PENDING,
)

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.orm import Session


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


def media_counts(source: Session | Reader, subset: Select[Any] | None = None) -> MediaCounts:
    """Media by kind and status from media_totals (or counted over the selected media)."""
    reader = as_reader(source)
    rows: Any
    if subset is None:
        rows = reader.db.rows("SELECT kind, status, media_count, size_bytes FROM media_totals")
    else:
        from sqlalchemy import func, select

        from catalog.read.groupings import subset_ids
        from catalog.store.schema import Media

        rows = (
            reader.session()
            .execute(
                select(
                    Media.kind,
                    Media.status,
                    func.count(),
                    func.coalesce(func.sum(Media.size_bytes), 0),
                )
                .where(Media.id.in_(subset_ids(subset)), Media.status != STATUS_DELETED)
                .group_by(Media.kind, Media.status)
            )
            .all()
        )
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


def labelled_video_ms(source: Session | Reader, subset: Select[Any] | None) -> int:
    """Milliseconds of labelled video (in the subset, when given)."""
    reader = as_reader(source)
    if subset is None:
        value = reader.db.scalar(
            "SELECT duration_ms FROM media_totals WHERE kind = :kind AND status = :status",
            {"kind": KIND_VIDEO, "status": STATUS_LABELLED},
        )
    else:
        from sqlalchemy import func, select

        from catalog.read.groupings import subset_ids
        from catalog.store.schema import Media

        value = (
            reader.session()
            .execute(
                select(func.sum(Media.duration_ms)).where(
                    Media.id.in_(subset_ids(subset)),
                    Media.kind == KIND_VIDEO,
                    Media.status == STATUS_LABELLED,
                )
            )
            .scalar_one_or_none()
        )
    return int(value or 0)


def rekognition_spend(session: Session, subset: Select[Any]) -> float:
    """What labelling the selected media cost: images and video minutes whose current labels
    Rekognition made for them (not copies, not the offline labeller), at list prices."""
    from sqlalchemy import case, func, select

    from catalog.read.groupings import subset_ids
    from catalog.store.schema import LabelResult as LabelResultRow
    from catalog.store.schema import Media

    latest = (
        select(func.max(LabelResultRow.id))
        .where(LabelResultRow.media_id == Media.id)
        .correlate(Media)
        .scalar_subquery()
    )
    images, video_ms = session.execute(
        select(
            func.count(case((Media.kind == KIND_IMAGE, 1))),
            func.sum(case((Media.kind == KIND_VIDEO, Media.duration_ms))),
        )
        .join(LabelResultRow, LabelResultRow.id == latest)
        .where(
            Media.id.in_(subset_ids(subset)),
            Media.status == STATUS_LABELLED,
            LabelResultRow.labeller == LABELLER_REKOGNITION,
            LabelResultRow.reused_from_media_id.is_(None),
        )
    ).one()
    return estimate_cost(images=int(images or 0), video_ms=int(video_ms or 0))


def has_offline_runs(source: Session | Reader) -> bool:
    """True when some sync ran another labeller than Rekognition (sync_runs is small)."""
    found = as_reader(source).db.first(
        "SELECT id FROM sync_runs WHERE labeller != :labeller LIMIT 1",
        {"labeller": LABELLER_REKOGNITION},
    )
    return found is not None
