"""Planning: which positive label term drives each select, and where OR becomes a union.

`plan_query` resolves label names to ids first (catalog.query.resolve), then picks, for each AND,
the most selective positive label term (estimated from the summary tables) to drive a scan, the
other terms probed; OR becomes a union of its branches' plans. The plan is plain data: the bitmap
index evaluates the resolved tree without SQL (catalog.query.bitmap_eval), and
catalog.query.compile turns the plan into SQLAlchemy selects when SQL must answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from catalog.query.nodes import And, Node, Or
from catalog.query.resolve import (
    FALSE,
    TRUE,
    LabelTerm,
    Resolution,
    Resolved,
    make_and,
    make_or,
    resolve,
    resolve_names,
)
from catalog.query.text import TEXT_COST_ESTIMATE, TextTerm
from catalog.store.sql import Db


@dataclass(frozen=True)
class Scan:
    """One select: driven by a label term's detections range (or by media), with the rest probed."""

    driver: LabelTerm | TextTerm | None
    rest: tuple[Resolved, ...]


@dataclass(frozen=True)
class UnionPlan:
    """OR: the union of its branches' plans."""

    branches: tuple[Scan | UnionPlan, ...]


Plan = Scan | UnionPlan


@dataclass(frozen=True)
class QueryPlan:
    """A compiled query: its plan, and which labels it names (for the matches of each hit)."""

    resolved: Resolved
    plan: Plan | None  # None: matches nothing
    positive_terms: tuple[LabelTerm, ...]


def _cost(node: Resolved, res: Resolution) -> int | None:
    """Estimated rows to scan when this node drives, or None when it cannot drive."""
    if isinstance(node, LabelTerm):
        return res.estimate(node.label_id, node.low, node.field_name)
    if isinstance(node, TextTerm):
        return TEXT_COST_ESTIMATE
    if isinstance(node, Or):
        costs = [_cost(item, res) for item in node.items]
        return None if any(c is None for c in costs) else sum(c or 0 for c in costs)
    if isinstance(node, And):
        known: list[int] = [c for c in (_cost(item, res) for item in node.items) if c is not None]
        return min(known) if known else None
    return None


MAX_UNION_BRANCHES = 32  # beyond this a media scan with probes beats a huge compound select


def plan(node: Resolved, res: Resolution) -> Plan | None:
    """Choose drivers: the most selective positive label term of each AND; OR -> union.

    A plan that would need more than MAX_UNION_BRANCHES scans (a wide category, nested ORs
    distributed over an AND) scans media instead and probes every term.
    """
    result = _plan(node, res)
    if result is not None and sum(1 for _ in plan_leaves(result)) > MAX_UNION_BRANCHES:
        return Scan(None, (node,))
    return result


def _plan(node: Resolved, res: Resolution, budget: int = MAX_UNION_BRANCHES) -> Plan | None:
    """`budget`: how many scans an OR may still fan out into (distribution multiplies them)."""
    if node == FALSE:
        return None
    if node == TRUE:
        return Scan(None, ())
    if isinstance(node, LabelTerm | TextTerm):
        return Scan(node, ())
    if isinstance(node, Or):
        if len(node.items) > budget:
            return Scan(None, (node,))
        share = max(1, budget // len(node.items))
        branches = [_plan(item, res, share) for item in node.items]
        kept = tuple(b for b in branches if b is not None)
        return UnionPlan(kept) if kept else None
    if isinstance(node, And):
        costed = [
            (c, i)
            for i, item in enumerate(node.items)
            if (c := _cost(item, res)) is not None
            and not (isinstance(item, Or) and len(item.items) > budget)
        ]
        if not costed:
            return Scan(None, node.items)
        _, index = min(costed)
        driver = node.items[index]
        rest = node.items[:index] + node.items[index + 1 :]
        if isinstance(driver, LabelTerm | TextTerm):
            return Scan(driver, rest)
        if isinstance(driver, Or):
            distributed = make_or([make_and([item, *rest]) for item in driver.items])
            return _plan(distributed, res, budget)
        assert isinstance(driver, And)
        return _plan(make_and([*driver.items, *rest]), res, budget)
    return Scan(None, (node,))


def _positive_terms(node: Resolved) -> list[LabelTerm]:
    if isinstance(node, LabelTerm):
        return [node]
    if isinstance(node, And | Or):
        return [t for item in node.items for t in _positive_terms(item)]
    return []


def plan_query(db: Db, node: Node | None) -> tuple[QueryPlan, Resolution]:
    """Resolve names and plan the query; an empty query selects every labelled media item."""
    res = resolve_names(db, node)
    resolved = TRUE if node is None else resolve(node, res)
    return QueryPlan(resolved, plan(resolved, res), tuple(_positive_terms(resolved))), res


def plan_leaves(node: Plan) -> Iterable[Scan]:
    """The scans of a plan, in order."""
    if isinstance(node, Scan):
        yield node
    else:
        for branch in node.branches:
            yield from plan_leaves(branch)
