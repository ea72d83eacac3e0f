"""`catalog db upgrade` and `catalog db current`: explicit control of the schema."""

from __future__ import annotations

import typer

from catalog.cli.options import sessions, settings

app = typer.Typer(help="Create, upgrade and inspect the catalogue database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Create the catalogue or upgrade it to the newest schema.

    Example: catalog --db postgresql://catalog@db.internal/catalog db upgrade
    """
    from catalog.render.writers import note
    from catalog.store.engine import make_engine, upgrade_to_head

    before, after = upgrade_to_head(make_engine(settings(ctx).database_url))
    if before == after:
        note(f"The catalogue is already at revision {after}.")
    else:
        note(f"Upgraded the catalogue from {before or 'an empty database'} to {after}.")


@app.command("current")
def current_command(ctx: typer.Context) -> None:
    """Print the catalogue's schema revision (and the newest one this version knows).

    Example: catalog db current
    """
    from catalog.store.engine import current_revision, head_revision, make_engine

    current = current_revision(make_engine(settings(ctx).database_url))
    head = head_revision()
    state = "(head)" if current == head else f"(head is {head}; run 'catalog db upgrade')"
    typer.echo(f"{current or 'empty'} {state}")


@app.command("index")
def index_command(ctx: typer.Context) -> None:
    """Rebuild the bitmap index that answers counts, facets and statistics in milliseconds.

    Writes keep the index exact on their own (readers patch in what changed since it was
    built); rebuilding folds those changes in, which keeps reads fast after large syncs.

    Example: catalog db index
    """
    from catalog.ingest.indexing import rebuild_index
    from catalog.render.writers import note

    report = rebuild_index(sessions(ctx))
    if report is None:
        note("Another rebuild of the bitmap index finished meanwhile; it is current.")
        return
    note(
        f"Built bitmap index generation {report.generation}: {report.bitmaps:,} bitmaps, "
        f"{report.size_bytes / 1e6:.1f} MB, {report.changes_folded:,} changes folded in."
    )
