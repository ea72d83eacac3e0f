"""Shared Annotated option types and the helpers commands use to reach the catalogue."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from catalog.config import Settings

if TYPE_CHECKING:  # boto3 is heavy: imported only by the commands that talk to AWS
    from catalog.aws.clients import AWSClients


class OutputFormat(StrEnum):
    """Every output format."""

    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class DetailFormat(StrEnum):
    """Formats for one-record views."""

    table = "table"
    json = "json"


class ListFormat(StrEnum):
    """Formats for record lists without CSV/JSONL needs."""

    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
DetailFormatOpt = Annotated[DetailFormat, typer.Option("--format", "-f", help="Output format.")]


FeaturesOpt = Annotated[
    str,
    typer.Option(
        "--features",
        envvar="CATALOG_FEATURES",
        help="What to read from each item: labels, or labels,text to read the text it shows "
        "too (DetectText / text jobs, or offline OCR with --labeller local). Adding text later "
        "reads only the text; stored labels are not bought again.",
    ),
]


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
