"""What a sync asks of each media item: labels, and optionally the text it shows."""

from __future__ import annotations

from collections.abc import Iterable

from catalog.errors import UsageError

LABELS = "labels"
TEXT = "text"
FEATURES = (LABELS, TEXT)
DEFAULT_FEATURES: frozenset[str] = frozenset({LABELS})


def parse_features(value: str | Iterable[str] | None) -> frozenset[str]:
    """`labels,text` (or a list of names) as a feature set; UsageError for unknown names.

    Labels are always read: text is read in addition to them (None or "" means labels only).
    """
    if value is None:
        return DEFAULT_FEATURES
    names = value.split(",") if isinstance(value, str) else list(value)
    chosen = {name.strip().lower() for name in names if name.strip()}
    unknown = sorted(chosen - set(FEATURES))
    if unknown:
        raise UsageError(
            f"unknown feature '{unknown[0]}'; use a comma-separated list of: {', '.join(FEATURES)}"
        )
    if chosen and LABELS not in chosen:
        raise UsageError("--features needs labels: text is read in addition to labels")
    return frozenset(chosen) or DEFAULT_FEATURES


def format_features(features: Iterable[str]) -> str:
    """A feature set as `labels,text`, in the canonical order."""
    chosen = set(features)
    return ",".join(name for name in FEATURES if name in chosen)
