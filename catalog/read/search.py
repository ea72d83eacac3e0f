"""Run search queries: media-id filters for other modules, pages, counts, sorting and hits."""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from catalog.store.schema import (
    KIND_VIDEO,
    SOURCE_FILE,
    STATUS_DELETED,
    Detection,
    Label,
    LabelAlias,
    LabelCategory,
    Media,
    VideoMoment,
)

SORTS = ("newest", "confidence", "key", "modified")
HIT_BATCH = 500
Presigner = Callable[[str, str], str]


def matching_media_ids(query: str | None, *, session: Session | None = None) -> Select[Any]:
    """A SELECT of `Media.id` (column `id`) for the non-deleted, labelled media `query` selects.

    None or "" selects every non-deleted media item. Raises QueryError for a malformed query.
    Without a session, label names resolve inside SQL (name or alias, case-insensitive) and the
    select is one correlated filter over `media`, suited to `Media.id.in_(...)` or a subquery.
    With a session, names are resolved first and the select is planned for speed (driven by the
    most selective label), which is what `search` itself runs.
    """
    from catalog.query.compile import ids_select, labelled_media, media_condition, plan_query
    from catalog.query.parse import parse_query

    node = parse_query(query or "")
    if node is None:
        return select(Media.id).where(Media.status != STATUS_DELETED)
    if session is None:
        return select(Media.id).where(labelled_media(), media_condition(node))
    query_plan, _ = plan_query(session, node)
    stmt = ids_select(query_plan)
    if isinstance(stmt, Select):
        return stmt
    sub = stmt.subquery()
    return select(sub.c.id)


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelMatch:
    """One label the query named, as it appears in one hit (best confidence, in percent)."""

    label: str
    confidence: float
    timestamps_ms: tuple[int, ...] | None = None  # videos: moments that met the condition

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: label, confidence and (videos) timestamps_ms."""
        data: dict[str, Any] = {"label": self.label, "confidence": self.confidence}
        if self.timestamps_ms is not None:
            data["timestamps_ms"] = list(self.timestamps_ms)
        return data


@dataclass(frozen=True)
class SearchHit:
    """One media item a query selected."""

    media_id: int
    uri: str
    kind: str
    bucket: str
    key: str
    size_bytes: int
    last_modified_at: datetime | None
    matches: tuple[LabelMatch, ...] = ()
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of a hit."""
        data: dict[str, Any] = {
            "uri": self.uri,
            "kind": self.kind,
            "matches": [m.to_dict() for m in self.matches],
            "size_bytes": self.size_bytes,
            "last_modified_at": self.last_modified_at,
        }
        if self.url is not None:
            data["url"] = self.url
        return data


@dataclass
class SearchResult:
    """What a search found: hits (streamed, in order) and hints about unknown names."""

    query: str
    hits: Iterator[SearchHit]
    hints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CountResult:
    """The exact number of media a query selects, and hints about unknown names."""

    query: str
    count: int
    hints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LabelCount:
    """One label of the vocabulary and how many media carry it."""

    name: str
    media_count: int
    image_count: int
    video_count: int
    mean_confidence: float
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of a vocabulary row."""
        return {
            "label": self.name,
            "media_count": self.media_count,
            "image_count": self.image_count,
            "video_count": self.video_count,
            "mean_confidence": self.mean_confidence,
            "aliases": list(self.aliases),
        }


# -- searching -------------------------------------------------------------------------------------


def search(
    session: Session,
    query: str,
    *,
    limit: int | None = None,
    sort: str = "newest",
    presign: Presigner | None = None,
) -> SearchResult:
    """Media matching `query`, newest first (media id descending) unless `sort` says otherwise.

    `sort`: newest | confidence (best confidence among the labels the query names) | key |
    modified (last-modified, newest first). Hits stream in batches from the caller's session.
    """
    from catalog.query.compile import plan_query
    from catalog.query.parse import parse_query

    if sort not in SORTS:
        from catalog.errors import UsageError

        raise UsageError(f"unknown sort '{sort}'; use one of {', '.join(SORTS)}")
    node = parse_query(query)
    query_plan, res = plan_query(session, node)
    hints = _hints(session, node, res)
    stmt = _ordered_ids(query_plan, sort, limit, empty_query=node is None)
    ids = list(session.connection().execute(stmt).scalars())
    return SearchResult(query, _iter_hits(session, ids, query_plan, res, presign), hints)


def count_matches(session: Session, query: str) -> CountResult:
    """The exact number of media `query` selects."""
    from catalog.query.compile import count_select, plan_query
    from catalog.query.parse import parse_query

    node = parse_query(query)
    query_plan, res = plan_query(session, node)
    count = _count_from_summaries(query_plan, res)
    if count is None:
        stmt = count_select(query_plan, empty_query=node is None)
        count = int(session.connection().execute(stmt).scalar_one())
    return CountResult(query, count, _hints(session, node, res))


def _count_from_summaries(query_plan: Any, res: Any) -> int | None:
    """The exact count of a one-label query from the summary tables, when they hold it.

    `Car` is label_stats' media count; `Car >= 90` the sum of its 10-point histogram bins from
    90 up. Both are kept exact in the same transaction as every write.
    """
    from catalog.query.compile import LabelTerm

    term = query_plan.resolved
    if not isinstance(term, LabelTerm) or term.field_name != "confidence" or term.high is not None:
        return None
    if not term.low:
        return int(res.media_counts.get(term.label_id, 0))
    if term.low % 1000:
        return None
    bins = res.histograms.get(term.label_id, {})
    return int(sum(n for b, n in bins.items() if b >= term.low // 1000))


def first_page_ids(session: Session, query: str, limit: int = 50) -> list[int]:
    """The newest `limit` matching media ids (the search hot path, without hit details)."""
    from catalog.query.compile import newest_page, plan_query
    from catalog.query.parse import parse_query

    node = parse_query(query)
    query_plan, _ = plan_query(session, node)
    stmt = newest_page(query_plan, limit, empty_query=node is None)
    return list(session.connection().execute(stmt).scalars())


def _ordered_ids(query_plan: Any, sort: str, limit: int | None, *, empty_query: bool) -> Any:
    from catalog.query.compile import ids_select, newest_page

    if sort == "newest" or query_plan.plan is None:
        return newest_page(query_plan, limit, empty_query=empty_query)
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


def _iter_hits(
    session: Session,
    ids: Sequence[int],
    query_plan: Any,
    res: Any,
    presign: Presigner | None,
) -> Iterator[SearchHit]:
    for start in range(0, len(ids), HIT_BATCH):
        yield from _load_hits(session, ids[start : start + HIT_BATCH], query_plan, res, presign)


def _meets(term: Any, confidence_x100: int, instance_count: int) -> bool:
    value = confidence_x100 if term.field_name == "confidence" else instance_count
    return (term.low is None or value >= term.low) and (term.high is None or value <= term.high)


def _is_bare(term: Any) -> bool:
    """A label term without bounds: any moment of the label meets it."""
    return term.low is None and term.high is None


def _term_value(table: Any, term: Any) -> Any:
    return table.confidence_x100 if term.field_name == "confidence" else table.instance_count


def _bounds(column: Any, low: int | None, high: int | None) -> list[Any]:
    return [
        *([column >= low] if low is not None else []),
        *([column <= high] if high is not None else []),
    ]


def _load_hits(
    session: Session,
    ids: Sequence[int],
    query_plan: Any,
    res: Any,
    presign: Presigner | None,
) -> list[SearchHit]:
    connection = session.connection()
    rows = {
        row.id: row
        for row in connection.execute(
            select(
                Media.id,
                Media.source,
                Media.bucket,
                Media.key,
                Media.kind,
                Media.size_bytes,
                Media.last_modified_at,
            ).where(Media.id.in_(ids))
        ).all()
    }
    terms: dict[int, list[Any]] = defaultdict(list)
    for term in query_plan.positive_terms:
        terms[term.label_id].append(term)
    matches: dict[int, list[LabelMatch]] = defaultdict(list)
    if terms:
        label_ids = sorted(terms)
        moments: dict[tuple[int, int], list[int]] = defaultdict(list)
        video_ids = [i for i in ids if i in rows and rows[i].kind == KIND_VIDEO]
        if video_ids:
            bare = sorted({t.label_id for t in query_plan.positive_terms if _is_bare(t)})
            met = or_(
                VideoMoment.label_id.in_(bare),
                *(
                    and_(
                        VideoMoment.label_id == term.label_id,
                        *_bounds(_term_value(VideoMoment, term), term.low, term.high),
                    )
                    for term in query_plan.positive_terms
                    if not _is_bare(term)
                ),
            )
            for media_id, label_id, ts in connection.execute(
                select(VideoMoment.media_id, VideoMoment.label_id, VideoMoment.timestamp_ms)
                .where(VideoMoment.media_id.in_(video_ids), met)
                .order_by(VideoMoment.media_id, VideoMoment.label_id, VideoMoment.timestamp_ms)
            ).all():
                moments[(media_id, label_id)].append(ts)
        for media_id, label_id, conf, count in connection.execute(
            select(
                Detection.media_id,
                Detection.label_id,
                Detection.confidence_x100,
                Detection.instance_count,
            )
            .where(Detection.media_id.in_(ids), Detection.label_id.in_(label_ids))
            .order_by(Detection.media_id, Detection.confidence_x100.desc(), Detection.label_id)
        ).all():
            is_video = rows[media_id].kind == KIND_VIDEO
            seen = moments.get((media_id, label_id))
            if not seen and not any(_meets(t, conf, count) for t in terms[label_id]):
                continue
            matches[media_id].append(
                LabelMatch(
                    res.names.get(label_id, str(label_id)),
                    conf / 100,
                    tuple(seen or ()) if is_video else None,
                )
            )
    hits = []
    for media_id in ids:
        row = rows.get(media_id)
        if row is None:
            continue
        if row.source == SOURCE_FILE:
            uri, url = f"file://{row.key}", None
        else:
            uri = f"s3://{row.bucket}/{row.key}"
            url = presign(row.bucket, row.key) if presign else None
        hits.append(
            SearchHit(
                media_id=media_id,
                uri=uri,
                kind=row.kind,
                bucket=row.bucket,
                key=row.key,
                size_bytes=row.size_bytes,
                last_modified_at=row.last_modified_at,
                matches=tuple(matches.get(media_id, ())),
                url=url,
            )
        )
    return hits


def _hints(session: Session, node: Any, res: Any) -> list[str]:
    """'did you mean' lines for names that match no label or category."""
    if node is None:
        return []
    from catalog.query.parse import CategoryFilter, CountCondition, LabelCondition, iter_terms
    from catalog.store.units import fold

    hints: list[str] = []
    unknown_labels = set(res.unknown_labels)
    unknown_categories = set(res.unknown_categories)
    if not unknown_labels and not unknown_categories:
        return hints
    spelled: dict[str, str] = {}
    for term in iter_terms(node):
        if isinstance(term, LabelCondition | CountCondition):
            spelled.setdefault(fold(term.name), term.name)
        elif isinstance(term, CategoryFilter):
            spelled.setdefault("category:" + fold(term.category), term.category)
    if unknown_labels:
        vocabulary = list(session.scalars(select(Label.name)))
        aliases = list(session.scalars(select(LabelAlias.alias).distinct()))
        by_folded = {fold(n): n for n in [*aliases, *vocabulary]}
        for name in sorted(unknown_labels):
            close = difflib.get_close_matches(name, list(by_folded), n=3, cutoff=0.6)
            hints.append(_hint("label", spelled.get(name, name), [by_folded[c] for c in close]))
    if unknown_categories:
        categories = list(session.scalars(select(LabelCategory.category).distinct()))
        by_folded = {fold(c): c for c in categories}
        for name in sorted(unknown_categories):
            close = difflib.get_close_matches(name, list(by_folded), n=3, cutoff=0.6)
            original = spelled.get("category:" + name, name)
            hints.append(_hint("category", original, [by_folded[c] for c in close]))
    return hints


def _hint(what: str, name: str, close: list[str]) -> str:
    text = f"No {what} '{name}' in the catalogue"
    if close:
        quoted = " or ".join(f"'{c}'" for c in close)
        return f"{text}; did you mean {quoted}?"
    return f"{text}; 'catalog labels' lists the vocabulary."
