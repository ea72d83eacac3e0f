"""Counters on a sync run's row that its writes add to: what the run paid Rekognition for."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from catalog.store.schema import SyncRun


def add_to_run(session: Session, run_id: int | None, **counts: int) -> None:
    """Add each count to the run's column of that name (`billed_images=1`); no run, no change."""
    if run_id is None or not any(counts.values()):
        return
    values = {name: getattr(SyncRun, name) + count for name, count in counts.items()}
    session.execute(update(SyncRun).where(SyncRun.id == run_id).values(**values))
