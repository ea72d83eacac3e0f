"""A query's cost bounds: how many conditions, how deep, how large a number it may hold."""

from __future__ import annotations

from typing import Any

from catalog.errors import QueryError

# Conditions in one query: each can be a subquery over every label row (190 NOT count() terms
# took 46 s on 100k media).
MAX_TERMS = 32
# AND/OR/NOT levels after flattening: deeper SQL overflows SQLite's parser stack near 40.
MAX_DEPTH = 24
# Sizes beyond this are not physical (and overflow a 64-bit column).
MAX_SIZE_BYTES = 10**18


def _measure(node: Any) -> tuple[int, int]:
    """(conditions, depth) of a parsed query: And/Or have `items`, Not has `item`."""
    items = getattr(node, "items", None)
    if items is not None:
        parts = [_measure(item) for item in items]
        return sum(terms for terms, _ in parts), 1 + max(depth for _, depth in parts)
    inner = getattr(node, "item", None)
    if inner is not None:
        terms, depth = _measure(inner)
        return terms, depth + 1
    return 1, 0


def check_cost(node: Any) -> None:
    """Refuse a parsed query whose SQL would be too costly to plan or run (QueryError)."""
    terms, depth = _measure(node)
    if terms > MAX_TERMS:
        raise QueryError(
            f"the query has {terms} conditions; at most {MAX_TERMS} are allowed "
            "(split it into several searches)",
            1,
        )
    if depth > MAX_DEPTH:
        raise QueryError(
            f"the query nests AND/OR/NOT more than {MAX_DEPTH} levels deep; simplify it", 1
        )
