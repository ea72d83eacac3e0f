"""Alert rules: add (validated, with its current matches as members), list, remove, test."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from catalog.alerts.evaluation import RuleRow, alert_payload, message_body, outbox_rows
from catalog.alerts.targets import WEBHOOK, parse_target
from catalog.errors import NotFoundError, UsageError
from catalog.query.compiled import compile_query
from catalog.read.search import load_hits
from catalog.store.schema import AlertMember, AlertOutbox, AlertRule, AlertTarget, Media, utcnow

MAX_NAME = 200


@dataclass(frozen=True)
class RuleAdded:
    """A new rule: its name, how many media match it now, and hints about unknown names."""

    name: str
    matching: int
    hints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RuleStatus:
    """One rule as `alerts list` shows it: targets, backlog and the last delivery error."""

    name: str
    query: str
    targets: tuple[str, ...]
    created_at: datetime
    members: int
    delivered: int
    backlog: int
    last_error: str | None
    last_delivered_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape."""
        return {
            "name": self.name,
            "query": self.query,
            "targets": list(self.targets),
            "created_at": self.created_at,
            "matching": self.members,
            "delivered": self.delivered,
            "backlog": self.backlog,
            "last_error": self.last_error,
            "last_delivered_at": self.last_delivered_at,
        }


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UsageError(f"an alert name is 1 to {MAX_NAME} printable characters")
    return name


def add_rule(
    session: Session,
    name: str,
    query: str,
    targets: Sequence[str],
    *,
    secret: str | None = None,
) -> RuleAdded:
    """Save a rule; the media it matches now become its members (they do not fire).

    Raises QueryError for a malformed query, UsageError for a bad name or target.
    """
    name = _check_name(name)
    if not query.strip():
        raise UsageError("--when needs a query (the search language, e.g. 'Car > 90')")
    parsed = [parse_target(t) for t in targets]
    if not parsed:
        raise UsageError("give at least one --notify TARGET")
    if secret and not any(t.kind == WEBHOOK for t in parsed):
        raise UsageError("--secret signs webhook bodies; add an https:// --notify target")
    compiled = compile_query(session, query)
    if session.scalar(select(AlertRule.id).where(AlertRule.name == name)) is not None:
        raise UsageError(f"an alert named '{name}' exists; remove it first")
    rule = AlertRule(uid=uuid.uuid4().hex, name=name, query=query, created_at=utcnow())
    session.add(rule)
    session.flush()
    for target in dict.fromkeys(t.text for t in parsed):
        kind = parse_target(target).kind
        session.add(
            AlertTarget(rule_id=rule.id, target=target, secret=secret if kind == WEBHOOK else None)
        )
    ids = compiled.ids().subquery()
    session.execute(
        insert(AlertMember).from_select(
            ["rule_id", "media_id"], select(literal(rule.id, Integer()), ids.c.id)
        )
    )
    matching = session.scalar(
        select(func.count()).select_from(AlertMember).where(AlertMember.rule_id == rule.id)
    )
    return RuleAdded(name, int(matching or 0), compiled.hints())


def get_rule(session: Session, name: str) -> AlertRule:
    """The rule called `name`; raises NotFoundError."""
    rule = session.scalar(select(AlertRule).where(AlertRule.name == name))
    if rule is None:
        raise NotFoundError(f"no alert named '{name}'; 'catalog alerts list' shows them")
    return rule


def remove_rule(session: Session, name: str) -> int:
    """Delete a rule, its members and its undelivered messages; returns how many were dropped."""
    rule = get_rule(session, name)
    dropped = session.scalar(
        select(func.count())
        .select_from(AlertOutbox)
        .where(AlertOutbox.rule_id == rule.id, AlertOutbox.delivered_at.is_(None))
    )
    for model in (AlertMember, AlertTarget, AlertOutbox):
        session.execute(delete(model).where(model.rule_id == rule.id))
    session.delete(rule)
    return int(dropped or 0)


def list_rules(session: Session) -> list[RuleStatus]:
    """Every rule with its targets, member count, delivered count, backlog and last error."""
    targets: dict[int, list[str]] = {}
    for rule_id, target in session.execute(
        select(AlertTarget.rule_id, AlertTarget.target).order_by(AlertTarget.id)
    ):
        targets.setdefault(rule_id, []).append(target)
    members: dict[int, int] = dict(
        session.execute(select(AlertMember.rule_id, func.count()).group_by(AlertMember.rule_id))
        .tuples()
        .all()
    )
    delivered: dict[int, tuple[int, datetime | None]] = {}
    for rule_id, count, last in session.execute(
        select(AlertOutbox.rule_id, func.count(), func.max(AlertOutbox.delivered_at))
        .where(AlertOutbox.delivered_at.is_not(None))
        .group_by(AlertOutbox.rule_id)
    ):
        delivered[rule_id] = (count, last)
    backlog: dict[int | None, int] = dict(
        session.execute(
            select(AlertOutbox.rule_id, func.count())
            .where(AlertOutbox.delivered_at.is_(None))
            .group_by(AlertOutbox.rule_id)
        )
        .tuples()
        .all()
    )
    errors: dict[int, str] = {}
    for rule_id, error in session.execute(
        select(AlertOutbox.rule_id, AlertOutbox.last_error)
        .where(AlertOutbox.delivered_at.is_(None), AlertOutbox.last_error.is_not(None))
        .order_by(AlertOutbox.last_attempt_at.desc().nulls_last(), AlertOutbox.id.desc())
    ):
        errors.setdefault(rule_id, error)
    out = []
    for rule in session.scalars(select(AlertRule).order_by(AlertRule.name)):
        count, last = delivered.get(rule.id, (0, None))
        out.append(
            RuleStatus(
                name=rule.name,
                query=rule.query,
                targets=tuple(targets.get(rule.id, ())),
                created_at=rule.created_at,
                members=int(members.get(rule.id, 0)),
                delivered=int(count),
                backlog=int(backlog.get(rule.id, 0)),
                last_error=errors.get(rule.id),
                last_delivered_at=last,
            )
        )
    return out


def queue_test_messages(session: Session, name: str, limit: int | None = None) -> int:
    """Queue a message for each medium the rule matches now (newest first); returns how many.

    Their event ids start with 'test-' and are new each time: a test is not an arrival, so it
    changes no membership and receivers see it apart from real alerts.
    """
    rule = get_rule(session, name)
    targets = tuple(
        (t, s)
        for t, s in session.execute(
            select(AlertTarget.target, AlertTarget.secret)
            .where(AlertTarget.rule_id == rule.id)
            .order_by(AlertTarget.id)
        )
    )
    row = RuleRow(rule.id, rule.uid, rule.name, rule.query, targets)
    compiled = compile_query(session, rule.query)
    ids = compiled.page(limit)
    labelled: dict[int, datetime | None] = dict(
        session.execute(select(Media.id, Media.labelled_at).where(Media.id.in_(ids))).tuples().all()
    )
    now = utcnow()
    rows: list[dict[str, Any]] = []
    run = uuid.uuid4().hex[:12]
    for hit in load_hits(compiled, ids):
        event = f"test-{run}-{hit.media_id}"
        body = message_body(
            alert_payload(event, rule.name, rule.query, labelled.get(hit.media_id), hit)
        )
        rows.extend(outbox_rows(row, event, body, now))
    if rows:
        session.execute(insert(AlertOutbox), rows)
    return len(ids)
