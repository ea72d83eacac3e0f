"""`compile_query(session, text)`: the one entry point from query text to what it selects.

Parsing, name resolution and planning happen once; the CompiledQuery then answers every
question a caller has, each as one SQL round trip: the ids (a select other code can filter
by), the exact count, a sorted page of ids, which of the query's terms each hit met (and how
well), and "did you mean" hints for names the catalogue does not know.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from pyroaring import BitMap
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from catalog.errors import StaleIndexError, UsageError
from catalog.query.bitmap_eval import evaluate, is_supported
from catalog.query.compile import QueryPlan, ids_select, newest_page, plan_query, term_range
from catalog.query.nodes import CategoryFilter, CountCondition, LabelCondition, Node, iter_terms
from catalog.query.parse import parse_query
from catalog.query.resolve import LabelTerm, Resolution
from catalog.query.text import TextMatch, positive_text_terms, text_matches
from catalog.store.bitmaps import BitmapIndex, open_index
from catalog.store.schema import (
    KIND_VIDEO,
    Detection,
    Label,
    LabelAlias,
    LabelCategory,
    Media,
    VideoMoment,
)
from catalog.store.units import fold

SORTS = ("newest", "confidence", "key", "modified")


@dataclass(frozen=True)
class TermMatch:
    """One label the query named, as one item met it.

    `confidence_x100` is the best confidence among what met the condition: the image's own, or
    for a video the best of the moments that met it (`timestamps_ms`, in order).
    """

    label_id: int
    name: str
    confidence_x100: int
    timestamps_ms: tuple[int, ...] | None = None


@dataclass(frozen=True)
class CompiledQuery:
    """A parsed, resolved and planned query, bound to the session it was compiled in."""

    session: Session
    text: str
    node: Node | None
    plan: QueryPlan
    resolution: Resolution
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_empty(self) -> bool:
        """True for the empty query (every non-deleted media item)."""
        return self.node is None

    def ids(self) -> Select[Any]:
        """An unordered SELECT of the matching media ids (one column, `id`)."""
        stmt = ids_select(self.plan, empty_query=self.is_empty)
        if isinstance(stmt, Select):
            return stmt
        return select(stmt.subquery().c.id)

    def index(self) -> BitmapIndex | None:
        """The session's view of the bitmap index (None when it cannot answer exactly)."""
        if "index" not in self._memo:
            self._memo["index"] = open_index(self.session)
        found: BitmapIndex | None = self._memo["index"]
        return found

    def bitmap(self) -> BitMap | None:
        """The matching media ids as a bitmap, from the index; None when only SQL can tell.

        None when the index is not built, has too many changes to patch in, was rebuilt while
        being read, or the query holds a term it does not index (see query.bitmap_eval).
        """
        if "bitmap" not in self._memo:
            found = None
            if self.plan.plan is None or is_supported(self.plan.resolved):
                index = self.index()
                try:
                    found = index and evaluate(index, self.plan, empty_query=self.is_empty)
                except StaleIndexError:
                    self._memo["index"] = found = None
            self._memo["bitmap"] = found
        result: BitMap | None = self._memo["bitmap"]
        return result

    def count(self) -> int:
        """The exact number of matching media."""
        known = self._count_from_summaries()
        if known is not None:
            return known
        matched = self.bitmap()
        if matched is not None:
            return len(matched)
        stmt = ids_select(self.plan, empty_query=self.is_empty)
        if isinstance(stmt, Select):
            counted = stmt.with_only_columns(func.count(), maintain_column_froms=True)
        else:
            counted = select(func.count()).select_from(stmt.subquery())
        return int(self.session.connection().execute(counted).scalar_one())

    def page(
        self, limit: int | None, *, sort: str = "newest", before_id: int | None = None
    ) -> list[int]:
        """Matching media ids in `sort` order, at most `limit`.

        `before_id` (newest order only) continues a page after the id it ended with (keyset
        paging: as fast deep into a result as on its first page).
        """
        return list(
            self.session.connection().execute(self._ordered(limit, sort, before_id)).scalars()
        )

    def matches(
        self, media_ids: Sequence[int], kinds: dict[int, str]
    ) -> dict[int, list[TermMatch | TextMatch]]:
        """For each media id, the query's positive label terms it met, best first, then the
        lines of text that met its text terms (best first)."""
        found: dict[int, list[TermMatch | TextMatch]] = defaultdict(list)
        if not media_ids:
            return found
        connection = self.session.connection()
        for media_id, labels in self._label_matches(media_ids, kinds).items():
            found[media_id].extend(labels)
        text_terms = positive_text_terms(self.plan.resolved)
        for media_id, lines in text_matches(connection, text_terms, media_ids).items():
            found[media_id].extend(lines)
        return found

    def _label_matches(
        self, media_ids: Sequence[int], kinds: dict[int, str]
    ) -> dict[int, list[TermMatch]]:
        terms = self.plan.positive_terms
        found: dict[int, list[TermMatch]] = defaultdict(list)
        if not terms:
            return found
        connection = self.session.connection()
        names = self.resolution.names
        image_ids = [i for i in media_ids if kinds.get(i) != KIND_VIDEO]
        video_ids = [i for i in media_ids if kinds.get(i) == KIND_VIDEO]
        if image_ids:
            for media_id, label_id, confidence in connection.execute(
                select(Detection.media_id, Detection.label_id, Detection.confidence_x100)
                .where(Detection.media_id.in_(image_ids), _any_term_met(Detection, terms))
                .order_by(Detection.media_id, Detection.confidence_x100.desc(), Detection.label_id)
            ):
                found[media_id].append(
                    TermMatch(label_id, names.get(label_id, str(label_id)), confidence)
                )
        if video_ids:
            moments: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
            for media_id, label_id, timestamp_ms, confidence in connection.execute(
                select(
                    VideoMoment.media_id,
                    VideoMoment.label_id,
                    VideoMoment.timestamp_ms,
                    VideoMoment.confidence_x100,
                )
                .where(VideoMoment.media_id.in_(video_ids), _any_term_met(VideoMoment, terms))
                .order_by(VideoMoment.media_id, VideoMoment.label_id, VideoMoment.timestamp_ms)
            ):
                moments[(media_id, label_id)].append((timestamp_ms, confidence))
            for (media_id, label_id), seen in moments.items():
                found[media_id].append(
                    TermMatch(
                        label_id,
                        names.get(label_id, str(label_id)),
                        max(confidence for _, confidence in seen),
                        tuple(timestamp for timestamp, _ in seen),
                    )
                )
            for media_id in video_ids:
                found[media_id].sort(key=lambda m: (-m.confidence_x100, m.label_id))
        return found

    def hits(
        self, media_ids: Sequence[int]
    ) -> tuple[dict[int, Any], dict[int, list[TermMatch | TextMatch]]]:
        """The media rows of `media_ids` and the terms each met, in one round trip (a second
        one only for text terms).

        Rows carry id, source, bucket, key, kind, size_bytes, last_modified_at. The matches are
        what `matches` returns, decided by the same SQL conditions.
        """
        rows: dict[int, Any] = {}
        found: dict[int, list[TermMatch | TextMatch]] = defaultdict(list)
        if not media_ids:
            return rows, found
        terms = self.plan.positive_terms
        params: dict[str, Any] = {
            "ids": list(media_ids),
            "labels": sorted({t.label_id for t in terms}),
        }
        for i, term in enumerate(terms):
            params[f"l{i}"] = term.label_id
            params[f"lo{i}"] = term.low
            params[f"hi{i}"] = term.high
        shape = tuple((t.field_name, bool(t.low), t.high is not None) for t in terms)
        stmt = _hits_stmt(shape, self.session.get_bind().dialect.name)
        names = self.resolution.names
        met: list[Any] = []
        for row in self.session.connection().execute(stmt, params):
            if row.part == 0:
                rows[row.id] = row
            else:
                met.append(row)
        for row in met:
            media = rows.get(row.id)
            # Images are matched by their labels, videos by their moments.
            if media is None or (media.kind == KIND_VIDEO) != (row.part == 2):
                continue
            stamps = None
            if row.part == 2:
                stamps = tuple(sorted(int(t) for t in row.timestamps.split(",")))
            found[row.id].append(
                TermMatch(
                    row.label_id,
                    names.get(row.label_id, str(row.label_id)),
                    row.confidence_x100,
                    stamps,
                )
            )
        for labels in found.values():
            labels.sort(key=lambda m: (-m.confidence_x100, getattr(m, "label_id", 0)))
        text_terms = positive_text_terms(self.plan.resolved)
        if text_terms and rows:
            connection = self.session.connection()
            for media_id, lines in text_matches(connection, text_terms, list(rows)).items():
                found[media_id].extend(lines)
        return rows, found

    def hints(self) -> list[str]:
        """'did you mean' lines for names that match no label or category."""
        res = self.resolution
        unknown_labels = sorted(set(res.unknown_labels))
        unknown_categories = sorted(set(res.unknown_categories))
        if self.node is None or not (unknown_labels or unknown_categories):
            return []
        spelled: dict[str, str] = {}
        for term in iter_terms(self.node):
            if isinstance(term, LabelCondition | CountCondition):
                spelled.setdefault(fold(term.name), term.name)
            elif isinstance(term, CategoryFilter):
                spelled.setdefault("category:" + fold(term.category), term.category)
        hints: list[str] = []
        if unknown_labels:
            vocabulary = list(self.session.scalars(select(Label.name)))
            aliases = list(self.session.scalars(select(LabelAlias.alias).distinct()))
            by_folded = {fold(n): n for n in [*aliases, *vocabulary]}
            for name in unknown_labels:
                close = difflib.get_close_matches(name, list(by_folded), n=3, cutoff=0.6)
                hints.append(_hint("label", spelled.get(name, name), [by_folded[c] for c in close]))
        if unknown_categories:
            categories = list(self.session.scalars(select(LabelCategory.category).distinct()))
            by_folded = {fold(c): c for c in categories}
            for name in unknown_categories:
                close = difflib.get_close_matches(name, list(by_folded), n=3, cutoff=0.6)
                original = spelled.get("category:" + name, name)
                hints.append(_hint("category", original, [by_folded[c] for c in close]))
        return hints

    # -- internals -----------------------------------------------------------------------------

    def _count_from_summaries(self) -> int | None:
        """The exact count of a one-label query from the summary tables, when they hold it.

        `Car` is label_stats' media count; `Car >= 90` the sum of its 10-point histogram bins
        from 90 up. Both are kept exact in the same transaction as every write.
        """
        term = self.plan.resolved
        if (
            not isinstance(term, LabelTerm)
            or term.field_name != "confidence"
            or term.high is not None
        ):
            return None
        if not term.low:
            return int(self.resolution.media_counts.get(term.label_id, 0))
        if term.low % 1000 or term.low >= 10_000:  # 100% shares the top bin with 90..99.99
            return None
        bins = self.resolution.histograms.get(term.label_id, {})
        return int(sum(n for b, n in bins.items() if b >= term.low // 1000))

    def _ordered(self, limit: int | None, sort: str, before_id: int | None) -> Any:
        if sort not in SORTS:
            raise UsageError(f"unknown sort '{sort}'; use one of {', '.join(SORTS)}")
        if sort == "newest" or self.plan.plan is None:
            if before_id is None:
                return _newest_page(self.plan, limit, self.is_empty)
            sub = ids_select(self.plan, empty_query=self.is_empty).subquery()
            stmt = select(sub.c.id).where(sub.c.id < before_id).order_by(sub.c.id.desc())
            return stmt.limit(limit) if limit is not None else stmt
        sub = ids_select(self.plan, empty_query=self.is_empty).subquery()
        stmt = select(sub.c.id)
        if sort == "confidence":
            label_ids = sorted({t.label_id for t in self.plan.positive_terms})
            if not label_ids:
                return newest_page(self.plan, limit, empty_query=self.is_empty)
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


def compile_query(session: Session, text: str | None) -> CompiledQuery:
    """Parse, resolve and plan `text` (None or "" selects every media item).

    Raises QueryError (with the position) for a malformed query.
    """
    node = parse_query(text or "")
    query_plan, resolution = plan_query(session, node)
    return CompiledQuery(session, text or "", node, query_plan, resolution)


def _any_term_met(table: Any, terms: Sequence[LabelTerm]) -> ColumnElement[bool]:
    """A row of `table` (detections or video_moments) whose own value meets one of `terms`."""
    if not terms:
        return false()
    return or_(*(and_(table.label_id == term.label_id, *term_range(table, term)) for term in terms))


@lru_cache(maxsize=512)
def _newest_page(query_plan: QueryPlan, limit: int | None, empty_query: bool) -> Any:
    """The first page's statement, built once per plan: building it costs more than running it
    (a plan is frozen and hashable; its label ids and bounds are in it)."""
    return newest_page(query_plan, limit, empty_query=empty_query)


# The media columns of a page of hits (part 0 of the UNION; blanks in the other parts).
_HIT_MEDIA_COLUMNS = (
    Media.source,
    Media.bucket,
    Media.key,
    Media.kind,
    Media.size_bytes,
    Media.last_modified_at,
)


@cache
def _hits_stmt(shape: tuple[tuple[str, bool, bool], ...], dialect: str) -> Any:
    """One UNION ALL for a page of hits: media rows (part 0), the image labels that met a
    term (part 1) and, per video and label, the best confidence and the timestamps of the
    moments that met one (part 2, aggregated by the database: a page of videos can hold
    thousands of moments). Built once per shape of terms; ids and bounds are parameters."""
    ids: Any = bindparam("ids", expanding=True)
    media = select(
        literal(0).label("part"),
        Media.id.label("id"),
        *_HIT_MEDIA_COLUMNS,
        cast(null(), Integer).label("label_id"),
        cast(null(), Integer).label("confidence_x100"),
        cast(null(), Text).label("timestamps"),
    ).where(Media.id.in_(ids))
    if not shape:
        return media
    blanks = [cast(null(), column.type) for column in _HIT_MEDIA_COLUMNS]
    labels = select(
        literal(1),
        Detection.media_id,
        *blanks,
        Detection.label_id,
        Detection.confidence_x100,
        cast(null(), Text),
    ).where(Detection.media_id.in_(ids), _met_by(Detection, shape))
    if dialect == "postgresql":
        timestamps = func.string_agg(cast(VideoMoment.timestamp_ms, Text), ",")
    else:
        timestamps = func.group_concat(VideoMoment.timestamp_ms)
    moments = (
        select(
            literal(2),
            VideoMoment.media_id,
            *blanks,
            VideoMoment.label_id,
            func.max(VideoMoment.confidence_x100),
            cast(timestamps, Text),
        )
        .where(VideoMoment.media_id.in_(ids), _met_by(VideoMoment, shape))
        .group_by(VideoMoment.media_id, VideoMoment.label_id)
    )
    return union_all(media, labels, moments)


def _met_by(table: Any, shape: tuple[tuple[str, bool, bool], ...]) -> ColumnElement[bool]:
    """A row of `table` meets term i of `shape` (bounds bound as l{i}, lo{i}, hi{i}).

    `label_id IN (...)` beside the OR, and terms that no index serves, make SQLite probe the
    primary key with (media, label) pairs; otherwise it may scan each term's confidence range
    (hundreds of thousands of rows for a common label) and then filter by media id.
    """
    met = []
    for i, (field_name, has_low, has_high) in enumerate(shape):
        column = table.confidence_x100 if field_name == "confidence" else table.instance_count
        column = column + 0  # not indexable: the (media, label) probes are the plan
        met.append(
            and_(
                table.label_id + 0 == bindparam(f"l{i}"),
                column >= bindparam(f"lo{i}") if has_low else true(),
                column <= bindparam(f"hi{i}") if has_high else true(),
            )
        )
    labels: Any = bindparam("labels", expanding=True)
    return and_(table.label_id.in_(labels), or_(*met))


def _hint(what: str, name: str, close: list[str]) -> str:
    text = f"No {what} '{name}' in the catalogue"
    if close:
        quoted = " or ".join(f"'{c}'" for c in close)
        return f"{text}; did you mean {quoted}?"
    return f"{text}; 'catalog labels' lists the vocabulary."
