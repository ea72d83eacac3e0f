"""Evaluate a resolved query on the bitmap index: the matching media ids as one Roaring bitmap.

The same semantics as the SQL the planner writes (catalog.query.compile): a label term with a
lower bound on the best confidence is a bit-sliced range, AND/OR/NOT are intersection, union and
difference within the universe (the media whose labels are stored, or every non-deleted item
for the empty query), kind and size filters are bitmaps and slices of their own. Terms the
index does not hold (upper confidence bounds, which videos meet moment by moment; instance
counts; key prefixes, dates) make `evaluate` return None, and the caller runs the SQL.
"""

from __future__ import annotations

from pyroaring import BitMap

from catalog.query.nodes import And, KindFilter, Not, Or, SizeFilter
from catalog.query.plan import QueryPlan
from catalog.query.resolve import FALSE, TRUE, Const, LabelTerm, Resolved
from catalog.store.bitmaps import BitmapIndex


class _Unsupported(Exception):
    """The tree holds a term the index cannot answer."""


def is_supported(node: Resolved) -> bool:
    """True when every term of the resolved tree can be answered from the index."""
    if isinstance(node, Const | KindFilter | SizeFilter):
        return True
    if isinstance(node, LabelTerm):
        return node.field_name == "confidence" and node.high is None
    if isinstance(node, And | Or):
        return all(is_supported(item) for item in node.items)
    if isinstance(node, Not):
        return is_supported(node.item)
    return False


def evaluate(index: BitmapIndex, query_plan: QueryPlan, *, empty_query: bool) -> BitMap | None:
    """The matching media ids, or None when the query holds a term the index does not."""
    node = query_plan.resolved
    if query_plan.plan is None or node == FALSE:
        return BitMap()
    if not is_supported(node):
        return None
    universe = index.bitmap("live" if empty_query else "labelled")
    if node == TRUE:
        return universe
    try:
        matched = _eval(index, node, universe)
    except _Unsupported:  # pragma: no cover - is_supported() rules these out
        return None
    return matched & universe


def _eval(index: BitmapIndex, node: Resolved, universe: BitMap) -> BitMap:
    if isinstance(node, Const):
        return BitMap(universe) if node.value else BitMap()
    if isinstance(node, LabelTerm):
        if not node.low:
            return index.bitmap(f"label:{node.label_id}")
        return index.slices(f"conf:{node.label_id}").at_least(node.low)
    if isinstance(node, KindFilter):
        return index.bitmap(f"kind:{node.kind}")
    if isinstance(node, SizeFilter):
        low = node.min_bytes if node.min_bytes and node.min_bytes > 0 else None
        return index.slices("size").between(low, node.max_bytes)
    if isinstance(node, And):
        items = [_eval(index, item, universe) for item in node.items if not isinstance(item, Not)]
        negated = [item.item for item in node.items if isinstance(item, Not)]
        result = BitMap.intersection(*items) if items else BitMap(universe)
        for item in negated:
            result -= _eval(index, item, universe)
        return result
    if isinstance(node, Or):
        return BitMap.union(*(_eval(index, item, universe) for item in node.items))
    if isinstance(node, Not):
        return universe - _eval(index, node.item, universe)
    raise _Unsupported(repr(node))
