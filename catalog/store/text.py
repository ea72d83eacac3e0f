"""Stored text: an item's LINE and WORD rows with their provenance, written and read back.

Like media.py, nothing here commits: the caller's transaction also holds the labels, so an
item's labels and text change together.

Each LINE's `text_folded` is its words, case- and accent-folded, joined by single spaces
("Café  EXIT!" -> "cafe exit"), so a phrase is a plain substring match on word boundaries.
The full-text index is per item on SQLite: one FTS5 row per media item (rowid = media id) whose
body is its distinct lines separated by LINE_BREAK, a token no phrase can cross, so "newest
items showing X" reads the index in rowid order and stops after a page. PostgreSQL indexes each
LINE row with a GIN `tsvector` index instead (revision 0003 creates both).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, delete, func, insert, select
from sqlalchemy import Text as TextType
from sqlalchemy.orm import Session

from catalog.labelling import DetectedText, TextResult
from catalog.store.runs import add_to_run
from catalog.store.schema import TEXT_LINE, Media, TextDetection, utcnow
from catalog.store.schema import TextResult as TextResultRow
from catalog.store.units import LINE_BREAK, text_words, to_x100

# The SQLite FTS5 table (revision 0003): not ORM-declared, so outside Base.metadata.
TEXT_FTS = Table("text_fts", MetaData(), Column("rowid", Integer), Column("body", TextType))


def remove_text(session: Session, media_id: int) -> None:
    """Delete an item's text rows and text provenance (its content changed or is gone)."""
    session.execute(delete(TextDetection).where(TextDetection.media_id == media_id))
    session.execute(delete(TextResultRow).where(TextResultRow.media_id == media_id))
    if _is_sqlite(session):
        session.execute(delete(TEXT_FTS).where(TEXT_FTS.c.rowid == media_id))


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def fts_body(lines: list[str]) -> str:
    """An item's FTS5 body: its distinct folded lines, LINE_BREAK between them."""
    return f" {LINE_BREAK} ".join(dict.fromkeys(line for line in lines if line))


def _rows(media_id: int, texts: list[DetectedText]) -> list[dict[str, Any]]:
    return [
        {
            "media_id": media_id,
            "kind": text.kind,
            "idx": text.idx,
            "parent_idx": text.parent_idx,
            "timestamp_ms": text.timestamp_ms,
            "text": text.text,
            "text_folded": " ".join(text_words(text.text)),
            "confidence_x100": to_x100(text.confidence),
            "left": text.box.left,
            "top": text.box.top,
            "width": text.box.width,
            "height": text.box.height,
        }
        for text in texts
        if text.text.strip()
    ]


def store_text(
    session: Session,
    media: Media,
    result: TextResult,
    *,
    sync_run_id: int | None,
    reused_from_media_id: int | None = None,
) -> None:
    """Replace the item's text with `result` and record who read it."""
    remove_text(session, media.id)
    rows = _rows(media.id, result.texts)
    if rows:
        session.execute(TextDetection.__table__.insert(), rows)  # type: ignore[attr-defined]
    body = fts_body([row["text_folded"] for row in rows if row["kind"] == TEXT_LINE])
    if body and _is_sqlite(session):
        session.execute(insert(TEXT_FTS).values(rowid=media.id, body=body))
    session.add(
        TextResultRow(
            media_id=media.id,
            reader=result.reader,
            model_version=result.model_version,
            sync_run_id=sync_run_id,
            reused_from_media_id=reused_from_media_id,
            read_at=utcnow(),
        )
    )
    session.flush()


def add_text_billing(session: Session, run_id: int | None, images: int, video_ms: int) -> None:
    """Count what a run paid Rekognition for reading text."""
    add_to_run(session, run_id, billed_text_images=images, billed_text_video_ms=video_ms)


def latest_text_result_id() -> Any:
    """A correlated scalar subquery: the id of Media's newest text result (for outer joins)."""
    return (
        select(func.max(TextResultRow.id))
        .where(TextResultRow.media_id == Media.id)
        .correlate(Media)
        .scalar_subquery()
    )
