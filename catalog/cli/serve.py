"""`catalog serve`: the web gallery over the catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from catalog.cli.options import settings
from catalog.errors import EXIT_INTERRUPTED


def serve_command(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. Anything but localhost needs the access token.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="Port (0: any free port).")
    ] = 8765,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the gallery in a web browser.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="CATALOG_SERVE_TOKEN",
            help="Access token required on every request (generated when --host is not local).",
            show_default=False,
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            file_okay=False,
            help="Thumbnail cache. Default: NAME.thumbnails beside a SQLite catalogue, else "
            "~/.cache/catalog.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Browse, search and chart the catalogue in a web browser, until Ctrl-C.

    Serves a search page with thumbnails and facets, each item with its boxes drawn (videos
    with their moments), statistics and failures, and the same data as JSON under /api/.
    Read-only. Binds to 127.0.0.1 unless --host says otherwise.

    Example: catalog serve --port 8765 --open
    """
    from catalog.render.writers import note
    from catalog.web.app import ServeOptions, is_loopback, new_token, serve

    current = settings(ctx)
    if not is_loopback(host):
        token = token or new_token()
        note(
            f"Warning: listening on {host}: anyone who can reach this address and has the token can "
            "browse the catalogue and its media."
        )
    options = ServeOptions(
        database_url=current.database_url,
        host=host,
        port=port,
        token=token,
        cache_dir=cache_dir,
        profile=current.profile,
        region=current.region,
    )

    def ready(url: str) -> None:
        note(f"Serving the catalogue at {url}  (Ctrl-C stops)")
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    try:
        serve(options, on_ready=ready)
    except KeyboardInterrupt:
        note("Stopped.")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command("serve")(serve_command)
