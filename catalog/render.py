"""Every output format: rich tables and progress, JSON, JSON Lines and CSV writers.

Data goes to stdout, messages and progress to stderr, so `--format json | jq` always works.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "json", "jsonl", "csv")


def stdout_console() -> Console:
    """The console for data."""
    return Console(soft_wrap=False)


def stderr_console() -> Console:
    """The console for messages and progress."""
    return Console(stderr=True)


def error(message: str) -> None:
    """One error line on stderr."""
    stderr_console().print(
        f"[bold red]Error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True
    )


def note(message: str) -> None:
    """One informational line on stderr."""
    stderr_console().print(message, highlight=False, markup=False, soft_wrap=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_chunks(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The text of a JSON list, one record per chunk (what write_json prints, for streaming)."""
    yield "["
    first = True
    for record in records:
        yield ("\n  " if first else ",\n  ") + json.dumps(
            record, default=_json_default, ensure_ascii=False
        )
        first = False
    yield "\n]\n" if not first else "]\n"


def write_json(records: Iterable[Mapping[str, Any]], out: TextIO | None = None) -> None:
    """A JSON list, streamed one record at a time."""
    out = out or sys.stdout
    for chunk in json_chunks(records):
        out.write(chunk)
    out.flush()


def json_object_text(value: Mapping[str, Any]) -> str:
    """One JSON object, indented, with a final newline (what write_json_object prints)."""
    return json.dumps(value, default=_json_default, ensure_ascii=False, indent=2) + "\n"


def write_json_object(value: Mapping[str, Any], out: TextIO | None = None) -> None:
    """One JSON object, indented."""
    out = out or sys.stdout
    out.write(json_object_text(value))
    out.flush()


def write_jsonl(records: Iterable[Mapping[str, Any]], out: TextIO | None = None) -> None:
    """One JSON object per line."""
    out = out or sys.stdout
    for record in records:
        out.write(json.dumps(record, default=_json_default, ensure_ascii=False) + "\n")
    out.flush()


def write_csv(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], out: TextIO | None = None
) -> None:
    """CSV with a header row."""
    out = out or sys.stdout
    writer = csv.DictWriter(
        out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    out.flush()


def write_table(
    rows: Iterable[Sequence[Any]],
    columns: Sequence[str],
    title: str | None = None,
    console: Console | None = None,
    justify: Mapping[str, str] | None = None,
) -> None:
    """A rich table on stdout."""
    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, justify=(justify or {}).get(column, "left"))  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    (console or stdout_console()).print(table)


def format_confidence(value: float | None) -> str:
    """92.5 -> '92.5%'."""
    return "" if value is None else f"{value:.1f}%"


def format_bytes(value: int | None) -> str:
    """Human-readable size."""
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(value)


# -- progress ------------------------------------------------------------------------------------

_PROGRESS_KINDS = (
    "listed",
    "labelled",
    "reused",
    "unchanged",
    "skipped",
    "failed",
    "deleted",
    "pending",
)


@contextmanager
def sync_progress(enabled: bool = True) -> Iterator[Callable[[Any], None]]:
    """An event handler: a rich progress display on a terminal, plain log lines otherwise."""
    console = stderr_console()
    counts = dict.fromkeys(_PROGRESS_KINDS, 0)
    counts["jobs"] = 0
    if not enabled:
        yield lambda _event: None
        return
    if not console.is_terminal:
        last = [time.monotonic()]

        def log(event: Any) -> None:
            if event.kind == "jobs":
                counts["jobs"] = event.count
            elif event.kind in counts:
                counts[event.kind] += event.count
            if event.kind in ("failed", "deleted", "log"):
                console.print(
                    f"{event.kind}: {event.uri} {event.detail}".rstrip(),
                    highlight=False,
                    markup=False,
                )
            now = time.monotonic()
            if now - last[0] >= 5:
                last[0] = now
                console.print(_summary_line(counts), highlight=False, markup=False)

        yield log
        return

    from rich.markup import escape
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    started = time.monotonic()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
        console=console,
        transient=False,
    )
    with progress:
        task_id = progress.add_task("syncing", total=0, stats="", eta="-")

        def update(event: Any) -> None:
            if event.kind == "jobs":  # a level (jobs running now), not a count of events
                counts["jobs"] = event.count
            elif event.kind in counts:
                counts[event.kind] += event.count
            if event.kind == "failed":
                progress.console.log(
                    f"[red]failed[/] {escape(event.uri)}: {escape(event.detail)}",
                    markup=True,
                    highlight=False,
                )
            elif event.kind == "log":
                progress.console.log(
                    f"{event.uri} {event.detail}".strip(), markup=False, highlight=False
                )
            done = sum(
                counts[k]
                for k in ("labelled", "reused", "unchanged", "skipped", "failed", "pending")
            )
            elapsed = max(time.monotonic() - started, 1e-6)
            rate = (counts["labelled"] + counts["reused"]) / elapsed
            remaining = max(counts["listed"] - done, 0)
            eta = f"{remaining / rate:.0f}s" if rate > 0 and remaining else "-"
            progress.update(
                task_id,
                total=max(counts["listed"], done),
                completed=done,
                stats=_summary_line(counts) + f" | {rate:.1f}/s",
                eta=eta,
            )

        yield update


def _summary_line(counts: Mapping[str, int]) -> str:
    text = (
        f"listed {counts['listed']}  labelled {counts['labelled']}  reused {counts['reused']}  "
        f"unchanged {counts['unchanged']}  skipped {counts['skipped']}  failed {counts['failed']}"
    )
    if counts.get("jobs"):
        text += f"  video jobs {counts['jobs']}"
    return text


# -- command views -------------------------------------------------------------------------------


def render_sync_report(report: Any, fmt: str) -> None:
    """The end-of-sync summary: a table on stderr, or a JSON object on stdout."""
    data = {
        "source": report.source,
        "run_id": report.run_id,
        "dry_run": report.dry_run,
        "listed": report.listed,
        "labelled": report.labelled,
        "reused": report.reused,
        "unchanged": report.unchanged,
        "pending": report.pending,
        "skipped": report.skipped_total,
        "skipped_reasons": dict(report.skipped),
        "failed": report.failed,
        "deleted": report.deleted,
        "elapsed_s": round(report.elapsed_s, 3),
        "failures": [
            {"uri": f.uri, "kind": f.kind, "code": f.code, "message": f.message}
            for f in report.failures
        ],
    }
    if report.dry_run:
        data["would_label"] = {"images": report.to_label_images, "videos": report.to_label_videos}
        data["estimated_cost_usd"] = round(report.estimated_cost_usd, 4)
        data["video_minutes"] = round(report.video_ms_to_label / 60_000, 2)
    else:
        data["video_jobs"] = {
            "started": report.video_jobs_started,
            "resumed": report.video_jobs_resumed,
        }
    if fmt == "json":
        write_json_object(data)
        return
    console = stderr_console()
    table = Table(
        title="Dry run: nothing was labelled" if report.dry_run else "Sync summary",
        header_style="bold",
    )
    table.add_column("")
    table.add_column("objects", justify="right")
    rows: list[tuple[str, Any]] = [("listed", report.listed)]
    if report.dry_run:
        rows += [
            ("images to label", report.to_label_images),
            ("videos to label", report.to_label_videos),
            ("video minutes to label", f"{report.video_ms_to_label / 60_000:.1f}"),
            ("unchanged", report.unchanged),
            ("to mark deleted", report.deleted),
        ]
    else:
        rows += [
            ("labelled", report.labelled),
            ("reused (no Rekognition call)", report.reused),
            ("unchanged", report.unchanged),
            ("videos pending", report.pending),
            ("failed", report.failed),
            ("deleted", report.deleted),
        ]
        if report.video_jobs_started or report.video_jobs_resumed:
            rows.insert(
                -2,
                (
                    "video jobs started / resumed",
                    f"{report.video_jobs_started} / {report.video_jobs_resumed}",
                ),
            )
    for reason, count in sorted(report.skipped.items()):
        rows.append((f"skipped: {reason}", count))
    for name, value in rows:
        table.add_row(Text(name), str(value))
    console.print(table)
    if report.dry_run:
        console.print(
            f"Estimated Rekognition cost: ${report.estimated_cost_usd:.2f}", highlight=False
        )
    rate = (report.labelled + report.reused) / report.elapsed_s if report.elapsed_s > 0 else 0.0
    console.print(f"Took {report.elapsed_s:.1f}s ({rate:.1f} labelled/s).", highlight=False)
    if report.failed:
        console.print(
            f"[yellow]{report.failed} object(s) failed[/]: 'catalog failures' lists them; "
            "'catalog sync URI --retry-failed' tries again.",
            highlight=False,
        )


def render_media_detail(detail: Any, fmt: str) -> None:
    """`catalog show`: JSON, or a header and a label table."""
    if fmt == "json":
        write_json_object(detail.to_dict())
        return
    console = stdout_console()
    console.print(f"[bold]{escape(detail.uri)}[/]", highlight=False)
    facts = [
        f"{detail.kind}, {detail.status}",
        format_bytes(detail.size_bytes),
        f"{detail.width}x{detail.height}" if detail.width else "",
        *(_video_facts(detail) if detail.kind == "video" else ()),
        f"modified {detail.last_modified_at:%Y-%m-%d %H:%M}" if detail.last_modified_at else "",
        f"labelled by {detail.labeller} {detail.model_version or ''}".strip()
        if detail.labeller
        else "",
    ]
    console.print(" · ".join(f for f in facts if f), highlight=False, markup=False, soft_wrap=True)
    if detail.error_code:
        console.print(
            f"[red]{escape(detail.error_code)}[/]: {escape(detail.error_message or '')}",
            highlight=False,
        )
    if detail.kind == "video" and detail.labels:
        render_video_timeline(detail, console)
        return
    rows = []
    for label in detail.labels:
        boxes = "; ".join(
            f"{i.left:.2f},{i.top:.2f} {i.width:.2f}x{i.height:.2f} ({i.confidence:.0f}%)"
            for i in label.instances
        )
        rows.append(
            (label.name, format_confidence(label.confidence), ", ".join(label.parents), boxes)
        )
    write_table(
        rows,
        ["label", "confidence", "parents", "instances (left,top width x height)"],
        console=console,
        justify={"confidence": "right"},
    )


def _video_facts(detail: Any) -> list[str]:
    """Duration, codec, container and frame rate of a video, as far as they are known."""
    facts = []
    if detail.duration_ms is not None:
        facts.append(f"{detail.duration_ms / 1000:.1f} s")
    codec = " in ".join(v for v in (detail.codec, detail.container_format) if v)
    if codec:
        facts.append(codec)
    if detail.frame_rate:
        facts.append(f"{detail.frame_rate:g} fps")
    return facts


def render_video_timeline(detail: Any, console: Console) -> None:
    """A video's labels over time: one bar per label, filled where its segments are.

    The bar takes the width the terminal leaves after the other columns (10 to 60 cells).
    """
    duration = max(
        [
            1,
            detail.duration_ms or 0,
            *(ts for label in detail.labels for ts in label.timestamps_ms),
        ]
    )
    rows = []
    for label in detail.labels:
        spans = ", ".join(f"{s / 1000:.1f}–{e / 1000:.1f}s" for s, e, _ in label.segments[:3])
        if len(label.segments) > 3:
            spans += f" (+{len(label.segments) - 3})"
        rows.append((label, spans))
    name_width = max([5, *(len(label.name) for label, _ in rows)])
    spans_width = max([8, *(len(spans) for _, spans in rows)])
    # Four columns cost 13 cells of borders and padding; "best" is at most 6 ("100.0%").
    width = max(10, min(60, console.width - 13 - name_width - 6 - spans_width))
    end_mark = f"{duration / 1000:.1f}s"
    table = Table(header_style="bold")
    table.add_column("label", no_wrap=True)
    table.add_column("best", justify="right", no_wrap=True)
    table.add_column("0s" + end_mark.rjust(width - 2), no_wrap=True, min_width=width)
    table.add_column("segments", no_wrap=True)
    for label, spans in rows:
        cells = [" "] * width
        for start, end, _ in label.segments:
            first = min(width - 1, int(start / duration * width))
            last = min(width - 1, int(end / duration * width))
            for i in range(first, last + 1):
                cells[i] = "█"
        table.add_row(Text(label.name), format_confidence(label.confidence), "".join(cells), spans)
    console.print(table)


def render_failures(failures: Iterable[Any], fmt: str) -> None:
    """`catalog failures` in any format."""
    records = (f.to_dict() for f in failures)
    if fmt == "json":
        write_json(records)
    elif fmt == "jsonl":
        write_jsonl(records)
    elif fmt == "csv":
        write_csv(records, ["uri", "kind", "code", "message", "attempts", "updated_at"])
    else:
        rows = [(r["uri"], r["kind"], r["code"], r["message"]) for r in records]
        if not rows:
            note("No failed media.")
            return
        write_table(rows, ["uri", "kind", "code", "message"], title=f"{len(rows)} failed")


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


def _stats_sections(spread: Any) -> Iterator[dict[str, Any]]:
    from catalog.stats import bin_label

    for i, count in enumerate(spread.histogram):
        yield {"section": "histogram", "key": bin_label(i), "media": count}
    for name, count in spread.cooccurring:
        yield {"section": "cooccurring", "key": name, "media": count}
    for prefix, count in spread.by_prefix:
        yield {"section": "prefix", "key": prefix, "media": count}
    for month, count in spread.by_month:
        yield {"section": "month", "key": month, "media": count}


def render_stats(result: Any, fmt: str, console: Console | None = None) -> None:
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
        f"[bold]Media{scope}[/] {media.total:,} (images {media.images:,} · videos "
        f"{media.videos:,}) · labelled {media.labelled:,} · failed {media.failed:,} · "
        f"pending {media.pending:,} · deleted {media.deleted:,} (not counted)",
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
                label.name,
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


def _render_spread(spread: Any, console: Console) -> None:
    from catalog.stats import bin_label

    console.print(f"\n[bold]{spread.name}[/] on {spread.media:,} media", highlight=False)
    peak = max(spread.histogram) if spread.histogram else 0
    table = Table(title="Confidence histogram", header_style="bold")
    table.add_column("confidence")
    table.add_column("media", justify="right")
    table.add_column("")
    for i, count in reversed(list(enumerate(spread.histogram))):
        table.add_row(f"{bin_label(i)}%", f"{count:,}", text_bar(count, peak))
    console.print(table)
    for title, column, rows in (
        (
            "Co-occurring labels"
            + (
                f" (estimated from {spread.cooccurring_sample:,} sampled media)"
                if spread.cooccurring_sample
                else ""
            ),
            "label",
            spread.cooccurring,
        ),
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
            table.add_row(key or "(top level)", f"{count:,}", text_bar(count, top, 16))
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


def render_export(rows: Iterable[Any], fmt: str, out: TextIO | None = None) -> None:
    """`catalog export`: CSV (boxes as a JSON array per cell) or JSON Lines, row by row."""
    records = (row.to_dict() for row in rows)
    if fmt == "jsonl":
        write_jsonl(records, out)
        return

    def flatten(record: dict[str, Any]) -> dict[str, Any]:
        record["instances"] = json.dumps(record["instances"], separators=(",", ":"))
        if record["last_modified"] is not None:
            record["last_modified"] = record["last_modified"].isoformat()
        return record

    write_csv((flatten(r) for r in records), list(EXPORT_COLUMNS), out)


def render_report_summary(result: Any, path: Any) -> None:
    """One line on stderr about the report written, and any thumbnails that could not be made."""
    note(
        f"Wrote {path} ({result.charts} charts, {result.thumbnails} thumbnails, "
        f"{len(result.html) / 1_000_000:.1f} MB)"
    )
    for message in result.thumbnail_errors[:5]:
        note(f"no thumbnail for {message}")
    if len(result.thumbnail_errors) > 5:
        note(f"... and {len(result.thumbnail_errors) - 5} more without thumbnails")


# -- search and labels ---------------------------------------------------------------------------


def render_hints(hints: Iterable[str]) -> None:
    """Search hints ("did you mean ...") on stderr, one per line."""
    for hint in hints:
        note(hint)


def _format_timestamps(timestamps_ms: Sequence[int], most: int = 6) -> str:
    shown = ", ".join(f"{ts / 1000:g}s" for ts in timestamps_ms[:most])
    if len(timestamps_ms) > most:
        shown += f" (+{len(timestamps_ms) - most})"
    return shown


def _search_csv_rows(hits: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for hit in hits:
        base = {
            "uri": hit.uri,
            "kind": hit.kind,
            "size_bytes": hit.size_bytes,
            "last_modified_at": hit.last_modified_at.isoformat() if hit.last_modified_at else "",
            "url": hit.url or "",
        }
        if not hit.matches:
            yield {**base, "label": "", "confidence": "", "timestamps_ms": ""}
        for match in hit.matches:
            stamps = match.timestamps_ms
            yield {
                **base,
                "label": match.label,
                "confidence": match.confidence,
                "timestamps_ms": " ".join(str(t) for t in stamps) if stamps is not None else "",
            }


def render_search_hits(result: Any, fmt: str, limit: int | None = None) -> None:
    """`catalog search` results: a table, a JSON list, JSON Lines, or CSV (one row per match)."""
    records = (hit.to_dict() for hit in result.hits)
    if fmt == "json":
        write_json(records)
        return
    if fmt == "jsonl":
        write_jsonl(records)
        return
    if fmt == "csv":
        columns = ["uri", "kind", "label", "confidence", "timestamps_ms", "size_bytes"]
        columns += ["last_modified_at", "url"]
        write_csv(_search_csv_rows(result.hits), columns)
        return
    rows = []
    with_urls = False
    for hit in result.hits:
        matches = "; ".join(
            f"{m.label} {format_confidence(m.confidence)}"
            + (f" @ {_format_timestamps(m.timestamps_ms)}" if m.timestamps_ms else "")
            for m in hit.matches
        )
        modified = f"{hit.last_modified_at:%Y-%m-%d}" if hit.last_modified_at else ""
        row = [hit.uri, hit.kind, matches, modified, format_bytes(hit.size_bytes)]
        if hit.url:
            with_urls = True
            row.append(hit.url)
        rows.append(row)
    if not rows:
        note(f"No media match '{result.query}'.")
        return
    title = f"{len(rows)} media"
    if limit is not None and len(rows) >= limit:
        title += f" (the first {limit}; --limit 0 shows all, --count counts them)"
    table = Table(title=title, header_style="bold")
    table.add_column("uri", overflow="fold", ratio=3)
    table.add_column("kind")
    table.add_column("matches", ratio=3)
    table.add_column("modified", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    if with_urls:
        table.add_column("url", overflow="fold", ratio=3)
    for row in rows:
        table.add_row(*(row if with_urls else row[:5]))
    stdout_console().print(table)


def render_search_count(result: Any, fmt: str) -> None:
    """`catalog search --count`: the number alone, or {"query", "count"} for JSON formats."""
    if fmt in ("json", "jsonl"):
        sys.stdout.write(json.dumps({"query": result.query, "count": result.count}) + "\n")
    elif fmt == "csv":
        write_csv([{"query": result.query, "count": result.count}], ["query", "count"])
    else:
        sys.stdout.write(f"{result.count}\n")
    sys.stdout.flush()


def render_labels(labels: Sequence[Any], fmt: str, total: int | None = None) -> None:
    """`catalog labels`: the vocabulary with media counts."""
    records = (label.to_dict() for label in labels)
    if fmt == "json":
        write_json(records)
    elif fmt == "jsonl":
        write_jsonl(records)
    elif fmt == "csv":
        flat = ({**r, "aliases": "; ".join(r["aliases"])} for r in records)
        columns = ["label", "media_count", "image_count", "video_count", "mean_confidence"]
        write_csv(flat, [*columns, "aliases"])
    else:
        if not labels:
            note("No labels match.")
            return
        rows = [
            (
                r["label"],
                r["media_count"],
                r["image_count"],
                r["video_count"],
                format_confidence(r["mean_confidence"]),
                ", ".join(r["aliases"]),
            )
            for r in records
        ]
        shown = len(rows)
        title = f"{shown} labels" if total in (None, shown) else f"{shown} of {total} labels"
        write_table(
            rows,
            ["label", "media", "images", "videos", "mean confidence", "aliases"],
            title=title,
            justify={"media": "right", "images": "right", "videos": "right"},
        )


# -- event-driven ingestion ----------------------------------------------------------------------


def worker_events(enabled: bool = True) -> Callable[[Any], None]:
    """An event handler for long-running workers: one plain stderr line per object outcome."""
    if not enabled:
        return lambda _event: None
    import threading

    console = stderr_console()
    lock = threading.Lock()
    shown = ("labelled", "reused", "failed", "deleted", "pending", "log")

    def log(event: Any) -> None:
        if event.kind not in shown:
            return
        with lock:
            console.print(
                f"{event.kind}: {event.uri} {event.detail}".replace("  ", " ").strip(),
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    return log


def render_worker_report(report: Any, fmt: str) -> None:
    """What a queue worker did before it stopped: JSON on stdout, or one line on stderr."""
    data = {
        "queue_url": report.queue_url,
        "received": report.received,
        "deleted": report.deleted,
        "returned": report.returned,
        "malformed": report.malformed,
        "test_events": report.test_events,
        "labelled": report.total("labelled"),
        "reused": report.total("reused"),
        "unchanged": report.total("unchanged"),
        "pending": report.total("pending"),
        "failed": report.total("failed"),
        "deleted_objects": report.total("deleted"),
        "stopped_by": report.stopped_by,
        "elapsed_s": round(report.elapsed_s, 3),
    }
    if fmt == "json":
        write_json_object(data)
        return
    note(
        f"Worker stopped ({report.stopped_by or 'done'}) after {report.elapsed_s:.1f}s: "
        f"{data['received']} messages, {data['labelled']} labelled, {data['reused']} reused, "
        f"{data['unchanged']} unchanged, {data['failed']} failed, "
        f"{data['deleted_objects']} marked deleted, {data['returned']} returned to the queue."
    )


def render_notify_setup(report: Any, fmt: str) -> None:
    """The outcome of `notify setup`."""
    data = {
        "bucket": report.bucket,
        "prefix": report.prefix,
        "queue_arn": report.queue_arn,
        "configuration_id": report.configuration_id,
        "notification_added": report.notification_added,
        "queue_policy_updated": report.queue_policy_updated,
    }
    if fmt == "json":
        write_json_object(data)
        return
    where = f"s3://{report.bucket}/{report.prefix}"
    if report.notification_added:
        note(f"{where}: ObjectCreated/ObjectRemoved events now go to {report.queue_arn}.")
    else:
        note(f"{where}: events already go to {report.queue_arn}; nothing changed.")
    if report.queue_policy_updated:
        note("The queue's access policy now lets the bucket send to it.")
