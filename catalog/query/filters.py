"""Media filters of the query language (kind:, prefix:, modified:, size:) as SQL on `media`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, true

from catalog.query.nodes import (
    KindFilter,
    ModifiedFilter,
    Node,
    PrefixFilter,
    SizeFilter,
    local_folder,
)
from catalog.store.schema import SOURCE_FILE, Media


def value_range(column: Any, low: int | None, high: int | None) -> list[ColumnElement[bool]]:
    """`low <= column <= high`, either end open (None; a low of 0 is no condition)."""
    conditions: list[ColumnElement[bool]] = []
    if low is not None and low > 0:
        conditions.append(column >= low)
    if high is not None:
        conditions.append(column <= high)
    return conditions


def _key_starts(prefix: str) -> ColumnElement[bool]:
    return func.substr(Media.key, 1, len(prefix)) == prefix


def _prefix_filter(node: PrefixFilter) -> ColumnElement[bool]:
    """prefix:s3://B/P, prefix:file:///P, or a bare prefix (S3 keys, and local files under it
    whether absolute or relative to the working directory)."""
    if node.bucket is not None:
        return and_(Media.source == "s3", Media.bucket == node.bucket, _key_starts(node.prefix))
    if node.local:
        return and_(Media.source == SOURCE_FILE, _key_starts(node.prefix))
    if not node.prefix:
        return true()
    if node.prefix.startswith("/"):
        return _key_starts(node.prefix)
    folder = node.folder or local_folder(node.prefix)
    return or_(
        and_(Media.source != SOURCE_FILE, _key_starts(node.prefix)),
        and_(Media.source == SOURCE_FILE, _key_starts(folder)),
    )


def media_filter(node: Node) -> ColumnElement[bool]:
    """The SQL condition on `media` for a kind:, prefix:, modified: or size: filter."""
    if isinstance(node, KindFilter):
        return Media.kind == node.kind
    if isinstance(node, PrefixFilter):
        return _prefix_filter(node)
    if isinstance(node, ModifiedFilter):
        conditions: list[ColumnElement[bool]] = [Media.last_modified_at.is_not(None)]
        if node.start is not None:
            conditions.append(Media.last_modified_at >= node.start)
        if node.end is not None:
            conditions.append(Media.last_modified_at < node.end)
        return and_(*conditions)
    if isinstance(node, SizeFilter):
        return and_(true(), *value_range(Media.size_bytes, node.min_bytes, node.max_bytes))
    raise TypeError(f"not a media filter: {node!r}")  # pragma: no cover
