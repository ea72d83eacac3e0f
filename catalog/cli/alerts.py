"""`catalog alerts`: saved searches that notify SNS, SQS, webhooks or files of new matches."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.options import FormatOpt, OutputFormat, aws_clients, sessions

app = typer.Typer(
    help="Saved searches that notify when newly labelled media match them.",
    no_args_is_help=True,
)

TARGETS_HELP = (
    "Where alerts go (repeatable): sns:TOPIC_ARN, sqs:QUEUE_URL, an https:// webhook, or "
    "file:PATH (one JSON object per line)."
)


@app.command("add")
def add_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The alert's name.", show_default=False)],
    when: Annotated[
        str,
        typer.Option("--when", help="The query, in the search language.", show_default=False),
    ],
    notify: Annotated[list[str], typer.Option("--notify", help=TARGETS_HELP, show_default=False)],
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            envvar="CATALOG_ALERT_SECRET",
            help="Sign webhook bodies with HMAC-SHA256 under this key "
            "(header X-Catalog-Signature-256: sha256=HEX).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Save a search that fires for every newly labelled item it matches.

    An item fires when a labelling result for it is committed and it matches the query after
    that result but did not before; what matches now does not fire. Each alert is one JSON
    object: event_id, rule, query, labelled_at and the item as 'catalog search --format json'
    shows it.

    Example: catalog alerts add cars --when 'Car > 90' --notify sns:arn:aws:sns:eu-west-1:123456789012:cars
    """
    from catalog.alerts.rules import add_rule
    from catalog.render.views import render_hints
    from catalog.render.writers import note

    with sessions(ctx).begin() as session:
        added = add_rule(session, name, when, notify, secret=secret)
    render_hints(added.hints)
    note(f"Added alert '{added.name}'; {added.matching} media match it now (they do not fire).")


@app.command("list")
def list_command(ctx: typer.Context, output: FormatOpt = OutputFormat.table) -> None:
    """List the alerts with their targets, backlog (undelivered messages) and last error.

    Example: catalog alerts list --format json
    """
    from catalog.alerts.rules import list_rules
    from catalog.render.alerts import render_alert_rules

    with sessions(ctx)() as session:
        rules = list_rules(session)
    render_alert_rules(rules, output.value)


@app.command("remove")
def remove_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The alert's name.", show_default=False)],
) -> None:
    """Remove an alert (its undelivered messages are dropped).

    Example: catalog alerts remove cars
    """
    from catalog.alerts.rules import remove_rule
    from catalog.render.writers import note

    with sessions(ctx).begin() as session:
        dropped = remove_rule(session, name)
    note(
        f"Removed alert '{name}'"
        + (f"; dropped {dropped} undelivered messages." if dropped else ".")
    )


@app.command("test")
def test_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The alert's name.", show_default=False)],
    output: FormatOpt = OutputFormat.table,
    send: Annotated[
        bool,
        typer.Option(
            "--send", help="Also send each match to the alert's targets (event ids test-...)."
        ),
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", "-n", min=0, help="Most media to show or send (0: all).", show_default=False
        ),
    ] = None,
) -> None:
    """Show which catalogued media the alert matches now, as 'catalog search' does.

    Nothing is sent unless --send is given.

    Example: catalog alerts test cars --format json
    """
    from catalog.alerts.dispatch import deliver_alerts
    from catalog.alerts.rules import get_rule, queue_test_messages
    from catalog.read.search import search
    from catalog.render.views import render_hints, render_search_hits
    from catalog.render.writers import note

    factory = sessions(ctx)
    if limit is None:
        limit = 50 if output == OutputFormat.table else 0
    with factory() as session:
        query = get_rule(session, name).query
        result = search(session, query, limit=limit or None)
        render_hints(result.hints)
        render_search_hits(result, output.value, limit=limit or None)
    if send:
        with factory.begin() as session:
            queued = queue_test_messages(session, name, limit or None)
        counts = deliver_alerts(factory, aws_clients(ctx))
        note(
            f"Sent {counts.sent} test messages for {queued} media; {counts.failed} attempts failed."
        )


def register(root: typer.Typer) -> None:
    """Add the command group to the app."""
    root.add_typer(app, name="alerts")
