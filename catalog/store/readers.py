"""Opening a catalogue for reading: the driver's own connection when it can, a session otherwise.

An existing SQLite catalogue at the scripts' head revision is read through the stdlib `sqlite3`
driver (catalog.store.sql), without importing SQLAlchemy; anything else (PostgreSQL, a catalogue
that needs an upgrade first) through a session of catalog.store.engine.open_catalogue.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from catalog.config import sqlite_path
from catalog.store.revisions import scripted_head_revision
from catalog.store.sql import (
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_READ_PRAGMAS,
    Db,
    Reader,
    session_db,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def open_reader(url: str) -> Reader:
    """A Reader on the catalogue at `url`.

    An existing SQLite file at the scripts' head revision is read through the stdlib driver
    (never created: mode=rw); anything else (PostgreSQL, a catalogue to upgrade) through a
    session of catalog.store.engine.open_catalogue, which brings it to head first.
    """

    def open_session() -> Session:
        from catalog.store.engine import open_catalogue

        _, factory = open_catalogue(url)
        return factory()

    path = sqlite_path(url)
    if path is not None and path.is_file():
        connection = sqlite3.connect(
            path.resolve().as_uri() + "?mode=rw",
            uri=True,
            timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
            isolation_level=None,
        )
        for pragma in SQLITE_READ_PRAGMAS:
            connection.execute(pragma)
        # One read transaction for the reader's life: every statement sees the same snapshot
        # (the index's change list, its bitmaps and the summaries agree with each other).
        connection.execute("BEGIN")
        db = Db(connection, "sqlite", url)
        if stored_revision(db) == scripted_head_revision():
            return Reader(db, open_session, on_close=connection.close)
        connection.close()
    session = open_session()
    return Reader(session_db(session), session=session, on_close=session.close)


def stored_revision(db: Db) -> str | None:
    """The schema revision the catalogue is at (None when it has none)."""
    try:
        return db.scalar("SELECT version_num FROM alembic_version")  # type: ignore[no-any-return]
    except sqlite3.OperationalError:
        return None
