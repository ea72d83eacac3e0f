"""The catalogue schema: typed SQLAlchemy 2.0 ORM classes over a naming-conventioned metadata.

Confidences are stored as integer hundredths of a percent (`confidence_x100`, 0..10000): compact
index keys, exact sums in the summary tables. Rekognition's own percent is `confidence_x100 / 100`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Media kinds and statuses, as stored.
KIND_IMAGE = "image"
KIND_VIDEO = "video"
STATUS_PENDING = "pending"
STATUS_LABELLED = "labelled"
STATUS_FAILED = "failed"
STATUS_DELETED = "deleted"
STATUSES = (STATUS_PENDING, STATUS_LABELLED, STATUS_FAILED, STATUS_DELETED)
KINDS = (KIND_IMAGE, KIND_VIDEO)

SOURCE_S3 = "s3"
SOURCE_FILE = "file"

# Tables that SQLite should store clustered by their primary key (no hidden rowid).
WITHOUT_ROWID: dict[str, Any] = {"sqlite_with_rowid": False}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names for Alembic."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SyncRun(Base):
    """One run of `catalog sync` (or one worker's session): what it saw and did."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")
    labeller: Mapped[str] = mapped_column(String(32), default="rekognition")
    listed: Mapped[int] = mapped_column(Integer, default=0)
    labelled: Mapped[int] = mapped_column(Integer, default=0)
    reused: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    # What the run paid Rekognition for: images analysed and video milliseconds analysed.
    billed_images: Mapped[int] = mapped_column(Integer, default=0)
    billed_video_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class Media(Base):
    """One image or video object, identified by (source, bucket, key)."""

    __tablename__ = "media"
    __table_args__ = (
        UniqueConstraint("source", "bucket", "key"),
        Index("ix_media_etag_size", "etag", "size_bytes"),
        Index("ix_media_status_kind", "status", "kind"),
        Index("ix_media_last_modified_at", "last_modified_at"),
        Index("ix_media_job_id", "job_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(8), default=SOURCE_S3)
    bucket: Mapped[str] = mapped_column(String(255), default="")
    key: Mapped[str] = mapped_column(Text)
    version_id: Mapped[str | None] = mapped_column(String(1024))
    etag: Mapped[str | None] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    last_modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    storage_class: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10), default=STATUS_PENDING)
    error_code: Mapped[str | None] = mapped_column(String(128))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    labelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Frame size (images and videos) and video metadata as Rekognition or the probe reports it.
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    frame_rate: Mapped[float | None] = mapped_column(Float)
    codec: Mapped[str | None] = mapped_column(String(64))
    container_format: Mapped[str | None] = mapped_column(String(64))
    # Asynchronous video job: stored the moment it starts so an interrupted sync resumes it.
    job_id: Mapped[str | None] = mapped_column(String(64))
    job_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    job_key: Mapped[str | None] = mapped_column(Text)  # the key labelled (a transcoded copy)
    # Work claims shared by several processes (leases expire when a worker dies).
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # S3 event sequencer of the last event applied (drops stale, out-of-order events).
    sequencer: Mapped[str | None] = mapped_column(String(64))

    @property
    def uri(self) -> str:
        """The canonical s3:// or file:// URI."""
        if self.source == SOURCE_FILE:
            return f"file://{self.key}"
        return f"s3://{self.bucket}/{self.key}"


class LabelResult(Base):
    """Provenance of one labelling result: who labelled the media, with what, in which run."""

    __tablename__ = "label_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    labeller: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str | None] = mapped_column(String(64))
    min_confidence: Mapped[float] = mapped_column(Float)
    max_labels: Mapped[int | None] = mapped_column(Integer)
    sync_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("sync_runs.id", ondelete="SET NULL"), index=True
    )
    reused_from_media_id: Mapped[int | None] = mapped_column(Integer)
    labelled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Label(Base):
    """One label name in the vocabulary (as Rekognition spells it)."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    name_folded: Mapped[str] = mapped_column(String(255), index=True)


class LabelParent(Base):
    """A label's ancestor, as Rekognition lists it (all ancestors, not only the direct one)."""

    __tablename__ = "label_parents"
    __table_args__ = WITHOUT_ROWID

    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("labels.id"), primary_key=True)


class LabelAlias(Base):
    """Another name Rekognition gives a label (Automobile for Car)."""

    __tablename__ = "label_aliases"
    __table_args__ = (Index("ix_label_aliases_alias_folded", "alias_folded"), WITHOUT_ROWID)

    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(255), primary_key=True)
    alias_folded: Mapped[str] = mapped_column(String(255))


class LabelCategory(Base):
    """A category a label belongs to ("Vehicles and Automotive")."""

    __tablename__ = "label_categories"
    __table_args__ = (
        Index("ix_label_categories_category_folded", "category_folded"),
        WITHOUT_ROWID,
    )

    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"), primary_key=True)
    category: Mapped[str] = mapped_column(String(255), primary_key=True)
    category_folded: Mapped[str] = mapped_column(String(255))


class Detection(Base):
    """One label on one media item: its best confidence and its instance count.

    Clustered by (label_id, media_id) so "label X, newest first" pages and EXISTS probes are
    primary-key range scans; (label_id, confidence) serves thresholds and counts; (media_id)
    serves one item's labels, re-labelling and deletion. For a video, the confidence is the best
    over its moments and `instance_count` the most boxes seen in one moment.
    """

    __tablename__ = "detections"
    __table_args__ = (
        Index("ix_detections_label_id_confidence", "label_id", "confidence_x100"),
        Index("ix_detections_media_id", "media_id"),
        WITHOUT_ROWID,
    )

    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"), primary_key=True)
    media_id: Mapped[int] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), primary_key=True
    )
    confidence_x100: Mapped[int] = mapped_column(Integer)
    instance_count: Mapped[int] = mapped_column(Integer, default=0)
    # Individual detections counted for statistics: boxes (or 1) for images, moments for video.
    detection_count: Mapped[int] = mapped_column(Integer, default=1)


class Instance(Base):
    """One bounding box of a label on a media item (at a moment, for video)."""

    __tablename__ = "instances"
    __table_args__ = WITHOUT_ROWID

    media_id: Mapped[int] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    timestamp_ms: Mapped[int | None] = mapped_column(BigInteger)
    confidence_x100: Mapped[int] = mapped_column(Integer)
    left: Mapped[float] = mapped_column(Float)
    top: Mapped[float] = mapped_column(Float)
    width: Mapped[float] = mapped_column(Float)
    height: Mapped[float] = mapped_column(Float)


class VideoMoment(Base):
    """A label seen at one timestamp of a video."""

    __tablename__ = "video_moments"
    __table_args__ = WITHOUT_ROWID

    media_id: Mapped[int] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"), primary_key=True)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    confidence_x100: Mapped[int] = mapped_column(Integer)
    instance_count: Mapped[int] = mapped_column(Integer, default=0)


class VideoSegment(Base):
    """Consecutive moments of one label in a video merged into a start-end span."""

    __tablename__ = "video_segments"
    __table_args__ = WITHOUT_ROWID

    media_id: Mapped[int] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"), primary_key=True)
    start_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    end_ms: Mapped[int] = mapped_column(BigInteger)
    confidence_x100: Mapped[int] = mapped_column(Integer)


class LabelStat(Base):
    """Per-label summary kept exact in the same transaction as every write."""

    __tablename__ = "label_stats"

    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"), primary_key=True)
    media_count: Mapped[int] = mapped_column(Integer, default=0)
    image_count: Mapped[int] = mapped_column(Integer, default=0)
    video_count: Mapped[int] = mapped_column(Integer, default=0)
    detection_count: Mapped[int] = mapped_column(BigInteger, default=0)
    confidence_sum_x100: Mapped[int] = mapped_column(BigInteger, default=0)


class LabelHistogram(Base):
    """Per-label confidence histogram in 10-point bins (bin 9 holds 90..100)."""

    __tablename__ = "label_histograms"
    __table_args__ = WITHOUT_ROWID

    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"), primary_key=True)
    bin: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    media_count: Mapped[int] = mapped_column(Integer, default=0)


class MediaTotal(Base):
    """Media counts by (kind, status), kept exact on every status change."""

    __tablename__ = "media_totals"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), primary_key=True)
    media_count: Mapped[int] = mapped_column(Integer, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    duration_ms: Mapped[int] = mapped_column(BigInteger, default=0)


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
