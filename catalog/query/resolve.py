"""Name resolution: label names, aliases, parents and categories to label ids, in Python.

The vocabulary is small, so a query's names are looked up once (with their media counts, which
the planner uses to pick the most selective term), and the AST becomes a tree of `LabelTerm`s
and constants that the planner (catalog.query.compile) and the bitmap index evaluate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, union_all
from sqlalchemy.orm import Session, aliased

from catalog.query.filters import local_folder
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
)
from catalog.query.text import TextCondition, TextTerm
from catalog.store.schema import Label, LabelAlias, LabelCategory, LabelHistogram, LabelParent
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


def resolve_names(session: Session, node: Node | None) -> Resolution:
    """Resolve every label (by name, alias or parent) and category the query names."""
    terms = iter_terms(node) if node is not None else []
    wanted = list(
        dict.fromkeys(fold(t.name) for t in terms if isinstance(t, LabelCondition | CountCondition))
    )
    categories = list(
        dict.fromkeys(fold(t.category) for t in terms if isinstance(t, CategoryFilter))
    )
    connection = session.connection()  # Core execution: no ORM overhead on the hot path
    labels: dict[str, set[int]] = {name: set() for name in wanted}
    names: dict[int, str] = {}
    if wanted:
        for label_id, name, folded in connection.execute(_names_stmt(), {"wanted": wanted}):
            labels[folded].add(label_id)
            names[label_id] = name
    cats: dict[str, set[int]] = {name: set() for name in categories}
    if categories:
        for label_id, folded in connection.execute(_categories_stmt(), {"wanted": categories}):
            cats[folded].add(label_id)
    counts: dict[int, int] = {}
    hists: dict[int, dict[int, int]] = {}
    estimated = sorted(set(names).union(*cats.values()))
    if estimated:
        # The histogram's bins add up to label_stats.media_count: one query gives both.
        for label_id, bin_, count in connection.execute(_histograms_stmt(), {"ids": estimated}):
            hists.setdefault(label_id, {})[bin_] = count
            counts[label_id] = counts.get(label_id, 0) + count
    return Resolution(
        labels={name: tuple(sorted(v)) for name, v in labels.items()},
        categories={name: tuple(sorted(v)) for name, v in cats.items()},
        names=names,
        media_counts=counts,
        histograms=hists,
        dialect=session.get_bind().dialect.name,
    )


# Built once (constructing a statement costs more than running it); the names are parameters.


@cache
def _names_stmt() -> Any:
    """(label_id, name, folded) of labels whose name, alias or parent folds to one of :wanted."""
    wanted: Any = bindparam("wanted", expanding=True)
    by_name = select(Label.id, Label.name, Label.name_folded.label("folded")).where(
        Label.name_folded.in_(wanted)
    )
    by_alias = (
        select(LabelAlias.label_id, Label.name, LabelAlias.alias_folded.label("folded"))
        .join(Label, Label.id == LabelAlias.label_id)
        .where(LabelAlias.alias_folded.in_(wanted))
    )
    parent = aliased(Label)
    by_parent = (
        select(LabelParent.label_id, Label.name, parent.name_folded.label("folded"))
        .join(parent, parent.id == LabelParent.parent_id)
        .join(Label, Label.id == LabelParent.label_id)
        .where(parent.name_folded.in_(wanted))
    )
    return union_all(by_name, by_alias, by_parent)


@cache
def _categories_stmt() -> Any:
    wanted: Any = bindparam("wanted", expanding=True)
    return select(LabelCategory.label_id, LabelCategory.category_folded).where(
        LabelCategory.category_folded.in_(wanted)
    )


@cache
def _histograms_stmt() -> Any:
    ids: Any = bindparam("ids", expanding=True)
    return select(LabelHistogram.label_id, LabelHistogram.bin, LabelHistogram.media_count).where(
        LabelHistogram.label_id.in_(ids)
    )


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
