"""Consoles, messages and the format writers: rich tables, JSON, JSON Lines and CSV.

Data goes to stdout, messages and progress to stderr, so `--format json | jq` always works.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def stdout_console() -> Console:
    """The console for data."""
    return Console(soft_wrap=False)


def stderr_console() -> Console:
    """The console for messages and progress."""
    return Console(stderr=True)


def error(message: str) -> None:
    """One error line on stderr."""
    stderr_console().print(
        f"[bold red]Error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True
    )


def note(message: str) -> None:
    """One informational line on stderr."""
    stderr_console().print(message, highlight=False, markup=False, soft_wrap=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_text(record: Mapping[str, Any]) -> str:
    """One record as compact JSON (the serialiser every JSON writer here uses)."""
    return json.dumps(record, default=_json_default, ensure_ascii=False)


def write_json(records: Iterable[Mapping[str, Any]], out: TextIO | None = None) -> None:
    """A JSON list, streamed one record at a time."""
    out = out or sys.stdout
    out.write("[")
    first = True
    for record in records:
        out.write("\n  " if first else ",\n  ")
        out.write(json_text(record))
        first = False
    out.write("\n]\n" if not first else "]\n")
    out.flush()


def write_json_object(value: Mapping[str, Any], out: TextIO | None = None) -> None:
    """One JSON object, indented."""
    out = out or sys.stdout
    out.write(json.dumps(value, default=_json_default, ensure_ascii=False, indent=2) + "\n")
    out.flush()


def write_jsonl(records: Iterable[Mapping[str, Any]], out: TextIO | None = None) -> None:
    """One JSON object per line."""
    out = out or sys.stdout
    for record in records:
        out.write(json_text(record) + "\n")
    out.flush()


def write_csv(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], out: TextIO | None = None
) -> None:
    """CSV with a header row."""
    out = out or sys.stdout
    writer = csv.DictWriter(
        out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    out.flush()


CsvRows = Callable[[Mapping[str, Any]], Iterable[Mapping[str, Any]]]
RecordWriter = Callable[[Iterable[Mapping[str, Any]], Sequence[str], TextIO | None], None]

# The machine formats, keyed by name: every view writes its records through this one registry.
RECORD_WRITERS: dict[str, RecordWriter] = {
    "json": lambda records, _columns, out: write_json(records, out),
    "jsonl": lambda records, _columns, out: write_jsonl(records, out),
    "csv": lambda records, columns, out: write_csv(records, columns, out),
}


def write_records(
    fmt: str,
    records: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    csv_rows: CsvRows | None = None,
    out: TextIO | None = None,
) -> bool:
    """Write `records` in the machine format `fmt`; False when `fmt` is not one (a table).

    `columns` are the CSV header; `csv_rows` turns one record into its CSV rows (default: the
    record itself).
    """
    writer = RECORD_WRITERS.get(fmt)
    if writer is None:
        return False
    if fmt == "csv" and csv_rows is not None:
        records = (row for record in records for row in csv_rows(record))
    writer(records, columns, out)
    return True


def write_table(
    rows: Iterable[Sequence[Any]],
    columns: Sequence[str],
    title: str | None = None,
    console: Console | None = None,
    justify: Mapping[str, str] | None = None,
    wide: Sequence[str] = (),
) -> None:
    """A table on stdout: rich on a terminal, plain tab-separated lines otherwise.

    The first column identifies the row (a URI, a label) and is never cut: on a terminal long
    values fold onto more lines, as do the `wide` columns, which share the spare width.
    """
    console = console or stdout_console()
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    if not console.is_terminal:
        if title:
            note(title)  # a message, not data: stdout stays plain rows for scripts
        out = console.file
        out.write("\t".join(columns) + "\n")
        for row in cells:
            out.write("\t".join(" ".join(value.split()) for value in row) + "\n")
        out.flush()
        return
    table = Table(title=title, show_lines=False, header_style="bold")
    for index, column in enumerate(columns):
        folds = index == 0 or column in wide
        table.add_column(
            column,
            justify=(justify or {}).get(column, "left"),  # type: ignore[arg-type]
            overflow="fold" if folds else "ellipsis",
            ratio=3 if folds else None,
            no_wrap=not folds,
            min_width=min(max((len(row[index]) for row in cells), default=0), 40)
            if index == 0
            else None,
        )
    for row in cells:
        table.add_row(*(Text(value) for value in row))
    console.print(table)


def format_confidence(value: float | None) -> str:
    """92.5 -> '92.5%'."""
    return "" if value is None else f"{value:.1f}%"


def format_usd(value: float) -> str:
    """Dollars: cents, or a tenth of a cent below one cent ($0.004), never a misleading $0.00."""
    if 0 < value < 0.01:
        return f"${value:.4f}".rstrip("0")
    return f"${value:,.2f}"


def format_bytes(value: int | None) -> str:
    """Human-readable size."""
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(value)
