"""An item's stored text read back: its LINE and WORD rows and who read them, in plain SQL.

Writing text (and the full-text index) is catalog.store.text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from catalog.labelling import BoundingBox, DetectedText, TextResult
from catalog.store.sql import Db, Reader, db_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class TextProvenance:
    """Who read an item's current text."""

    reader: str
    model_version: str | None


_PROVENANCE = (
    "SELECT reader, model_version FROM text_results WHERE media_id = :media_id "
    "ORDER BY id DESC LIMIT 1"
)
_ROWS = (
    'SELECT text, kind, confidence_x100, "left", top, width, height, idx, parent_idx, timestamp_ms '
    "FROM text_detections WHERE media_id = :media_id ORDER BY timestamp_ms, id"
)


def text_provenance(source: Session | Reader | Db, media_id: int) -> TextProvenance | None:
    """Who read the item's current text (None: its text was never read)."""
    row = db_of(source).first(_PROVENANCE, {"media_id": media_id})
    return TextProvenance(row[0], row[1]) if row is not None else None


def load_text(source: Session | Reader | Db, media_id: int) -> TextResult | None:
    """The item's stored text as a TextResult (None when its text was never read)."""
    db = db_of(source)
    provenance = text_provenance(db, media_id)
    if provenance is None:
        return None
    texts = [
        DetectedText(
            text=text,
            kind=kind,
            confidence=confidence_x100 / 100,
            box=BoundingBox(left, top, width, height),
            idx=idx,
            parent_idx=parent_idx,
            timestamp_ms=timestamp_ms,
        )
        for text, kind, confidence_x100, left, top, width, height, idx, parent_idx, timestamp_ms in (
            db.rows(_ROWS, {"media_id": media_id})
        )
    ]
    return TextResult(provenance.reader, provenance.model_version, texts)
