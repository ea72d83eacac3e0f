"""The label vocabulary: names, parents, aliases and categories, created on first sight."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from catalog.labelling import DetectedLabel
from catalog.store.schema import (
    Label,
    LabelAlias,
    LabelCategory,
    LabelParent,
)
from catalog.store.units import _insert, fold

# -- vocabulary ---------------------------------------------------------------------------------


class _Vocabulary:
    """name -> label id, cached per database (labels are never removed)."""

    def __init__(self) -> None:
        self._ids: dict[str, dict[str, int]] = defaultdict(dict)
        self._lock = threading.Lock()

    def ids(self, session: Session, labels: Iterable[DetectedLabel]) -> dict[str, int]:
        """Ids for every label (and every parent), creating the missing ones."""
        bind_key = str(session.get_bind().engine.url)
        wanted: dict[str, DetectedLabel | None] = {}
        for label in labels:
            wanted.setdefault(label.name, label)
            if wanted[label.name] is None:
                wanted[label.name] = label
            for parent in label.parents:
                wanted.setdefault(parent, None)
        with self._lock:
            cache = self._ids[bind_key]
            missing = [name for name in wanted if name not in cache]
        found: dict[str, int] = {}
        if missing:
            visible = {
                name
                for (name,) in session.execute(select(Label.name).where(Label.name.in_(missing)))
            }
            found = self._create(session, missing, wanted)
            with self._lock:
                # Cache only labels other transactions already committed: the ones this
                # transaction creates are invisible to other connections (threads, processes)
                # until it commits, and gone if it rolls back.
                cache.update({name: found[name] for name in visible if name in found})
        with self._lock:
            return {name: cache[name] if name in cache else found[name] for name in wanted}

    def _create(
        self, session: Session, names: list[str], details: dict[str, DetectedLabel | None]
    ) -> dict[str, int]:
        table: Table = Label.__table__  # type: ignore[assignment]
        stmt = _insert(session, table).on_conflict_do_nothing(index_elements=["name"])
        session.execute(stmt, [{"name": name, "name_folded": fold(name)} for name in names])
        rows = session.execute(select(Label.name, Label.id).where(Label.name.in_(names))).all()
        ids = {name: label_id for name, label_id in rows}
        parents_to_add = [n for n in names if details.get(n) and details[n].parents]  # type: ignore[union-attr]
        if parents_to_add:
            all_parents = {p for n in parents_to_add for p in details[n].parents}  # type: ignore[union-attr]
            parent_ids = self.ids_for_names(session, all_parents, ids)
            self._link(
                session,
                LabelParent.__table__,
                ["label_id", "parent_id"],
                [
                    {"label_id": ids[n], "parent_id": parent_ids[p]}
                    for n in parents_to_add
                    for p in dict.fromkeys(details[n].parents)  # type: ignore[union-attr]
                    if p != n
                ],
            )
        self._link(
            session,
            LabelAlias.__table__,
            ["label_id", "alias"],
            [
                {"label_id": ids[n], "alias": alias, "alias_folded": fold(alias)}
                for n in names
                if details.get(n)
                for alias in dict.fromkeys(details[n].aliases)  # type: ignore[union-attr]
            ],
        )
        self._link(
            session,
            LabelCategory.__table__,
            ["label_id", "category"],
            [
                {"label_id": ids[n], "category": category, "category_folded": fold(category)}
                for n in names
                if details.get(n)
                for category in dict.fromkeys(details[n].categories)  # type: ignore[union-attr]
            ],
        )
        return ids

    def ids_for_names(
        self, session: Session, names: Iterable[str], known: dict[str, int]
    ) -> dict[str, int]:
        """Ids for plain names (parents), creating the missing ones."""
        result = {n: known[n] for n in names if n in known}
        rest = [n for n in names if n not in known]
        if rest:
            table: Table = Label.__table__  # type: ignore[assignment]
            stmt = _insert(session, table).on_conflict_do_nothing(index_elements=["name"])
            session.execute(stmt, [{"name": name, "name_folded": fold(name)} for name in rest])
            rows = session.execute(select(Label.name, Label.id).where(Label.name.in_(rest))).all()
            result.update({name: label_id for name, label_id in rows})
        return result

    @staticmethod
    def _link(session: Session, table: Any, keys: list[str], rows: list[dict[str, Any]]) -> None:
        if rows:
            session.execute(
                _insert(session, table).on_conflict_do_nothing(index_elements=keys), rows
            )

    def forget(self) -> None:
        """Drop the cache (after a rolled-back transaction that may have created labels)."""
        with self._lock:
            self._ids.clear()


vocabulary = _Vocabulary()


def label_taxonomy(
    session: Session, label_ids: Sequence[int]
) -> dict[int, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    """label id -> (parents, aliases, categories) names."""
    if not label_ids:
        return {}
    parents: dict[int, list[str]] = defaultdict(list)
    aliases: dict[int, list[str]] = defaultdict(list)
    categories: dict[int, list[str]] = defaultdict(list)
    for label_id, name in session.execute(
        select(LabelParent.label_id, Label.name)
        .join(Label, Label.id == LabelParent.parent_id)
        .where(LabelParent.label_id.in_(label_ids))
    ):
        parents[label_id].append(name)
    for label_id, alias in session.execute(
        select(LabelAlias.label_id, LabelAlias.alias).where(LabelAlias.label_id.in_(label_ids))
    ):
        aliases[label_id].append(alias)
    for label_id, category in session.execute(
        select(LabelCategory.label_id, LabelCategory.category).where(
            LabelCategory.label_id.in_(label_ids)
        )
    ):
        categories[label_id].append(category)
    return {
        label_id: (tuple(parents[label_id]), tuple(aliases[label_id]), tuple(categories[label_id]))
        for label_id in label_ids
    }
