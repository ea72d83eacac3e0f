"""`catalog search` and `catalog labels`: query the catalogue and discover its vocabulary."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from catalog.cli.options import FormatOpt, OutputFormat, RawCsvOpt, aws_clients, reading
from catalog.render.views import render_labels

SEARCH_HELP = """Find media by label, confidence, instance count, kind, key, category, date and size.

Language: names are case-insensitive; AND, OR, NOT in any case; parentheses group; two
conditions side by side mean AND.

\b
  Car                           has the label at all
  Car > 90    Car >= 90%        best confidence in percent (also <, <=, =), at 0.01
  "Traffic Light" >= 80         quote names that hold spaces
  count(Person) >= 3            instances (bounding boxes) of a label
  Car>90 Person>=80 NOT Dog     AND by juxtaposition
  kind:image   kind:video       media kind
  prefix:photos/2024/           key prefix (or prefix:s3://BUCKET/PREFIX)
  category:"Vehicles and Automotive"
  modified:2024-01..2024-06     last modified: YYYY[-MM[-DD]], open ends ok
  size:>5MB                     size; B, KB, MB, GB, TB (decimal); 1MB..5MB

Aliases and parents: a name matches every label whose name or Rekognition alias equals it,
and every label a response named it as a parent of (case-insensitively), ORed together:
'Automobile' finds media labelled Car, whose alias is Automobile; 'Animal' finds a Dog whose
parents include Animal. Unknown names match nothing, and a 'did you mean' hint goes to stderr;
'catalog labels' lists the vocabulary.

Videos match a label condition when any moment meets it; 'NOT Dog' means no moment has a Dog.

Results are newest first (most recently catalogued media first) unless --sort says otherwise.
Each lists the labels the query names (outside NOT) that the item meets, with the best
confidence among what met the condition, and for videos the moments (timestamps_ms) that met it.

Example: catalog search 'Car > 90 AND NOT Dog' --format json --limit 20
"""


class SortOrder(StrEnum):
    """Result orders."""

    newest = "newest"
    confidence = "confidence"
    key = "key"
    modified = "modified"


def search_command(
    ctx: typer.Context,
    query: Annotated[
        str, typer.Argument(help="The query, e.g. 'Car > 90 AND NOT Dog'.", show_default=False)
    ],
    output: FormatOpt = OutputFormat.table,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            min=0,
            help="Most results to show (0: all). Default: 50 for table, all for other formats.",
            show_default=False,
        ),
    ] = None,
    sort: Annotated[
        SortOrder,
        typer.Option(
            "--sort",
            help="newest (media id, newest first), confidence (best of the named labels), "
            "key, or modified (newest first).",
        ),
    ] = SortOrder.newest,
    count: Annotated[
        bool, typer.Option("--count", help="Print only the number of matches.")
    ] = False,
    facets: Annotated[
        bool,
        typer.Option(
            "--facets",
            help="Print the result set's size and its top co-occurring labels, kinds and "
            "prefixes with counts, as JSON.",
        ),
    ] = False,
    urls: Annotated[
        bool, typer.Option("--urls", help="Add a presigned GET URL to every result.")
    ] = False,
    expires: Annotated[
        int, typer.Option("--expires", min=1, max=604800, help="Presigned URL lifetime, seconds.")
    ] = 3600,
    raw_csv: RawCsvOpt = False,
) -> None:
    from catalog.read.search import count_matches, search
    from catalog.render.views import render_hints, render_search_count, render_search_hits

    with reading(ctx) as reader:
        if facets:
            from catalog.read.facets import facets as count_facets
            from catalog.render.views import render_facets

            render_facets(query, count_facets(reader.session(), query))
            return
        if count:
            counted = count_matches(reader, query)
            render_hints(counted.hints)
            render_search_count(counted, output.value)
            return
        if limit is None:
            limit = 50 if output == OutputFormat.table else 0
        presign = None
        if urls:
            from catalog.aws.clients import s3_presigner  # boto3 loads only when asked for URLs

            presign = s3_presigner(aws_clients(ctx), expires)
        result = search(reader, query, limit=limit or None, sort=sort.value, presign=presign)
        render_hints(result.hints)
        render_search_hits(result, output.value, limit=limit or None, raw_csv=raw_csv)


search_command.__doc__ = SEARCH_HELP


def labels_command(
    ctx: typer.Context,
    pattern: Annotated[
        str | None,
        typer.Argument(
            help="Show only names (or aliases) containing this text; * and ? are wildcards.",
            show_default=False,
        ),
    ] = None,
    output: FormatOpt = OutputFormat.table,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", "-n", min=0, help="Most labels to show (0: all).", show_default=False
        ),
    ] = None,
) -> None:
    """List the catalogue's vocabulary: every label, how many media carry it, and its aliases.

    Example: catalog labels car --format json
    """
    from catalog.read.labels import list_labels

    with reading(ctx) as reader:
        labels = list_labels(reader, pattern)
    render_labels(labels[:limit] if limit else labels, output.value, total=len(labels))


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command("search")(search_command)
    app.command("labels")(labels_command)
