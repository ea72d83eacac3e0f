"""Stored units and names: confidence hundredths, histogram bins, folded names and text, upserts."""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Moments of one label closer than this are one segment (Rekognition samples about every 0.5-1 s).
SEGMENT_GAP_MS = 1500


def to_x100(confidence: float) -> int:
    """Percent (0-100) as stored integer hundredths."""
    return max(0, min(10_000, round(confidence * 100)))


def histogram_bin(confidence_x100: int) -> int:
    """The 10-point bin (0..9) a stored confidence falls in; 100% goes in the top bin."""
    return min(9, confidence_x100 // 1000)


def fold(name: str) -> str:
    """Case-folded form of a label, alias or category name for case-insensitive lookups."""
    return " ".join(name.casefold().split())


# Between two lines in an item's FTS5 body: a phrase never runs from one line into the next.
LINE_BREAK = "zzlinebreakzz"
_WORD_RE = re.compile(r"[^\W_]+")


def fold_text(text: str) -> str:
    """Case- and accent-folded text ("Café  EXIT" -> "cafe exit")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.split())


def text_words(text: str) -> list[str]:
    """The folded words of a text, in order (letters and digits; punctuation separates)."""
    return [w for w in _WORD_RE.findall(fold_text(text)) if w != LINE_BREAK]


def _insert(session: Session, table: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)
