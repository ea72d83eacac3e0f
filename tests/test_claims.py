"""Claims held by processes that are gone never block the others."""

from __future__ import annotations

import os
import socket
import subprocess
import time

from sqlalchemy.orm import Session, sessionmaker

from catalog.sources import SourceObject
from catalog.store.claims import claim_pending_video, claim_stored_jobs, is_dead_local_owner
from catalog.store.jobs import set_video_job
from catalog.store.media import record_pending
from catalog.store.schema import KIND_VIDEO


def _owner(pid: int) -> str:
    return f"{socket.gethostname()[:80]}:{pid}:abcd1234"


def test_a_running_process_holds_its_claims() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert is_dead_local_owner(_owner(child.pid)) is False
    finally:
        child.kill()
        child.wait()


def test_a_killed_but_unreaped_process_is_gone() -> None:
    child = subprocess.Popen(["sleep", "30"])
    child.kill()
    deadline = time.monotonic() + 10
    while not is_dead_local_owner(_owner(child.pid)):  # a zombie until we reap it
        assert time.monotonic() < deadline, "the killed child still counts as running"
        time.sleep(0.01)
    assert os.waitpid(child.pid, os.WNOHANG)[0] == child.pid  # it was a zombie indeed
    child.returncode = -9


def test_a_reaped_process_is_gone() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert is_dead_local_owner(_owner(child.pid)) is True


def test_another_hosts_owner_is_left_to_its_lease() -> None:
    assert is_dead_local_owner(f"elsewhere.example:{os.getpid() + 100000}:abcd1234") is False


def _pending_video(sessions: sessionmaker[Session], key: str, job_id: str | None) -> int:
    obj = SourceObject("s3", "media-library", key, 1000, "etag-" + key)
    with sessions.begin() as session:
        media = record_pending(session, obj, KIND_VIDEO)
        set_video_job(session, media.id, job_id=job_id, job_key=key, started_at=None)
        return media.id


def _dead_owner() -> str:
    child = subprocess.Popen(["true"])
    child.wait()
    return _owner(child.pid)


def test_one_video_job_is_claimed_by_one_live_process_at_a_time(
    sessions: sessionmaker[Session],
) -> None:
    media_id = _pending_video(sessions, "clips/a.mp4", "JOB-A")
    first, second = _owner(os.getpid()), f"elsewhere.example:{os.getpid()}:ffff0000"
    with sessions.begin() as session:
        assert claim_pending_video(session, media_id, owner=first, lease_s=60)
    with sessions.begin() as session:
        assert not claim_pending_video(session, media_id, owner=second, lease_s=60)
    with sessions.begin() as session:
        assert claim_pending_video(session, media_id, owner=first, lease_s=60)  # its own again


def test_stored_jobs_of_dead_claimers_are_adopted_and_live_ones_left(
    sessions: sessionmaker[Session],
) -> None:
    orphan = _pending_video(sessions, "clips/orphan.mp4", "JOB-1")
    held = _pending_video(sessions, "clips/held.mp4", "JOB-2")
    _pending_video(sessions, "clips/unstarted.mp4", None)  # no job yet: its message owns it
    with sessions.begin() as session:
        assert claim_pending_video(session, orphan, owner=_dead_owner(), lease_s=600)
        assert claim_pending_video(
            session, held, owner=f"elsewhere.example:{os.getpid()}:ffff0000", lease_s=600
        )
    with sessions.begin() as session:
        adopted = claim_stored_jobs(session, owner=_owner(os.getpid()), limit=10, lease_s=60)
    assert adopted == [orphan]
