"""`catalog show` and `catalog failures`: one item's labels, and what failed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from catalog.cli.options import (
    DetailFormatOpt,
    FormatOpt,
    OutputFormat,
    aws_clients,
    reading,
    sessions,
)
from catalog.render.views import render_failures


def show_command(
    ctx: typer.Context,
    uri: Annotated[
        str,
        typer.Argument(help="The media item: s3://BUCKET/KEY.", show_default=False, metavar="URI"),
    ],
    output: DetailFormatOpt = OutputFormat.table,
    draw: Annotated[
        Path | None,
        typer.Option(
            "--draw",
            help="Also write a picture (PNG/JPEG) of the item with its boxes, labels and "
            "confidences; for a video, a contact sheet of its labelled moments.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show one media item's labels, confidences, bounding boxes and label parents.

    Example: catalog show s3://my-photos/2024/beach.jpg --draw beach-boxes.png
    """
    from catalog.read.details import get_media_detail
    from catalog.render.views import render_media_detail
    from catalog.render.writers import note

    with reading(ctx) as reader:
        detail = get_media_detail(reader, uri)
    if draw is not None:
        from catalog.render.draw import write_media_picture
        from catalog.sources.read import MediaReader

        write_media_picture(detail, draw, MediaReader(lambda: aws_clients(ctx, 2).s3))
        note(f"Wrote {draw}")
    render_media_detail(detail, output.value)


def failures_command(
    ctx: typer.Context,
    output: FormatOpt = OutputFormat.table,
) -> None:
    """List the media that failed to label, with the error code and message.

    Retry them with 'catalog sync URI --retry-failed'.

    Example: catalog failures --format json
    """
    from catalog.read.details import iter_failures

    with sessions(ctx)() as session:
        render_failures(iter_failures(session), output.value)


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command("show")(show_command)
    app.command("failures")(failures_command)
