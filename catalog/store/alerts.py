"""The alert tables' part of the write path: queue a result for rule evaluation, forget matches.

Both run inside the caller's transaction, so an alert to evaluate is committed together with
the labelling result it is about, and an item deleted (or replaced by new content) no longer
counts as having matched: when it is labelled again it is a new item and alerts fire again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, bindparam, delete, exists, func, insert, select
from sqlalchemy.orm import Session

from catalog.store.schema import AlertEvaluation, AlertMember, AlertRule, LabelResult, utcnow


def _queue_statement() -> Any:
    newest = (
        select(func.max(LabelResult.id))
        .where(LabelResult.media_id == bindparam("media_id"))
        .scalar_subquery()
    )
    return insert(AlertEvaluation).from_select(
        ["media_id", "label_result_id", "committed_at"],
        select(
            bindparam("media_id", type_=Integer()),
            newest,
            bindparam("committed_at", type_=AlertEvaluation.committed_at.type),
        ).where(exists().where(AlertRule.id.is_not(None))),
    )


# Built once: this runs inside every result's transaction, where building and caching a
# statement would cost more than executing it.
_QUEUE = _queue_statement()


def queue_evaluation(session: Session, media_id: int) -> None:
    """Queue the media item's newest result for rule evaluation (only when rules exist).

    One INSERT ... SELECT: with no rule saved it writes nothing, and a rule saved concurrently
    either sees this result in its starting membership or evaluates it.
    """
    session.connection().execute(_QUEUE, {"media_id": media_id, "committed_at": utcnow()})


_FORGET = delete(AlertMember).where(AlertMember.media_id == bindparam("media_id"))


def forget_matches(session: Session, media_id: int) -> None:
    """The item is gone (or its content replaced): it matches no rule until labelled again."""
    session.connection().execute(_FORGET, {"media_id": media_id})
