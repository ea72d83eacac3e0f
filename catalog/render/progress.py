"""Progress displays: a rich progress bar for syncs on a TTY, plain lines otherwise and for workers."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.text import Text

from catalog.render.writers import inert, safe_text, stderr_console

if TYPE_CHECKING:
    from catalog.ingest.types import EventHandler, SyncEvent

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
def sync_progress(enabled: bool = True) -> Iterator[EventHandler]:
    """An event handler: a rich progress display on a terminal, plain log lines otherwise."""
    console = stderr_console()
    counts = dict.fromkeys(_PROGRESS_KINDS, 0)
    counts["jobs"] = 0
    if not enabled:
        yield lambda _event: None
        return
    if not console.is_terminal:
        last = [time.monotonic()]

        def log(event: SyncEvent) -> None:
            if event.kind == "jobs":
                counts["jobs"] = event.count
            elif event.kind in counts:
                counts[event.kind] += event.count
            if event.kind in ("failed", "deleted", "log") or _is_worth_a_line(event):
                console.print(
                    inert(f"{event.kind}: {event.uri} {event.detail}".rstrip()),
                    highlight=False,
                    soft_wrap=True,
                )
            now = time.monotonic()
            if now - last[0] >= 5:
                last[0] = now
                console.print(_summary_line(counts), highlight=False, markup=False, soft_wrap=True)

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

        def update(event: SyncEvent) -> None:
            if event.kind == "jobs":  # a level (jobs running now), not a count of events
                counts["jobs"] = event.count
            elif event.kind in counts:
                counts[event.kind] += event.count
            if event.kind == "failed":
                progress.console.print(
                    Text.assemble(
                        ("failed", "red"), " ", safe_text(event.uri), ": ", safe_text(event.detail)
                    ),
                    highlight=False,
                )
            elif event.kind == "log":
                progress.console.print(
                    inert(f"{event.uri} {event.detail}".strip()), highlight=False
                )
            elif _is_worth_a_line(event):
                progress.console.print(
                    inert(f"skipped {event.uri}: {event.detail}"), highlight=False
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


def _is_worth_a_line(event: SyncEvent) -> bool:
    """A skip the user should hear about one by one: a link not followed, a non-file."""
    return event.kind == "skipped" and (
        "link" in event.detail or event.detail == "not a regular file"
    )


def _summary_line(counts: Mapping[str, int]) -> str:
    text = (
        f"listed {counts['listed']}  labelled {counts['labelled']}  reused {counts['reused']}  "
        f"unchanged {counts['unchanged']}  skipped {counts['skipped']}  failed {counts['failed']}"
    )
    if counts.get("jobs"):
        text += f"  video jobs {counts['jobs']}"
    return text


# -- event-driven ingestion ----------------------------------------------------------------------


def worker_events(enabled: bool = True) -> EventHandler:
    """An event handler for long-running workers: one plain stderr line per object outcome."""
    if not enabled:
        return lambda _event: None
    import threading

    console = stderr_console()
    lock = threading.Lock()
    shown = ("labelled", "reused", "failed", "deleted", "pending", "log")

    def log(event: SyncEvent) -> None:
        if event.kind not in shown:
            return
        with lock:
            console.print(
                inert(f"{event.kind}: {event.uri} {event.detail}".replace("  ", " ").strip()),
                highlight=False,
                soft_wrap=True,
            )

    return log
