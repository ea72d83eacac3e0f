"""The catalogue schema: typed SQLAlchemy 2.0 ORM classes over a naming-conventioned metadata.

One module per concern (base, catalogue, alerts, text, index); importing this package registers
every table on `Base.metadata`, which Alembic compares the migrations against.
"""

from __future__ import annotations

from catalog.store.schema.alerts import (
    AlertEvaluation,
    AlertMember,
    AlertOutbox,
    AlertRule,
    AlertTarget,
)
from catalog.store.schema.base import NAMING_CONVENTION, WITHOUT_ROWID, Base, UTCDateTime, utcnow
from catalog.store.schema.catalogue import (
    Detection,
    Instance,
    Label,
    LabelAlias,
    LabelCategory,
    LabelHistogram,
    LabelParent,
    LabelResult,
    LabelStat,
    LabelTaxonomy,
    Media,
    MediaTotal,
    SyncRun,
    VideoMoment,
    VideoSegment,
)
from catalog.store.schema.index import BitmapChange, BitmapState, MediaBitmap
from catalog.store.schema.text import TEXT_LINE, TEXT_WORD, TextDetection, TextResult
from catalog.store.values import (
    KIND_IMAGE,
    KIND_VIDEO,
    KINDS,
    SOURCE_FILE,
    SOURCE_S3,
    STATUS_DELETED,
    STATUS_FAILED,
    STATUS_LABELLED,
    STATUS_PENDING,
    STATUSES,
)

__all__ = [
    "KINDS",
    "KIND_IMAGE",
    "KIND_VIDEO",
    "NAMING_CONVENTION",
    "SOURCE_FILE",
    "SOURCE_S3",
    "STATUSES",
    "STATUS_DELETED",
    "STATUS_FAILED",
    "STATUS_LABELLED",
    "STATUS_PENDING",
    "TEXT_LINE",
    "TEXT_WORD",
    "WITHOUT_ROWID",
    "AlertEvaluation",
    "AlertMember",
    "AlertOutbox",
    "AlertRule",
    "AlertTarget",
    "Base",
    "BitmapChange",
    "BitmapState",
    "Detection",
    "Instance",
    "Label",
    "LabelAlias",
    "LabelCategory",
    "LabelHistogram",
    "LabelParent",
    "LabelResult",
    "LabelStat",
    "LabelTaxonomy",
    "Media",
    "MediaBitmap",
    "MediaTotal",
    "SyncRun",
    "TextDetection",
    "TextResult",
    "UTCDateTime",
    "VideoMoment",
    "VideoSegment",
    "utcnow",
]
