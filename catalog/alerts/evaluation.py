"""Rule evaluation: queued labelling results -> alert messages in the outbox, in batches.

Every stored result is queued (`alert_evaluations`) in the transaction that stores it. Here a
batch of queued results is taken (DELETE ... RETURNING: two processes never take the same
one), every rule's query is compiled once for the batch and asked which of the batch's media
it selects now (`compile_query(...).ids()` filtered to those ids), and that is compared with
the rule's members (what matched under each item's previous result). An item that matches and
was not a member fires: one message per target goes to the outbox, in the same transaction
that takes the batch, so each (rule, media, result) is queued exactly once. An item that
stopped matching leaves the members, so a later result that matches again fires again.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, exists, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.aws.publish import MAX_BODY_BYTES
from catalog.errors import QueryError
from catalog.query.compiled import CompiledQuery, compile_query
from catalog.read.search import SearchHit, load_hits
from catalog.render.writers import json_text
from catalog.store.schema import (
    AlertEvaluation,
    AlertMember,
    AlertOutbox,
    AlertRule,
    AlertTarget,
    Label,
    LabelAlias,
    LabelCategory,
    utcnow,
)
from catalog.store.sql import as_reader

log = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass(frozen=True)
class RuleRow:
    """A rule as evaluation needs it: ids, name, query and its targets (target, secret)."""

    id: int
    uid: str
    name: str
    query: str
    targets: tuple[tuple[str, str | None], ...]


def load_rules(session: Session) -> list[RuleRow]:
    """Every rule with its targets."""
    targets: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    for rule_id, target, secret in session.execute(
        select(AlertTarget.rule_id, AlertTarget.target, AlertTarget.secret).order_by(AlertTarget.id)
    ):
        targets[rule_id].append((target, secret))
    return [
        RuleRow(rule_id, uid, name, query, tuple(targets[rule_id]))
        for rule_id, uid, name, query in session.execute(
            select(AlertRule.id, AlertRule.uid, AlertRule.name, AlertRule.query).order_by(
                AlertRule.id
            )
        )
    ]


# Compiled rules, kept while the vocabulary they were resolved against is unchanged: building
# a query's SQL costs milliseconds, which per rule and batch would dwarf running it.
_compiled: dict[str, tuple[tuple[Any, ...], CompiledQuery, _Among]] = {}
_compiled_lock = threading.Lock()


def vocabulary_signature(session: Session) -> tuple[Any, ...]:
    """What name resolution depends on: labels, aliases and categories (grow-only counts)."""
    return tuple(
        session.execute(
            select(
                select(func.max(Label.id)).scalar_subquery(),
                select(func.count()).select_from(LabelAlias).scalar_subquery(),
                select(func.count()).select_from(LabelCategory).scalar_subquery(),
            )
        ).one()
    )


@dataclass(frozen=True)
class _Among:
    """A rule's ids select restricted to a batch: by an id list, or by an id range.

    New media get consecutive ids, so a batch is usually a dense range: `BETWEEN lo AND hi`
    binds two values where a list of 500 costs more to bind than to run.
    """

    by_list: Select[Any]
    by_range: Select[Any]

    def run(self, session: Session, media_ids: Sequence[int]) -> set[int]:
        """The ids of `media_ids` (sorted) that the rule selects."""
        lo, hi = media_ids[0], media_ids[-1]
        connection = session.connection()
        if hi - lo < 4 * len(media_ids):
            found = connection.execute(self.by_range, {"lo": lo, "hi": hi}).scalars()
            return set(found).intersection(media_ids)
        return set(connection.execute(self.by_list, {"media_ids": list(media_ids)}).scalars())


def compiled_rule(
    session: Session, rule: RuleRow, signature: tuple[Any, ...]
) -> tuple[CompiledQuery, _Among]:
    """The rule's compiled query (bound to `session`) and its ids-among-a-batch selects."""
    key = f"{rule.uid}:{rule.query}"
    with _compiled_lock:
        cached = _compiled.get(key)
    if cached is not None and cached[0] == signature:
        return replace(cached[1], reader=as_reader(session), _memo={}), cached[2]
    compiled = compile_query(session, rule.query)
    stmt = compiled.ids()
    column = stmt.selected_columns[0]
    among = _Among(
        stmt.where(column.in_(bindparam("media_ids", expanding=True))),
        stmt.where(column.between(bindparam("lo"), bindparam("hi"))),
    )
    with _compiled_lock:
        _compiled[key] = (signature, compiled, among)
    return compiled, among


def event_id(rule_uid: str, media_id: int, result_id: int | None) -> str:
    """The stable id of one (rule, media, result) event."""
    return f"{rule_uid}-{media_id}-{result_id if result_id is not None else 0}"


def alert_payload(
    event: str, rule: str, query: str, labelled_at: datetime | None, hit: SearchHit
) -> dict[str, Any]:
    """The message: event_id, rule, query, labelled_at and the search hit's own keys."""
    payload: dict[str, Any] = {
        "event_id": event,
        "rule": rule,
        "query": query,
        "labelled_at": labelled_at,
    }
    payload.update(hit.to_dict())
    return payload


def message_body(payload: dict[str, Any]) -> str:
    """The JSON text sent; video timestamps are trimmed (and `truncated` set) past 256 KiB."""
    body = json_text(payload)
    if len(body.encode()) <= MAX_BODY_BYTES:
        return body
    matches = [dict(m) for m in payload.get("matches", [])]
    keep = max((len(m.get("timestamps_ms") or []) for m in matches), default=0)
    while keep > 0:
        keep //= 2
        for match, original in zip(matches, payload["matches"], strict=True):
            if "timestamps_ms" in original:
                match["timestamps_ms"] = list(original["timestamps_ms"])[:keep]
        body = json_text({**payload, "matches": matches, "truncated": True})
        if len(body.encode()) <= MAX_BODY_BYTES:
            return body
    return body


def outbox_rows(rule: RuleRow, event: str, body: str, now: datetime) -> Iterable[dict[str, Any]]:
    """One outbox row per target of the rule."""
    for target, secret in rule.targets:
        yield {
            "event_id": event,
            "rule_id": rule.id,
            "target": target,
            "secret": secret,
            "payload": body,
            "created_at": now,
            "attempts": 0,
            "next_attempt_at": now,
        }


def _take_batch(session: Session, size: int) -> dict[int, tuple[int | None, datetime]]:
    """Take up to `size` queued results: media id -> (newest result id, committed_at)."""
    oldest = select(AlertEvaluation.id).order_by(AlertEvaluation.id).limit(size)
    taken = session.execute(
        delete(AlertEvaluation)
        .where(AlertEvaluation.id.in_(oldest.scalar_subquery()))
        .returning(
            AlertEvaluation.id,
            AlertEvaluation.media_id,
            AlertEvaluation.label_result_id,
            AlertEvaluation.committed_at,
        )
    ).all()
    latest: dict[int, tuple[int, int | None, datetime]] = {}
    for row_id, media_id, result_id, committed_at in taken:
        seen = latest.get(media_id)
        if seen is None or row_id > seen[0]:
            latest[media_id] = (row_id, result_id, committed_at)
    return {media_id: (result, at) for media_id, (_, result, at) in latest.items()}


def evaluate_batch(session: Session, size: int = BATCH_SIZE) -> tuple[int, int]:
    """Evaluate one batch of queued results in the caller's transaction.

    Returns (results taken, alert events fired). A result is judged by the item's labels as
    they are now: when the same item was labelled again before evaluation, its newest result
    decides.
    """
    batch = _take_batch(session, size)
    if not batch:
        return 0, 0
    media_ids = sorted(batch)
    members: dict[int, set[int]] = defaultdict(set)
    for rule_id, media_id in session.execute(
        select(AlertMember.rule_id, AlertMember.media_id).where(AlertMember.media_id.in_(media_ids))
    ):
        members[rule_id].add(media_id)
    now = utcnow()
    fired = 0
    outbox: list[dict[str, Any]] = []
    signature = vocabulary_signature(session)
    for rule in load_rules(session):
        try:
            compiled, among = compiled_rule(session, rule, signature)
        except QueryError as exc:
            log.warning("alert %s: its query no longer parses (%s); skipped", rule.name, exc)
            continue
        matched = among.run(session, media_ids)
        was = members.get(rule.id, set())
        new = sorted(matched - was)
        gone = sorted(was - matched)
        if gone:
            session.execute(
                delete(AlertMember).where(
                    AlertMember.rule_id == rule.id, AlertMember.media_id.in_(gone)
                )
            )
        if not new:
            continue
        session.execute(insert(AlertMember), [{"rule_id": rule.id, "media_id": m} for m in new])
        for hit in load_hits(compiled, new):
            result_id, committed_at = batch[hit.media_id]
            event = event_id(rule.uid, hit.media_id, result_id)
            body = message_body(alert_payload(event, rule.name, rule.query, committed_at, hit))
            outbox.extend(outbox_rows(rule, event, body, now))
            fired += 1
    if outbox:
        session.execute(insert(AlertOutbox), outbox)
    return len(batch), fired


def has_queued(sessions: sessionmaker[Session]) -> bool:
    """True when some result waits for evaluation (a read: no write lock taken)."""
    with sessions() as session:
        return bool(
            session.execute(select(exists().where(AlertEvaluation.id.is_not(None)))).scalar()
        )


def queued_count(sessions: sessionmaker[Session]) -> int:
    """How many results wait for evaluation."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AlertEvaluation)) or 0)


def evaluate_queued(sessions: sessionmaker[Session], size: int = BATCH_SIZE) -> int:
    """Evaluate every queued result, one transaction per batch; returns the events fired."""
    fired = 0
    while has_queued(sessions):
        with sessions.begin() as session:
            taken, count = evaluate_batch(session, size)
        fired += count
        if taken == 0:
            break
    return fired
