"""The label vocabulary as users see it: names, aliases and media counts."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalog.store.sql import Db, Reader, db_of
from catalog.store.units import fold

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Every label some media carry with its label_stats figures, most common first, then by name
# (`catalog labels`; `catalog stats` shows the first rows of it).
LABELS_BY_MEDIA_COUNT = (
    "SELECT l.id AS label_id, l.name AS name, s.media_count AS media_count, "
    "s.image_count AS image_count, s.video_count AS video_count, "
    "s.detection_count AS detection_count, s.confidence_sum_x100 AS confidence_sum_x100 "
    "FROM labels l JOIN label_stats s ON s.label_id = l.id WHERE s.media_count > 0 "
    "ORDER BY s.media_count DESC, l.name"
)
_ALIASES = "SELECT label_id, alias FROM label_aliases ORDER BY alias"


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


def list_labels(source: Session | Reader | Db, pattern: str | None = None) -> list[LabelCount]:
    """The labels media carry, most common first; `pattern` filters names (substring or glob).

    A pattern matches a label's name or any of its aliases, case-insensitively.
    """
    db = db_of(source)
    rows = db.rows(LABELS_BY_MEDIA_COUNT)
    aliases: dict[int, list[str]] = defaultdict(list)
    for label_id, alias in db.rows(_ALIASES):
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
            name=name,
            media_count=media,
            image_count=images,
            video_count=videos,
            mean_confidence=round(confidence_sum_x100 / media / 100, 2),
            aliases=tuple(aliases.get(label_id, ())),
        )
        for label_id, name, media, images, videos, _, confidence_sum_x100 in rows
        if keep(name, aliases.get(label_id, []))
    ]
