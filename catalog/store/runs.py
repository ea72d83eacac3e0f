"""Sync runs: starting and finishing one, and the counters its writes add to (what it paid
Rekognition for)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from catalog.store.schema import SyncRun, utcnow


def add_to_run(session: Session, run_id: int | None, **counts: int) -> None:
    """Add each count to the run's column of that name (`billed_images=1`); no run, no change."""
    if run_id is None or not any(counts.values()):
        return
    values = {name: getattr(SyncRun, name) + count for name, count in counts.items()}
    session.execute(update(SyncRun).where(SyncRun.id == run_id).values(**values))


def start_sync_run(session: Session, source: str, labeller: str) -> SyncRun:
    """A new sync run row."""
    run = SyncRun(source=source, labeller=labeller, started_at=utcnow(), status="running")
    session.add(run)
    session.flush()
    return run


def finish_sync_run(session: Session, run_id: int, status: str, counts: dict[str, int]) -> None:
    """Close a sync run with its final counts."""
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), **counts}
    session.execute(update(SyncRun).where(SyncRun.id == run_id).values(**values))
