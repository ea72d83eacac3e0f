"""Summary tables kept exact on every write: media totals, label stats and histograms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from catalog.store.schema import KIND_VIDEO, Label, LabelStat, Media
from catalog.store.units import histogram_bin


def labels_by_media_count() -> Select[Any]:
    """Every label some media carry with its label_stats figures, most common first, then by name.

    Columns: label_id, name, media_count, image_count, video_count, detection_count,
    confidence_sum_x100.
    """
    return (
        select(
            Label.id.label("label_id"),
            Label.name,
            LabelStat.media_count,
            LabelStat.image_count,
            LabelStat.video_count,
            LabelStat.detection_count,
            LabelStat.confidence_sum_x100,
        )
        .join(LabelStat, LabelStat.label_id == Label.id)
        .where(LabelStat.media_count > 0)
        .order_by(LabelStat.media_count.desc(), Label.name)
    )


# -- summary upkeep ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TotalsKey:
    kind: str
    status: str
    size_bytes: int
    duration_ms: int


def _totals_key(media: Media) -> _TotalsKey:
    return _TotalsKey(
        media.kind, media.status, int(media.size_bytes or 0), int(media.duration_ms or 0)
    )


# Upserts of the summary tables. One SQL text serves SQLite and PostgreSQL alike (both speak
# INSERT .. ON CONFLICT .. DO UPDATE), and unlike the dialect insert() constructs it is compiled
# once and cached: these run several times for every object written.
_UPSERT_TOTALS = text(
    "INSERT INTO media_totals (kind, status, media_count, size_bytes, duration_ms) "
    "VALUES (:kind, :status, :media_count, :size_bytes, :duration_ms) "
    "ON CONFLICT (kind, status) DO UPDATE SET "
    "media_count = media_totals.media_count + excluded.media_count, "
    "size_bytes = media_totals.size_bytes + excluded.size_bytes, "
    "duration_ms = media_totals.duration_ms + excluded.duration_ms"
)
_UPSERT_LABEL_STATS = text(
    "INSERT INTO label_stats (label_id, media_count, image_count, video_count, detection_count, "
    "confidence_sum_x100) VALUES (:label_id, :media_count, :image_count, :video_count, "
    ":detection_count, :confidence_sum_x100) "
    "ON CONFLICT (label_id) DO UPDATE SET "
    "media_count = label_stats.media_count + excluded.media_count, "
    "image_count = label_stats.image_count + excluded.image_count, "
    "video_count = label_stats.video_count + excluded.video_count, "
    "detection_count = label_stats.detection_count + excluded.detection_count, "
    "confidence_sum_x100 = label_stats.confidence_sum_x100 + excluded.confidence_sum_x100"
)
_UPSERT_HISTOGRAM = text(
    "INSERT INTO label_histograms (label_id, bin, media_count) VALUES (:label_id, :bin, :media_count) "
    "ON CONFLICT (label_id, bin) DO UPDATE SET "
    "media_count = label_histograms.media_count + excluded.media_count"
)


def _move_totals(session: Session, before: _TotalsKey | None, after: _TotalsKey | None) -> None:
    if before == after:
        return
    changes: list[dict[str, Any]] = []
    if before is not None:
        changes.append(
            {
                "kind": before.kind,
                "status": before.status,
                "media_count": -1,
                "size_bytes": -before.size_bytes,
                "duration_ms": -before.duration_ms,
            }
        )
    if after is not None:
        changes.append(
            {
                "kind": after.kind,
                "status": after.status,
                "media_count": 1,
                "size_bytes": after.size_bytes,
                "duration_ms": after.duration_ms,
            }
        )
    # One lock order for concurrent writers (PostgreSQL would otherwise deadlock now and then).
    for change in sorted(changes, key=lambda c: (c["kind"], c["status"])):
        session.execute(_UPSERT_TOTALS, change)


def _apply_label_stats(
    session: Session, kind: str, rows: Sequence[dict[str, Any]], sign: int
) -> None:
    """Add (sign=1) or remove (sign=-1) one media item's detections from the label summaries."""
    if not rows:
        return
    ordered = sorted(rows, key=lambda r: r["label_id"])  # one lock order for concurrent writers
    is_video = kind == KIND_VIDEO
    session.execute(
        _UPSERT_LABEL_STATS,
        [
            {
                "label_id": r["label_id"],
                "media_count": sign,
                "image_count": 0 if is_video else sign,
                "video_count": sign if is_video else 0,
                "detection_count": sign * r["detection_count"],
                "confidence_sum_x100": sign * r["confidence_x100"],
            }
            for r in ordered
        ],
    )
    session.execute(
        _UPSERT_HISTOGRAM,
        [
            {
                "label_id": r["label_id"],
                "bin": histogram_bin(r["confidence_x100"]),
                "media_count": sign,
            }
            for r in ordered
        ],
    )
