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
