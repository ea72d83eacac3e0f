"""Running alerts beside a sync, a worker or a Lambda: evaluate queued results, deliver.

`AlertDispatcher` is a context manager: while it is open a thread evaluates queued results and
delivers due messages every `interval_s` (a worker delivers continuously this way); on exit it
evaluates what is left and drains the outbox, waiting at most `drain_s` for retries, so a sync
delivers what it committed before it exits. What stays queued (a target that is down) is picked
up by the next sync, worker or Lambda invocation. Alert problems are logged, never raised: they
do not fail the run.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from catalog.alerts.delivery import Deliverer, DeliveryCounts
from catalog.alerts.evaluation import BATCH_SIZE, evaluate_queued, queued_count
from catalog.alerts.targets import parse_target
from catalog.render.writers import json_text
from catalog.store.schema import AlertOutbox, utcnow

if TYPE_CHECKING:
    from catalog.aws.clients import AWSClients

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
EVALUATE_EVERY_S = 5.0
DRAIN_S = 5.0


def deliver_alerts(
    sessions: sessionmaker[Session], clients: AWSClients | None, drain_s: float = DRAIN_S
) -> DeliveryCounts:
    """Evaluate every queued result and deliver what is due (retrying up to `drain_s`)."""
    evaluate_queued(sessions)
    return Deliverer(sessions, clients).drain(drain_s)


def queue_message(
    sessions: sessionmaker[Session],
    targets: Sequence[str],
    payload: Mapping[str, Any],
    *,
    event_id: str,
    secret: str | None = None,
    rule_id: int | None = None,
) -> None:
    """Put one message (with its event id) in the outbox for each target."""
    body = json_text({"event_id": event_id, **payload})
    now = utcnow()
    rows = [
        {
            "event_id": event_id,
            "rule_id": rule_id,
            "target": parse_target(target).text,
            "secret": secret,
            "payload": body,
            "created_at": now,
            "attempts": 0,
            "next_attempt_at": now,
        }
        for target in dict.fromkeys(targets)
    ]
    if rows:
        with sessions.begin() as session:
            session.execute(insert(AlertOutbox), rows)


def new_event_id(prefix: str) -> str:
    """A fresh event id (for messages that are not about a (rule, media, result))."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class AlertDispatcher:
    """Evaluates and delivers alerts while a run goes on, and drains them when it ends."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clients: AWSClients | None = None,
        *,
        interval_s: float = INTERVAL_S,
        drain_s: float = DRAIN_S,
    ) -> None:
        self.sessions = sessions
        self.deliverer = Deliverer(sessions, clients)
        self.interval_s = interval_s
        self.drain_s = drain_s
        self.counts = DeliveryCounts()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start evaluating and delivering in the background."""
        self._thread = threading.Thread(target=self._loop, name="alerts", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the background thread, then evaluate what is left and drain the outbox."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush(self.drain_s)

    def __enter__(self) -> AlertDispatcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def flush(self, drain_s: float) -> None:
        """Evaluate what is queued and deliver what is due now (never raises)."""
        with self._lock:
            try:
                evaluate_queued(self.sessions)
                self.counts.add(self.deliverer.drain(drain_s))
            except Exception:  # alerts never fail the run: what is left stays queued
                log.warning("alert delivery stopped early; the rest stays queued", exc_info=True)

    def _loop(self) -> None:
        evaluated_at = time.monotonic()
        while not self._stop.wait(self.interval_s):
            # Rules are evaluated in large batches (their cost is per batch, not per result):
            # once a batch is queued, or every EVALUATE_EVERY_S; messages go out every tick.
            due = time.monotonic() - evaluated_at >= EVALUATE_EVERY_S
            with self._lock:
                try:
                    if due or queued_count(self.sessions) >= BATCH_SIZE:
                        evaluate_queued(self.sessions)
                        evaluated_at = time.monotonic()
                    self.counts.add(self.deliverer.drain(0.0))
                except Exception:  # alerts never fail the run: retried on the next tick
                    log.warning("alert evaluation or delivery failed; retrying", exc_info=True)
