"""Keeping the bitmap index quick to read: rebuild it after large writes, or on request.

Writes never leave the index wrong (each records what it changed, and readers patch those
items in); a rebuild folds the changes into new persisted bitmaps so readers patch few.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from catalog.store.bitmap_build import IndexReport, pending_changes, rebuild_bitmaps
from catalog.store.bitmaps import index_state

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
    """Rebuild the index when it was never built (and something was written), was built by an
    older catalog, or `after` items changed since; else None."""
    with sessions() as session:
        changes = pending_changes(session)
        state = index_state(session)
    if (state == "current" and changes < after) or (state == "none" and not changes):
        return None
    return rebuild_index(sessions)
