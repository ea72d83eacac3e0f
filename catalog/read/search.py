"""Run search queries: media-id filters for other modules, pages, counts, sorting and hits."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from catalog.query.compiled import CompiledQuery, TermMatch, compile_query
from catalog.query.text import TextMatch
from catalog.store.sql import Reader
from catalog.uris import format_uri

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.orm import Session

HIT_BATCH = 500
Presigner = Callable[[str, str], str]


def matching_media_ids(query: str | None, *, session: Session) -> Select[Any]:
    """A SELECT of `Media.id` (column `id`) for the media `query` selects, to filter by.

    None or "" selects every non-deleted media item. Raises QueryError for a malformed query.
    """
    return compile_query(session, query).ids()


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
class TextLineMatch:
    """A line of text the query's text: terms met in one hit (its best confidence)."""

    text: str
    confidence: float
    timestamps_ms: tuple[int, ...] | None = None  # videos: moments the line was seen at

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: text, confidence and (videos) timestamps_ms."""
        data: dict[str, Any] = {"text": self.text, "confidence": self.confidence}
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
    matches: tuple[LabelMatch | TextLineMatch, ...] = ()
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


# -- searching -------------------------------------------------------------------------------------


def search(
    session: Session | Reader,
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
    compiled = compile_query(session, query)
    ids = compiled.page(limit, sort=sort)
    return SearchResult(query, _iter_hits(compiled, ids, presign), compiled.hints())


def count_matches(session: Session | Reader, query: str) -> CountResult:
    """The exact number of media `query` selects."""
    compiled = compile_query(session, query)
    return CountResult(query, compiled.count(), compiled.hints())


def first_page_ids(session: Session | Reader, query: str, limit: int = 50) -> list[int]:
    """The newest `limit` matching media ids (the search hot path, without hit details)."""
    return compile_query(session, query).page(limit)


def load_hits(
    compiled: CompiledQuery, ids: Sequence[int], presign: Presigner | None = None
) -> list[SearchHit]:
    """The hits for `ids` (in that order) with what each met of the query: two round trips."""
    rows, met = compiled.hits(ids)
    hits = []
    for media_id in ids:
        row = rows.get(media_id)
        if row is None:
            continue
        url = presign(row.bucket, row.key) if presign and row.source == "s3" else None
        hits.append(
            SearchHit(
                media_id=media_id,
                uri=format_uri(row.source, row.bucket, row.key),
                kind=row.kind,
                bucket=row.bucket,
                key=row.key,
                size_bytes=row.size_bytes,
                last_modified_at=row.last_modified_at,
                matches=tuple(_label_match(m) for m in met.get(media_id, ())),
                url=url,
            )
        )
    return hits


def _label_match(match: TermMatch | TextMatch) -> LabelMatch | TextLineMatch:
    if isinstance(match, TextMatch):
        return TextLineMatch(match.text, match.confidence_x100 / 100, match.timestamps_ms)
    return LabelMatch(match.name, match.confidence_x100 / 100, match.timestamps_ms)


def _iter_hits(
    compiled: CompiledQuery, ids: Sequence[int], presign: Presigner | None
) -> Iterator[SearchHit]:
    for start in range(0, len(ids), HIT_BATCH):
        yield from load_hits(compiled, ids[start : start + HIT_BATCH], presign)
