"""The self-contained HTML report: totals, charts (inline SVG) and a thumbnail gallery (inline JPEG).

The file needs no network to open: charts are matplotlib SVG written into the page, pictures
are base64 JPEG data URIs, and the style sheet is inline.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from catalog import __version__
from catalog.errors import CatalogError, ConfigError, CredentialsError
from catalog.read.groupings import label_histogram, labels_by_month
from catalog.read.stats import (
    DEFAULT_TOP,
    FailureReason,
    LabelSummary,
    LibraryStats,
    failures_by_reason,
    library_stats,
    matching_media,
    top_media_for_label,
)
from catalog.render.writers import safe_text

log = logging.getLogger(__name__)

CHART_LABELS = 20  # bars in the top-labels chart
HISTOGRAM_LABELS = 6  # small multiples of confidence histograms
TIMELINE_LABELS = 5  # lines in labels-over-time
GALLERY_LABELS = 6
GALLERY_PER_LABEL = 4
THUMBNAIL_SIDE = 320
BAR_COLOUR = "#3b6ea5"


@dataclass
class ReportResult:
    """The page and what went into it."""

    html: str
    charts: int
    thumbnails: int
    thumbnail_errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GalleryItem:
    """One thumbnail (or why there is none)."""

    uri: str
    label: str
    confidence: float
    jpeg: bytes | None
    error: str | None = None
    text: tuple[str, ...] = ()  # the lines of text the item shows


# -- charts ------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    # Fixed margins: a layout engine would cost seconds per page for no visible gain.
    return Figure(figsize=(width, height))


def _integer_ticks(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _svg(figure: Any) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "catalog"}):
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prologue and DOCTYPE


def top_labels_chart(labels: Sequence[LabelSummary]) -> str:
    """Horizontal bars: media per label, most first."""
    shown = list(labels)[:CHART_LABELS]
    figure = _figure(8, max(2.0, 0.32 * len(shown) + 0.8))
    ax = figure.add_subplot()
    names = [_chart_text(label.name) for label in reversed(shown)]
    counts = [label.media for label in reversed(shown)]
    ax.barh(names, counts, color=BAR_COLOUR)
    ax.set_xlabel("media")
    ax.set_title("Top labels")
    _integer_ticks(ax.xaxis)
    for y, count in enumerate(counts):
        ax.annotate(f" {count:,}", (count, y), va="center", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    longest = max((len(name) for name in names), default=4)
    figure.subplots_adjust(
        left=min(0.45, 0.03 + 0.0125 * longest),
        right=0.95,
        top=1 - 0.45 / figure.get_figheight(),
        bottom=0.75 / figure.get_figheight(),
    )
    return _svg(figure)


def histograms_chart(histograms: dict[str, list[int]]) -> str:
    """Small multiples: each label's media per 10-point confidence bin."""
    names = list(histograms)
    cols = min(3, max(1, len(names)))
    rows = max(1, -(-len(names) // cols))
    figure = _figure(9, 2.3 * rows + 0.4)
    figure.suptitle("Confidence histograms (media per 10-point bin)")
    axes = figure.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(names):
            ax.set_visible(False)
            continue
        counts = histograms[names[i]]
        ax.bar([b * 10 + 5 for b in range(10)], counts, width=9, color=BAR_COLOUR)
        ax.set_xlim(0, 100)
        ax.set_xticks(range(0, 101, 20))
        ax.set_title(_chart_text(names[i]), fontsize=10)
        _integer_ticks(ax.yaxis)
        ax.spines[["top", "right"]].set_visible(False)
    height = figure.get_figheight()
    figure.subplots_adjust(
        left=0.06, right=0.98, top=1 - 0.6 / height, bottom=0.35 / height, hspace=0.5, wspace=0.25
    )
    return _svg(figure)


def timeline_chart(series: dict[str, list[tuple[str, int]]]) -> str:
    """Lines: media per month of LastModified for each label."""
    months = sorted({m for points in series.values() for m, _ in points if m != "unknown"})
    figure = _figure(9, 3.4)
    ax = figure.add_subplot()
    ax.set_title("Labels over time (media by month of LastModified)")
    for name, points in series.items():
        counts = dict(points)
        ax.plot(
            months,
            [counts.get(m, 0) for m in months],
            marker="o",
            markersize=3,
            label=_chart_text(name),
        )
    if months:
        step = max(1, len(months) // 12)
        ax.set_xticks(range(0, len(months), step), months[::step], rotation=45, ha="right")
    ax.set_ylabel("media")
    _integer_ticks(ax.yaxis)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    figure.subplots_adjust(left=0.07, right=0.82, top=0.9, bottom=0.25)
    return _svg(figure)


def failures_chart(reasons: Sequence[FailureReason]) -> str:
    """Horizontal bars: failed media per error code."""
    figure = _figure(8, max(1.6, 0.35 * len(reasons) + 0.9))
    ax = figure.add_subplot()
    ax.set_title("Failures by reason")
    if reasons:
        ax.barh(
            [_chart_text(r.code) for r in reversed(reasons)],
            [r.media for r in reversed(reasons)],
            color="#b5483b",
        )
        ax.set_xlabel("media")
        _integer_ticks(ax.xaxis)
    else:
        ax.text(0.5, 0.5, "No failures", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    ax.spines[["top", "right"]].set_visible(False)
    longest = max((len(r.code) for r in reasons), default=4)
    height = figure.get_figheight()
    figure.subplots_adjust(
        left=min(0.45, 0.03 + 0.0125 * longest),
        right=0.95,
        top=1 - 0.45 / height,
        bottom=0.65 / height,
    )
    return _svg(figure)


# -- gallery -----------------------------------------------------------------------------------


def build_gallery(
    session: Session,
    labels: Sequence[LabelSummary],
    fetch: Callable[[str], bytes] | None,
    *,
    per_label: int = GALLERY_PER_LABEL,
    subset: Select[Any] | None = None,
) -> dict[str, list[GalleryItem]]:
    """The highest-confidence media of each label, as thumbnails with that label's boxes."""
    from catalog.read.details import get_media_detail
    from catalog.render.draw import draw_media, to_jpeg_bytes

    gallery: dict[str, list[GalleryItem]] = {}
    stopped: str | None = None if fetch is not None else "not fetched"
    for label in labels:
        items: list[GalleryItem] = []
        for top in top_media_for_label(session, label.label_id, label.name, per_label, subset):
            try:
                detail = get_media_detail(session, top.media_id)
            except CatalogError as exc:
                items.append(GalleryItem(top.uri, top.label, top.confidence, None, exc.message))
                continue
            lines = tuple(dict.fromkeys(t.text for t in detail.text or () if t.kind == "LINE"))
            if fetch is None or stopped is not None:
                items.append(GalleryItem(top.uri, top.label, top.confidence, None, stopped, lines))
                continue
            try:
                picture = draw_media(
                    detail,
                    fetch(top.uri),
                    only_label=top.label,
                    max_side=THUMBNAIL_SIDE,
                    max_frames=4,
                )
                picture.thumbnail((THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE))
                items.append(
                    GalleryItem(
                        top.uri, top.label, top.confidence, to_jpeg_bytes(picture), text=lines
                    )
                )
            except CatalogError as exc:
                log.debug("thumbnail of %s failed", top.uri, exc_info=True)
                items.append(
                    GalleryItem(top.uri, top.label, top.confidence, None, exc.message, lines)
                )
                if isinstance(exc, CredentialsError | ConfigError):
                    stopped = exc.message  # every other fetch would fail the same way
        gallery[label.name] = items
    return gallery


# -- the page ----------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
.meta{color:#666}.totals{display:flex;flex-wrap:wrap;gap:.8rem}
.total{background:#f3f5f8;border-radius:6px;padding:.6rem 1rem;min-width:7rem}
.total b{display:block;font-size:1.4rem}table{border-collapse:collapse}
td,th{padding:.25rem .7rem;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}.chart svg{max-width:100%;height:auto}
.gallery{display:flex;flex-wrap:wrap;gap:.8rem}figure{margin:0;max-width:340px}
figure img{display:block;max-width:100%;border:1px solid #ccc}
figcaption{font-size:.8rem;color:#444;word-break:break-all}.missing{background:#f6f6f6;
border:1px dashed #bbb;width:320px;height:120px;display:flex;align-items:center;justify-content:center;
color:#888;font-size:.8rem;padding:.5rem;box-sizing:border-box}
"""


def _e(value: object) -> str:
    return html.escape(safe_text(value), quote=True)


def _chart_text(value: object) -> str:
    """A name as chart text: controls shown inert, '$' literal (not matplotlib's mathtext)."""
    return safe_text(value).replace("$", r"\$")


def _totals_html(summary: LibraryStats) -> str:
    media = summary.media
    cells = [
        ("media", f"{media.total:,}"),
        ("images", f"{media.images:,}"),
        ("videos", f"{media.videos:,}"),
        ("labelled", f"{media.labelled:,}"),
        ("failed", f"{media.failed:,}"),
        ("pending", f"{media.pending:,}"),
        ("deleted (excluded)", f"{media.deleted:,}"),
        ("distinct labels", f"{summary.distinct_labels:,}"),
        ("video minutes labelled", f"{summary.video_minutes_labelled:,.1f}"),
        ("estimated Rekognition spend", f"${summary.estimated_spend_usd:,.2f}"),
    ]
    return (
        '<div class="totals">'
        + "".join(f'<div class="total"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in cells)
        + "</div>"
    )


def _labels_table(labels: Sequence[LabelSummary]) -> str:
    head = "<tr><th>label</th><th>media</th><th>detections</th><th>mean</th><th>max</th><th>share</th></tr>"
    rows = "".join(
        f"<tr><td>{_e(s.name)}</td><td>{s.media:,}</td><td>{s.detections:,}</td>"
        f"<td>{s.mean_confidence:.1f}%</td><td>{s.max_confidence:.1f}%</td><td>{s.share:.1%}</td></tr>"
        for s in labels
    )
    return f"<table>{head}{rows}</table>"


def _gallery_html(gallery: dict[str, list[GalleryItem]]) -> str:
    parts = []
    for name, items in gallery.items():
        parts.append(f"<h3>{_e(name)}</h3><div class='gallery'>")
        for item in items:
            caption = f"{_e(item.uri)}<br>{_e(item.label)} {item.confidence:.1f}%"
            if item.text:
                shown = ", ".join(f"“{_e(line)}”" for line in item.text[:6])
                caption += f"<br><span class='text'>text: {shown}</span>"
            if item.jpeg is not None:
                data = base64.b64encode(item.jpeg).decode("ascii")
                picture = f'<img alt="{_e(item.label)} in {_e(item.uri)}" src="data:image/jpeg;base64,{data}">'
            else:
                picture = f'<div class="missing">no thumbnail: {_e(item.error or "")}</div>'
            parts.append(f"<figure>{picture}<figcaption>{caption}</figcaption></figure>")
        if not items:
            parts.append("<p class='meta'>No media.</p>")
        parts.append("</div>")
    return "".join(parts)


def build_report(
    session: Session,
    *,
    where: str | None = None,
    top: int = DEFAULT_TOP,
    fetch: Callable[[str], bytes] | None = None,
    subset: Select[Any] | None = None,
    gallery_labels: int = GALLERY_LABELS,
    per_label: int = GALLERY_PER_LABEL,
) -> ReportResult:
    """The whole HTML page; `fetch(uri) -> bytes` supplies pictures for the gallery."""
    try:
        import matplotlib  # noqa: F401
    except ModuleNotFoundError as exc:
        raise CatalogError(
            "the report needs matplotlib: pip install 'catalog[report]' (or pip install matplotlib)"
        ) from exc
    if subset is None:
        subset = matching_media(where, session)
    summary = library_stats(session, top=top, where=where, subset=subset)
    names = [label.name for label in summary.labels]
    histograms = {
        label.name: label_histogram(session, label.label_id, subset)
        for label in summary.labels[:HISTOGRAM_LABELS]
    }
    timeline = labels_by_month(
        session, {label.label_id: label.name for label in summary.labels[:TIMELINE_LABELS]}, subset
    )
    reasons = failures_by_reason(session)
    gallery = build_gallery(
        session, summary.labels[:gallery_labels], fetch, per_label=per_label, subset=subset
    )
    charts: list[tuple[str, str, str]] = [
        ("top-labels", "Top labels", top_labels_chart(summary.labels) if names else ""),
        ("histograms", "Confidence", histograms_chart(histograms) if names else ""),
        ("timeline", "Labels over time", timeline_chart(timeline) if names else ""),
        ("failures", "Failures by reason", failures_chart(reasons)),
    ]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    scope = f"media matching <code>{_e(where)}</code>" if summary.where else "the whole library"
    body = [
        f"<h1>Media catalogue report</h1><p class='meta'>{scope} · generated {generated} · catalog {_e(__version__)}</p>",
        "<h2>Totals</h2>",
        _totals_html(summary),
    ]
    for anchor, title, svg in charts:
        body.append(f"<h2 id='{anchor}'>{_e(title)}</h2>")
        if anchor == "top-labels" and names:
            body.append(_labels_table(summary.labels))
        if anchor == "failures" and summary.where:
            body.append("<p class='meta'>Failures are counted over the whole library.</p>")
        body.append(
            f"<div class='chart' id='chart-{anchor}'>{svg}</div>"
            if svg
            else "<p class='meta'>No labelled media.</p>"
        )
    body.append("<h2 id='gallery'>Highest-confidence media</h2>")
    body.append(_gallery_html(gallery))
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Media catalogue report</title><style>{_STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    thumbnails = sum(1 for items in gallery.values() for item in items if item.jpeg is not None)
    errors = [
        f"{item.uri}: {item.error}" for items in gallery.values() for item in items if item.error
    ]
    return ReportResult(page, sum(1 for c in charts if c[2]), thumbnails, errors)


def save_report(result: ReportResult, path: Path) -> Path:
    """Write the page to `path` (UTF-8)."""
    try:
        path.write_text(result.html, encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def ensure_writable(path: Path) -> None:
    """Fail before the (slow) build when the report could not be written."""
    if not path.parent.is_dir():
        raise CatalogError(f"cannot write {path}: no directory {path.parent}")
    if path.is_dir():
        raise CatalogError(f"cannot write {path}: it is a directory")
