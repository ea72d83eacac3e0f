"""`catalog stats`, `catalog report` and `catalog export`: what the library holds, in numbers and pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from catalog.cli.options import (
    OutputFormat,
    RawCsvOpt,
    TopOpt,
    WhereOpt,
    aws_clients,
    format_option,
    reading,
    sessions,
)
from catalog.render.statistics import render_export, render_report_summary


def stats_command(
    ctx: typer.Context,
    top: TopOpt = 20,
    label: Annotated[
        str | None,
        typer.Option(
            "--label",
            "-l",
            help="Also show this label's confidence histogram, co-occurring labels, prefixes "
            "and months.",
            show_default=False,
        ),
    ] = None,
    where: WhereOpt = None,
    prefix_depth: Annotated[
        int, typer.Option("--prefix-depth", help="Key segments that make a prefix.", min=1)
    ] = 1,
    output: Annotated[
        OutputFormat,
        format_option(
            OutputFormat.table,
            OutputFormat.json,
            OutputFormat.csv,
            help="Output format (csv: the labels, or with --label its sections)",
        ),
    ] = OutputFormat.table,
) -> None:
    """Totals, top labels with their confidences, and one label's spread.

    Example: catalog stats --top 10 --label Dog --where 'Person > 80'
    """
    from catalog.read.stats import library_stats
    from catalog.render.statistics import render_stats

    with reading(ctx) as reader:
        result = library_stats(reader, top=top, label=label, where=where, prefix_depth=prefix_depth)
    render_stats(result, output.value)


def report_command(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="The HTML file to write.", dir_okay=False),
    ] = Path("report.html"),
    where: WhereOpt = None,
    top: TopOpt = 20,
) -> None:
    """Write one self-contained HTML report: totals, charts and a gallery with boxes drawn.

    The file opens offline: charts and thumbnails are embedded in it.

    Example: catalog report --out report.html --where 'Dog OR Cat'
    """
    from catalog.render.report import build_report, ensure_writable, save_report
    from catalog.sources.read import MediaReader

    ensure_writable(out)

    fetch = MediaReader(lambda: aws_clients(ctx, 4).s3)  # one client for every thumbnail
    with sessions(ctx)() as session:
        result = build_report(session, where=where, top=top, fetch=fetch)
    save_report(result, out)
    render_report_summary(result, out)


def export_command(
    ctx: typer.Context,
    output: Annotated[
        OutputFormat, format_option(OutputFormat.csv, OutputFormat.jsonl, help="CSV or JSON Lines")
    ] = OutputFormat.csv,
    where: WhereOpt = None,
    raw_csv: RawCsvOpt = False,
) -> None:
    """Stream every (media, label, confidence, instances) row for spreadsheets and BI tools.

    Example: catalog export --format jsonl --where 'Car > 90' > cars.jsonl
    """
    from catalog.read.export import iter_export_rows

    with sessions(ctx)() as session:
        render_export(iter_export_rows(session, where=where), output.value, raw_csv=raw_csv)


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command("stats")(stats_command)
    app.command("report")(report_command)
    app.command("export")(export_command)
