"""The catalogue's tables: sync runs, media, labelling results, the vocabulary, detections and
the summaries kept exact with every write.

Confidences are stored as integer hundredths of a percent (`confidence_x100`, 0..10000): compact
index keys, exact sums in the summary tables. Rekognition's own percent is `confidence_x100 / 100`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from catalog.store.schema.base import WITHOUT_ROWID, Base, UTCDateTime, utcnow
from catalog.store.values import SOURCE_S3, STATUS_PENDING
from catalog.uris import format_uri


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
