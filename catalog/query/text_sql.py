"""The SQL of `text:` terms over the full-text index (the terms themselves: query.text).

On SQLite the words are looked up in the FTS5 table `text_fts` (one row per item); on
PostgreSQL through the GIN index on each LINE's `to_tsvector('simple', text_folded)`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from catalog.query.text import TextMatch, TextTerm
from catalog.store.schema import TEXT_LINE, Media, TextDetection
from catalog.store.text import TEXT_FTS

_SIMPLE: ColumnElement[Any] = literal_column("'simple'::regconfig")


def _words(term: TextTerm) -> str:
    return " ".join(term.condition.words)


def line_conditions(rows: Any, term: TextTerm) -> list[ColumnElement[bool]]:
    """Conditions that a text_detections row (aliased as `rows`) is a LINE meeting `term`.

    `text_folded` is folded words joined by single spaces, so a phrase is a substring between
    spaces; on PostgreSQL the GIN-indexed tsvector finds the lines first.
    """
    padded = literal(" ") + rows.text_folded + literal(" ")
    conditions: list[ColumnElement[bool]] = [
        rows.kind == TEXT_LINE,
        padded.like(f"% {_words(term)} %"),  # words are letters and digits: no LIKE wildcards
    ]
    if term.dialect == "postgresql":
        vector = func.to_tsvector(_SIMPLE, rows.text_folded)
        conditions.append(vector.bool_op("@@")(func.phraseto_tsquery(_SIMPLE, _words(term))))
    low, high = term.condition.range_x100
    if low is not None and low > 0:
        conditions.append(rows.confidence_x100 >= low)
    if high is not None:
        conditions.append(rows.confidence_x100 <= high)
    return conditions


def _fts_match(term: TextTerm) -> ColumnElement[bool]:
    """SQLite: the item's FTS5 row holds the phrase within one line."""
    return TEXT_FTS.c.body.op("MATCH")('"' + _words(term) + '"')


def _line_exists(term: TextTerm, media_id: Any) -> ColumnElement[bool]:
    rows = aliased(TextDetection)
    return exists().where(rows.media_id == media_id, *line_conditions(rows, term))


def text_exists(term: TextTerm, media_id: Any) -> ColumnElement[bool]:
    """A probe: the item `media_id` shows a line meeting `term`."""
    if term.dialect != "sqlite":
        return _line_exists(term, media_id)
    found: ColumnElement[bool] = media_id.in_(select(TEXT_FTS.c.rowid).where(_fts_match(term)))
    if term.condition.op is None:
        return found  # the index alone is exact
    return and_(found, _line_exists(term, media_id))  # the confidence is the line's own


def text_scan(term: TextTerm, rest: Sequence[Any], probe: Any, join_media: bool) -> Select[Any]:
    """The media ids (column `id`, each once) with a line meeting `term`, the `rest` probed.

    On SQLite the FTS5 table drives: its rowid is the media id, so newest-first pages read the
    index backwards and stop early. `probe(node, media_id)` builds each other term's condition;
    `join_media` brings the media row in for filters on its columns.
    """
    if term.dialect != "sqlite":
        rows = aliased(TextDetection, name="t")
        lines = select(rows.media_id).where(*line_conditions(rows, term))
        return select(Media.id.label("id")).where(
            Media.id.in_(lines), *(probe(item, Media.id) for item in rest)
        )
    media_id = TEXT_FTS.c.rowid
    conditions = [_fts_match(term), *(probe(item, media_id) for item in rest)]
    if term.condition.op is not None:
        conditions.append(_line_exists(term, media_id))
    stmt = select(media_id.label("id")).where(*conditions)
    return stmt.join(Media, Media.id == media_id) if join_media else stmt


def text_matches(
    connection: Connection, terms: Sequence[TextTerm], media_ids: Sequence[int]
) -> dict[int, list[TextMatch]]:
    """For each media id, the distinct lines that met one of `terms`, best first.

    A video's line lists the moments it was seen at (`timestamps_ms`, in order).
    """
    found: dict[int, list[TextMatch]] = defaultdict(list)
    if not terms or not media_ids:
        return found
    rows = aliased(TextDetection)
    seen: dict[tuple[int, str], list[tuple[int | None, int]]] = defaultdict(list)
    for term in dict.fromkeys(terms):
        for media_id, text, confidence, timestamp_ms in connection.execute(
            select(rows.media_id, rows.text, rows.confidence_x100, rows.timestamp_ms).where(
                rows.media_id.in_(list(media_ids)), *line_conditions(rows, term)
            )
        ):
            seen[(media_id, text)].append((timestamp_ms, confidence))
    for (media_id, text), hits in seen.items():
        stamps = sorted({ts for ts, _ in hits if ts is not None})
        found[media_id].append(
            TextMatch(text, max(c for _, c in hits), tuple(stamps) if stamps else None)
        )
    for matches in found.values():
        matches.sort(key=lambda m: (-m.confidence_x100, m.text))
    return found
