"""Views of alert rules: `catalog alerts list` as a table, JSON, JSON Lines or CSV."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from catalog.render.writers import note, write_csv, write_json, write_jsonl, write_table

COLUMNS = ("name", "query", "targets", "matching", "delivered", "backlog", "last_error")


def render_alert_rules(rules: Sequence[Any], fmt: str) -> None:
    """Every rule with its targets, backlog and last delivery error."""
    records = [rule.to_dict() for rule in rules]
    if fmt == "json":
        write_json(records)
        return
    if fmt == "jsonl":
        write_jsonl(records)
        return
    if fmt == "csv":
        write_csv(({**r, "targets": " ".join(r["targets"])} for r in records), COLUMNS)
        return
    if not records:
        note("No alerts; add one with 'catalog alerts add NAME --when QUERY --notify TARGET'.")
        return
    write_table(
        (
            [
                r["name"],
                r["query"],
                "\n".join(r["targets"]),
                r["matching"],
                r["delivered"],
                r["backlog"],
                r["last_error"] or "",
            ]
            for r in records
        ),
        COLUMNS,
        justify={"matching": "right", "delivered": "right", "backlog": "right"},
    )
