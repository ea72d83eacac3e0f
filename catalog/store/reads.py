"""What the write path reads back: stored media rows, reusable results and stored results."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from catalog.labelling import BoundingBox, DetectedLabel, Instance, LabelResult, Moment, VideoInfo
from catalog.store.bitmap_build import note_changed
from catalog.store.schema import KIND_VIDEO, STATUS_LABELLED, Detection, Label, Media, VideoMoment
from catalog.store.schema import Instance as InstanceRow
from catalog.store.schema import LabelResult as LabelResultRow
from catalog.store.schema import TextResult as TextResultRow
from catalog.store.taxonomy import detection_taxonomy
from catalog.store.text import latest_text_result_id
from catalog.store.units import to_x100

# -- reading what is stored ------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredMedia:
    """The fields of a media row the sync diff needs."""

    id: int
    key: str
    etag: str | None
    size_bytes: int
    status: str
    kind: str
    attempts: int
    job_id: str | None
    last_modified_at: datetime | None = None
    error_code: str | None = None
    labeller: str | None = None  # who produced the current labels (None: never labelled)
    model_version: str | None = None
    text_reader: str | None = None  # who read the current text (None: never read)
    text_model_version: str | None = None


def load_key_range(
    session: Session,
    *,
    source: str,
    bucket: str,
    after: str | None,
    upto: str | None,
    prefix: str = "",
) -> list[StoredMedia]:
    """Media rows with after < key <= upto (open ends when None) whose key starts with prefix."""
    key_col: Any = Media.key
    if session.get_bind().dialect.name == "postgresql":
        key_col = Media.key.collate("C")  # S3's byte order, not the locale's
    conditions = [Media.source == source, Media.bucket == bucket]
    if after is not None:
        conditions.append(key_col > after)
    elif prefix:
        conditions.append(key_col >= prefix)
    if upto is not None:
        conditions.append(key_col <= upto)
    latest = (
        select(func.max(LabelResultRow.id))
        .where(LabelResultRow.media_id == Media.id)
        .correlate(Media)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Media.id,
            Media.key,
            Media.etag,
            Media.size_bytes,
            Media.status,
            Media.kind,
            Media.attempts,
            Media.job_id,
            Media.last_modified_at,
            Media.error_code,
            LabelResultRow.labeller,
            LabelResultRow.model_version,
            TextResultRow.reader,
            TextResultRow.model_version,
        )
        .outerjoin(LabelResultRow, LabelResultRow.id == latest)
        .outerjoin(TextResultRow, TextResultRow.id == latest_text_result_id())
        .where(and_(*conditions))
    ).all()
    return [StoredMedia(*row) for row in rows if row.key.startswith(prefix)]


def touch_media(session: Session, media_id: int, last_modified_at: datetime | None) -> None:
    """Record a new modification time for unchanged content (a local file touched, not edited)."""
    session.execute(
        update(Media).where(Media.id == media_id).values(last_modified_at=last_modified_at)
    )
    note_changed(session, media_id)


def stored_media(media: Media) -> StoredMedia:
    """The diff's view of one media row."""
    return StoredMedia(
        media.id,
        media.key,
        media.etag,
        int(media.size_bytes or 0),
        media.status,
        media.kind,
        int(media.attempts or 0),
        media.job_id,
        last_modified_at=media.last_modified_at,
        error_code=media.error_code,
    )


def get_media(
    session: Session, source: str, bucket: str, key: str, *, for_update: bool = False
) -> Media | None:
    """The media row for one object, if any (locked against other writers with for_update)."""
    query = select(Media).where(Media.source == source, Media.bucket == bucket, Media.key == key)
    if for_update:
        query = query.with_for_update()  # PostgreSQL row lock; SQLite locks the whole file anyway
    return session.execute(query).scalar_one_or_none()


def find_reusable(
    session: Session,
    *,
    etag: str,
    size_bytes: int,
    min_confidence: float,
    labeller: str,
    kind: str,
    exclude_media_id: int | None = None,
    model_version: str | None = None,
    max_labels: int | None = None,
    text_reader: str | None = None,
    text_model_version: str | None = None,
) -> int | None:
    """A labelled media item with the same content whose result can be copied, if any.

    With `model_version`, only a result from that model counts (labellers that know their model
    before they run, like the local one, must not copy another model's labels). A result made
    with a label cap serves only a request with the same or a lower cap (cut down by
    `load_result`); an uncapped request needs an uncapped result. With `text_reader`, the
    item's text must have been read by that reader (and `text_model_version`, when given) too.
    """
    latest = (
        select(func.max(LabelResultRow.id))
        .where(LabelResultRow.media_id == Media.id)
        .correlate(Media)
        .scalar_subquery()
    )
    stmt = (
        select(Media.id)
        .join(LabelResultRow, LabelResultRow.id == latest)
        .where(
            Media.etag == etag,
            Media.size_bytes == size_bytes,
            Media.status == STATUS_LABELLED,
            Media.kind == kind,
            LabelResultRow.labeller == labeller,
            LabelResultRow.min_confidence <= min_confidence,
        )
        .limit(1)
    )
    if exclude_media_id is not None:
        stmt = stmt.where(Media.id != exclude_media_id)
    if model_version is not None:
        stmt = stmt.where(LabelResultRow.model_version == model_version)
    if text_reader is not None:
        stmt = stmt.join(TextResultRow, TextResultRow.id == latest_text_result_id()).where(
            TextResultRow.reader == text_reader
        )
        if text_model_version is not None:
            stmt = stmt.where(TextResultRow.model_version == text_model_version)
    if max_labels is None:
        stmt = stmt.where(LabelResultRow.max_labels.is_(None))
    else:
        stmt = stmt.where(
            or_(LabelResultRow.max_labels.is_(None), LabelResultRow.max_labels >= max_labels)
        )
    return session.execute(stmt).scalar_one_or_none()


def latest_result(session: Session, media_id: int) -> LabelResultRow | None:
    """The provenance row of the media's current labels."""
    return session.execute(
        select(LabelResultRow)
        .where(LabelResultRow.media_id == media_id)
        .order_by(LabelResultRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def load_result(
    session: Session, media_id: int, min_confidence: float = 0.0, *, max_labels: int | None = None
) -> LabelResult:
    """Rebuild the stored LabelResult of a media item (labels at or above min_confidence).

    With `max_labels`, only that many labels are kept, the most confident first, as a capped
    request would have returned them.
    """
    provenance = latest_result(session, media_id)
    media = session.get(Media, media_id)
    threshold = to_x100(min_confidence)
    det_rows = session.execute(
        select(Detection.label_id, Label.name, Detection.confidence_x100, Detection.taxonomy_id)
        .join(Label, Label.id == Detection.label_id)
        .where(Detection.media_id == media_id, Detection.confidence_x100 >= threshold)
    ).all()
    if max_labels is not None:
        det_rows = sorted(det_rows, key=lambda r: (-r.confidence_x100, r.name))[:max_labels]
    names = {row.label_id: row.name for row in det_rows}
    taxonomy = detection_taxonomy(session, [(row.label_id, row.taxonomy_id) for row in det_rows])
    boxes: dict[int, list[tuple[int | None, Instance]]] = defaultdict(list)
    for row in session.execute(
        select(InstanceRow).where(InstanceRow.media_id == media_id).order_by(InstanceRow.idx)
    ).scalars():
        boxes[row.label_id].append(
            (
                row.timestamp_ms,
                Instance(
                    BoundingBox(row.left, row.top, row.width, row.height), row.confidence_x100 / 100
                ),
            )
        )

    def make(label_id: int, confidence_x100: int, instances: tuple[Instance, ...]) -> DetectedLabel:
        parents, aliases, categories = taxonomy.get(label_id, ((), (), ()))
        return DetectedLabel(
            names[label_id], confidence_x100 / 100, instances, parents, aliases, categories
        )

    labels: list[DetectedLabel] = []
    moments: list[Moment] = []
    is_video = media is not None and media.kind == KIND_VIDEO
    if is_video:
        for moment_row in session.execute(
            select(VideoMoment)
            .where(VideoMoment.media_id == media_id, VideoMoment.confidence_x100 >= threshold)
            .order_by(VideoMoment.timestamp_ms)
        ).scalars():
            if moment_row.label_id not in names:
                continue
            at = tuple(
                inst
                for ts, inst in boxes.get(moment_row.label_id, ())
                if ts == moment_row.timestamp_ms
            )
            moments.append(
                Moment(
                    moment_row.timestamp_ms,
                    make(moment_row.label_id, moment_row.confidence_x100, at),
                )
            )
    else:
        for det_row in det_rows:
            labels.append(
                make(
                    det_row.label_id,
                    det_row.confidence_x100,
                    tuple(inst for _, inst in boxes.get(det_row.label_id, ())),
                )
            )
    video = None
    if is_video and media is not None:
        video = VideoInfo(
            media.codec,
            media.container_format,
            media.duration_ms,
            media.frame_rate,
            media.width,
            media.height,
        )
    return LabelResult(
        labeller=provenance.labeller if provenance else "unknown",
        model_version=provenance.model_version if provenance else None,
        min_confidence=max(min_confidence, provenance.min_confidence if provenance else 0.0),
        max_labels=max_labels
        if max_labels is not None
        else (provenance.max_labels if provenance else None),
        labels=labels,
        moments=moments,
        width=media.width if media else None,
        height=media.height if media else None,
        video=video,
    )
