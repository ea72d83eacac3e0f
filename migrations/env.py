"""Alembic environment: a connection handed in by catalog.store.engine, or the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from catalog.config import Settings
from catalog.store.schema import Base

config = context.config
target_metadata = Base.metadata


# Full-text objects made by revision 0003 with dialect-specific DDL, not ORM-declared: the FTS5
# table and its shadow tables on SQLite, the tsvector GIN index on PostgreSQL.
_FULL_TEXT_TABLES = ("text_fts",)
_FULL_TEXT_INDEXES = ("ix_text_detections_fts",)


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Leave the full-text index objects out of autogenerate and `alembic check`."""
    if type_ == "table" and name is not None and name.startswith(_FULL_TEXT_TABLES):
        return False
    return not (type_ == "index" and name in _FULL_TEXT_INDEXES)


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return url or Settings.resolve().database_url


def _configure(connection: object | None = None, **kwargs: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=True,
        include_object=include_object,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.begin() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
