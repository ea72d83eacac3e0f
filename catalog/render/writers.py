"""Consoles, messages and the format writers: rich tables, JSON, JSON Lines and CSV.

Data goes to stdout, messages and progress to stderr, so `--format json | jq` always works.
Names from users' buckets and folders are data: every human-readable output passes them through
`safe_text` (controls and bidi overrides shown as escapes) and hands them to rich as `Text`,
never as markup; CSV cells are neutralised by `csv_cell` unless the user asks for raw CSV.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

# Bidirectional embeddings, overrides, isolates and marks: they reorder what a terminal shows.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_SHOWN_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# OWASP's CSV-injection starts: a spreadsheet evaluates a cell beginning with one of these.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _shown(char: str) -> str:
    if char in _SHOWN_ESCAPES:
        return _SHOWN_ESCAPES[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _is_hostile(char: str) -> bool:
    if char in _BIDI_CONTROLS:
        return True
    # Cc: C0, DEL, C1; Zl/Zp: line and paragraph separators; Cs: undecodable bytes (surrogates).
    return unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cs")


def safe_text(value: object) -> str:
    """`value` as text a terminal shows literally: controls, DEL, C1 and bidi overrides escaped.

    The one neutraliser every human-readable output uses for names from users' data:
    'a\\x1b]0;x' shows the escape as the four characters \\x1b instead of obeying it.
    """
    text = "" if value is None else str(value)
    if text.isprintable() and not _BIDI_CONTROLS.intersection(text):
        return text
    return "".join(_shown(char) if _is_hostile(char) else char for char in text)


def inert(value: object, style: str = "") -> Text:
    """`value` as a rich `Text` that is never read as markup, with `safe_text` applied."""
    return Text(safe_text(value), style=style)


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a leading = + - @ TAB or CR gets a quote mark."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


# emoji=False: ":smile:" in a message stays those characters (names are never markup either).
def stdout_console() -> Console:
    """The console for data."""
    return Console(soft_wrap=False, emoji=False)


def stderr_console() -> Console:
    """The console for messages and progress."""
    return Console(stderr=True, emoji=False)


def error(message: str) -> None:
    """One error line on stderr."""
    stderr_console().print(
        Text.assemble(("Error:", "bold red"), " ", safe_text(message)),
        highlight=False,
        soft_wrap=True,
    )


def note(message: str) -> None:
    """One informational line on stderr (names in it are shown inert)."""
    stderr_console().print(inert(message), highlight=False, soft_wrap=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_text(record: Mapping[str, Any]) -> str:
    """One record as compact JSON (the serialiser every JSON writer here uses)."""
    return json.dumps(record, default=_json_default, ensure_ascii=False)


def json_chunks(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The text of a JSON list, one record per chunk (what write_json prints, for streaming)."""
    yield "["
    first = True
    for record in records:
        yield ("\n  " if first else ",\n  ") + json_text(record)
        first = False
    yield "\n]\n" if not first else "]\n"


def write_json(records: Iterable[Mapping[str, Any]], out: TextIO | None = None) -> None:
    """A JSON list, streamed one record at a time."""
    out = out or sys.stdout
    for chunk in json_chunks(records):
        out.write(chunk)
    out.flush()


def json_object_text(value: Mapping[str, Any]) -> str:
    """One JSON object, indented, with a final newline (what write_json_object prints)."""
    return json.dumps(value, default=_json_default, ensure_ascii=False, indent=2) + "\n"


def write_json_object(value: Mapping[str, Any], out: TextIO | None = None) -> None:
    """One JSON object, indented."""
    out = out or sys.stdout
    out.write(json_object_text(value))
    out.flush()


def write_jsonl(records: Iterable[Mapping[str, Any]], out: TextIO | None = None) -> None:
    """One JSON object per line."""
    out = out or sys.stdout
    for record in records:
        out.write(json_text(record) + "\n")
    out.flush()


def write_csv(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    out: TextIO | None = None,
    *,
    raw: bool = False,
) -> None:
    """CSV with a header row, one "\\n"-ended line per row.

    Every field holding a CR or LF is quoted (so no reader splits the row), and unless `raw`,
    cells that a spreadsheet would run as a formula are neutralised (`csv_cell`).
    """
    out = out or sys.stdout
    fields = list(columns)
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    # The csv module quotes a field holding the line terminator's characters: with "\n" that
    # misses a bare CR, so a row holding one is written with "\r\n" (quoting it) and then ended
    # with a plain "\n" like the others.
    buffer = io.StringIO()
    cr_writer = csv.DictWriter(
        buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\r\n"
    )
    writer.writeheader()
    for row in rows:
        cells = {k: ("" if v is None else v if raw else csv_cell(v)) for k, v in row.items()}
        if not any(isinstance(v, str) and "\r" in v for v in cells.values()):
            writer.writerow(cells)
            continue
        cr_writer.writerow(cells)
        out.write(buffer.getvalue()[:-2] + "\n")
        buffer.seek(0)
        buffer.truncate()
    out.flush()


CsvRows = Callable[[Mapping[str, Any]], Iterable[Mapping[str, Any]]]
RecordWriter = Callable[[Iterable[Mapping[str, Any]], Sequence[str], TextIO | None, bool], None]

# The machine formats, keyed by name: every view writes its records through this one registry.
RECORD_WRITERS: dict[str, RecordWriter] = {
    "json": lambda records, _columns, out, _raw: write_json(records, out),
    "jsonl": lambda records, _columns, out, _raw: write_jsonl(records, out),
    "csv": lambda records, columns, out, raw: write_csv(records, columns, out, raw=raw),
}


def write_records(
    fmt: str,
    records: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    csv_rows: CsvRows | None = None,
    out: TextIO | None = None,
    raw_csv: bool = False,
) -> bool:
    """Write `records` in the machine format `fmt`; False when `fmt` is not one (a table).

    `columns` are the CSV header; `csv_rows` turns one record into its CSV rows (default: the
    record itself); `raw_csv` turns off the neutralising of formula-like cells.
    """
    writer = RECORD_WRITERS.get(fmt)
    if writer is None:
        return False
    if fmt == "csv" and csv_rows is not None:
        records = (row for record in records for row in csv_rows(record))
    writer(records, columns, out, raw_csv)
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
    cells = [[safe_text(v) for v in row] for row in rows]
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
