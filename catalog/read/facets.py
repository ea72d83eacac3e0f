"""Facets of a search's result set: its size, and the labels, kinds and prefixes in it, counted.

`facets(session, query)` is what `catalog search --facets` prints and what the web gallery's
facet panel shows. The counts come from the bitmap index (intersection cardinalities, exact);
for a query the index cannot answer they are grouped in SQL over the matching ids instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyroaring import BitMap
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from catalog.errors import StaleIndexError, UsageError
from catalog.query.compiled import CompiledQuery, compile_query
from catalog.read.folders import folder_prefix_counts, local_roots, media_prefix
from catalog.read.groupings import prefix_expr
from catalog.read.subsets import kind_counts, top_counts, top_shared_labels
from catalog.store.bitmaps import BitmapIndex
from catalog.store.schema import Detection, Media
from catalog.store.sql import db_of

DEFAULT_FACETS = 20


@dataclass(frozen=True)
class FacetCount:
    """One value of a facet and how many media of the result set have it."""

    value: str
    count: int
    label_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: value, count (and label_id for labels)."""
        data: dict[str, Any] = {"value": self.value, "count": self.count}
        if self.label_id is not None:
            data["label_id"] = self.label_id
        return data


@dataclass(frozen=True)
class Facets:
    """A result set's size and its most frequent labels, kinds and key prefixes."""

    total: int
    kinds: list[FacetCount]
    labels: list[FacetCount]
    prefixes: list[FacetCount]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `catalog search --facets`."""
        return {
            "total": self.total,
            "kinds": [f.to_dict() for f in self.kinds],
            "labels": [f.to_dict() for f in self.labels],
            "prefixes": [f.to_dict() for f in self.prefixes],
        }


def facets(session: Session, query: str | None, *, top: int = DEFAULT_FACETS) -> Facets:
    """The result set of `query` (None or "": every media item) counted by label, kind, prefix.

    `labels` are the `top` labels carried by the most matching media, with their label ids,
    leaving out the labels the query itself asks for (every hit has those); `kinds` counts
    images and videos; `prefixes` the `top` first key segments. Ties go by name. Raises
    QueryError for a malformed query.
    """
    if top < 1:
        raise UsageError(f"--top must be at least 1 (got {top})")
    compiled = compile_query(session, query)
    named = {term.label_id for term in compiled.plan.positive_terms}
    matched = compiled.bitmap()
    index = compiled.index()
    if matched is not None and index is not None:
        try:
            return _from_index(session, index, matched, named, top)
        except StaleIndexError:
            pass
    return _from_sql(session, compiled, named, top)


def _from_index(
    session: Session, index: BitmapIndex, matched: BitMap, named: set[int], top: int
) -> Facets:
    labels = top_shared_labels(db_of(session), index, matched, top, exclude=named)
    prefixes = folder_prefix_counts(index, matched, local_roots(session))
    return Facets(
        total=len(matched),
        kinds=_ranked(kind_counts(index, matched), None),
        labels=[FacetCount(name, n, label_id) for label_id, name, n in labels],
        prefixes=_ranked(prefixes, top),
    )


def _ranked(counts: dict[str, int], top: int | None) -> list[FacetCount]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [FacetCount(value, n) for value, n in ranked[:top]]


def _from_sql(session: Session, compiled: CompiledQuery, named: set[int], top: int) -> Facets:
    """The same facets grouped by SQL over the matching ids (queries the index cannot answer)."""
    ids: Select[Any] = compiled.ids()
    connection = session.connection()
    shared = func.count().label("shared")
    label_rows = connection.execute(
        select(Detection.label_id, shared)
        .where(Detection.media_id.in_(ids), Detection.label_id.not_in(sorted(named)))
        .group_by(Detection.label_id)
    ).all()
    counts = {int(label_id): int(n) for label_id, n in label_rows}
    labels = top_counts(session, counts, top)
    kinds: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    prefix = prefix_expr(session, 1).label("prefix")
    roots = local_roots(session)
    for source, kind, value, n in connection.execute(
        select(Media.source, Media.kind, prefix, func.count())
        .where(Media.id.in_(ids))
        .group_by(Media.source, Media.kind, prefix)
    ):
        kinds[kind] = kinds.get(kind, 0) + int(n)
        value = media_prefix(source, value, 1, roots)
        prefixes[value] = prefixes.get(value, 0) + int(n)
    return Facets(
        total=sum(kinds.values()),
        kinds=_ranked(kinds, None),
        labels=[FacetCount(name, n, label_id) for label_id, name, n in labels],
        prefixes=_ranked(prefixes, top),
    )
