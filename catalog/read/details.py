"""Reading one media item's stored labels, and the list of failed media."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from catalog.errors import NotFoundError
from catalog.store.sql import Db, Reader, db_of
from catalog.store.taxonomy import detection_taxonomy
from catalog.store.text_rows import load_text
from catalog.store.values import KIND_VIDEO, STATUS_DELETED, STATUS_FAILED
from catalog.uris import MediaURI, format_uri, parse_uri

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass
class InstanceDetail:
    """One bounding box."""

    left: float
    top: float
    width: float
    height: float
    confidence: float
    timestamp_ms: int | None = None

    def to_dict(self) -> dict[str, object]:
        """The JSON shape: bounding_box, confidence and (videos) timestamp_ms."""
        return {"bounding_box": _box(self), "confidence": self.confidence, **_at(self.timestamp_ms)}


@dataclass
class LabelDetail:
    """One label on the item."""

    name: str
    confidence: float
    parents: list[str]
    aliases: list[str]
    categories: list[str]
    instances: list[InstanceDetail] = field(default_factory=list)
    timestamps_ms: list[int] = field(default_factory=list)
    segments: list[tuple[int, int, float]] = field(default_factory=list)

    def to_dict(self, is_video: bool) -> dict[str, object]:
        """The JSON shape; a video's label also has its moments and segments."""
        data: dict[str, object] = {
            "name": self.name,
            "confidence": self.confidence,
            "parents": self.parents,
            "aliases": self.aliases,
            "categories": self.categories,
            "instances": [instance.to_dict() for instance in self.instances],
        }
        if is_video:
            data["timestamps_ms"] = self.timestamps_ms
            data["segments"] = [
                {"start_ms": s, "end_ms": e, "confidence": c} for s, e, c in self.segments
            ]
        return data


@dataclass
class TextDetail:
    """One LINE or WORD of text on the item (at a moment, for video)."""

    text: str
    kind: str
    confidence: float
    left: float
    top: float
    width: float
    height: float
    timestamp_ms: int | None = None

    def to_dict(self) -> dict[str, object]:
        """The JSON shape: text, type, confidence, bounding_box and (videos) timestamp_ms."""
        return {
            "text": self.text,
            "type": self.kind,
            "confidence": self.confidence,
            "bounding_box": _box(self),
            **_at(self.timestamp_ms),
        }


def _box(item: InstanceDetail | TextDetail) -> dict[str, float]:
    """The JSON bounding box of a label instance or a line of text (ratios of the frame)."""
    return {"left": item.left, "top": item.top, "width": item.width, "height": item.height}


def _at(timestamp_ms: int | None) -> dict[str, int]:
    """A video moment's `timestamp_ms` to spread into its JSON object; nothing for an image."""
    return {} if timestamp_ms is None else {"timestamp_ms": timestamp_ms}


@dataclass
class MediaDetail:
    """Everything the catalogue holds about one media item."""

    uri: str
    kind: str
    status: str
    size_bytes: int
    etag: str | None
    last_modified_at: datetime | None
    storage_class: str | None
    labelled_at: datetime | None
    error_code: str | None
    error_message: str | None
    width: int | None
    height: int | None
    duration_ms: int | None
    codec: str | None
    container_format: str | None
    frame_rate: float | None
    labeller: str | None
    model_version: str | None
    min_confidence: float | None
    labels: list[LabelDetail]
    # The text it shows (LINEs and WORDs); None when its text was never read.
    text: list[TextDetail] | None = None
    text_reader: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of `catalog show --format json`."""
        data: dict[str, object] = {
            "uri": self.uri,
            "kind": self.kind,
            "status": self.status,
            "size_bytes": self.size_bytes,
            "etag": self.etag,
            "last_modified": self.last_modified_at,
            "storage_class": self.storage_class,
            "labelled_at": self.labelled_at,
            "width": self.width,
            "height": self.height,
            "labeller": self.labeller,
            "model_version": self.model_version,
            "min_confidence": self.min_confidence,
            "error": {"code": self.error_code, "message": self.error_message}
            if self.error_code
            else None,
            "labels": [label.to_dict(self.kind == "video") for label in self.labels],
        }
        data["text"] = [t.to_dict() for t in self.text] if self.text is not None else None
        if self.kind == "video":
            data["video"] = {
                "duration_ms": self.duration_ms,
                "codec": self.codec,
                "format": self.container_format,
                "frame_rate": self.frame_rate,
            }
        return data


# MediaDetail's fields that are media columns as stored (timestamps are converted, the URI built).
_DETAIL_COLUMNS = (
    "kind",
    "status",
    "size_bytes",
    "etag",
    "storage_class",
    "error_code",
    "error_message",
    "width",
    "height",
    "duration_ms",
    "codec",
    "container_format",
    "frame_rate",
)


class _ItemRow(NamedTuple):
    """One item as the statements below select it: where it is, when, and its detail columns."""

    id: int
    source: str
    bucket: str
    key: str
    last_modified_at: Any
    labelled_at: Any
    detail: dict[str, Any]

    @property
    def status(self) -> str:
        """The item's status."""
        return str(self.detail["status"])


_MEDIA_COLUMNS = ", ".join(
    ("id", "source", "bucket", "key", "last_modified_at", "labelled_at", *_DETAIL_COLUMNS)
)
_BY_KEY = (
    f"SELECT {_MEDIA_COLUMNS} FROM media WHERE source = :source AND bucket = :bucket AND key = :key"
)
_BY_ID = f"SELECT {_MEDIA_COLUMNS} FROM media WHERE id = :id"
_PROVENANCE = (
    "SELECT labeller, model_version, min_confidence FROM label_results "
    "WHERE media_id = :media_id ORDER BY id DESC LIMIT 1"
)
_DETECTIONS = (
    "SELECT d.label_id, l.name, d.confidence_x100, d.taxonomy_id FROM detections d "
    "JOIN labels l ON l.id = d.label_id WHERE d.media_id = :media_id "
    "ORDER BY d.confidence_x100 DESC, l.name"
)
_INSTANCES = (
    'SELECT label_id, "left", top, width, height, confidence_x100, timestamp_ms FROM instances '
    "WHERE media_id = :media_id ORDER BY label_id, idx"
)
_MOMENTS = (
    "SELECT label_id, timestamp_ms FROM video_moments WHERE media_id = :media_id "
    "ORDER BY timestamp_ms"
)
_SEGMENTS = (
    "SELECT label_id, start_ms, end_ms, confidence_x100 FROM video_segments "
    "WHERE media_id = :media_id ORDER BY start_ms"
)


def _media_row(db: Db, which: str | MediaURI | int) -> _ItemRow:
    """The media row of a URI or id; NotFoundError when the catalogue lacks it."""
    if isinstance(which, int):
        item = _item(db.first(_BY_ID, {"id": which}))
        if item is None:
            raise NotFoundError(f"media {which} is not in the catalogue")
        return item
    parsed = parse_uri(which) if isinstance(which, str) else which
    found = {"source": parsed.scheme, "bucket": parsed.bucket, "key": parsed.key}
    row = db.first(_BY_KEY, found)
    if row is None and isinstance(which, str) and "%" in which:
        # A key that really holds '%41' typed as it is (printed URIs encode its '%' as %25).
        literal = parse_uri(which, decode=False)
        found = {"source": literal.scheme, "bucket": literal.bucket, "key": literal.key}
        row = db.first(_BY_KEY, found)
    item = _item(row)
    if item is None:
        raise NotFoundError(f"{parsed} is not in the catalogue (run 'catalog sync' on its prefix)")
    return item


def _item(row: tuple[Any, ...] | None) -> _ItemRow | None:
    """A selected row as an _ItemRow; None when there is none or the item was deleted."""
    if row is None:
        return None
    media_id, source, bucket, key, modified, labelled = row[:6]
    detail = dict(zip(_DETAIL_COLUMNS, row[6:], strict=True))
    item = _ItemRow(media_id, source, bucket, key, modified, labelled, detail)
    return item if item.status != STATUS_DELETED else None


def get_media_detail(source: Session | Reader, which: str | MediaURI | int) -> MediaDetail:
    """One media item (by URI or id): labels (best first), instances, provenance, and the
    parents (in order), aliases and categories its own response gave (its model's taxonomy)."""
    db = db_of(source)
    item = _media_row(db, which)
    media_id, kind = item.id, item.detail["kind"]
    known = {"media_id": media_id}
    provenance = db.first(_PROVENANCE, known)
    rows = db.rows(_DETECTIONS, known)
    taxonomy = detection_taxonomy(
        db, [(label_id, taxonomy_id) for label_id, _, _, taxonomy_id in rows]
    )
    instances: dict[int, list[InstanceDetail]] = defaultdict(list)
    for label_id, left, top, width, height, confidence_x100, timestamp_ms in db.rows(
        _INSTANCES, known
    ):
        instances[label_id].append(
            InstanceDetail(left, top, width, height, confidence_x100 / 100, timestamp_ms)
        )
    timestamps: dict[int, list[int]] = defaultdict(list)
    segments: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    if kind == KIND_VIDEO:
        for label_id, timestamp_ms in db.rows(_MOMENTS, known):
            timestamps[label_id].append(timestamp_ms)
        for label_id, start_ms, end_ms, confidence_x100 in db.rows(_SEGMENTS, known):
            segments[label_id].append((start_ms, end_ms, confidence_x100 / 100))
    labels = []
    for label_id, name, confidence_x100, _ in rows:
        parents, aliases, categories = taxonomy.get(label_id, ((), (), ()))
        labels.append(
            LabelDetail(
                name=name,
                confidence=confidence_x100 / 100,
                parents=list(parents),
                aliases=list(aliases),
                categories=list(categories),
                instances=instances.get(label_id, []),
                timestamps_ms=timestamps.get(label_id, []),
                segments=segments.get(label_id, []),
            )
        )
    return MediaDetail(
        uri=format_uri(item.source, item.bucket, item.key),
        last_modified_at=db.utc(item.last_modified_at),
        labelled_at=db.utc(item.labelled_at),
        **item.detail,
        labeller=provenance[0] if provenance else None,
        model_version=provenance[1] if provenance else None,
        min_confidence=provenance[2] if provenance else None,
        labels=labels,
        **_text_details(db, media_id),
    )


def _text_details(db: Db, media_id: int) -> dict[str, Any]:
    """The item's text (LINEs in reading order, each followed by its WORDs) and its reader."""
    read = load_text(db, media_id)
    if read is None:
        return {"text": None, "text_reader": None}
    details = [
        TextDetail(
            t.text,
            t.kind,
            t.confidence,
            t.box.left,
            t.box.top,
            t.box.width,
            t.box.height,
            t.timestamp_ms,
        )
        for t in read.texts
    ]
    return {"text": details, "text_reader": read.reader}


@dataclass(frozen=True)
class FailureRow:
    """One failed media item."""

    uri: str
    kind: str
    code: str
    message: str
    attempts: int
    updated_at: datetime | None

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of `catalog failures --format json`."""
        return {
            "uri": self.uri,
            "kind": self.kind,
            "code": self.code,
            "message": self.message,
            "attempts": self.attempts,
            "updated_at": self.updated_at,
        }


def iter_failures(session: Session) -> Iterator[FailureRow]:
    """Failed media, oldest key first."""
    from sqlalchemy import select

    from catalog.store.schema import Media

    stmt = (
        select(Media)
        .where(Media.status == STATUS_FAILED)
        .order_by(Media.source, Media.bucket, Media.key)
        .execution_options(yield_per=500)
    )
    for media in session.execute(stmt).scalars():
        yield FailureRow(
            uri=media.uri,
            kind=media.kind,
            code=media.error_code or "Unknown",
            message=media.error_message or "",
            attempts=media.attempts,
            updated_at=media.updated_at,
        )
