"""A query plan (catalog.query.plan) -> parameterised SQLAlchemy selects of media ids.

Each scan is driven by its label term's range of `detections` (the most selective positive term,
chosen by the planner), probing the other terms with EXISTS / NOT EXISTS on the (label_id,
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

from functools import lru_cache
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
from sqlalchemy.orm import aliased

from catalog.query.filters import media_filter, value_range
from catalog.query.nodes import (
    And,
    KindFilter,
    ModifiedFilter,
    Not,
    Or,
    PrefixFilter,
    SizeFilter,
)
from catalog.query.plan import (  # re-exported: the SQL side of a plan is used with it
    Plan,
    QueryPlan,
    Scan,
    UnionPlan,
    plan,
    plan_leaves,
)
from catalog.query.resolve import Const, LabelTerm, Resolved
from catalog.query.text import TextTerm
from catalog.query.text_sql import text_exists, text_scan
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


def ordered_select(
    query_plan: QueryPlan,
    limit: int | None,
    sort: str,
    before_id: int | None = None,
    *,
    empty_query: bool = False,
) -> Select[Any] | CompoundSelect[Any]:
    """Matching ids in `sort` order (newest, confidence, key, modified), at most `limit`.

    `before_id` (newest order) continues after the id a page ended with.
    """
    if sort == "newest" or query_plan.plan is None:
        if before_id is None:
            return _first_page(query_plan, limit, empty_query)
        sub = ids_select(query_plan, empty_query=empty_query).subquery()
        stmt = select(sub.c.id).where(sub.c.id < before_id).order_by(sub.c.id.desc())
        return stmt.limit(limit) if limit is not None else stmt
    sub = ids_select(query_plan, empty_query=empty_query).subquery()
    stmt = select(sub.c.id)
    if sort == "confidence":
        label_ids = sorted({t.label_id for t in query_plan.positive_terms})
        if not label_ids:
            return newest_page(query_plan, limit, empty_query=empty_query)
        score = (
            select(func.max(Detection.confidence_x100))
            .where(Detection.media_id == sub.c.id, Detection.label_id.in_(label_ids))
            .scalar_subquery()
        )
        stmt = stmt.order_by(score.desc(), sub.c.id.desc())
    else:
        stmt = stmt.join(Media, Media.id == sub.c.id)
        if sort == "key":
            stmt = stmt.order_by(Media.bucket, Media.key, Media.id)
        else:
            stmt = stmt.order_by(Media.last_modified_at.desc().nulls_last(), Media.id.desc())
    return stmt.limit(limit) if limit is not None else stmt


@lru_cache(maxsize=512)
def _first_page(
    query_plan: QueryPlan, limit: int | None, empty_query: bool
) -> Select[Any] | CompoundSelect[Any]:
    """The first page's statement, built once per plan: building it costs more than running it
    (a plan is frozen and hashable; its label ids and bounds are in it)."""
    return newest_page(query_plan, limit, empty_query=empty_query)


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


__all__ = [
    "Plan",
    "QueryPlan",
    "Scan",
    "UnionPlan",
    "count_select",
    "detection_filter",
    "ids_select",
    "newest_page",
    "ordered_select",
    "plan",
    "plan_leaves",
    "scan_select",
    "term_range",
]
