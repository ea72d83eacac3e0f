"""Keeping the bitmap index quick to read: rebuild it after large writes, or on request.

Writes never leave the index wrong (each records what it changed, and readers patch those
items in); a rebuild folds the changes into new persisted bitmaps so readers patch few.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog.store.bitmaps import IndexReport, pending_changes, rebuild_bitmaps
from catalog.store.schema import BitmapState

REBUILD_AFTER = 5_000  # changed media items that make a finished sync rebuild the index


def rebuild_index(sessions: sessionmaker[Session]) -> IndexReport | None:
    """Rebuild the bitmap index from the tables, in one transaction.

    None when another rebuild committed while this one was building (the index is current).
    """
    with sessions.begin() as session:
        return rebuild_bitmaps(session)


def refresh_index(
    sessions: sessionmaker[Session], *, after: int = REBUILD_AFTER
) -> IndexReport | None:
    """Rebuild the index when it was never built, or when `after` items changed since; else None."""
    with sessions() as session:
        changes = pending_changes(session)
        built = session.execute(select(BitmapState.generation)).scalar_one_or_none() is not None
    if (built and changes < after) or (not built and not changes):
        return None
    return rebuild_index(sessions)
