"""`text:` terms: the AST node, its parsing, and its SQL over the full-text index.

    text:exit                  a LINE of text holds the word (case- and accent-insensitive)
    text:"emergency exit"      ... holds the phrase (its words, in order, adjacent)
    text:"exit" > 90           ... and the line's confidence compares (>, >=, <, <=, =)

On SQLite the words are looked up in the FTS5 table `text_fts` (one row per item); on
PostgreSQL through the GIN index on each LINE's `to_tsvector('simple', text_folded)`. Both hold
folded words (catalog.store.text), so case and accents never matter. A video matches when any
of its moments shows the text.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from catalog.query.limits import confidence_percent, integer_range, query_error
from catalog.store.schema import TEXT_LINE, Media, TextDetection
from catalog.store.text import TEXT_FTS, text_words

# The planner's guess at how many items one text term selects (it cannot cheaply count an FTS
# match): below a common label, above a rare one, so the rarer side drives.
TEXT_COST_ESTIMATE = 5_000

_TRAILING_COMPARISON_RE = re.compile(r"(.+?)(>=|<=|>|<|=)(\d+(?:\.\d+)?%?)")

_SIMPLE: ColumnElement[Any] = literal_column("'simple'::regconfig")


@dataclass(frozen=True)
class TextCondition:
    """A LINE of text holds `phrase` (one word or several), optionally with a confidence."""

    phrase: str
    op: str | None = None
    value: float | None = None

    @property
    def words(self) -> tuple[str, ...]:
        """The folded words the index is searched for, in order."""
        return tuple(text_words(self.phrase))

    @property
    def range_x100(self) -> tuple[int | None, int | None]:
        """Inclusive (low, high) bounds on the line's confidence_x100; None is unbounded."""
        if self.op is None or self.value is None:
            return None, None
        return integer_range(self.op, Decimal(str(self.value)) * 100)


@dataclass(frozen=True)
class TextTerm:
    """A TextCondition bound to the SQL dialect whose full-text index answers it."""

    condition: TextCondition
    dialect: str

    @property
    def is_empty(self) -> bool:
        """True when the confidence range holds no value (`text:x > 90 AND < 10` style)."""
        low, high = self.condition.range_x100
        return low is not None and high is not None and low > high


@dataclass(frozen=True)
class TextMatch:
    """A line of text that met one of the query's text terms on one item (best confidence)."""

    text: str
    confidence_x100: int
    timestamps_ms: tuple[int, ...] | None = None


def parse_text_term(
    raw: str, quoted: bool, comp: str | None, number: str | None, pos: int
) -> TextCondition:
    """Build the TextCondition for `text:VALUE [COMP NUMBER]`; QueryError when malformed.

    `pos` is the 0-based offset of the value; an unquoted `text:exit>90` reads as
    `text:exit > 90`.
    """
    phrase = " ".join(raw.split())
    if not quoted and comp is None:
        trailing = _TRAILING_COMPARISON_RE.fullmatch(phrase)
        if trailing:
            phrase, comp, number = trailing.group(1), trailing.group(2), trailing.group(3)
    if not text_words(phrase):
        raise query_error(
            pos, 'text: needs a word or a quoted phrase, e.g. text:exit or text:"no exit"'
        )
    if comp is None or number is None:
        return TextCondition(phrase)
    return TextCondition(phrase, comp, confidence_percent(number, comp, pos))


def positive_text_terms(node: Any) -> list[TextTerm]:
    """Text terms of a resolved tree that are not under a NOT (the ones matches report)."""
    if isinstance(node, TextTerm):
        return [node]
    items = getattr(node, "items", None)  # And / Or; a Not has `item` and is skipped
    if isinstance(items, tuple):
        return [term for item in items for term in positive_text_terms(item)]
    return []


# -- SQL -------------------------------------------------------------------------------------------


def _words(term: TextTerm) -> str:
    return " ".join(term.condition.words)


def line_conditions(rows: Any, term: TextTerm) -> list[ColumnElement[bool]]:
    """Conditions that a text_detections row (aliased as `rows`) is a LINE meeting `term`.

    `text_folded` is folded words joined by single spaces, so a phrase is a substring between
    spaces; on PostgreSQL the GIN-indexed tsvector finds the lines first.
    """
    padded = literal(" ") + rows.text_folded + literal(" ")
    conditions: list[ColumnElement[bool]] = [
        rows.kind == TEXT_LINE,
        padded.like(f"% {_words(term)} %"),  # words are letters and digits: no LIKE wildcards
    ]
    if term.dialect == "postgresql":
        vector = func.to_tsvector(_SIMPLE, rows.text_folded)
        conditions.append(vector.bool_op("@@")(func.phraseto_tsquery(_SIMPLE, _words(term))))
    low, high = term.condition.range_x100
    if low is not None and low > 0:
        conditions.append(rows.confidence_x100 >= low)
    if high is not None:
        conditions.append(rows.confidence_x100 <= high)
    return conditions


def _fts_match(term: TextTerm) -> ColumnElement[bool]:
    """SQLite: the item's FTS5 row holds the phrase within one line."""
    return TEXT_FTS.c.body.op("MATCH")('"' + _words(term) + '"')


def _line_exists(term: TextTerm, media_id: Any) -> ColumnElement[bool]:
    rows = aliased(TextDetection)
    return exists().where(rows.media_id == media_id, *line_conditions(rows, term))


def text_exists(term: TextTerm, media_id: Any) -> ColumnElement[bool]:
    """A probe: the item `media_id` shows a line meeting `term`."""
    if term.dialect != "sqlite":
        return _line_exists(term, media_id)
    found: ColumnElement[bool] = media_id.in_(select(TEXT_FTS.c.rowid).where(_fts_match(term)))
    if term.condition.op is None:
        return found  # the index alone is exact
    return and_(found, _line_exists(term, media_id))  # the confidence is the line's own


def text_scan(term: TextTerm, rest: Sequence[Any], probe: Any, join_media: bool) -> Select[Any]:
    """The media ids (column `id`, each once) with a line meeting `term`, the `rest` probed.

    On SQLite the FTS5 table drives: its rowid is the media id, so newest-first pages read the
    index backwards and stop early. `probe(node, media_id)` builds each other term's condition;
    `join_media` brings the media row in for filters on its columns.
    """
    if term.dialect != "sqlite":
        rows = aliased(TextDetection, name="t")
        lines = select(rows.media_id).where(*line_conditions(rows, term))
        return select(Media.id.label("id")).where(
            Media.id.in_(lines), *(probe(item, Media.id) for item in rest)
        )
    media_id = TEXT_FTS.c.rowid
    conditions = [_fts_match(term), *(probe(item, media_id) for item in rest)]
    if term.condition.op is not None:
        conditions.append(_line_exists(term, media_id))
    stmt = select(media_id.label("id")).where(*conditions)
    return stmt.join(Media, Media.id == media_id) if join_media else stmt


def text_matches(
    connection: Connection, terms: Sequence[TextTerm], media_ids: Sequence[int]
) -> dict[int, list[TextMatch]]:
    """For each media id, the distinct lines that met one of `terms`, best first.

    A video's line lists the moments it was seen at (`timestamps_ms`, in order).
    """
    found: dict[int, list[TextMatch]] = defaultdict(list)
    if not terms or not media_ids:
        return found
    rows = aliased(TextDetection)
    seen: dict[tuple[int, str], list[tuple[int | None, int]]] = defaultdict(list)
    for term in dict.fromkeys(terms):
        for media_id, text, confidence, timestamp_ms in connection.execute(
            select(rows.media_id, rows.text, rows.confidence_x100, rows.timestamp_ms).where(
                rows.media_id.in_(list(media_ids)), *line_conditions(rows, term)
            )
        ):
            seen[(media_id, text)].append((timestamp_ms, confidence))
    for (media_id, text), hits in seen.items():
        stamps = sorted({ts for ts, _ in hits if ts is not None})
        found[media_id].append(
            TextMatch(text, max(c for _, c in hits), tuple(stamps) if stamps else None)
        )
    for matches in found.values():
        matches.sort(key=lambda m: (-m.confidence_x100, m.text))
    return found


__all__ = [
    "TEXT_COST_ESTIMATE",
    "TextCondition",
    "TextMatch",
    "TextTerm",
    "line_conditions",
    "parse_text_term",
    "positive_text_terms",
    "text_exists",
    "text_matches",
    "text_scan",
]
