"""`compile_query(session, text)`: the one entry point from query text to what it selects.

Parsing, name resolution and planning happen once; the CompiledQuery then answers every
question a caller has, from the bitmap index where it can (the count, the newest page) and
otherwise as one SQL round trip: the ids (a select other code can filter by), the exact count,
a sorted page of ids, which of the query's terms each hit met (and how well), and "did you
mean" hints for names the catalogue does not know. Names, the index and hits are read in plain
SQL (catalog.store.sql); only the SQL the planner writes (catalog.query.compile) needs
SQLAlchemy, which is imported when a query first needs it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from pyroaring import BitMap

from catalog.errors import StaleIndexError, UsageError
from catalog.query.bitmap_eval import evaluate, is_supported
from catalog.query.nodes import CategoryFilter, CountCondition, LabelCondition, Node, iter_terms
from catalog.query.parse import parse_query
from catalog.query.plan import QueryPlan, plan_query
from catalog.query.resolve import LabelTerm, Resolution
from catalog.query.text import TextMatch, positive_text_terms
from catalog.store.bitmaps import BitmapIndex, open_index
from catalog.store.sql import Reader, as_reader
from catalog.store.units import fold
from catalog.store.values import KIND_VIDEO

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.orm import Session

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


class HitRow(NamedTuple):
    """The media columns of one hit."""

    id: int
    source: str
    bucket: str
    key: str
    kind: str
    size_bytes: int
    last_modified_at: datetime | None


@dataclass(frozen=True)
class CompiledQuery:
    """A parsed, resolved and planned query, bound to the catalogue it was compiled on.

    Names, the index and hits are read with plain SQL (catalog.store.sql); what only SQL
    planning answers runs on the reader's session, which loads SQLAlchemy on first use.
    """

    reader: Reader
    text: str
    node: Node | None
    plan: QueryPlan
    resolution: Resolution
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_empty(self) -> bool:
        """True for the empty query (every non-deleted media item)."""
        return self.node is None

    @property
    def session(self) -> Session:
        """A session on the catalogue, for the SQL only SQLAlchemy builds."""
        return self.reader.session()

    def ids(self) -> Select[Any]:
        """An unordered SELECT of the matching media ids (one column, `id`)."""
        from sqlalchemy import Select, select

        from catalog.query.compile import ids_select

        stmt = ids_select(self.plan, empty_query=self.is_empty)
        if isinstance(stmt, Select):
            return stmt
        return select(stmt.subquery().c.id)

    def index(self) -> BitmapIndex | None:
        """The catalogue's bitmap index as of now (None when it cannot answer exactly)."""
        if "index" not in self._memo:
            self._memo["index"] = open_index(self.reader.db)
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
        from catalog.query.compile import count_select

        counted = count_select(self.plan, empty_query=self.is_empty)
        return int(self.session.connection().execute(counted).scalar_one())

    def page(
        self, limit: int | None, *, sort: str = "newest", before_id: int | None = None
    ) -> list[int]:
        """Matching media ids in `sort` order, at most `limit`.

        `before_id` (newest order only) continues a page after the id it ended with (keyset
        paging: as fast deep into a result as on its first page). Without a session at hand,
        the newest page comes from the index when it can answer (the largest ids of the
        matching bitmap): importing SQLAlchemy would cost more than the page. With one, the
        planner's SQL reads a first page in a fraction of a millisecond.
        """
        if sort not in SORTS:
            raise UsageError(f"unknown sort '{sort}'; use one of {', '.join(SORTS)}")
        by_id = sort == "newest" or (sort == "confidence" and not self.plan.positive_terms)
        if by_id and not self.reader.has_session:
            matched = self.bitmap()
            if matched is not None:
                return _newest(matched, limit, before_id)
        from catalog.query.compile import ordered_select

        stmt = ordered_select(self.plan, limit, sort, before_id, empty_query=self.is_empty)
        return list(self.session.connection().execute(stmt).scalars())

    def hits(
        self, media_ids: Sequence[int]
    ) -> tuple[dict[int, HitRow], dict[int, list[TermMatch | TextMatch]]]:
        """The media rows of `media_ids` and the positive label terms each met (best first), in
        one round trip; a second one for the lines of text that met its text terms.
        """
        rows: dict[int, HitRow] = {}
        found: dict[int, list[TermMatch | TextMatch]] = defaultdict(list)
        if not media_ids:
            return rows, found
        db = self.reader.db
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
        met: list[tuple[Any, ...]] = []
        for part, media_id, *values in db.rows(_hits_sql(shape, db.dialect), params):
            if part == 0:
                source, bucket, key, kind, size_bytes, modified = values[:6]
                rows[media_id] = HitRow(
                    media_id, source, bucket, key, kind, int(size_bytes or 0), db.utc(modified)
                )
            else:
                met.append((part, media_id, *values[6:]))
        names = self.resolution.names
        for part, media_id, label_id, confidence_x100, timestamps in met:
            media = rows.get(media_id)
            # Images are matched by their labels, videos by their moments.
            if media is None or (media.kind == KIND_VIDEO) != (part == 2):
                continue
            stamps = None
            if part == 2:
                stamps = tuple(sorted(int(t) for t in str(timestamps).split(",")))
            name = names.get(label_id, str(label_id))
            found[media_id].append(TermMatch(label_id, name, int(confidence_x100), stamps))
        for labels in found.values():
            labels.sort(key=lambda m: (-m.confidence_x100, getattr(m, "label_id", 0)))
        text_terms = positive_text_terms(self.plan.resolved)
        if text_terms and rows:
            from catalog.query.text_sql import text_matches

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
        import difflib  # only a query naming an unknown label needs it

        db = self.reader.db
        hints: list[str] = []
        if unknown_labels:
            known = db.rows(
                "SELECT DISTINCT alias FROM label_aliases UNION SELECT name FROM labels"
            )
            by_folded = {fold(n): n for (n,) in known}
            for name in unknown_labels:
                close = difflib.get_close_matches(name, list(by_folded), n=3, cutoff=0.6)
                hints.append(_hint("label", spelled.get(name, name), [by_folded[c] for c in close]))
        if unknown_categories:
            categories = db.rows("SELECT DISTINCT category FROM label_categories")
            by_folded = {fold(c): c for (c,) in categories}
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


def _newest(matched: BitMap, limit: int | None, below: int | None) -> list[int]:
    """The largest ids of `matched` (of those below `below`, when given), largest first."""
    end = len(matched)
    if below is not None:
        end = matched.rank(below - 1) if below > 0 else 0
    start = 0 if limit is None else max(0, end - limit)
    return list(matched[start:end])[::-1]


def compile_query(session: Session | Reader, text: str | None) -> CompiledQuery:
    """Parse, resolve and plan `text` (None or "" selects every media item).

    Raises QueryError (with the position) for a malformed query.
    """
    reader = as_reader(session)
    node = parse_query(text or "")
    query_plan, resolution = plan_query(reader.db, node)
    return CompiledQuery(reader, text or "", node, query_plan, resolution)


@cache
def _hits_sql(shape: tuple[tuple[str, bool, bool], ...], dialect: str) -> str:
    """One UNION ALL for a page of hits: media rows (part 0), the image labels that met a
    term (part 1) and, per video and label, the best confidence and the timestamps of the
    moments that met one (part 2, aggregated by the database: a page of videos can hold
    thousands of moments). Written once per shape of terms; ids and bounds are parameters."""
    media = (
        "SELECT 0 AS part, id, source, bucket, key, kind, size_bytes, last_modified_at, "
        "NULL AS label_id, NULL AS confidence_x100, NULL AS timestamps "
        "FROM media WHERE id IN (:ids)"
    )
    if not shape:
        return media
    blanks = "NULL, NULL, NULL, NULL, NULL, NULL"
    labels = (
        f"SELECT 1, media_id, {blanks}, label_id, confidence_x100, NULL FROM detections "
        f"WHERE media_id IN (:ids) AND {_met_by(shape)}"
    )
    if dialect == "postgresql":
        timestamps = "string_agg(CAST(timestamp_ms AS TEXT), ',')"
    else:
        timestamps = "group_concat(timestamp_ms)"
    moments = (
        f"SELECT 2, media_id, {blanks}, label_id, max(confidence_x100), {timestamps} "
        f"FROM video_moments WHERE media_id IN (:ids) AND {_met_by(shape)} "
        "GROUP BY media_id, label_id"
    )
    return f"{media} UNION ALL {labels} UNION ALL {moments}"


def _met_by(shape: tuple[tuple[str, bool, bool], ...]) -> str:
    """A row meets term i of `shape` (bounds bound as l{i}, lo{i}, hi{i}).

    `label_id IN (...)` beside the OR, and terms that no index serves (`+ 0`), make SQLite probe
    the primary key with (media, label) pairs; otherwise it may scan each term's confidence
    range (hundreds of thousands of rows for a common label) and then filter by media id.
    """
    met = []
    for i, (field_name, has_low, has_high) in enumerate(shape):
        column = "confidence_x100" if field_name == "confidence" else "instance_count"
        conditions = [f"label_id + 0 = :l{i}"]
        if has_low:
            conditions.append(f"{column} + 0 >= :lo{i}")
        if has_high:
            conditions.append(f"{column} + 0 <= :hi{i}")
        met.append("(" + " AND ".join(conditions) + ")")
    return f"label_id IN (:labels) AND ({' OR '.join(met)})"


def _hint(what: str, name: str, close: list[str]) -> str:
    text = f"No {what} '{name}' in the catalogue"
    if close:
        quoted = " or ".join(f"'{c}'" for c in close)
        return f"{text}; did you mean {quoted}?"
    return f"{text}; 'catalog labels' lists the vocabulary."
