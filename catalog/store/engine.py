"""Engines, sessions and schema upgrades (through Alembic's command API)."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import sys
import threading
import time
import weakref
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from catalog.config import redact_url
from catalog.errors import DatabaseError
from catalog.store.revisions import migrations_dir, scripted_head_revision
from catalog.store.sql import SQLITE_BUSY_TIMEOUT_MS, SQLITE_READ_PRAGMAS

_SQLITE_PRAGMAS = (
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    # 32 MiB for sessions (writes, the web gallery's repeated reads); reads within the first
    # 2 GiB go through mmap, not this cache. A bigger one only held blobs read once (`stats
    # --where` through a session peaked at 180 MB instead of 134 MB).
    "PRAGMA cache_size=-32768",
    *SQLITE_READ_PRAGMAS,
)

_upgraded: set[str] = set()
_upgrade_lock = threading.Lock()


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    _switch_to_wal(cursor)
    for pragma in (*_SQLITE_PRAGMAS, f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"):
        cursor.execute(pragma)
    cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """Put the file in WAL mode (once per file; a no-op after that).

    Processes opening a new file at the same moment each take a shared lock, then each need the
    exclusive one to switch: SQLite answers one of them "database is locked" at once, without
    waiting. So the switch is retried, at random short intervals, until it is done (or for as
    long as any other write would wait).
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


def is_sqlite(engine: Engine) -> bool:
    """True when the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


# Every engine this process made, so that a process about to end can close their connections
# (SQLite checkpoints its write-ahead log when the last connection closes).
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def dispose_engines() -> None:
    """Close the pooled connections of every engine this process made."""
    for engine in list(_ENGINES):
        engine.dispose()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL mode, foreign keys and a busy timeout."""
    try:
        if url.startswith("sqlite"):
            db_path = url.split("///", 1)[1] if "///" in url else ""
            if db_path and db_path != ":memory:" and not db_path.startswith("file:"):
                parent = Path(db_path).parent
                if not parent.is_dir():
                    raise DatabaseError(
                        f"cannot create the catalogue {db_path}: no directory {parent}"
                    )
            engine = create_engine(
                url,
                connect_args={
                    "check_same_thread": False,
                    "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                },
            )
            event.listen(engine, "connect", _on_sqlite_connect)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ValueError) as exc:
        raise DatabaseError(
            f"'{redact_url(url)}' is not a database URL catalog can use ({_first_line(exc)}); "
            "give sqlite:///PATH, postgresql://USER@HOST[:PORT]/NAME or a file path"
        ) from exc
    except ModuleNotFoundError as exc:
        raise DatabaseError(
            f"the database driver '{exc.name}' is not installed; for PostgreSQL install "
            "catalog[postgres]"
        ) from exc
    _ENGINES.add(engine)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """The session factory every library function is handed."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine | None = None, connection: Any = None) -> Any:
    """An Alembic Config pointing at our scripts and, when given, at a live connection."""
    from alembic.config import Config

    # Alembic's own messages go to stderr (stdout is for data); bound now, not at import time.
    config = Config(stdout=sys.stderr)
    config.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision the scripts define."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise database_error(exc, engine) from exc


# Any number of processes may open a new catalogue at the same moment (a fleet of workers, a
# burst of Lambda invocations): creating or upgrading the schema is serialised across them by
# an exclusive lock, and each re-reads the revision once it holds the lock, so the first one
# upgrades and the rest find the schema at head and change nothing.
_ADVISORY_LOCK_KEY = zlib.crc32(b"catalog schema upgrade")  # PostgreSQL advisory lock id


@contextlib.contextmanager
def _exclusive_file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` held by this process (flock; released when it exits)."""
    try:
        import fcntl
    except ImportError:  # no flock on this platform: SQLite's own write lock still applies
        yield
        return
    try:
        handle = open(path, "a+b")  # noqa: SIM115 - held for the lock's lifetime
    except OSError:  # a read-only directory: nobody can create the schema here anyway
        yield
        return
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def schema_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction on `engine` during which no other process creates or upgrades the schema.

    SQLite: a lock file beside the database (`<file>.lock`); PostgreSQL: a transaction-level
    advisory lock. The transaction commits when the block ends.
    """
    database = engine.url.database if is_sqlite(engine) else None
    file_lock: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if database and database != ":memory:" and not database.startswith("file:"):
        file_lock = _exclusive_file_lock(Path(os.fspath(database) + ".lock"))
    with file_lock, engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
            )
        yield connection


def _revision_on(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine, *, only_if_new: bool = False) -> tuple[str | None, str | None]:
    """Create or upgrade the schema to the head revision; returns (before, after).

    Serialised across processes (see schema_lock) and idempotent: a catalogue another process
    brought to head meanwhile is left as it is. `only_if_new`: create the schema in an empty
    database (or find it created meanwhile), but leave an older schema for `db upgrade`.
    """
    from alembic import command

    try:
        with schema_lock(engine) as connection:
            before = _revision_on(connection)
            _refuse_unknown_revision(engine, before)
            head = head_revision()
            if (
                only_if_new
                and before != head
                and (before is not None or inspect(connection).get_table_names())
            ):
                raise DatabaseError(
                    f"the catalogue at {_safe_url(engine)} is at revision {before}, not {head}; "
                    "run 'catalog db upgrade'"
                )
            if before != head:
                command.upgrade(alembic_config(engine, connection), "head")
            after = _revision_on(connection)
        return before, after
    except SQLAlchemyError as exc:
        raise database_error(exc, engine) from exc


def _refuse_unknown_revision(engine: Engine, revision: str | None) -> None:
    """A catalogue at a revision our scripts do not define was written by a newer catalog."""
    if revision is None:
        return
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        known = ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise DatabaseError(
            f"the catalogue {_safe_url(engine)} is at schema revision {revision}, which this "
            f"version of catalog does not know (it knows up to {head_revision()}); it was "
            "written by a newer catalog: upgrade catalog to use it (nothing was changed)"
        )


def _stored_revision(engine: Engine) -> str | None:
    """The database's revision from alembic_version, without loading Alembic (None if absent)."""
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None


def ensure_schema(engine: Engine) -> None:
    """Make sure the schema is at head: SQLite is upgraded on first use, others must be current."""
    key = engine.url.render_as_string(hide_password=True)
    with _upgrade_lock:
        if key in _upgraded:
            return
        quick_head = scripted_head_revision()
        if quick_head is not None and _stored_revision(engine) == quick_head:
            _upgraded.add(key)  # the common case, decided without importing Alembic
            return
        current = current_revision(engine)
        head = head_revision()
        if current != head:
            _refuse_unknown_revision(engine, current)
            if is_sqlite(engine):
                upgrade_to_head(engine)
            elif current is None:  # empty, or being created by another process right now
                upgrade_to_head(engine, only_if_new=True)
            else:
                raise DatabaseError(
                    f"the catalogue at {_safe_url(engine)} is at revision {current}, not {head}; "
                    "run 'catalog db upgrade'"
                )
        _upgraded.add(key)


def open_catalogue(url: str) -> tuple[Engine, sessionmaker[Session]]:
    """Engine and session factory for `url`, with the schema brought to head."""
    engine = make_engine(url)
    ensure_schema(engine)
    return engine, make_sessionmaker(engine)


def database_error(exc: BaseException, where: Engine | str) -> DatabaseError:
    """A database failure (from SQLAlchemy or the driver) as one line: the file and what to do.

    The CLI's error boundary calls this for any database error that reached it, so a damaged,
    locked, read-only or foreign file never shows a traceback.
    """
    if isinstance(where, str):
        try:
            name = _safe_url(make_engine(where))
        except DatabaseError:
            name = redact_url(where)
    else:
        name = _safe_url(where)
    reason = _reason(exc)
    lowered = reason.lower()
    is_sqlite_url = name.startswith("/") or name.startswith("file:")
    if "file is not a database" in lowered or "not a database" in lowered:
        return DatabaseError(
            f"{name} is not a catalogue (the file is not a SQLite database); give the path of "
            "a catalogue with --db, or a new file name to start one (nothing was changed)"
        )
    if "malformed" in lowered or "corrupt" in lowered:
        return DatabaseError(
            f"the catalogue {name} is damaged ({reason}); restore it from a backup or recover "
            f"it with 'sqlite3 {name} .recover' (nothing was changed)"
        )
    if "connection" in lowered and not is_sqlite_url:
        return DatabaseError(
            f"cannot connect to the catalogue {name}: {reason}; check the server, the URL and "
            f"the credentials"
        )
    if "locked" in lowered or "busy" in lowered:
        return DatabaseError(
            f"the catalogue {name} is locked by another process (waited "
            f"{SQLITE_BUSY_TIMEOUT_MS // 1000} s); let the other sync or worker finish, then "
            "run again"
        )
    if "readonly" in lowered or "read-only" in lowered or "unable to open database" in lowered:
        return DatabaseError(
            f"cannot write the catalogue {name}: the file or its folder is read-only ({reason}); "
            "fix the permissions or give a writable --db path"
        )
    return DatabaseError(f"database error on {name}: {reason}")


def _safe_url(engine: Engine) -> str:
    if is_sqlite(engine):
        return str(engine.url.database)
    return redact_url(engine.url.render_as_string(hide_password=True))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact_url(text.splitlines()[0]) if text else type(exc).__name__


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return _first_line(orig if orig is not None else exc)
