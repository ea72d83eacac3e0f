"""The catalogue schema: typed SQLAlchemy 2.0 ORM classes over a naming-conventioned metadata.

Confidences are stored as integer hundredths of a percent (`confidence_x100`, 0..10000): compact
index keys, exact sums in the summary tables. Rekognition's own percent is `confidence_x100 / 100`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
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

from catalog.uris import format_uri

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
    # The same for text detection (DetectText images, text-job video milliseconds).
    billed_text_images: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    billed_text_video_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


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
    # The video's text-detection job (with --features text), stored the same way.
    text_job_id: Mapped[str | None] = mapped_column(String(64))
    # Work claims shared by several processes (leases expire when a worker dies).
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # S3 event sequencer of the last event applied (drops stale, out-of-order events).
    sequencer: Mapped[str | None] = mapped_column(String(64))

    @property
    def uri(self) -> str:
        """The canonical s3:// or file:// URI."""
        return format_uri(self.source, self.bucket, self.key)


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


class LabelTaxonomy(Base):
    """A label's parents (in order), aliases and categories exactly as one response gave them.

    Rekognition's taxonomy belongs to a label model version (`LabelModelVersion`; '' when a
    response names none), and responses of one version still differ (an older SDK drops Aliases
    and Categories; 2.0 video moments list the same parents in different orders), so each
    distinct content is its own row, keyed by (label, model version, digest of the content).
    A detection points at the row its own response gave.
    """

    __tablename__ = "label_taxonomies"
    __table_args__ = (UniqueConstraint("label_id", "model_version", "digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"))
    model_version: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of [parents, aliases, categories]
    parents: Mapped[list[str]] = mapped_column(JSON)
    aliases: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)


# label_parents, label_aliases and label_categories hold what every response (of every model
# version) taught about a label: search by parent, alias and category, and `catalog labels`.


class LabelParent(Base):
    """A label's ancestor, as Rekognition lists it (all ancestors, not only the direct one)."""

    __tablename__ = "label_parents"
    __table_args__ = (Index("ix_label_parents_parent_id", "parent_id"), WITHOUT_ROWID)

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
    # The label_taxonomies row this item's response gave (a video: the label's first moment).
    # None for detections stored before revision 0002. No foreign key: adding one would rebuild
    # this, the largest table, on SQLite; taxonomy rows are never deleted.
    taxonomy_id: Mapped[int | None] = mapped_column(Integer)


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


# -- alerts: saved searches that notify ----------------------------------------------------------


class AlertRule(Base):
    """A saved search that notifies its targets when newly labelled media match it."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Random and never reused: event ids built from it stay unique across remove + add.
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    query: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertTarget(Base):
    """Where one rule's alerts go: sns:ARN, sqs:URL, an https:// webhook or file:PATH."""

    __tablename__ = "alert_targets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True
    )
    target: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text)  # webhooks: the HMAC-SHA256 key


class AlertMember(Base):
    """A media item that matched a rule under its latest evaluated labelling result."""

    __tablename__ = "alert_members"
    __table_args__ = (Index("ix_alert_members_media_id", "media_id"), WITHOUT_ROWID)

    rule_id: Mapped[int] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True
    )
    media_id: Mapped[int] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), primary_key=True
    )


class AlertEvaluation(Base):
    """A committed labelling result whose rules are still to be evaluated (written with it)."""

    __tablename__ = "alert_evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    label_result_id: Mapped[int | None] = mapped_column(Integer)
    committed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertOutbox(Base):
    """One message for one target, kept until it is delivered (retried with backoff)."""

    __tablename__ = "alert_outbox"
    __table_args__ = (
        UniqueConstraint("event_id", "target"),
        Index("ix_alert_outbox_delivered_at_next_attempt_at", "delivered_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100))
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True
    )
    target: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)  # the JSON body, exactly as sent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
