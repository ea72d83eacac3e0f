"""`catalog db upgrade` and `catalog db current`: explicit control of the schema."""

from __future__ import annotations

import typer

from catalog.cli.options import sessions, settings
from catalog.config import describe_database_url, sqlite_path
from catalog.errors import NotFoundError
from catalog.render.writers import note

app = typer.Typer(help="Create, upgrade and inspect the catalogue database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Create the catalogue or upgrade it to the newest schema.

    Example: catalog --db postgresql://catalog@db.internal/catalog db upgrade
    """
    from catalog.store.engine import make_engine, upgrade_to_head

    before, after = upgrade_to_head(make_engine(settings(ctx).database_url))
    if before == after:
        note(f"The catalogue is already at revision {after}.")
    else:
        note(f"Upgraded the catalogue from {before or 'an empty database'} to {after}.")


@app.command("current")
def current_command(ctx: typer.Context) -> None:
    """Print the catalogue's schema revision (and the newest one this version knows).

    The catalogue in use (a file path, or the URL without its password) goes to stderr.

    Example: catalog db current
    """
    from catalog.store.engine import current_revision, head_revision, make_engine

    url = settings(ctx).database_url
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise NotFoundError(
            f"no catalogue at {path}; 'catalog db upgrade' or 'catalog sync' creates it"
        )
    current = current_revision(make_engine(url))
    head = head_revision()
    state = "(head)" if current == head else f"(head is {head}; run 'catalog db upgrade')"
    typer.echo(f"{current or 'empty'} {state}")
    note(f"catalogue: {describe_database_url(url)}")


@app.command("index")
def index_command(ctx: typer.Context) -> None:
    """Rebuild the bitmap index that answers counts, facets and statistics in milliseconds.

    Writes keep the index exact on their own (readers patch in what changed since it was
    built); rebuilding folds those changes in, which keeps reads fast after large syncs.

    Example: catalog db index
    """
    from catalog.ingest.indexing import rebuild_index

    report = rebuild_index(sessions(ctx))
    if report is None:
        note("Another rebuild of the bitmap index finished meanwhile; it is current.")
        return
    note(
        f"Built bitmap index generation {report.generation}: {report.bitmaps:,} bitmaps, "
        f"{report.size_bytes / 1e6:.1f} MB, {report.changes_folded:,} changes folded in."
    )


def register(root: typer.Typer) -> None:
    """Add the command group to the app."""
    root.add_typer(app, name="db")
