"""The label vocabulary as users see it: names, aliases and media counts."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.store.schema import LabelAlias
from catalog.store.summaries import labels_by_media_count


@dataclass(frozen=True)
class LabelCount:
    """One label of the vocabulary and how many media carry it."""

    name: str
    media_count: int
    image_count: int
    video_count: int
    mean_confidence: float
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of a vocabulary row."""
        return {
            "label": self.name,
            "media_count": self.media_count,
            "image_count": self.image_count,
            "video_count": self.video_count,
            "mean_confidence": self.mean_confidence,
            "aliases": list(self.aliases),
        }


# -- vocabulary ------------------------------------------------------------------------------------


def list_labels(session: Session, pattern: str | None = None) -> list[LabelCount]:
    """The labels media carry, most common first; `pattern` filters names (substring or glob).

    A pattern matches a label's name or any of its aliases, case-insensitively.
    """
    from catalog.store.units import fold

    rows = session.execute(labels_by_media_count()).all()
    aliases: dict[int, list[str]] = defaultdict(list)
    for label_id, alias in session.execute(
        select(LabelAlias.label_id, LabelAlias.alias).order_by(LabelAlias.alias)
    ):
        aliases[label_id].append(alias)
    wanted = fold(pattern) if pattern else ""
    is_glob = any(c in wanted for c in "*?[")

    def keep(name: str, label_aliases: list[str]) -> bool:
        if not wanted:
            return True
        for candidate in (name, *label_aliases):
            folded = fold(candidate)
            if fnmatch.fnmatchcase(folded, wanted) if is_glob else wanted in folded:
                return True
        return False

    return [
        LabelCount(
            name=row.name,
            media_count=row.media_count,
            image_count=row.image_count,
            video_count=row.video_count,
            mean_confidence=round(row.confidence_sum_x100 / row.media_count / 100, 2),
            aliases=tuple(aliases.get(row.label_id, ())),
        )
        for row in rows
        if keep(row.name, aliases.get(row.label_id, []))
    ]
