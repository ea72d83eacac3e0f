"""A query's cost bounds: how many conditions, how deep, how large a number it may hold."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from catalog.errors import QueryError

# Conditions in one query. The planner folds wide ORs of label conditions into one scan, but
# each count() condition is a subquery over every instance row: 190 ANDed `NOT count(Car)>=N`
# took 46 s on 100k media, so those have a bound of their own.
MAX_TERMS = 100
MAX_COUNT_TERMS = 16
# AND/OR/NOT levels after flattening: deeper SQL overflows SQLite's parser stack near 40.
MAX_DEPTH = 24
# Sizes beyond this are not physical (and overflow a 64-bit column).
MAX_SIZE_BYTES = 10**18


def _measure(node: Any, is_costly: Callable[[Any], bool]) -> tuple[int, int, int]:
    """(conditions, costly conditions, depth): And/Or have `items`, Not has `item`."""
    items = getattr(node, "items", None)
    if items is not None:
        parts = [_measure(item, is_costly) for item in items]
        return (
            sum(part[0] for part in parts),
            sum(part[1] for part in parts),
            1 + max(part[2] for part in parts),
        )
    inner = getattr(node, "item", None)
    if inner is not None:
        terms, costly, depth = _measure(inner, is_costly)
        return terms, costly, depth + 1
    return 1, int(is_costly(node)), 0


def check_cost(node: Any, is_costly: Callable[[Any], bool]) -> None:
    """Refuse a parsed query whose SQL would be too costly to plan or run (QueryError).

    `is_costly` tells the conditions that each cost a scan of their own (count()).
    """
    terms, costly, depth = _measure(node, is_costly)
    if terms > MAX_TERMS:
        raise QueryError(
            f"the query has {terms} conditions; at most {MAX_TERMS} are allowed "
            "(split it into several searches)",
            1,
        )
    if costly > MAX_COUNT_TERMS:
        raise QueryError(
            f"the query has {costly} count() conditions; at most {MAX_COUNT_TERMS} are allowed "
            "(split it into several searches)",
            1,
        )
    if depth > MAX_DEPTH:
        raise QueryError(
            f"the query nests AND/OR/NOT more than {MAX_DEPTH} levels deep; simplify it", 1
        )


def query_error(pos: int, message: str) -> QueryError:
    """A malformed-query error pointing at the 0-based offset `pos` (shown 1-based)."""
    return QueryError(f"malformed query at position {pos + 1}: {message}", pos + 1)


def confidence_percent(raw: str, comp: str, pos: int) -> float:
    """The percent a comparison names (`90`, `90.5`, `90%`), at most 100; QueryError if not."""
    digits = raw[:-1] if raw.endswith("%") else raw
    try:
        value = Decimal(digits)
        if not value.is_finite() or not re.fullmatch(r"\d+(\.\d+)?|\.\d+", digits):
            raise InvalidOperation
    except InvalidOperation:
        raise query_error(
            pos, f"expected a confidence percent after '{comp}', found '{raw}'"
        ) from None
    if value > 100:
        raise query_error(pos, f"a confidence is 0-100 percent, found '{raw}'")
    return float(value)


def integer_range(op: str, scaled: Decimal) -> tuple[int | None, int | None]:
    """Inclusive integer bounds for `x op scaled` over integers x."""
    floor = int(scaled.to_integral_value(ROUND_FLOOR))
    ceil = int(scaled.to_integral_value(ROUND_CEILING))
    return {
        ">": (floor + 1, None),
        ">=": (ceil, None),
        "<": (None, ceil - 1),
        "<=": (None, floor),
        "=": (ceil, floor),
    }[op]
