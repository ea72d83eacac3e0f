"""Views of statistics, exports and the HTML report's summary."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from catalog.render.writers import (
    format_confidence,
    inert,
    note,
    stdout_console,
    write_csv,
    write_json_object,
    write_records,
)

if TYPE_CHECKING:
    from pathlib import Path

    from catalog.read.breakdowns import LabelSpread
    from catalog.read.export import ExportRow
    from catalog.read.stats import LibraryStats
    from catalog.render.report import ReportResult

# -- statistics, reports and exports -------------------------------------------------------------

_BLOCKS = " ▏▎▍▌▋▊▉█"
STATS_LABEL_COLUMNS = ("name", "media", "detections", "mean_confidence", "max_confidence", "share")


def text_bar(value: float, maximum: float, width: int = 24) -> str:
    """A horizontal bar of block characters, `width` cells for `maximum`."""
    if maximum <= 0 or value <= 0:
        return ""
    eighths = round(value / maximum * width * 8)
    full, part = divmod(max(eighths, 1), 8)
    return "█" * full + (_BLOCKS[part] if part else "")


def _stats_sections(spread: LabelSpread) -> Iterator[dict[str, Any]]:
    from catalog.read.breakdowns import bin_label

    for i, count in enumerate(spread.histogram):
        yield {"section": "histogram", "key": bin_label(i), "media": count}
    for name, count in spread.cooccurring:
        yield {"section": "cooccurring", "key": name, "media": count}
    for prefix, count in spread.by_prefix:
        yield {"section": "prefix", "key": prefix, "media": count}
    for month, count in spread.by_month:
        yield {"section": "month", "key": month, "media": count}


def render_stats(result: LibraryStats, fmt: str, console: Console | None = None) -> None:
    """`catalog stats`: tables with bars, a JSON object, or CSV (labels, or the label's sections)."""
    if fmt == "json":
        write_json_object(result.to_dict())
        return
    if fmt == "csv":
        if result.label is not None:
            write_csv(_stats_sections(result.label), ["section", "key", "media"])
        else:
            write_csv((label.to_dict() for label in result.labels), list(STATS_LABEL_COLUMNS))
        return
    console = console or stdout_console()
    media = result.media
    scope = f" matching {result.where}" if result.where else ""
    console.print(
        Text.assemble(
            inert(f"Media{scope}", "bold"),
            f" {media.total:,} (images {media.images:,} · videos "
            f"{media.videos:,}) · labelled {media.labelled:,} · failed {media.failed:,} · "
            f"pending {media.pending:,} · deleted {media.deleted:,} (not counted)",
        ),
        highlight=False,
    )
    console.print(
        f"Distinct labels {result.distinct_labels:,} · video minutes labelled "
        f"{result.video_minutes_labelled:,.1f} · estimated Rekognition spend "
        f"${result.estimated_spend_usd:,.2f}",
        highlight=False,
    )
    if not result.labels:
        console.print("No labelled media.", highlight=False)
    else:
        biggest = max(label.media for label in result.labels)
        table = Table(title=f"Top {len(result.labels)} labels", header_style="bold")
        for column, justify in (
            ("label", "left"),
            ("media", "right"),
            ("share", "right"),
            ("detections", "right"),
            ("mean", "right"),
            ("max", "right"),
            ("", "left"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for label in result.labels:
            table.add_row(
                inert(label.name),
                f"{label.media:,}",
                f"{label.share:.1%}",
                f"{label.detections:,}",
                format_confidence(label.mean_confidence),
                format_confidence(label.max_confidence),
                text_bar(label.media, biggest, 16),
            )
        console.print(table)
    if result.label is not None:
        _render_spread(result.label, console)


def _render_spread(spread: LabelSpread, console: Console) -> None:
    from catalog.read.breakdowns import bin_label

    console.print()
    console.print(
        Text.assemble(inert(spread.name, "bold"), f" on {spread.media:,} media"), highlight=False
    )
    peak = max(spread.histogram) if spread.histogram else 0
    table = Table(title="Confidence histogram", header_style="bold")
    table.add_column("confidence")
    table.add_column("media", justify="right")
    table.add_column("")
    for i, count in reversed(list(enumerate(spread.histogram))):
        table.add_row(f"{bin_label(i)}%", f"{count:,}", text_bar(count, peak))
    console.print(table)
    for title, column, rows in (
        ("Co-occurring labels", "label", spread.cooccurring),
        ("By prefix", "prefix", spread.by_prefix[:20]),
        ("By month of LastModified", "month", spread.by_month),
    ):
        if not rows:
            continue
        top = max(count for _, count in rows)
        table = Table(title=title, header_style="bold")
        table.add_column(column)
        table.add_column("media", justify="right")
        table.add_column("")
        for key, count in rows:
            table.add_row(inert(key or "(top level)"), f"{count:,}", text_bar(count, top, 16))
        console.print(table)


EXPORT_COLUMNS = (
    "uri",
    "bucket",
    "key",
    "kind",
    "last_modified",
    "label",
    "confidence",
    "instance_count",
    "instances",
)


def render_export(
    rows: Iterable[ExportRow], fmt: str, out: TextIO | None = None, raw_csv: bool = False
) -> None:
    """`catalog export`: CSV (boxes as a JSON array per cell) or JSON Lines, row by row.

    CSV cells that a spreadsheet would evaluate are neutralised unless `raw_csv`.
    """

    def flatten(record: Mapping[str, Any]) -> list[dict[str, Any]]:
        modified = record["last_modified"]
        return [
            {
                **record,
                "instances": json.dumps(record["instances"], separators=(",", ":")),
                "last_modified": modified.isoformat() if modified is not None else None,
            }
        ]

    write_records(
        fmt,
        (row.to_dict() for row in rows),
        EXPORT_COLUMNS,
        csv_rows=flatten,
        out=out,
        raw_csv=raw_csv,
    )


def render_report_summary(result: ReportResult, path: Path) -> None:
    """One line on stderr about the report written, and any thumbnails that could not be made."""
    note(
        f"Wrote {path} ({result.charts} charts, {result.thumbnails} thumbnails, "
        f"{len(result.html) / 1_000_000:.1f} MB)"
    )
    for message in result.thumbnail_errors[:5]:
        note(f"no thumbnail for {message}")
    if len(result.thumbnail_errors) > 5:
        note(f"... and {len(result.thumbnail_errors) - 5} more without thumbnails")
