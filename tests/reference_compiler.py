"""The session-less query compiler: names resolve inside SQL, one correlated filter over media.

It is simple enough to trust by reading, so the planned compiler (catalog.query.compile) is
checked against it: both must select the same media for every query.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, not_, or_, select, union
from sqlalchemy.orm import aliased

from catalog.query.compile import _met_by_item_or_moment, _term_column, labelled_media
from catalog.query.filters import media_filter, value_range
from catalog.query.nodes import And, CategoryFilter, CountCondition, LabelCondition, Node, Not, Or
from catalog.query.parse import parse_query
from catalog.query.resolve import node_range
from catalog.store.schema import (
    STATUS_DELETED,
    Detection,
    Label,
    LabelAlias,
    LabelCategory,
    LabelParent,
    Media,
)
from catalog.store.units import fold


def _label_ids_sql(name: str) -> Any:
    folded = fold(name)
    parent = aliased(Label)
    return union(
        select(Label.id).where(Label.name_folded == folded),
        select(LabelAlias.label_id).where(LabelAlias.alias_folded == folded),
        select(LabelParent.label_id)
        .join(parent, parent.id == LabelParent.parent_id)
        .where(parent.name_folded == folded),
    )


def media_condition(node: Node) -> ColumnElement[bool]:
    """One boolean over `Media` for the query, resolving names inside SQL (no session needed)."""
    if isinstance(node, LabelCondition | CountCondition):
        field_name, low, high = node_range(node)
        if low is not None and high is not None and low > high:
            return false()
        det = aliased(Detection)
        column = _term_column(det, field_name)
        ids = _label_ids_sql(node.name)
        conditions: list[ColumnElement[bool]] = [det.media_id == Media.id, det.label_id.in_(ids)]
        if high is None:
            conditions += value_range(column, low, None)
        else:
            conditions.append(_met_by_item_or_moment(det, field_name, low, high))
        return exists().where(*conditions)
    if isinstance(node, CategoryFilter):
        det = aliased(Detection)
        ids = select(LabelCategory.label_id).where(
            LabelCategory.category_folded == fold(node.category)
        )
        return exists().where(det.media_id == Media.id, det.label_id.in_(ids))
    if isinstance(node, And):
        return and_(*(media_condition(item) for item in node.items))
    if isinstance(node, Or):
        return or_(*(media_condition(item) for item in node.items))
    if isinstance(node, Not):
        return not_(media_condition(node.item))
    return media_filter(node)


def reference_ids(query: str | None) -> Select[Any]:
    """A SELECT of the media ids `query` selects, compiled without a session."""
    node = parse_query(query or "")
    if node is None:
        return select(Media.id).where(Media.status != STATUS_DELETED)
    return select(Media.id).where(labelled_media(), media_condition(node))
