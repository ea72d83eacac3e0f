"""The query language's AST: frozen dataclasses, one per term, filter and boolean operator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from catalog.query.limits import integer_range
from catalog.query.text import TextCondition
from catalog.store.units import to_x100


@dataclass(frozen=True)
class LabelCondition:
    """A label is present (op None) or its best confidence compares to `value` percent."""

    name: str
    op: str | None = None
    value: float | None = None

    @property
    def range_x100(self) -> tuple[int | None, int | None]:
        """Inclusive (low, high) bounds on the stored confidence_x100; None is unbounded.

        Confidences are stored rounded to hundredths, so the threshold is rounded the same way
        (`to_x100`) and compared at 0.01: `Adult > 98.37744140625` does not select an Adult of
        exactly 98.37744140625 (stored 98.38), and `>=` does.
        """
        if self.op is None or self.value is None:
            return None, None
        return integer_range(self.op, Decimal(to_x100(self.value)))


@dataclass(frozen=True)
class CountCondition:
    """The number of instances (bounding boxes) of a label compares to `value`."""

    name: str
    op: str
    value: int

    @property
    def count_range(self) -> tuple[int | None, int | None]:
        """Inclusive (low, high) bounds on the instance count; None is unbounded."""
        return integer_range(self.op, Decimal(self.value))


@dataclass(frozen=True)
class KindFilter:
    """kind:image or kind:video."""

    kind: str


@dataclass(frozen=True)
class PrefixFilter:
    """Key prefix: within one bucket (prefix:s3://bucket/prefix), within local folders
    (prefix:file:///path), or any key (a relative one also names a folder under the working
    directory, as a path typed in a shell would)."""

    prefix: str
    bucket: str | None = None
    local: bool = False
    # A relative prefix's folder under the working directory, filled in when the query is
    # resolved (parsed queries are cached; the working directory is not part of them).
    folder: str | None = None


@dataclass(frozen=True)
class CategoryFilter:
    """Has any label in a Rekognition category."""

    category: str


@dataclass(frozen=True)
class ModifiedFilter:
    """Last-modified time in [start, end) (UTC); None is an open end."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class SizeFilter:
    """Object size in bytes within [min_bytes, max_bytes]; None is an open end."""

    min_bytes: int | None
    max_bytes: int | None


@dataclass(frozen=True)
class And:
    """Every item holds."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """At least one item holds."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The item does not hold."""

    item: Node


Term = LabelCondition | CountCondition | KindFilter | PrefixFilter | CategoryFilter | TextCondition
Node = Term | ModifiedFilter | SizeFilter | And | Or | Not


def iter_terms(node: Node) -> list[Node]:
    """Every leaf of the tree, in order."""
    if isinstance(node, And | Or):
        return [leaf for item in node.items for leaf in iter_terms(item)]
    if isinstance(node, Not):
        return iter_terms(node.item)
    return [node]


def local_folder(prefix: str) -> str:
    """A relative prefix as the folder it names under the working directory."""
    return str(Path.cwd() / prefix) + ("/" if prefix.endswith("/") else "")
