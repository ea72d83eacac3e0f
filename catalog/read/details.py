"""Reading one media item's stored labels, and the list of failed media."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.errors import NotFoundError
from catalog.store.reads import get_media, latest_result
from catalog.store.schema import (
    STATUS_DELETED,
    STATUS_FAILED,
    Detection,
    Label,
    Media,
    VideoMoment,
    VideoSegment,
)
from catalog.store.schema import Instance as InstanceRow
from catalog.store.text import load_text
from catalog.store.vocabulary import detection_taxonomy
from catalog.uris import MediaURI, parse_uri


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


def find_media_by_uri(session: Session, uri: str | MediaURI) -> Media:
    """The media row for a URI; NotFoundError when the catalogue does not have it."""
    parsed = parse_uri(uri) if isinstance(uri, str) else uri
    media = get_media(session, parsed.scheme, parsed.bucket, parsed.key)
    if media is None and isinstance(uri, str) and "%" in uri:
        # A key that really holds '%41' typed as it is (printed URIs encode its '%' as %25).
        literal = parse_uri(uri, decode=False)
        media = get_media(session, literal.scheme, literal.bucket, literal.key)
    if media is None or media.status == STATUS_DELETED:
        raise NotFoundError(f"{parsed} is not in the catalogue (run 'catalog sync' on its prefix)")
    return media


def find_media(session: Session, which: str | MediaURI | int) -> Media:
    """The media row for a URI or a media id; NotFoundError when the catalogue lacks it."""
    if not isinstance(which, int):
        return find_media_by_uri(session, which)
    media = session.get(Media, which)
    if media is None or media.status == STATUS_DELETED:
        raise NotFoundError(f"media {which} is not in the catalogue")
    return media


def get_media_detail(session: Session, which: str | MediaURI | int) -> MediaDetail:
    """One media item (by URI or id): labels (best first), instances, provenance, and the
    parents (in order), aliases and categories its own response gave (its model's taxonomy)."""
    media = find_media(session, which)
    provenance = latest_result(session, media.id)
    rows = session.execute(
        select(Detection.label_id, Label.name, Detection.confidence_x100, Detection.taxonomy_id)
        .join(Label, Label.id == Detection.label_id)
        .where(Detection.media_id == media.id)
        .order_by(Detection.confidence_x100.desc(), Label.name)
    ).all()
    taxonomy = detection_taxonomy(session, [(row.label_id, row.taxonomy_id) for row in rows])
    instances: dict[int, list[InstanceDetail]] = defaultdict(list)
    for inst in session.execute(
        select(InstanceRow)
        .where(InstanceRow.media_id == media.id)
        .order_by(InstanceRow.label_id, InstanceRow.idx)
    ).scalars():
        instances[inst.label_id].append(
            InstanceDetail(
                inst.left,
                inst.top,
                inst.width,
                inst.height,
                inst.confidence_x100 / 100,
                inst.timestamp_ms,
            )
        )
    timestamps: dict[int, list[int]] = defaultdict(list)
    segments: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    if media.kind == "video":
        for label_id, ts in session.execute(
            select(VideoMoment.label_id, VideoMoment.timestamp_ms)
            .where(VideoMoment.media_id == media.id)
            .order_by(VideoMoment.timestamp_ms)
        ):
            timestamps[label_id].append(ts)
        for seg in session.execute(
            select(VideoSegment)
            .where(VideoSegment.media_id == media.id)
            .order_by(VideoSegment.start_ms)
        ).scalars():
            segments[seg.label_id].append((seg.start_ms, seg.end_ms, seg.confidence_x100 / 100))
    labels = []
    for row in rows:
        parents, aliases, categories = taxonomy.get(row.label_id, ((), (), ()))
        labels.append(
            LabelDetail(
                name=row.name,
                confidence=row.confidence_x100 / 100,
                parents=list(parents),
                aliases=list(aliases),
                categories=list(categories),
                instances=instances.get(row.label_id, []),
                timestamps_ms=timestamps.get(row.label_id, []),
                segments=segments.get(row.label_id, []),
            )
        )
    return MediaDetail(
        uri=media.uri,
        kind=media.kind,
        status=media.status,
        size_bytes=media.size_bytes,
        etag=media.etag,
        last_modified_at=media.last_modified_at,
        storage_class=media.storage_class,
        labelled_at=media.labelled_at,
        error_code=media.error_code,
        error_message=media.error_message,
        width=media.width,
        height=media.height,
        duration_ms=media.duration_ms,
        codec=media.codec,
        container_format=media.container_format,
        frame_rate=media.frame_rate,
        labeller=provenance.labeller if provenance else None,
        model_version=provenance.model_version if provenance else None,
        min_confidence=provenance.min_confidence if provenance else None,
        labels=labels,
        **_text_details(session, media.id),
    )


def _text_details(session: Session, media_id: int) -> dict[str, Any]:
    """The item's text (LINEs in reading order, each followed by its WORDs) and its reader."""
    read = load_text(session, media_id)
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
