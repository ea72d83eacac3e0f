"""Summary tables kept exact on every write: media totals, label stats and histograms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from catalog.store.schema import KIND_VIDEO, Media
from catalog.store.units import histogram_bin

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


_STAT_FIGURES = (
    "media_count",
    "image_count",
    "video_count",
    "detection_count",
    "confidence_sum_x100",
)


class SummaryChanges:
    """What one transaction's writes change in the summary tables, applied at once.

    `apply` writes every change in one lock order shared by all writers: label_stats by label,
    then label_histograms by (label, bin), then media_totals by (kind, status). Applied as each
    write happened, two writers re-labelling media with crossing label sets (one drops A and
    adds B, the other drops B and adds A) each held a row the other needed next, and PostgreSQL
    aborted one of them as a deadlock. Changes that cancel out (the same label re-stored with
    the same confidence) touch no row at all.
    """

    def __init__(self) -> None:
        # label -> its _STAT_FIGURES
        self._stats: dict[int, list[int]] = {}
        self._bins: dict[tuple[int, int], int] = {}
        # (kind, status) -> [media, bytes, duration]
        self._totals: dict[tuple[str, str], list[int]] = {}

    def labels(self, kind: str, rows: Sequence[dict[str, Any]], sign: int) -> None:
        """Add (sign=1) or remove (sign=-1) one media item's detections."""
        is_video = kind == KIND_VIDEO
        for row in rows:
            label_id = row["label_id"]
            figures = self._stats.setdefault(label_id, [0, 0, 0, 0, 0])
            figures[0] += sign
            figures[1 if not is_video else 2] += sign
            figures[3] += sign * row["detection_count"]
            figures[4] += sign * row["confidence_x100"]
            key = (label_id, histogram_bin(row["confidence_x100"]))
            self._bins[key] = self._bins.get(key, 0) + sign

    def move(self, before: _TotalsKey | None, after: _TotalsKey | None) -> None:
        """Move one media item between the totals (None: it was not there / is no longer)."""
        if before == after:
            return
        for key, sign in ((before, -1), (after, 1)):
            if key is not None:
                figures = self._totals.setdefault((key.kind, key.status), [0, 0, 0])
                figures[0] += sign
                figures[1] += sign * key.size_bytes
                figures[2] += sign * key.duration_ms

    def apply(self, session: Session) -> None:
        """Write the changes (see the class docstring) and forget them."""
        stats = [
            {"label_id": label_id, **dict(zip(_STAT_FIGURES, figures, strict=True))}
            for label_id, figures in sorted(self._stats.items())
            if any(figures)
        ]
        bins = [
            {"label_id": label_id, "bin": bin_, "media_count": n}
            for (label_id, bin_), n in sorted(self._bins.items())
            if n
        ]
        totals = [
            {
                "kind": kind,
                "status": status,
                "media_count": figures[0],
                "size_bytes": figures[1],
                "duration_ms": figures[2],
            }
            for (kind, status), figures in sorted(self._totals.items())
            if any(figures)
        ]
        for statement, rows in (
            (_UPSERT_LABEL_STATS, stats),
            (_UPSERT_HISTOGRAM, bins),
            (_UPSERT_TOTALS, totals),
        ):
            if rows:
                session.execute(statement, rows)
        self._stats.clear()
        self._bins.clear()
        self._totals.clear()
