"""The text-in-images tables: who read a media item's text, and its lines and words."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.store.schema.base import Base, UTCDateTime, utcnow

# Text detection kinds, as Rekognition names them.
TEXT_LINE = "LINE"
TEXT_WORD = "WORD"


class TextResult(Base):
    """Provenance of one media item's text: which reader read it, with what, in which run."""

    __tablename__ = "text_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    reader: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str | None] = mapped_column(String(64))
    sync_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("sync_runs.id", ondelete="SET NULL"), index=True
    )
    reused_from_media_id: Mapped[int | None] = mapped_column(Integer)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TextDetection(Base):
    """One LINE or WORD of text on a media item (at a moment, for video), with its box.

    `text_folded` is its folded words joined by spaces (catalog.store.text). The full-text index
    over LINE rows is created by revision 0003: on SQLite the FTS5 table `text_fts` (one row per
    media item, written with the rows), on PostgreSQL a GIN index on its `simple` tsvector.
    """

    __tablename__ = "text_detections"
    __table_args__ = (Index("ix_text_detections_media_id", "media_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(4))
    idx: Mapped[int] = mapped_column(Integer)  # Rekognition's Id within the result (or moment)
    parent_idx: Mapped[int | None] = mapped_column(Integer)  # a WORD's LINE
    timestamp_ms: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)
    text_folded: Mapped[str] = mapped_column(Text)
    confidence_x100: Mapped[int] = mapped_column(Integer)
    left: Mapped[float] = mapped_column(Float)
    top: Mapped[float] = mapped_column(Float)
    width: Mapped[float] = mapped_column(Float)
    height: Mapped[float] = mapped_column(Float)
