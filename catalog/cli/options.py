"""Shared Annotated option types and the helpers commands use to reach the catalogue."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from sqlalchemy.orm import Session, sessionmaker

from catalog.config import Settings

if TYPE_CHECKING:  # boto3 is heavy: imported only by the commands that talk to AWS
    from catalog.aws.clients import AWSClients


class OutputFormat(StrEnum):
    """Every output format; each command accepts the ones that fit its result."""

    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def format_option(*allowed: OutputFormat, help: str = "Output format") -> Any:
    """The `--format/-f` option of a command that writes the `allowed` formats."""
    names = [choice.value for choice in allowed]

    def check(value: OutputFormat) -> OutputFormat:
        if value not in allowed:
            raise typer.BadParameter(f"'{value}' is not one of {', '.join(names)}")
        return value

    return typer.Option(
        "--format",
        "-f",
        callback=check,
        show_choices=False,
        metavar="[" + "|".join(names) + "]",
        help=f"{help}: {', '.join(names)}.",
    )


FormatOpt = Annotated[OutputFormat, format_option(*OutputFormat)]
DetailFormatOpt = Annotated[OutputFormat, format_option(OutputFormat.table, OutputFormat.json)]
MinConfidenceOpt = Annotated[
    float, typer.Option(min=0, max=100, help="Lowest label confidence to keep, in percent.")
]
MaxLabelsOpt = Annotated[
    int | None, typer.Option(min=1, max=1000, help="Most labels to keep per image.")
]
WhereOpt = Annotated[
    str | None,
    typer.Option(
        "--where",
        help="Restrict to the media a search query selects, e.g. 'Car > 90 AND NOT Dog'.",
        show_default=False,
    ),
]
TopOpt = Annotated[int, typer.Option("--top", "-n", help="How many labels to show.", min=1)]


def settings(ctx: typer.Context) -> Settings:
    """The Settings the app callback resolved."""
    obj = ctx.find_root().obj
    if not isinstance(obj, Settings):
        obj = Settings.resolve()
    return obj


def sessions(ctx: typer.Context) -> sessionmaker[Session]:
    """A session factory on a catalogue brought to the head revision."""
    from catalog.store.engine import open_catalogue

    _, factory = open_catalogue(settings(ctx).database_url)
    return factory


def aws_clients(ctx: typer.Context, max_pool_connections: int = 50) -> AWSClients:
    """The run's AWS clients, from --profile/--region and the standard chain."""
    from catalog.aws.clients import AWSClients

    current = settings(ctx)
    return AWSClients(current.profile, current.region, max_pool_connections=max_pool_connections)
