"""The label vocabulary: names, and the taxonomy (parents, aliases, categories) each response gives."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from catalog.labelling import DetectedLabel
from catalog.store.schema import Label, LabelAlias, LabelCategory, LabelParent, LabelTaxonomy
from catalog.store.taxonomy import Taxonomy
from catalog.store.units import _insert, fold


def taxonomy_of(label: DetectedLabel) -> Taxonomy:
    """A label's parents (in order), aliases and categories as its response gave them."""
    return (label.parents, label.aliases, label.categories)


def taxonomy_digest(taxonomy: Taxonomy) -> str:
    """The key of one taxonomy content (order kept) among a label's taxonomies of a version."""
    text = json.dumps([list(part) for part in taxonomy], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class _Vocabulary:
    """Label names and taxonomies -> ids, cached per database (neither is ever removed)."""

    def __init__(self) -> None:
        self._ids: dict[str, dict[str, int]] = defaultdict(dict)
        self._taxonomies: dict[str, dict[tuple[int, str, str], int]] = defaultdict(dict)
        self._lock = threading.Lock()

    def ids(self, session: Session, labels: Iterable[DetectedLabel]) -> dict[str, int]:
        """Ids for every label (and every parent), creating the missing ones."""
        wanted: dict[str, None] = {}
        for label in labels:
            wanted.setdefault(label.name)
            for parent in label.parents:
                wanted.setdefault(parent)
        return self.ids_for_names(session, wanted)

    def ids_for_names(self, session: Session, names: Iterable[str]) -> dict[str, int]:
        """Ids for plain names, creating the missing ones."""
        bind_key = _bind_key(session)
        wanted = list(dict.fromkeys(names))
        with self._lock:
            cache = self._ids[bind_key]
            known = {name: cache[name] for name in wanted if name in cache}
        missing = [name for name in wanted if name not in known]
        if missing:
            visible = {
                name
                for (name,) in session.execute(select(Label.name).where(Label.name.in_(missing)))
            }
            table: Table = Label.__table__  # type: ignore[assignment]
            stmt = _insert(session, table).on_conflict_do_nothing(index_elements=["name"])
            # Sorted: concurrent writers take row locks in the same order (no deadlocks).
            rows_in = [{"name": name, "name_folded": fold(name)} for name in sorted(missing)]
            session.execute(stmt, rows_in)
            rows = session.execute(select(Label.name, Label.id).where(Label.name.in_(missing)))
            found = {name: label_id for name, label_id in rows}
            known.update(found)
            with self._lock:
                # Cache only labels other transactions already committed: the ones this
                # transaction creates are invisible to other connections (threads, processes)
                # until it commits, and gone if it rolls back.
                cache.update({name: found[name] for name in visible if name in found})
        return known

    def taxonomy_ids(
        self,
        session: Session,
        labels: Iterable[DetectedLabel],
        model_version: str | None,
        ids: dict[str, int],
    ) -> dict[str, int]:
        """label name -> the taxonomy row of its first occurrence in one response.

        Every distinct taxonomy the response brings is stored (never skipped because the name is
        known), and what it teaches goes into the parents, aliases and categories every search
        uses, in the same transaction as the taxonomy row, so a known row means both are there.
        """
        version = model_version or ""
        bind_key = _bind_key(session)
        first: dict[str, tuple[int, str, str]] = {}
        contents: dict[tuple[int, str, str], tuple[str, Taxonomy]] = {}
        for label in labels:
            taxonomy = taxonomy_of(label)
            key = (ids[label.name], version, taxonomy_digest(taxonomy))
            first.setdefault(label.name, key)
            contents.setdefault(key, (label.name, taxonomy))
        with self._lock:
            cache = self._taxonomies[bind_key]
            known = {key: cache[key] for key in contents if key in cache}
        missing = [key for key in contents if key not in known]
        if missing:
            found, visible = self._create_taxonomies(session, missing, contents, ids)
            known.update(found)
            with self._lock:
                cache.update({key: found[key] for key in visible if key in found})
        return {name: known[key] for name, key in first.items()}

    def _create_taxonomies(
        self,
        session: Session,
        keys: list[tuple[int, str, str]],
        contents: dict[tuple[int, str, str], tuple[str, Taxonomy]],
        ids: dict[str, int],
    ) -> tuple[dict[tuple[int, str, str], int], set[tuple[int, str, str]]]:
        """Insert the missing taxonomy rows and what they teach; (key -> id, keys seen before)."""
        label_ids = sorted({key[0] for key in keys})
        digests = sorted({key[2] for key in keys})

        def lookup() -> dict[tuple[int, str, str], int]:
            rows = session.execute(
                select(
                    LabelTaxonomy.label_id,
                    LabelTaxonomy.model_version,
                    LabelTaxonomy.digest,
                    LabelTaxonomy.id,
                ).where(
                    LabelTaxonomy.label_id.in_(label_ids),
                    LabelTaxonomy.model_version == keys[0][1],
                    LabelTaxonomy.digest.in_(digests),
                )
            )
            return {(a, b, c): taxonomy_id for a, b, c, taxonomy_id in rows}

        visible = set(lookup())
        table: Table = LabelTaxonomy.__table__  # type: ignore[assignment]
        rows = []
        for key in sorted(keys):
            label_id, version, digest = key
            parents, aliases, categories = contents[key][1]
            rows.append(
                {
                    "label_id": label_id,
                    "model_version": version,
                    "digest": digest,
                    "parents": list(parents),
                    "aliases": list(aliases),
                    "categories": list(categories),
                }
            )
        session.execute(
            _insert(session, table).on_conflict_do_nothing(
                index_elements=["label_id", "model_version", "digest"]
            ),
            rows,
        )
        self._teach(session, [contents[key] for key in keys if key not in visible], ids)
        found = lookup()
        return {key: found[key] for key in keys}, visible

    def _teach(
        self, session: Session, taught: list[tuple[str, Taxonomy]], ids: dict[str, int]
    ) -> None:
        """Add what responses say about labels to the tables every search reads."""
        parents: dict[tuple[int, int], dict[str, int]] = {}
        aliases: dict[tuple[int, str], dict[str, Any]] = {}
        categories: dict[tuple[int, str], dict[str, Any]] = {}
        for name, (label_parents, label_aliases, label_categories) in taught:
            label_id = ids[name]
            for parent in label_parents:
                if parent != name:
                    parents[(label_id, ids[parent])] = {
                        "label_id": label_id,
                        "parent_id": ids[parent],
                    }
            for alias in label_aliases:
                aliases[(label_id, alias)] = {
                    "label_id": label_id,
                    "alias": alias,
                    "alias_folded": fold(alias),
                }
            for category in label_categories:
                categories[(label_id, category)] = {
                    "label_id": label_id,
                    "category": category,
                    "category_folded": fold(category),
                }
        self._link(session, LabelParent.__table__, ["label_id", "parent_id"], parents)
        self._link(session, LabelAlias.__table__, ["label_id", "alias"], aliases)
        self._link(session, LabelCategory.__table__, ["label_id", "category"], categories)

    @staticmethod
    def _link(
        session: Session, table: Any, keys: list[str], rows: dict[Any, dict[str, Any]]
    ) -> None:
        if rows:
            # Sorted: concurrent writers take row locks in the same order (no deadlocks).
            session.execute(
                _insert(session, table).on_conflict_do_nothing(index_elements=keys),
                [rows[key] for key in sorted(rows)],
            )

    def forget(self) -> None:
        """Drop the cache (after a rolled-back transaction that may have created labels)."""
        with self._lock:
            self._ids.clear()
            self._taxonomies.clear()


def _bind_key(session: Session) -> str:
    return str(session.get_bind().engine.url)


vocabulary = _Vocabulary()
