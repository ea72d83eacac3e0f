"""The media-id bitmap index's tables (catalog.store.bitmaps reads and writes them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, Text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.store.schema.base import Base, UTCDateTime, utcnow


class MediaBitmap(Base):
    """One persisted compressed bitmap (or bit-sliced integers) of the media-id index.

    Rows of one `generation` were built together from one consistent read; a reader that finds
    another generation than the one it started with knows the index was rebuilt under it.
    """

    __tablename__ = "media_bitmaps"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class BitmapState(Base):
    """The index's one state row: which generation of `media_bitmaps` is current."""

    __tablename__ = "bitmap_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(Integer)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BitmapChange(Base):
    """A media item written since the index was built, recorded in the same transaction.

    Readers re-read these items from the tables and patch the bitmaps; `version` grows on each
    write, so a rebuild forgets only the changes it has seen.
    """

    __tablename__ = "bitmap_changes"

    media_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
