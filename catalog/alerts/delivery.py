"""The deliverer: sends outbox messages to their targets, with retries and backoff.

A process claims due messages (a lease, so two deliverers never send the same one at once;
a claim held by a dead process on this machine is taken over at once), sends each outside any
transaction, then marks it delivered, or records the error and schedules the next attempt with
exponential backoff. A target that is down keeps its messages queued: within one pass its
other messages wait untried, and nothing ever fails the run that queued them. A message is
marked delivered right after its target accepted it; only a process killed in between can
send it again, with the same event id, which receivers use to drop the repeat.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from catalog.alerts.targets import parse_target, send
from catalog.errors import DeliveryError, UsageError
from catalog.store.claims import is_dead_local_owner, make_owner
from catalog.store.schema import AlertOutbox, utcnow

if TYPE_CHECKING:
    from catalog.aws.clients import AWSClients

log = logging.getLogger(__name__)

CLAIM_S = 120.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 600.0
PASS_SIZE = 100


def backoff_s(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: doubling from FIRST_BACKOFF_S, capped, jittered."""
    base = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** max(0, attempts - 1))
    return float(base * random.uniform(1.0, 1.2))


@dataclass
class DeliveryCounts:
    """What deliveries did: messages sent, attempts that failed."""

    sent: int = 0
    failed: int = 0

    def add(self, other: DeliveryCounts) -> None:
        """Count another pass in."""
        self.sent += other.sent
        self.failed += other.failed


@dataclass(frozen=True)
class _Claimed:
    id: int
    event_id: str
    target: str
    secret: str | None
    payload: str
    attempts: int


class Deliverer:
    """Delivers the outbox for one process (thread-safe enough for one thread at a time)."""

    def __init__(self, sessions: sessionmaker[Session], clients: AWSClients | None = None) -> None:
        self.sessions = sessions
        self.clients = clients
        self.owner = make_owner()

    def deliver_due(self, limit: int = PASS_SIZE) -> DeliveryCounts:
        """One pass: claim up to `limit` due messages and try each once."""
        counts = DeliveryCounts()
        claimed = self._claim(limit)
        down: set[str] = set()
        for message in claimed:
            if message.target in down:
                continue  # its target just failed: postponed with it, released by _failed
            try:
                target = parse_target(message.target)
                if target.is_aws and self.clients is None:
                    from catalog.aws.clients import AWSClients

                    self.clients = AWSClients()  # the standard chain (a folder sync has none)
                send(target, message.payload, message.event_id, message.secret, self.clients)
            except (DeliveryError, UsageError) as exc:
                down.add(message.target)
                self._failed(message, str(exc))
                counts.failed += 1
                continue
            except Exception as exc:  # an unforeseen failure is still the target's
                down.add(message.target)
                self._failed(message, f"{type(exc).__name__}: {exc}")
                counts.failed += 1
                continue
            self._delivered(message.id)
            counts.sent += 1
        return counts

    def drain(self, wait_s: float) -> DeliveryCounts:
        """Deliver everything due, waiting up to `wait_s` for retries of failed messages."""
        counts = DeliveryCounts()
        deadline = time.monotonic() + wait_s
        while True:
            done = self.deliver_due()
            counts.add(done)
            if done.sent or done.failed:
                continue
            next_due = self.next_due_in_s()
            if next_due is None or time.monotonic() + next_due > deadline:
                return counts
            time.sleep(max(0.0, next_due))

    def next_due_in_s(self) -> float | None:
        """Seconds until the next undelivered message is due (None: nothing is queued)."""
        with self.sessions() as session:
            soonest = session.execute(
                select(AlertOutbox.next_attempt_at)
                .where(AlertOutbox.delivered_at.is_(None))
                .order_by(AlertOutbox.next_attempt_at)
                .limit(1)
            ).first()
        if soonest is None:
            return None
        due = soonest[0]
        return 0.0 if due is None else max(0.0, (due - utcnow()).total_seconds())

    # -- claims and outcomes ------------------------------------------------------------------

    def _claim(self, limit: int) -> list[_Claimed]:
        now = utcnow()
        with self.sessions.begin() as session:
            due = session.execute(
                select(AlertOutbox.id, AlertOutbox.claimed_by, AlertOutbox.claim_expires_at)
                .where(
                    AlertOutbox.delivered_at.is_(None),
                    or_(AlertOutbox.next_attempt_at.is_(None), AlertOutbox.next_attempt_at <= now),
                )
                .order_by(AlertOutbox.id)
                .limit(limit)
            ).all()
            free = [
                row.id
                for row in due
                if row.claimed_by is None
                or (row.claim_expires_at is not None and row.claim_expires_at < now)
                or is_dead_local_owner(row.claimed_by)
            ]
            if not free:
                return []
            for row_id in free:
                claimed_by = next(r.claimed_by for r in due if r.id == row_id)
                session.execute(
                    update(AlertOutbox)
                    .where(
                        AlertOutbox.id == row_id,
                        AlertOutbox.delivered_at.is_(None),
                        _same_claim(claimed_by),
                    )
                    .values(
                        claimed_by=self.owner, claim_expires_at=now + timedelta(seconds=CLAIM_S)
                    )
                )
        with self.sessions() as session:
            rows = session.execute(
                select(
                    AlertOutbox.id,
                    AlertOutbox.event_id,
                    AlertOutbox.target,
                    AlertOutbox.secret,
                    AlertOutbox.payload,
                    AlertOutbox.attempts,
                )
                .where(
                    AlertOutbox.claimed_by == self.owner,
                    AlertOutbox.delivered_at.is_(None),
                    AlertOutbox.id.in_(free),
                )
                .order_by(AlertOutbox.id)
            ).all()
        return [_Claimed(*row) for row in rows]

    def _delivered(self, message_id: int) -> None:
        now = utcnow()
        with self.sessions.begin() as session:
            session.execute(
                update(AlertOutbox)
                .where(AlertOutbox.id == message_id)
                .values(
                    delivered_at=now,
                    last_attempt_at=now,
                    attempts=AlertOutbox.attempts + 1,
                    claimed_by=None,
                    claim_expires_at=None,
                )
            )

    def _failed(self, message: _Claimed, error: str) -> None:
        now = utcnow()
        attempts = message.attempts + 1
        retry_at = now + timedelta(seconds=backoff_s(attempts))
        log.info("alert %s to %s failed: %s", message.event_id, message.target, error)
        with self.sessions.begin() as session:
            session.execute(
                update(AlertOutbox)
                .where(AlertOutbox.id == message.id)
                .values(
                    attempts=attempts,
                    last_attempt_at=now,
                    last_error=error[:1000],
                    next_attempt_at=retry_at,
                    claimed_by=None,
                    claim_expires_at=None,
                )
            )
            # The target is down: its other queued messages wait for the same retry time, so
            # a dead webhook costs one attempt per backoff step, not one per message.
            session.execute(
                update(AlertOutbox)
                .where(
                    AlertOutbox.target == message.target,
                    AlertOutbox.delivered_at.is_(None),
                    AlertOutbox.id != message.id,
                    or_(AlertOutbox.claimed_by.is_(None), AlertOutbox.claimed_by == self.owner),
                    or_(
                        AlertOutbox.next_attempt_at.is_(None),
                        AlertOutbox.next_attempt_at < retry_at,
                    ),
                )
                .values(
                    last_error=error[:1000],
                    next_attempt_at=retry_at,
                    claimed_by=None,
                    claim_expires_at=None,
                )
            )


def _same_claim(claimed_by: str | None) -> ColumnElement[bool]:
    """The row is still claimed as it was when read (so only one process takes it)."""
    if claimed_by is None:
        return AlertOutbox.claimed_by.is_(None)
    return AlertOutbox.claimed_by == claimed_by
