"""View models for the templates: cards, label boxes in overlay units, timelines, chart bars.

Overlays and charts are SVG drawn from attributes alone (no inline styles or scripts), in a
0..1000 coordinate space the browser stretches over the picture or the chart area.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from catalog.errors import NotFoundError, QueryError
from catalog.read.details import LabelDetail, MediaDetail
from catalog.store.schema import SOURCE_FILE, STATUS_DELETED, Media

SCALE = 1000  # overlay and chart units per full width or height
PALETTE_SIZE = 10


@dataclass(frozen=True)
class QueryErrorView:
    """A malformed query: the parser's message and the query split at the error position."""

    message: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class BoxView:
    """One bounding box in overlay units, with its moment for videos."""

    x: float
    y: float
    width: float
    height: float
    confidence: float
    timestamp_ms: int | None


@dataclass(frozen=True)
class LabelView:
    """One label of an item: its place, its colour slot, what is stored and its boxes."""

    index: int
    colour: int
    label: LabelDetail
    boxes: list[BoxView]


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: its label, value, length in chart units and where it links."""

    label: str
    value: float
    text: str
    length: float
    link: str | None = None


def find_media(session: Session, media_id: int) -> Media:
    """A catalogued (not deleted) media row by id; NotFoundError otherwise."""
    media = session.get(Media, media_id)
    if media is None or media.status == STATUS_DELETED:
        raise NotFoundError(f"no media item {media_id} in the catalogue")
    return media


def display_name(key: str, source: str = "s3") -> str:
    """What a tile is called: an S3 key whole, a local file by its name."""
    if source != SOURCE_FILE:
        return key
    return key.rstrip("/").rsplit("/", 1)[-1] or key


def query_error(query: str, exc: QueryError) -> QueryErrorView:
    """The error with the query split where the parser stopped (position is 1-based)."""
    if exc.position is None:
        return QueryErrorView(exc.message, None, None)
    at = max(0, min(len(query), exc.position - 1))
    return QueryErrorView(exc.message, query[:at], query[at:])


def card(hit: Any) -> dict[str, Any]:
    """What a result tile shows."""
    return {
        "id": hit.media_id,
        "name": display_name(hit.key, "file" if hit.uri.startswith("file://") else "s3"),
        "uri": hit.uri,
        "kind": hit.kind,
        "matches": hit.matches,
        "modified": hit.last_modified_at,
        "size_bytes": hit.size_bytes,
    }


def media_labels(detail: MediaDetail) -> list[LabelView]:
    """Labels best first, each with its boxes scaled to overlay units."""
    views = []
    for index, label in enumerate(detail.labels):
        boxes = [
            BoxView(
                x=round(i.left * SCALE, 2),
                y=round(i.top * SCALE, 2),
                width=round(i.width * SCALE, 2),
                height=round(i.height * SCALE, 2),
                confidence=i.confidence,
                timestamp_ms=i.timestamp_ms,
            )
            for i in label.instances
        ]
        views.append(LabelView(index=index, colour=index % PALETTE_SIZE, label=label, boxes=boxes))
    return views


def timeline(detail: Any) -> dict[str, Any]:
    """A video's labels over time: segment spans and moment ticks in chart units."""
    ends = [
        detail.duration_ms or 0,
        *(ts for label in detail.labels for ts in label.timestamps_ms),
        *(end for label in detail.labels for _, end, _ in label.segments),
    ]
    duration = max([1, *ends])
    rows = []
    for index, label in enumerate(detail.labels):
        rows.append(
            {
                "index": index,
                "colour": index % PALETTE_SIZE,
                "name": label.name,
                "segments": [
                    {
                        "x": round(start / duration * SCALE, 2),
                        "width": round(max(end - start, 0) / duration * SCALE, 2),
                        "start_ms": start,
                        "end_ms": end,
                    }
                    for start, end, _ in label.segments
                ],
                "moments": [
                    {"x": round(ts / duration * SCALE, 2), "ts": ts} for ts in label.timestamps_ms
                ],
            }
        )
    return {"duration_ms": duration, "rows": rows}


def bars(items: list[tuple[str, float]], text: Any = str, link: Any = None) -> list[Bar]:
    """Bars scaled so the largest value fills the chart."""
    peak = max([0.0, *(value for _, value in items)])
    return [
        Bar(
            label=name,
            value=value,
            text=text(value),
            length=round(value / peak * SCALE, 2) if peak else 0.0,
            link=link(name) if link else None,
        )
        for name, value in items
    ]


def stats_charts(result: Any, spread: Any) -> dict[str, Any]:
    """The bar lists of the statistics page."""
    from urllib.parse import urlencode

    from catalog.read.breakdowns import bin_label

    def label_link(name: str) -> str:
        params = {"label": name, **({"where": result.where} if result.where else {})}
        return "/stats?" + urlencode(params)

    def search_link(name: str) -> str:
        return "/?" + urlencode({"q": quote_name(name)})

    charts: dict[str, Any] = {
        "top_labels": bars(
            [(label.name, label.media) for label in result.labels],
            lambda n: f"{int(n):,}",
            label_link,
        ),
    }
    if spread is not None:
        charts["histogram"] = bars(
            [(bin_label(i), n) for i, n in enumerate(spread.histogram)], lambda n: f"{int(n):,}"
        )
        charts["cooccurring"] = bars(spread.cooccurring, lambda n: f"{int(n):,}", label_link)
        charts["by_prefix"] = bars(
            [(p or "(top level)", n) for p, n in spread.by_prefix[:20]], lambda n: f"{int(n):,}"
        )
        charts["by_month"] = bars(spread.by_month, lambda n: f"{int(n):,}")
        charts["search_link"] = search_link(spread.name)
    return charts


def quote_name(name: str) -> str:
    """A label name as the query language reads it: bare when it can be, else quoted."""
    import re

    if re.fullmatch(r"[\w][\w\-'&.+/]*", name) and name.lower() not in ("and", "or", "not"):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
