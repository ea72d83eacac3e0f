"""Plain SQL on a catalogue's DB-API connection: the reads that answer without SQLAlchemy.

Importing SQLAlchemy costs a command-line process about 0.3 s, ten times what a search costs
once the bitmap index answers it. So the reads behind `search`, `stats` and `show` (the names a
query uses, the index's bitmaps, the summary tables, one page of hits, one item) are a few
fixed statements run here: on the stdlib sqlite3 connection of a command that opened the
catalogue with catalog.store.readers.open_reader, or on the DB-API connection under any
SQLAlchemy session (`as_reader`), so the web gallery, alerts and tests run the very same
statements.

Statements are fixed text with `:name` parameters; values are never pasted in. A list or tuple
parameter expands to one placeholder per item. No literal in a statement may hold a colon or
a percent sign (pass it as a parameter).

A `Reader` opens a SQLAlchemy session only when a read needs one (planning a query the index
cannot answer, sorting in SQL, ...); SQLAlchemy is imported then, and only then.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

Params = Mapping[str, Any]

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

# How long a SQLite write waits for another process's write to finish before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# The settings every SQLite connection reads with (catalog.store.engine adds the writers' own).
# A reader keeps SQLite's default page cache (2 MB): a command reads each bitmap blob once, and
# past the 2 GiB that mmap serves (where the index sits in a large catalogue) streaming blobs
# through a 32 MiB cache took half as long again (`stats --where`: 188 ms in-process, not 125).
SQLITE_READ_PRAGMAS = (
    "PRAGMA mmap_size=2147483648",
    "PRAGMA temp_store=MEMORY",
)


@lru_cache(maxsize=256)
def _split(sql: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The text between parameters, and the parameters' names in order."""
    parts = _PARAM.split(sql)
    return tuple(parts[0::2]), tuple(parts[1::2])


class Db:
    """One DB-API connection and the dialect it speaks ('sqlite' or 'postgresql')."""

    def __init__(self, connection: Any, dialect: str, key: str) -> None:
        self.connection = connection
        self.dialect = dialect
        self.key = key  # names the database (caches of what was read from it use it)
        self._marker = "?" if dialect == "sqlite" else "%s"

    def _bind(self, sql: str, params: Params | None) -> tuple[str, list[Any]]:
        texts, names = _split(sql)
        out = [texts[0]]
        values: list[Any] = []
        for name, text in zip(names, texts[1:], strict=True):
            value = (params or {})[name]
            if isinstance(value, list | tuple | set | frozenset):
                items = list(value)
                out.append(", ".join([self._marker] * len(items)) if items else "NULL")
                values.extend(items)
            else:
                out.append(self._marker)
                values.append(value)
            out.append(text)
        return "".join(out), values

    def iter_rows(self, sql: str, params: Params | None = None) -> Iterator[tuple[Any, ...]]:
        """The rows of one statement, fetched as they are consumed."""
        text, values = self._bind(sql, params)
        cursor = self.connection.cursor()
        try:
            cursor.execute(text, values)
            while batch := cursor.fetchmany(256):
                yield from batch
        finally:
            cursor.close()

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Every row of one statement."""
        text, values = self._bind(sql, params)
        cursor = self.connection.cursor()
        try:
            cursor.execute(text, values)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def first(self, sql: str, params: Params | None = None) -> tuple[Any, ...] | None:
        """The first row, or None."""
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: Params | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.first(sql, params)
        return row[0] if row else None

    def utc(self, value: Any) -> datetime | None:
        """A stored timestamp as an aware UTC datetime (SQLite keeps naive UTC text)."""
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def session_db(session: Session) -> Db:
    """The DB-API connection under a session (its transaction), as a Db."""
    connection = session.connection()
    engine = connection.engine
    return Db(
        connection.connection.driver_connection,
        engine.dialect.name,
        engine.url.render_as_string(hide_password=False),
    )


class Reader:
    """A catalogue opened for reading: plain SQL at once, a SQLAlchemy session when needed.

    `session` is one already open (the caller's, or one the opener closes with `on_close`);
    otherwise `open_session` opens one on first use, and `close` closes it.
    """

    def __init__(
        self,
        db: Db,
        open_session: Callable[[], Session] | None = None,
        *,
        session: Session | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self._open_session = open_session
        self._session = session
        self._opened: Session | None = None
        self._on_close = on_close

    @property
    def has_session(self) -> bool:
        """True when a session is already open (SQL built by SQLAlchemy costs no import)."""
        return self._session is not None

    def session(self) -> Session:
        """A session on the same catalogue (SQLAlchemy is imported by the first call)."""
        if self._session is None:
            assert self._open_session is not None, "a Reader needs a session or a way to open one"
            self._session = self._opened = self._open_session()
        return self._session

    def close(self) -> None:
        """Close what this reader opened."""
        if self._opened is not None:
            self._opened.close()
        if self._on_close is not None:
            self._on_close()


def db_of(source: Session | Reader | Db) -> Db:
    """The Db of a reader, or the one under a session."""
    if isinstance(source, Db):
        return source
    if isinstance(source, Reader):
        return source.db
    return session_db(source)


def as_reader(source: Session | Reader) -> Reader:
    """`source` itself, or a Reader over an open session (sharing its transaction)."""
    if isinstance(source, Reader):
        return source
    return Reader(session_db(source), session=source)
