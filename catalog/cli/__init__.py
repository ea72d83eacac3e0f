"""The Typer application: global options, the one error boundary, and main()."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from catalog import __version__
from catalog.config import DATABASE_ENV, Settings
from catalog.errors import EXIT_INTERRUPTED, CatalogError

log = logging.getLogger("catalog")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record is emitted (it can be swapped at run time)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        return None


def _configure_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    handler.setLevel(level)  # loggers set to a lower level of their own still stay quiet here
    root.setLevel(level)


class CatalogGroup(TyperGroup):
    """Turns CatalogError into one stderr line and its exit code, and Ctrl-C into exit 130."""

    def invoke(self, ctx: Any) -> Any:
        from catalog import render

        try:
            return super().invoke(ctx)
        except CatalogError as exc:
            log.debug("error", exc_info=True)
            render.error(exc.message)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            render.note(
                "Interrupted: every result finished before Ctrl-C is saved; run the command again to go on."
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None


app = typer.Typer(
    cls=CatalogGroup,
    name="catalog",
    help="A searchable catalogue of the images and videos in an S3 library, labelled by Amazon Rekognition.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"catalog {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar=DATABASE_ENV,
            help="Database URL (sqlite:///path.db, postgresql://...) or a SQLite file path. "
            "Default: catalog.db in the working directory.",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="AWS profile to use.")] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region (else the usual AWS chain).")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log details, with tracebacks.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Index, search and report on an image and video library kept in Amazon S3."""
    _configure_logging(verbose)
    if not verbose:
        logging.getLogger("botocore").setLevel(logging.ERROR)
    ctx.obj = Settings.resolve(db=db, profile=profile, region=region, verbose=verbose)


def _register() -> None:
    from catalog.cli import db, show, sync
    from catalog.cli import search as search_cli

    sync.register(app)
    show.register(app)
    search_cli.register(app)
    app.add_typer(db.app, name="db")
    from catalog.cli import stats as stats_cli

    stats_cli.register(app)

    from catalog.cli import worker

    worker.register(app)

    from catalog.cli import serve

    serve.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
