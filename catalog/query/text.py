"""`text:` terms: the AST node, its parsing, and the resolved term (its SQL: query.text_sql).

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
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from catalog.query.limits import confidence_percent, integer_range, query_error
from catalog.store.units import text_words

# The planner's guess at how many items one text term selects (it cannot cheaply count an FTS
# match): below a common label, above a rare one, so the rarer side drives.
TEXT_COST_ESTIMATE = 5_000

_TRAILING_COMPARISON_RE = re.compile(r"(.+?)(>=|<=|>|<|=)(\d+(?:\.\d+)?%?)")


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
