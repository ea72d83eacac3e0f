"""Shared Annotated option types and the helpers commands use to reach the catalogue."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from catalog.config import DATABASE_ENV, Settings, sqlite_path
from catalog.errors import NotFoundError

if TYPE_CHECKING:  # boto3 and the ORM are heavy: imported only where a command needs them
    from sqlalchemy.orm import Session, sessionmaker

    from catalog.aws.clients import AWSClients
    from catalog.store.sql import Reader


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
RawCsvOpt = Annotated[
    bool,
    typer.Option(
        "--raw-csv",
        help="Write CSV cells exactly as stored. By default a cell starting with = + - @, TAB "
        "or CR gets a leading ' so spreadsheets show it as text instead of running it.",
    ),
]
TopOpt = Annotated[int, typer.Option("--top", "-n", help="How many labels to show.", min=1)]


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


def _existing_catalogue(ctx: typer.Context) -> str:
    """The catalogue's URL; NotFoundError naming the file when a SQLite one does not exist."""
    url = settings(ctx).database_url
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise NotFoundError(
            f"no catalogue at {path}; run 'catalog sync' to create it, or point --db "
            f"(or {DATABASE_ENV}) at an existing one"
        )
    return url


def sessions(ctx: typer.Context, *, create: bool = False) -> sessionmaker[Session]:
    """A session factory on the catalogue, brought to the head revision.

    Commands that only read pass create=False: a catalogue that does not exist is an error
    naming where it was looked for, never a new empty one.
    """
    from catalog.store.engine import open_catalogue

    url = settings(ctx).database_url if create else _existing_catalogue(ctx)
    _, factory = open_catalogue(url)
    return factory


@contextmanager
def reading(ctx: typer.Context) -> Iterator[Reader]:
    """The existing catalogue, opened for reading (SQLAlchemy loads only if a read needs it)."""
    from catalog.store.readers import open_reader

    reader = open_reader(_existing_catalogue(ctx))
    try:
        yield reader
    finally:
        reader.close()


def aws_clients(ctx: typer.Context, max_pool_connections: int = 50) -> AWSClients:
    """The run's AWS clients, from --profile/--region and the standard chain."""
    from catalog.aws.clients import AWSClients

    current = settings(ctx)
    return AWSClients(current.profile, current.region, max_pool_connections=max_pool_connections)


# -- video jobs (`sync` and `worker`) ------------------------------------------------------------

MaxVideoJobsOpt = Annotated[
    int,
    typer.Option(
        "--max-video-jobs",
        min=1,
        help="Video label jobs running at once (Rekognition's default quota is 20).",
    ),
]
TranscodeOpt = Annotated[
    bool,
    typer.Option(
        "--transcode/--no-transcode",
        help="Convert videos Rekognition cannot read (not H.264 in MP4/MOV) to H.264 MP4 and "
        "upload the copy under --transcode-prefix in the same bucket.",
    ),
]
TranscodePrefixOpt = Annotated[
    str,
    typer.Option(
        "--transcode-prefix", help="Where --transcode writes its copies (never catalogued)."
    ),
]


def notification_topic_option(then: str = "") -> Any:
    """The `--notification-topic-arn` option; `then` says what the command does differently."""
    return typer.Option(
        "--notification-topic-arn",
        help="SNS topic Rekognition announces finished video jobs on (with --role-arn)"
        + (f"; {then}." if then else "."),
        show_default=False,
    )


NotificationTopicOpt = Annotated[str | None, notification_topic_option()]
RoleArnOpt = Annotated[
    str | None,
    typer.Option(
        "--role-arn",
        help="IAM role Rekognition publishes to the SNS topic with.",
        show_default=False,
    ),
]
PollIntervalOpt = Annotated[
    float,
    typer.Option(
        "--poll-interval",
        min=0.001,
        help="Seconds between first status checks of a video job (backs off).",
    ),
]
