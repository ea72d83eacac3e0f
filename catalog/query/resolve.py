"""Name resolution: label names, aliases, parents and categories to label ids, in Python.

The vocabulary is small, so a query's names are looked up once (with their media counts, which
the planner uses to pick the most selective term), and the AST becomes a tree of `LabelTerm`s
and constants that the planner (catalog.query.compile) and the bitmap index evaluate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from catalog.query.nodes import (
    And,
    CategoryFilter,
    CountCondition,
    LabelCondition,
    Node,
    Not,
    Or,
    PrefixFilter,
    iter_terms,
    local_folder,
)
from catalog.query.text import TextCondition, TextTerm
from catalog.store.sql import Db
from catalog.store.units import fold, histogram_bin


@dataclass(frozen=True)
class Resolution:
    """Label and category names of one query resolved against the catalogue's vocabulary."""

    labels: Mapping[str, tuple[int, ...]]  # folded name -> label ids (name, alias or parent)
    categories: Mapping[str, tuple[int, ...]]  # folded category -> label ids
    names: Mapping[int, str]  # label id -> the label's own name
    media_counts: Mapping[int, int] = field(default_factory=dict)
    histograms: Mapping[int, Mapping[int, int]] = field(default_factory=dict)
    dialect: str = "sqlite"  # whose full-text index answers text: terms

    @property
    def unknown_labels(self) -> list[str]:
        """Folded label names that match nothing."""
        return [name for name, ids in self.labels.items() if not ids]

    @property
    def unknown_categories(self) -> list[str]:
        """Folded category names that match nothing."""
        return [name for name, ids in self.categories.items() if not ids]

    def estimate(self, label_id: int, low: int | None, field_name: str) -> int:
        """Estimated media with this label (and, for confidence, at or above `low`)."""
        total = self.media_counts.get(label_id, 0)
        if field_name != "confidence" or not low:
            return total
        bins = self.histograms.get(label_id)
        if not bins:
            return total
        first = histogram_bin(low)
        return sum(n for b, n in bins.items() if b >= first)


def resolve_names(db: Db, node: Node | None) -> Resolution:
    """Resolve every label (by name, alias or parent) and category the query names."""
    terms = iter_terms(node) if node is not None else []
    wanted = list(
        dict.fromkeys(fold(t.name) for t in terms if isinstance(t, LabelCondition | CountCondition))
    )
    categories = list(
        dict.fromkeys(fold(t.category) for t in terms if isinstance(t, CategoryFilter))
    )
    labels: dict[str, set[int]] = {name: set() for name in wanted}
    names: dict[int, str] = {}
    if wanted:
        for label_id, name, folded in db.rows(_NAMES, {"wanted": wanted}):
            labels[folded].add(label_id)
            names[label_id] = name
    cats: dict[str, set[int]] = {name: set() for name in categories}
    if categories:
        for label_id, folded in db.rows(_CATEGORIES, {"wanted": categories}):
            cats[folded].add(label_id)
    counts: dict[int, int] = {}
    hists: dict[int, dict[int, int]] = {}
    estimated = sorted(set(names).union(*cats.values()))
    if estimated:
        # The histogram's bins add up to label_stats.media_count: one query gives both.
        for label_id, bin_, count in db.rows(_HISTOGRAMS, {"ids": estimated}):
            hists.setdefault(label_id, {})[bin_] = count
            counts[label_id] = counts.get(label_id, 0) + count
    return Resolution(
        labels={name: tuple(sorted(v)) for name, v in labels.items()},
        categories={name: tuple(sorted(v)) for name, v in cats.items()},
        names=names,
        media_counts=counts,
        histograms=hists,
        dialect=db.dialect,
    )


# (label_id, name, folded) of labels whose name, alias or parent folds to one of :wanted.
_NAMES = """
SELECT id, name, name_folded FROM labels WHERE name_folded IN (:wanted)
UNION ALL
SELECT a.label_id, l.name, a.alias_folded FROM label_aliases a JOIN labels l ON l.id = a.label_id
WHERE a.alias_folded IN (:wanted)
UNION ALL
SELECT lp.label_id, l.name, p.name_folded FROM label_parents lp
JOIN labels p ON p.id = lp.parent_id JOIN labels l ON l.id = lp.label_id
WHERE p.name_folded IN (:wanted)
"""
_CATEGORIES = (
    "SELECT label_id, category_folded FROM label_categories WHERE category_folded IN (:wanted)"
)
_HISTOGRAMS = "SELECT label_id, bin, media_count FROM label_histograms WHERE label_id IN (:ids)"


# -- internal resolved terms -----------------------------------------------------------------------


@dataclass(frozen=True)
class LabelTerm:
    """One label id with an inclusive range on confidence_x100 or on the instance count."""

    label_id: int
    field_name: str  # "confidence" or "count"
    low: int | None
    high: int | None


@dataclass(frozen=True)
class Const:
    """A subtree folded to always true or always false."""

    value: bool


TRUE = Const(True)
FALSE = Const(False)

Resolved = Any  # Node with LabelCondition/CountCondition/CategoryFilter replaced by LabelTerm/Const


def node_range(term: LabelCondition | CountCondition) -> tuple[str, int | None, int | None]:
    """The field a label term compares and its inclusive bounds."""
    if isinstance(term, CountCondition):
        low, high = term.count_range
        return "count", low, high
    low, high = term.range_x100
    return "confidence", low, high


def resolve(node: Node, res: Resolution) -> Resolved:
    """Replace names by label ids and fold constants (unknown names match nothing)."""
    if isinstance(node, LabelCondition | CountCondition):
        field_name, low, high = node_range(node)
        if low is not None and high is not None and low > high:
            return FALSE
        ids = res.labels.get(fold(node.name), ())
        terms = [LabelTerm(label_id, field_name, low, high) for label_id in ids]
        return make_or(terms)
    if isinstance(node, TextCondition):
        term = TextTerm(node, res.dialect)
        return FALSE if term.is_empty else term
    if isinstance(node, CategoryFilter):
        ids = res.categories.get(fold(node.category), ())
        return make_or([LabelTerm(label_id, "confidence", None, None) for label_id in ids])
    if isinstance(node, And):
        return make_and([resolve(item, res) for item in node.items])
    if isinstance(node, Or):
        return make_or([resolve(item, res) for item in node.items])
    if isinstance(node, PrefixFilter) and node.bucket is None and not node.local:
        if node.prefix and not node.prefix.startswith("/"):
            return replace(node, folder=local_folder(node.prefix))
        return node
    if isinstance(node, Not):
        inner = resolve(node.item, res)
        if isinstance(inner, Const):
            return Const(not inner.value)
        return Not(inner)
    return node


def make_and(items: Sequence[Resolved]) -> Resolved:
    """AND of resolved items, flattened, with constants folded."""
    flat: list[Resolved] = []
    for item in items:
        if item == FALSE:
            return FALSE
        if item == TRUE:
            continue
        flat.extend(item.items if isinstance(item, And) else (item,))
    if not flat:
        return TRUE
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def make_or(items: Sequence[Resolved]) -> Resolved:
    """OR of resolved items, flattened and de-duplicated, with constants folded."""
    flat: list[Resolved] = []
    for item in items:
        if item == TRUE:
            return TRUE
        if item == FALSE:
            continue
        flat.extend(item.items if isinstance(item, Or) else (item,))
    flat = list(dict.fromkeys(flat))
    if not flat:
        return FALSE
    return flat[0] if len(flat) == 1 else Or(tuple(flat))
