"""Search results a page at a time: keyset cursors for every sort, so page 100 costs page 1.

OFFSET would make the database walk and discard every earlier row; a cursor holds the sort key
of the last hit shown and the next page starts strictly after it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, tuple_, union
from sqlalchemy.orm import Session

from catalog.errors import UsageError
from catalog.query.compiled import SORTS, compile_query
from catalog.read.search import Presigner, SearchHit, load_hits
from catalog.store.schema import Detection, Media

PAGE_SIZE_MAX = 500


@dataclass(frozen=True)
class SearchPage:
    """One page of a search: its hits in order, hints, and the cursor of the next page."""

    query: str
    sort: str
    hits: list[SearchHit]
    hints: list[str] = field(default_factory=list)
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    """An opaque, URL-safe token for a sort position."""
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> list[Any]:
    """The sort position a token holds; UsageError when it was not made by encode_cursor."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        values = json.loads(raw)
    except ValueError:
        raise UsageError("the page cursor is not valid; start from the first page") from None
    if not isinstance(values, list) or not values or not isinstance(values[-1], int):
        raise UsageError("the page cursor is not valid; start from the first page")
    return values


def search_page(
    session: Session,
    query: str,
    *,
    sort: str = "newest",
    limit: int = 48,
    after: str | None = None,
    presign: Presigner | None = None,
) -> SearchPage:
    """The `limit` hits of `query` that follow cursor `after` in `sort` order (see search())."""
    if sort not in SORTS:
        raise UsageError(f"unknown sort '{sort}'; use one of {', '.join(SORTS)}")
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise UsageError(f"a page holds 1 to {PAGE_SIZE_MAX} results (got {limit})")
    compiled = compile_query(session, query)
    query_plan = compiled.plan
    position = decode_cursor(after) if after else None
    rows: list[Any] = []
    if query_plan.plan is not None:
        try:
            stmt = _page_select(
                query_plan, sort, limit + 1, position, empty_query=compiled.is_empty
            )
        except (TypeError, ValueError):
            raise UsageError("the page cursor is not valid; start from the first page") from None
        rows = list(session.connection().execute(stmt).all())
    more = len(rows) > limit
    rows = rows[:limit]
    hits = load_hits(compiled, [row[0] for row in rows], presign)
    next_cursor = encode_cursor(_position(rows[-1], sort)) if more and rows else None
    return SearchPage(query, sort, hits, compiled.hints(), next_cursor)


def _position(row: Any, sort: str) -> list[Any]:
    """The cursor values of a row: its sort key, then its id."""
    if sort == "newest" or len(row) == 1:  # confidence without label terms pages as newest
        return [row[0]]
    if sort == "modified":
        modified = row[1]
        return [modified.isoformat() if modified is not None else None, row[0]]
    if sort == "key":
        return [row[1], row[2], row[0]]
    return [row[1], row[0]]


def _page_select(
    query_plan: Any, sort: str, limit: int, position: list[Any] | None, *, empty_query: bool
) -> Any:
    from catalog.query.compile import ids_select, plan_leaves, scan_select

    if sort == "newest" or (sort == "confidence" and not query_plan.positive_terms):
        # Push "id < cursor" into every branch so each stays an index range scan.
        selects: list[Select[Any]] = []
        for scan in plan_leaves(query_plan.plan):
            stmt = scan_select(scan, empty_query=empty_query)
            if position is not None:
                stmt = stmt.where(stmt.selected_columns[0] < int(position[-1]))
            selects.append(stmt)
        page = selects[0] if len(selects) == 1 else union(*selects)
        return page.order_by(page.selected_columns[0].desc()).limit(limit)
    sub = ids_select(query_plan, empty_query=empty_query).subquery()
    if sort == "confidence":
        label_ids = sorted({t.label_id for t in query_plan.positive_terms})
        best = (
            select(func.max(Detection.confidence_x100))
            .where(Detection.media_id == sub.c.id, Detection.label_id.in_(label_ids))
            .scalar_subquery()
        )
        score = func.coalesce(best, -1)
        stmt = select(sub.c.id, score.label("score"))
        if position is not None:
            value, last = int(position[0]), int(position[1])
            stmt = stmt.where(or_(score < value, and_(score == value, sub.c.id < last)))
        return stmt.order_by(score.desc(), sub.c.id.desc()).limit(limit)
    if sort == "key":
        stmt = select(sub.c.id, Media.bucket, Media.key).join(Media, Media.id == sub.c.id)
        if position is not None:
            bucket, key, last = position
            stmt = stmt.where(tuple_(Media.bucket, Media.key, Media.id) > tuple_(bucket, key, last))
        return stmt.order_by(Media.bucket, Media.key, Media.id).limit(limit)
    stmt = select(sub.c.id, Media.last_modified_at).join(Media, Media.id == sub.c.id)
    if position is not None:
        stmt = stmt.where(_after_modified(position))
    order = (Media.last_modified_at.desc().nulls_last(), Media.id.desc())
    return stmt.order_by(*order).limit(limit)


def _after_modified(position: list[Any]) -> Any:
    """Rows after (modified, id) in 'modified newest first, unknown dates last' order."""
    text, last = position
    if text is None:
        return and_(Media.last_modified_at.is_(None), Media.id < last)
    try:
        modified = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise UsageError("the page cursor is not valid; start from the first page") from None
    return or_(
        Media.last_modified_at < modified,
        and_(Media.last_modified_at == modified, Media.id < last),
        Media.last_modified_at.is_(None),
    )
