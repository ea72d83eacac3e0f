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
from rich.table import Table

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
        f"[bold red]Error:[/] {message}", highlight=False, markup=True, soft_wrap=True
    )


def note(message: str) -> None:
    """One informational line on stderr."""
    stderr_console().print(message, highlight=False, markup=False, soft_wrap=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def write_json(records: Iterable[Mapping[str, Any]], out: TextIO | None = None) -> None:
    """A JSON list, streamed one record at a time."""
    out = out or sys.stdout
    out.write("[")
    first = True
    for record in records:
        out.write("\n  " if first else ",\n  ")
        out.write(json.dumps(record, default=_json_default, ensure_ascii=False))
        first = False
    out.write("\n]\n" if not first else "]\n")
    out.flush()


def write_json_object(value: Mapping[str, Any], out: TextIO | None = None) -> None:
    """One JSON object, indented."""
    out = out or sys.stdout
    out.write(json.dumps(value, default=_json_default, ensure_ascii=False, indent=2) + "\n")
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
        table.add_row(*("" if v is None else str(v) for v in row))
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
            if event.kind in counts:
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
            if event.kind in counts:
                counts[event.kind] += event.count
            elif event.kind == "jobs":
                counts["jobs"] = event.count
            if event.kind == "failed":
                progress.console.log(
                    f"[red]failed[/] {event.uri}: {event.detail}", markup=True, highlight=False
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
    for reason, count in sorted(report.skipped.items()):
        rows.append((f"skipped: {reason}", count))
    for name, value in rows:
        table.add_row(name, str(value))
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
    console.print(f"[bold]{detail.uri}[/]", highlight=False)
    facts = [
        f"{detail.kind}, {detail.status}",
        format_bytes(detail.size_bytes),
        f"{detail.width}x{detail.height}" if detail.width else "",
        f"modified {detail.last_modified_at:%Y-%m-%d %H:%M}" if detail.last_modified_at else "",
        f"labelled by {detail.labeller} {detail.model_version or ''}".strip()
        if detail.labeller
        else "",
    ]
    console.print(" · ".join(f for f in facts if f), highlight=False)
    if detail.error_code:
        console.print(f"[red]{detail.error_code}[/]: {detail.error_message}", highlight=False)
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


def render_video_timeline(detail: Any, console: Console) -> None:
    """A video's labels over time: one bar per label, marks where it was seen."""
    duration = max(
        [detail.duration_ms or 0, *(ts for label in detail.labels for ts in label.timestamps_ms)]
    )
    width = 50
    table = Table(header_style="bold")
    table.add_column("label")
    table.add_column("best", justify="right")
    table.add_column(f"0 … {duration / 1000:.1f}s")
    table.add_column("segments")
    for label in detail.labels:
        cells = [" "] * width
        for start, end, _ in label.segments:
            first = int(start / duration * (width - 1)) if duration else 0
            last = int(end / duration * (width - 1)) if duration else 0
            for i in range(first, last + 1):
                cells[i] = "█"
        spans = ", ".join(f"{s / 1000:.1f}–{e / 1000:.1f}s" for s, e, _ in label.segments[:4])
        if len(label.segments) > 4:
            spans += f" (+{len(label.segments) - 4})"
        table.add_row(label.name, format_confidence(label.confidence), "".join(cells), spans)
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
