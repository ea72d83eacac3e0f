"""A video's asynchronous Rekognition job as stored on its media row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.store.schema import (
    Media,
)

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
