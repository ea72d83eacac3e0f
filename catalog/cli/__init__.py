"""The Typer application: global options, the one error boundary, and main()."""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import signal
import sys
import threading
from typing import Annotated, Any

import typer
import typer.core
import typer.main
from typer.core import TyperGroup

from catalog import __version__
from catalog.config import DATABASE_ENV, Settings
from catalog.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, CatalogError, Terminated

log = logging.getLogger("catalog")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record is emitted (it can be swapped at run time)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        return None


class _SafeFormatter(logging.Formatter):
    """Log lines with names from users' data shown inert and secrets (AWS tokens, signatures,
    URL passwords) replaced by ***; tracebacks keep their lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from catalog.config import redact_secrets
        from catalog.render.writers import safe_text

        return redact_secrets(safe_text(super().formatMessage(record)))

    def formatException(self, ei: Any) -> str:
        from catalog.config import redact_secrets

        return redact_secrets(super().formatException(ei))


# The AWS SDK's own loggers: at DEBUG they write every request with its signature and session
# token, so -v shows only their warnings and errors (redacted); without -v, only errors.
_AWS_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")


def _configure_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(_SafeFormatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    handler.setLevel(level)  # loggers set to a lower level of their own still stay quiet here
    root.setLevel(level)
    for name in _AWS_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if verbose else logging.ERROR)


# Global options that take a value; they may also follow the subcommand (`catalog sync s3://b
# --region eu-west-1`), and are moved before it so the app callback sees them.
GLOBAL_VALUE_OPTIONS = ("--db", "--profile", "--region")


def hoist_global_options(args: list[str]) -> list[str]:
    """`args` with every global option (and its value) moved to the front, in order."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_VALUE_OPTIONS:
            if "=" in arg:
                hoisted.append(arg)
            else:
                hoisted.extend(args[i : i + 2])
                i += 1
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


# Help is plain text (rich_markup_mode=None). With rich installed, Typer still escapes every
# "[default: ...]" for rich markup, which plain help then prints as "\\[default: ...]", and it
# imports its rich help module (about 50 ms) to do so; telling it rich is absent avoids both.
typer.core.HAS_RICH = False
typer.main.HAS_RICH = False  # type: ignore[attr-defined]

# Which module under catalog/cli registers each top-level command (in --help's order): a command
# imports and builds only its own module, so `catalog search` never loads the sync or web code.
COMMAND_MODULES: dict[str, str] = {
    "sync": "sync",
    "show": "show",
    "failures": "show",
    "search": "search",
    "labels": "search",
    "stats": "stats",
    "report": "stats",
    "export": "stats",
    "worker": "worker",
    "iam-policy": "worker",
    "serve": "serve",
    "db": "db",
    "notify": "worker",
    "alerts": "alerts",
}


def load_commands(module: str) -> dict[str, Any]:
    """The click commands one catalog.cli module registers, by name."""
    registry = typer.Typer()
    importlib.import_module(f"catalog.cli.{module}").register(registry)
    return dict(typer.main.get_group(registry).commands)


class CatalogGroup(TyperGroup):
    """Turns CatalogError into one stderr line and its exit code, and Ctrl-C into exit 130."""

    def list_commands(self, ctx: Any) -> list[str]:
        """Every command, in --help's order (each is loaded only when asked for)."""
        return list(COMMAND_MODULES)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The named command, importing the one module that registers it on first use."""
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            self.commands.update(load_commands(COMMAND_MODULES[cmd_name]))
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Global options are accepted before or after the subcommand."""
        if ctx.parent is None:
            args = hoist_global_options(list(args))
        return list(super().parse_args(ctx, args))

    def invoke(self, ctx: Any) -> Any:
        from catalog.render.writers import error

        try:
            return super().invoke(ctx)
        except CatalogError as exc:
            if _stopping.is_set():
                return _interrupted()
            log.debug("error", exc_info=True)
            error(exc.message)
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            if _stopping.is_set():
                return _interrupted()
            translated = _translate(exc, ctx)
            if translated is None:
                raise
            log.debug("error", exc_info=True)
            error(translated.message)
            raise typer.Exit(translated.exit_code) from None
        except KeyboardInterrupt as exc:
            code = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
            _say_interrupted(code)
            raise typer.Exit(code) from None


def _interrupted() -> Any:
    """After a stop signal, an error raised while unwinding (a database call cut short by the
    signal, say) ends the command like the signal itself: one line, its exit code."""
    log.debug("error while stopping", exc_info=True)
    code = _stop_code[0]
    _say_interrupted(code)
    raise typer.Exit(code) from None


def _translate(exc: Exception, ctx: Any) -> CatalogError | None:
    """A database error that escaped the library, as our one-line error (None: not ours)."""
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    if not isinstance(exc, SQLAlchemyError | sqlite3.Error):
        return None
    from catalog.store.engine import database_error

    settings = ctx.obj if isinstance(ctx.obj, Settings) else None
    return database_error(exc, settings.database_url if settings else "the catalogue")


app = typer.Typer(
    cls=CatalogGroup,
    name="catalog",
    help="A searchable catalogue of the images and videos in an S3 library, labelled by Amazon Rekognition.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version(ctx: typer.Context, value: bool) -> None:
    if value:
        from catalog.config import describe_database_url

        url = Settings.resolve(db=ctx.params.get("db")).database_url
        typer.echo(f"catalog {__version__}")
        typer.echo(f"catalogue: {describe_database_url(url)}")
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
            is_eager=True,  # so that --version after it can name the catalogue
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
    ctx.obj = Settings.resolve(db=db, profile=profile, region=region, verbose=verbose)


_INTERRUPTED_LINE = (
    "Interrupted: every result finished before {what} is saved; run the command again to go on."
)
_said_interrupted = threading.Event()


def _say_interrupted(code: int) -> None:
    """The one line every interruption ends with (said once, however many signals arrive)."""
    if _said_interrupted.is_set():
        return
    _said_interrupted.set()
    from catalog.render.writers import note

    note(_INTERRUPTED_LINE.format(what="Ctrl-C" if code == EXIT_INTERRUPTED else "SIGTERM"))


def _on_signal(signum: int, _frame: Any) -> None:
    """First SIGINT/SIGTERM: unwind like Ctrl-C. Any later one: say the line and leave now."""
    code = EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED
    if _stopping.is_set():
        _say_interrupted(code)
        _exit_now(code)
    _stop_code[0] = code
    _stopping.set()
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


_stopping = threading.Event()
_stop_code = [EXIT_INTERRUPTED]  # the exit code of the first stop signal


def _exit_now(code: int) -> None:
    """Leave without waiting for threads still inside a call (their results are not wanted)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def main() -> None:
    """Console-script entry point: SIGINT and SIGTERM end any command with one line.

    The first signal unwinds like Ctrl-C (finished work stays committed, a sync closes its run
    row); a second one during that shutdown leaves at once, with the same line and exit code.
    """
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    # What the command line has imported lives until the process ends: the cyclic collector
    # need not walk it again on every collection the command triggers.
    gc.freeze()
    try:
        app()
    except SystemExit as exc:
        if exc.code in (EXIT_INTERRUPTED, EXIT_TERMINATED) and threading.active_count() > 1:
            _exit_now(int(exc.code))  # pool threads may still sit in a network call
        _close_catalogues()
        # Ending: the interpreter's last collection need not walk everything the command built
        # (about 25 ms after `stats --where` at a million media). Connections are closed above,
        # not left to that collection.
        gc.freeze()
        raise


def _close_catalogues() -> None:
    """Close every database connection the command's engines still pool (SQLAlchemy is not
    imported for this: a command that never loaded it has none)."""
    engine = sys.modules.get("catalog.store.engine")
    if engine is not None:
        engine.dispose_engines()
