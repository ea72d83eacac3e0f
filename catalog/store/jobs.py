"""A video's asynchronous Rekognition job as stored on its media row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from catalog.sources import SourceObject
from catalog.store.schema import KIND_VIDEO, STATUS_LABELLED, STATUS_PENDING, Media, TextResult

# -- video jobs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoJob:
    """A video's asynchronous Rekognition job, as stored."""

    job_id: str | None
    job_key: str | None
    started_at: datetime | None
    text_job_id: str | None = None  # the text-detection job (--features text)


def get_video_job(session: Session, media_id: int) -> VideoJob:
    """The stored job of a video (all None when no job was started)."""
    row = session.execute(
        select(Media.job_id, Media.job_key, Media.job_started_at, Media.text_job_id).where(
            Media.id == media_id
        )
    ).one_or_none()
    if row is None:
        return VideoJob(None, None, None)
    return VideoJob(row.job_id, row.job_key, row.job_started_at, row.text_job_id)


def set_video_job(
    session: Session,
    media_id: int,
    *,
    job_id: str | None,
    job_key: str | None,
    started_at: datetime | None,
) -> None:
    """Store (or clear, with None) the job a video is being labelled by.

    Like every store function it does not commit: the caller commits at once (a crash must
    find the JobId, so no new job is paid for).
    """
    session.execute(
        update(Media)
        .where(Media.id == media_id)
        .values(job_id=job_id, job_key=job_key, job_started_at=started_at)
    )


def set_text_job(
    session: Session,
    media_id: int,
    *,
    text_job_id: str,
    job_key: str,
    started_at: datetime | None = None,
) -> None:
    """Store the text-detection job a video is being read by; commit it at once.

    `started_at` is given when the text job is the video's only job (its labels are current),
    so its results' 7-day retention is measured from it.
    """
    values: dict[str, object] = {"text_job_id": text_job_id, "job_key": job_key}
    if started_at is not None:
        values["job_started_at"] = started_at
    session.execute(update(Media).where(Media.id == media_id).values(**values))


@dataclass(frozen=True)
class PendingVideo:
    """A video with work outstanding: its labels (it is pending), its text job, or both."""

    media_id: int
    obj: SourceObject
    need_labels: bool
    need_text: bool


def pending_video(
    session: Session, *, media_id: int | None = None, job_id: str | None = None
) -> PendingVideo | None:
    """A video found by id (a pending one) or by a stored JobId (label or text job)."""
    query = select(Media).where(Media.kind == KIND_VIDEO)
    if media_id is not None:
        query = query.where(Media.id == media_id, Media.status == STATUS_PENDING)
    if job_id is not None:
        # A text job may run for a video whose labels are current (it is not pending then).
        query = query.where(
            or_(
                and_(Media.status == STATUS_PENDING, Media.job_id == job_id),
                and_(
                    Media.status.in_([STATUS_PENDING, STATUS_LABELLED]),
                    Media.text_job_id == job_id,
                ),
            )
        )
    media = session.execute(query.limit(1)).scalar_one_or_none()
    if media is None:
        return None
    if media.status != STATUS_PENDING and _text_read_since_job(session, media):
        return None  # its text job was collected already
    obj = SourceObject(
        source=media.source,
        bucket=media.bucket,
        key=media.key,
        size_bytes=media.size_bytes,
        etag=media.etag,
        last_modified_at=media.last_modified_at,
        storage_class=media.storage_class,
        version_id=media.version_id,
    )
    return PendingVideo(
        media.id,
        obj,
        need_labels=media.status == STATUS_PENDING,
        need_text=media.text_job_id is not None,
    )


def _text_read_since_job(session: Session, media: Media) -> bool:
    """True when the video's text was stored after its text job started (or no start is known)."""
    if media.job_started_at is None:
        return True
    read = session.execute(
        select(TextResult.id)
        .where(TextResult.media_id == media.id, TextResult.read_at >= media.job_started_at)
        .limit(1)
    ).first()
    return read is not None
