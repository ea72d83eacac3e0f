"""AST -> parameterised SQLAlchemy selects of media ids; never string SQL.

`plan_query` resolves label names to ids in Python first (the vocabulary is small), and drives
the select from the most selective positive label term (estimated from `label_stats` /
`label_histograms`), probing the other terms with EXISTS / NOT EXISTS on the (label_id,
media_id) primary key of `detections`; OR becomes UNION. This is the shape that answers first
pages and counts at a million media in milliseconds. Callers use
`catalog.query.compiled.compile_query`, the one entry point.

Semantics: a label name matches labels whose name or alias equals it, and labels that a response
named it as a parent of (Animal matches Dog), case-insensitively (OR over those labels), by what
every response of every model version taught. Confidence conditions compare the best confidence of the item (for a video, a
moment meets `Car < 60` when its own confidence is below 60, so upper bounds probe
`video_moments`). `count(L)` compares the instance count, and like every label condition it needs
the label to be present. A video matches a label condition when any moment meets it; `NOT Car`
over a video means no moment has Car.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.orm import Session, aliased

from catalog.query.filters import media_filter, value_range
from catalog.query.nodes import (
    And,
    KindFilter,
    ModifiedFilter,
    Node,
    Not,
    Or,
    PrefixFilter,
    SizeFilter,
)
from catalog.query.resolve import (
    FALSE,
    TRUE,
    Const,
    LabelTerm,
    Resolution,
    Resolved,
    make_and,
    make_or,
    resolve,
    resolve_names,
)
from catalog.query.text import TEXT_COST_ESTIMATE, TextTerm, text_exists, text_scan
from catalog.store.schema import STATUS_DELETED, STATUS_LABELLED, Detection, Media, VideoMoment

# -- conditions ------------------------------------------------------------------------------------


def _term_column(table: Any, field_name: str) -> Any:
    return table.confidence_x100 if field_name == "confidence" else table.instance_count


def term_range(table: Any, term: LabelTerm) -> list[ColumnElement[bool]]:
    """Conditions that a row's own value (detections or video_moments) lies in `term`'s range."""
    return value_range(_term_column(table, term.field_name), term.low, term.high)


def detection_filter(det: Any, term: LabelTerm) -> list[ColumnElement[bool]]:
    """Conditions on one detections row (aliased as `det`) that make it meet `term`.

    A lower bound is met by the best value over the item (the detections row). An upper bound is
    met by an image's value, or by any moment of a video (`video_moments`).
    """
    conditions: list[ColumnElement[bool]] = [det.label_id == term.label_id]
    column = _term_column(det, term.field_name)
    if term.high is None:
        return conditions + value_range(column, term.low, None)
    return [*conditions, _met_by_item_or_moment(det, term.field_name, term.low, term.high)]


def _exists_term(term: LabelTerm, media_id: Any) -> ColumnElement[bool]:
    det = aliased(Detection)
    return exists().where(det.media_id == media_id, *detection_filter(det, term))


def condition(node: Resolved, media_id: Any) -> ColumnElement[bool]:
    """A boolean for a resolved tree, correlated to `media_id` (Media columns must be in FROM)."""
    if isinstance(node, Const):
        return true() if node.value else false()
    if isinstance(node, LabelTerm):
        return _exists_term(node, media_id)
    if isinstance(node, TextTerm):
        return text_exists(node, media_id)
    if isinstance(node, And):
        return and_(*(condition(item, media_id) for item in node.items))
    if isinstance(node, Or):
        # Labels without bounds (a category, an alias naming many labels) share one probe.
        items: tuple[Resolved, ...] = node.items
        bare = [i for i in items if isinstance(i, LabelTerm) and i.low is None and i.high is None]
        rest = [condition(i, media_id) for i in items if i not in bare]
        if len(bare) > 1:
            det = aliased(Detection)
            ids = sorted({term.label_id for term in bare})
            rest.append(exists().where(det.media_id == media_id, det.label_id.in_(ids)))
        else:
            rest += [condition(i, media_id) for i in bare]
        return or_(*rest)
    if isinstance(node, Not):
        return not_(condition(node.item, media_id))
    return media_filter(node)


def _needs_media(node: Resolved) -> bool:
    if isinstance(node, And | Or):
        return any(_needs_media(item) for item in node.items)
    if isinstance(node, Not):
        return _needs_media(node.item)
    return isinstance(node, KindFilter | PrefixFilter | ModifiedFilter | SizeFilter)


def labelled_media() -> ColumnElement[bool]:
    """Media whose labels are stored: labelled ones, and others that keep earlier labels."""
    det = aliased(Detection)
    return and_(
        Media.status != STATUS_DELETED,
        or_(Media.status == STATUS_LABELLED, exists().where(det.media_id == Media.id)),
    )


# -- planning --------------------------------------------------------------------------------------


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


def plan_query(session: Session, node: Node | None) -> tuple[QueryPlan, Resolution]:
    """Resolve names and plan the query; an empty query selects every labelled media item."""
    res = resolve_names(session, node)
    resolved = TRUE if node is None else resolve(node, res)
    return QueryPlan(resolved, plan(resolved, res), tuple(_positive_terms(resolved))), res


def scan_select(scan: Scan, *, empty_query: bool = False) -> Select[Any]:
    """The select of media ids (column `id`) for one scan."""
    if scan.driver is None:
        base = Media.status != STATUS_DELETED if empty_query else labelled_media()
        rest = [condition(item, Media.id) for item in scan.rest]
        return select(Media.id.label("id")).where(base, *rest)
    if isinstance(scan.driver, TextTerm):
        return text_scan(scan.driver, scan.rest, condition, any(map(_needs_media, scan.rest)))
    det = aliased(Detection, name="d")
    stmt = select(det.media_id.label("id")).where(
        *detection_filter(det, scan.driver),
        *(condition(item, det.media_id) for item in scan.rest),
    )
    if any(_needs_media(item) for item in scan.rest):
        stmt = stmt.join(Media, Media.id == det.media_id)
    return stmt


def plan_leaves(node: Plan) -> Iterable[Scan]:
    if isinstance(node, Scan):
        yield node
    else:
        for branch in node.branches:
            yield from plan_leaves(branch)


def ids_select(
    query_plan: QueryPlan, *, empty_query: bool = False
) -> Select[Any] | CompoundSelect[Any]:
    """The unordered select of matching media ids (one column, `id`)."""
    if query_plan.plan is None:
        return select(Media.id.label("id")).where(false())
    scans = list(plan_leaves(query_plan.plan))
    selects = [scan_select(scan, empty_query=empty_query) for scan in scans]
    if len(selects) == 1:
        return selects[0]
    return union(*selects)


def newest_page(
    query_plan: QueryPlan, limit: int | None, offset: int = 0, *, empty_query: bool = False
) -> Select[Any] | CompoundSelect[Any]:
    """Matching ids, newest first (media id descending), at most `limit`."""
    stmt = ids_select(query_plan, empty_query=empty_query)
    stmt = stmt.order_by(stmt.selected_columns[0].desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return stmt


def count_select(query_plan: QueryPlan, *, empty_query: bool = False) -> Select[Any]:
    """The exact number of matching media."""
    stmt = ids_select(query_plan, empty_query=empty_query)
    if isinstance(stmt, Select):
        return stmt.with_only_columns(func.count(), maintain_column_froms=True)
    return select(func.count()).select_from(stmt.subquery())


def _met_by_item_or_moment(det: Any, field_name: str, low: Any, high: Any) -> ColumnElement[bool]:
    """The item's best value lies in [low, high], or (a video) one of its moments' values does.

    An upper bound needs the moments: a video whose best confidence is above it may still have
    a moment inside the range.
    """
    moment = aliased(VideoMoment)
    in_moment = (
        exists()
        .where(
            moment.media_id == det.media_id,
            moment.label_id == det.label_id,
            *value_range(_term_column(moment, field_name), low, high),
        )
        .correlate(det)
    )
    return or_(and_(*value_range(_term_column(det, field_name), low, high)), in_moment)
