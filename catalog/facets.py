"""Facets of a search's result set: its size, kinds, top co-occurring labels and key prefixes.

A plain, exact SQL version: every figure is an aggregate over the media the query selects.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import (
    SOURCE_FILE,
    STATUS_DELETED,
    STATUS_LABELLED,
    Detection,
    Label,
    LabelStat,
    Media,
    MediaTotal,
)

DEFAULT_TOP = 20


@dataclass(frozen=True)
class FacetCount:
    """One facet value and how many media of the result set have it."""

    value: str
    count: int
    label_id: int | None = None


@dataclass(frozen=True)
class Facets:
    """The result set in numbers: total, by kind, top labels and first key segments."""

    total: int
    kinds: list[FacetCount]
    labels: list[FacetCount]
    prefixes: list[FacetCount]


def facets(session: Session, query: str | None, *, top: int = 20) -> Facets:
    """Facets of the media `query` selects (None or "": every catalogued item).

    `labels` are the `top` labels carried by most media of the result set (label_id set),
    `kinds` the image/video counts, and `prefixes` the first path segment of the keys
    ('2024/' for '2024/06/a.jpg', '' at the top level; a local file's path without its root).
    Raises QueryError for a malformed query.
    """
    from catalog.search import matching_media_ids

    if not (query or "").strip():
        return _library_facets(session, top)
    subset = matching_media_ids(query, session=session).subquery()
    ids = select(next(iter(subset.c)))
    kinds = [
        FacetCount(kind, int(n))
        for kind, n in session.execute(
            select(Media.kind, func.count())
            .where(Media.id.in_(ids))
            .group_by(Media.kind)
            .order_by(func.count().desc(), Media.kind)
        )
    ]
    count = func.count().label("n")
    labels = [
        FacetCount(name, int(n), label_id)
        for label_id, name, n in session.execute(
            select(Detection.label_id, Label.name, count)
            .join(Label, Label.id == Detection.label_id)
            .where(Detection.media_id.in_(ids))
            .group_by(Detection.label_id, Label.name)
            .order_by(count.desc(), Label.name)
            .limit(top)
        )
    ]
    return Facets(
        total=sum(k.count for k in kinds),
        kinds=kinds,
        labels=labels,
        prefixes=_prefixes(session, ids, top),
    )


def _library_facets(session: Session, top: int) -> Facets:
    """The whole library's facets: kinds and labels from the exact summary tables."""
    from catalog.stats import media_counts

    counts = media_counts(session)
    # What `kind:image` / `kind:video` select: labelled media (exact, from media_totals).
    kinds = [
        FacetCount(kind, int(n))
        for kind, n in session.execute(
            select(MediaTotal.kind, MediaTotal.media_count)
            .where(MediaTotal.status == STATUS_LABELLED, MediaTotal.media_count > 0)
            .order_by(MediaTotal.media_count.desc(), MediaTotal.kind)
        )
    ]
    labels = [
        FacetCount(name, int(n), label_id)
        for label_id, name, n in session.execute(
            select(Label.id, Label.name, LabelStat.media_count)
            .join(LabelStat, LabelStat.label_id == Label.id)
            .where(LabelStat.media_count > 0)
            .order_by(LabelStat.media_count.desc(), Label.name)
            .limit(top)
        )
    ]
    ids = select(Media.id).where(Media.status != STATUS_DELETED)
    return Facets(
        total=counts.total,
        kinds=kinds,
        labels=labels,
        prefixes=_prefixes(session, ids, top),
    )


def _prefixes(session: Session, ids: Any, top: int) -> list[FacetCount]:
    from catalog.stats import _prefix_expr, key_prefix

    prefix = _prefix_expr(session, 1).label("prefix")
    counts: Counter[str] = Counter()
    for source, key, n in session.execute(
        select(Media.source, prefix, func.count())
        .where(Media.id.in_(ids))
        .group_by(Media.source, prefix)
    ):
        counts[key_prefix(key.lstrip("/") if source == SOURCE_FILE else key)] += int(n)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [FacetCount(value, n) for value, n in ranked]
