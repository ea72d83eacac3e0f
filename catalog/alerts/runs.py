"""`sync --notify-run`: one message per finished sync run with its summary and spend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from catalog.alerts.dispatch import queue_message
from catalog.pricing import estimate_cost
from catalog.store.schema import SyncRun


def run_summary(session: Session, report: Any) -> dict[str, Any]:
    """The run's counts, failures and spend (what it paid Rekognition for)."""
    run = session.get(SyncRun, report.run_id) if report.run_id is not None else None
    images = run.billed_images if run is not None else 0
    video_ms = run.billed_video_ms if run is not None else 0
    return {
        "event": "sync_run",
        "run_id": report.run_id,
        "source": report.source,
        "status": (run.status if run is not None else None)
        or ("interrupted" if report.interrupted else "finished"),
        "started_at": run.started_at if run is not None else None,
        "finished_at": run.finished_at if run is not None else None,
        "elapsed_s": round(report.elapsed_s, 3),
        "counts": {**report.counts(), "failed": report.failed},
        "failures": [
            {"uri": f.uri, "kind": f.kind, "code": f.code, "message": f.message}
            for f in report.failures[:100]
        ],
        "spend": {
            "billed_images": images,
            "billed_video_ms": video_ms,
            "estimated_cost_usd": round(estimate_cost(images=images, video_ms=video_ms), 4),
        },
    }


def queue_run_notice(sessions: sessionmaker[Session], report: Any, targets: Sequence[str]) -> None:
    """Queue the finished run's summary for each target (event id run-RUNID-RANDOM)."""
    from catalog.alerts.dispatch import new_event_id

    with sessions() as session:
        summary = run_summary(session, report)
    queue_message(sessions, targets, summary, event_id=new_event_id(f"run-{report.run_id}"))
