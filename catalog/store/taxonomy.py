"""Reading a label's taxonomy back: its parents, aliases and categories, in plain SQL.

Two views: what every response taught about a label (`label_taxonomy`, from label_parents,
label_aliases and label_categories), and what one item's own response gave each of its labels
(`detection_taxonomy`, from the label_taxonomies row its detection points at). Writing them is
catalog.store.vocabulary.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from catalog.store.sql import Db, Reader, db_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

Taxonomy = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # parents, aliases, categories

_PARENTS = (
    "SELECT lp.label_id, l.name FROM label_parents lp JOIN labels l ON l.id = lp.parent_id "
    "WHERE lp.label_id IN (:ids) ORDER BY l.name"
)
_ALIASES = "SELECT label_id, alias FROM label_aliases WHERE label_id IN (:ids) ORDER BY alias"
_CATEGORIES = (
    "SELECT label_id, category FROM label_categories WHERE label_id IN (:ids) ORDER BY category"
)
_TAXONOMIES = "SELECT id, parents, aliases, categories FROM label_taxonomies WHERE id IN (:ids)"


def label_taxonomy(source: Session | Reader | Db, label_ids: Sequence[int]) -> dict[int, Taxonomy]:
    """label id -> (parents, aliases, categories) every response taught, each sorted by name."""
    if not label_ids:
        return {}
    db = db_of(source)
    ids = {"ids": list(label_ids)}
    parents: dict[int, list[str]] = defaultdict(list)
    aliases: dict[int, list[str]] = defaultdict(list)
    categories: dict[int, list[str]] = defaultdict(list)
    for sql, into in ((_PARENTS, parents), (_ALIASES, aliases), (_CATEGORIES, categories)):
        for label_id, name in db.rows(sql, ids):
            into[label_id].append(name)
    return {
        label_id: (tuple(parents[label_id]), tuple(aliases[label_id]), tuple(categories[label_id]))
        for label_id in label_ids
    }


def _names(value: Any) -> tuple[str, ...]:
    """A JSON list column as read by the driver (SQLite: its text)."""
    return tuple(json.loads(value) if isinstance(value, str | bytes) else value or ())


def detection_taxonomy(
    source: Session | Reader | Db, detections: Iterable[tuple[int, int | None]]
) -> dict[int, Taxonomy]:
    """label id -> its taxonomy on one item, from (label id, taxonomy id) detection pairs.

    A detection shows the taxonomy its own response gave. One stored before taxonomies were kept
    per response (no taxonomy id) shows what every response taught about the label.
    """
    db = db_of(source)
    pairs = list(detections)
    taxonomy_ids = sorted({t for _, t in pairs if t is not None})
    by_id: dict[int, Taxonomy] = {}
    if taxonomy_ids:
        for taxonomy_id, parents, aliases, categories in db.rows(
            _TAXONOMIES, {"ids": taxonomy_ids}
        ):
            by_id[taxonomy_id] = (_names(parents), _names(aliases), _names(categories))
    older = label_taxonomy(db, sorted({label_id for label_id, t in pairs if t is None}))
    empty: Taxonomy = ((), (), ())
    return {
        label_id: by_id.get(taxonomy_id, empty) if taxonomy_id is not None else older[label_id]
        for label_id, taxonomy_id in pairs
    }
