"""One view per command result: sync reports, media details, failures, search hits, labels, workers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from catalog.render.writers import (
    format_bytes,
    format_confidence,
    format_usd,
    inert,
    note,
    safe_text,
    stderr_console,
    stdout_console,
    write_csv,
    write_json_object,
    write_records,
    write_table,
)

if TYPE_CHECKING:
    from catalog.aws.notify import NotifySetupReport
    from catalog.ingest.types import SyncReport
    from catalog.ingest.worker import WorkerReport
    from catalog.read.details import FailureRow, MediaDetail
    from catalog.read.facets import Facets
    from catalog.read.labels import LabelCount
    from catalog.read.search import CountResult, LabelMatch, SearchResult, TextLineMatch

# -- command views -------------------------------------------------------------------------------


def render_sync_report(report: SyncReport, fmt: str) -> None:
    """The end-of-sync summary: a table on stderr, or a JSON object on stdout."""
    data: dict[str, Any] = {
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
        "still_failed": report.still_failed,
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
        if report.to_read_text_images or report.video_ms_to_read_text:
            data["would_read_text"] = {
                "images": report.to_read_text_images,
                "video_minutes": round(report.video_ms_to_read_text / 60_000, 2),
            }
            data["estimated_cost_by_feature_usd"] = {
                "labels": round(report.estimated_cost_usd - report.estimated_text_cost_usd, 4),
                "text": round(report.estimated_text_cost_usd, 4),
            }
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
        ]
        if report.to_read_text_images or report.video_ms_to_read_text:
            rows += [
                ("images to read text in", report.to_read_text_images),
                ("video minutes to read text in", f"{report.video_ms_to_read_text / 60_000:.1f}"),
            ]
        rows += [
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
            ("still failed from earlier runs", report.still_failed),
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
        extra = ""
        if report.estimated_text_cost_usd:
            labels_cost = report.estimated_cost_usd - report.estimated_text_cost_usd
            extra = f" (labels {format_usd(labels_cost)}, text {format_usd(report.estimated_text_cost_usd)})"
        console.print(
            f"Estimated Rekognition cost: {format_usd(report.estimated_cost_usd)}{extra}",
            highlight=False,
        )
    rate = (report.labelled + report.reused) / report.elapsed_s if report.elapsed_s > 0 else 0.0
    console.print(f"Took {report.elapsed_s:.1f}s ({rate:.1f} labelled/s).", highlight=False)
    if report.failed:
        console.print(
            f"[yellow]{report.failed} object(s) failed[/]: 'catalog failures' lists them; "
            "'catalog sync URI --retry-failed' tries again.",
            highlight=False,
        )
    if report.still_failed:
        console.print(
            f"[yellow]{report.still_failed} still failed from earlier runs[/] "
            "(--retry-failed tries them again).",
            highlight=False,
        )


def render_media_detail(detail: MediaDetail, fmt: str) -> None:
    """`catalog show`: JSON, or a header and a label table."""
    if fmt == "json":
        write_json_object(detail.to_dict())
        return
    console = stdout_console()
    console.print(inert(detail.uri, "bold"), highlight=False)
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
    console.print(inert(" · ".join(f for f in facts if f)), highlight=False, soft_wrap=True)
    if detail.error_code:
        console.print(
            Text.assemble(
                inert(detail.error_code, "red"), ": ", safe_text(detail.error_message or "")
            ),
            highlight=False,
        )
    if detail.kind == "video" and detail.labels:
        render_video_timeline(detail, console)
        _render_text(detail, console)
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
    _render_text(detail, console)


def _render_text(detail: MediaDetail, console: Console) -> None:
    """The lines of text the item shows (its words are in the JSON), when its text was read."""
    if detail.text is None:
        return
    lines = [t for t in detail.text if t.kind == "LINE"]
    if not lines:
        console.print(f"No text (read by {detail.text_reader}).", highlight=False, markup=False)
        return
    video = detail.kind == "video"
    rows = [
        (
            *((f"{(t.timestamp_ms or 0) / 1000:g}s",) if video else ()),
            t.text,
            format_confidence(t.confidence),
            f"{t.left:.2f},{t.top:.2f} {t.width:.2f}x{t.height:.2f}",
        )
        for t in lines
    ]
    columns = [*(("at",) if video else ()), "text", "confidence", "box (left,top width x height)"]
    write_table(rows, columns, console=console, justify={"confidence": "right"})


def _video_facts(detail: MediaDetail) -> list[str]:
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


def render_video_timeline(detail: MediaDetail, console: Console) -> None:
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
        table.add_row(inert(label.name), format_confidence(label.confidence), "".join(cells), spans)
    console.print(table)


def render_failures(failures: Iterable[FailureRow], fmt: str) -> None:
    """`catalog failures` in any format."""
    records = (f.to_dict() for f in failures)
    if write_records(fmt, records, ["uri", "kind", "code", "message", "attempts", "updated_at"]):
        return
    rows = [(r["uri"], r["kind"], r["code"], r["message"]) for r in records]
    if not rows:
        note("No failed media.")
        return
    write_table(rows, ["uri", "kind", "code", "message"], title=f"{len(rows)} failed")


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


SEARCH_CSV_COLUMNS = (
    "uri",
    "kind",
    "label",
    "text",
    "confidence",
    "timestamps_ms",
    "size_bytes",
    "last_modified_at",
    "url",
)


def _match_name(match: LabelMatch | TextLineMatch) -> str:
    """A label match by its label, a text match as text "..." (the line it met)."""
    from catalog.read.search import LabelMatch  # loaded already: a search made the match

    if isinstance(match, LabelMatch):
        return match.label
    return f'text "{match.text}"'


def _search_csv_rows(record: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """One CSV row per match of a hit (label or text; one empty row when none matched)."""
    modified = record["last_modified_at"]
    base = {
        "uri": record["uri"],
        "kind": record["kind"],
        "size_bytes": record["size_bytes"],
        "last_modified_at": modified.isoformat() if modified else "",
        "url": record.get("url") or "",
    }
    if not record["matches"]:
        yield {**base, "label": "", "text": "", "confidence": "", "timestamps_ms": ""}
    for match in record["matches"]:
        stamps = match.get("timestamps_ms")
        yield {
            **base,
            "label": match.get("label", ""),
            "text": match.get("text", ""),
            "confidence": match["confidence"],
            "timestamps_ms": " ".join(str(t) for t in stamps) if stamps is not None else "",
        }


def render_search_hits(
    result: SearchResult, fmt: str, limit: int | None = None, raw_csv: bool = False
) -> None:
    """`catalog search` results: a table, a JSON list, JSON Lines, or CSV (one row per match)."""
    records = (hit.to_dict() for hit in result.hits)
    if write_records(fmt, records, SEARCH_CSV_COLUMNS, csv_rows=_search_csv_rows, raw_csv=raw_csv):
        return
    rows = []
    with_urls = False
    for hit in result.hits:
        matches = "; ".join(
            f"{_match_name(m)} {format_confidence(m.confidence)}"
            + (f" @ {_format_timestamps(m.timestamps_ms)}" if m.timestamps_ms else "")
            for m in hit.matches
        )
        modified = f"{hit.last_modified_at:%Y-%m-%d}" if hit.last_modified_at else ""
        row = [hit.uri, hit.kind, matches, modified, format_bytes(hit.size_bytes)]
        if hit.url:
            with_urls = True
            row.append(hit.url)  # write_table shows every cell inert
        rows.append(row)
    if not rows:
        note(f"No media match '{result.query}'.")
        return
    title = f"{len(rows)} media"
    if limit is not None and len(rows) >= limit:
        title += f" (the first {limit}; --limit 0 shows all, --count counts them)"
    columns = ["uri", "kind", "matches", "modified", "size"] + (["url"] if with_urls else [])
    write_table(
        [row if with_urls else row[:5] for row in rows],
        columns,
        title=title,
        justify={"size": "right"},
        wide=("matches", "url"),
    )


def render_search_count(result: CountResult, fmt: str) -> None:
    """`catalog search --count`: the number alone, or {"query", "count"} for JSON formats."""
    if fmt in ("json", "jsonl"):
        sys.stdout.write(json.dumps({"query": result.query, "count": result.count}) + "\n")
    elif fmt == "csv":
        write_csv([{"query": result.query, "count": result.count}], ["query", "count"])
    else:
        sys.stdout.write(f"{result.count}\n")
    sys.stdout.flush()


def render_facets(query: str, facets: Facets) -> None:
    """`catalog search --facets`: one JSON object, the query with its result set's facets."""
    write_json_object({"query": query, **facets.to_dict()})


def render_labels(labels: Sequence[LabelCount], fmt: str, total: int | None = None) -> None:
    """`catalog labels`: the vocabulary with media counts."""
    records = (label.to_dict() for label in labels)
    columns = ["label", "media_count", "image_count", "video_count", "mean_confidence", "aliases"]
    if write_records(
        fmt, records, columns, csv_rows=lambda r: [{**r, "aliases": "; ".join(r["aliases"])}]
    ):
        return
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


def render_worker_report(report: WorkerReport, fmt: str) -> None:
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
        "dropped": report.dropped,
        "unreadable": report.unreadable,
        "video_jobs": {
            "started": report.video_jobs_started,
            "resumed": report.video_jobs_resumed,
            "completions": report.completions,
        },
        "visibility_timeout_s": report.visibility_timeout_s,
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
        f"{data['deleted_objects']} marked deleted, {data['returned']} returned to the queue, "
        f"{data['dropped']} dropped (outside --bucket/--prefix), "
        f"{report.video_jobs_started} video jobs started, {report.completions} collected."
    )


def render_notify_setup(report: NotifySetupReport, fmt: str) -> None:
    """The outcome of `notify setup`."""
    if fmt == "json":
        write_json_object(asdict(report))  # its fields, in order, are the JSON shape
        return
    where = f"s3://{report.bucket}/{report.prefix}"
    if report.notification_added:
        note(f"{where}: ObjectCreated/ObjectRemoved events now go to {report.queue_arn}.")
    else:
        note(f"{where}: events already go to {report.queue_arn}; nothing changed.")
    if report.queue_policy_updated:
        note("The queue's access policy now lets the bucket send to it.")
