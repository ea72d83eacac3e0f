"""A video's asynchronous Rekognition job as stored on its media row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.sources import SourceObject
from catalog.store.schema import KIND_VIDEO, STATUS_PENDING, Media

# -- video jobs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoJob:
    """A video's asynchronous Rekognition job, as stored."""

    job_id: str | None
    job_key: str | None
    started_at: datetime | None


def get_video_job(session: Session, media_id: int) -> VideoJob:
    """The stored job of a video (all None when no job was started)."""
    row = session.execute(
        select(Media.job_id, Media.job_key, Media.job_started_at).where(Media.id == media_id)
    ).one_or_none()
    if row is None:
        return VideoJob(None, None, None)
    return VideoJob(row.job_id, row.job_key, row.job_started_at)


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


def pending_video(
    session: Session, *, media_id: int | None = None, job_id: str | None = None
) -> tuple[int, SourceObject] | None:
    """A pending video found by id or by its stored JobId: (media id, the object as stored)."""
    query = select(Media).where(Media.status == STATUS_PENDING, Media.kind == KIND_VIDEO)
    if media_id is not None:
        query = query.where(Media.id == media_id)
    if job_id is not None:
        query = query.where(Media.job_id == job_id)
    media = session.execute(query.limit(1)).scalar_one_or_none()
    if media is None:
        return None
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
    return media.id, obj
