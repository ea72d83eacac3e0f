"""Several `catalog sync` processes on one catalogue share the work and label nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from catalog.sources import SourceObject
from catalog.store import claims
from catalog.store.engine import open_catalogue
from catalog.store.media import is_stale_sequencer, record_pending, store_result
from catalog.store.reads import get_media, stored_media
from catalog.store.schema import LabelResult as LabelResultRow
from catalog.store.schema import Media
from tests.factories import RED, make_image

ROOT = Path(__file__).resolve().parent.parent


def _distinct_jpeg(i: int) -> bytes:
    """A Car picture whose bytes differ from every other i (so nothing is reused)."""
    return make_image(160 + i, 120, boxes=[(RED, (10, 10, 80, 100))])


def _spawn_sync(db_url: str, uri: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "catalog",
            "--db",
            db_url,
            "sync",
            uri,
            "--no-progress",
            "--concurrency",
            "4",
            "--format",
            "json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_parallel_syncs_label_each_object_exactly_once(
    db_url: str, put: Any, rekognition_double: Any
) -> None:
    count = 30
    for i in range(count):
        put(f"shared/img-{i:03d}.jpg", _distinct_jpeg(i))
    open_catalogue(db_url)  # migrate once, before the processes race
    rekognition_double.latency_s = 0.05
    procs = [_spawn_sync(db_url, "s3://media-library/shared/") for _ in range(3)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    assert rekognition_double.count("DetectLabels") == count
    _, sessions = open_catalogue(db_url)
    with sessions() as session:
        statuses = session.execute(select(Media.status, func.count()).group_by(Media.status)).all()
        results_per_media = session.execute(
            select(LabelResultRow.media_id, func.count()).group_by(LabelResultRow.media_id)
        ).all()
        claimed = session.execute(
            select(func.count()).select_from(Media).where(Media.claimed_by.is_not(None))
        ).scalar_one()
    assert dict(statuses) == {"labelled": count}
    assert sorted(n for _, n in results_per_media) == [1] * count
    assert claimed == 0


def _obj(key: str, etag: str = "abc") -> SourceObject:
    return SourceObject("s3", "b", key, 10, etag)


def test_a_live_claim_keeps_other_claimers_out(db_url: str) -> None:
    _, sessions = open_catalogue(db_url)
    obj = _obj("a.jpg")
    assert claims.claim_object(sessions, obj, "image", None, owner="one")
    assert not claims.claim_object(sessions, obj, "image", None, owner="two")
    with sessions() as session:
        stored = stored_media(get_media(session, "s3", "b", "a.jpg"))  # type: ignore[arg-type]
    assert not claims.claim_object(sessions, obj, "image", stored, owner="two")
    assert claims.claim_object(sessions, obj, "image", stored, owner="one")


def test_an_expired_lease_can_be_taken_over(db_url: str) -> None:
    _, sessions = open_catalogue(db_url)
    obj = _obj("a.jpg")
    assert claims.claim_object(sessions, obj, "image", None, owner="dead", lease_s=-1)
    with sessions() as session:
        stored = stored_media(get_media(session, "s3", "b", "a.jpg"))  # type: ignore[arg-type]
    assert claims.claim_object(sessions, obj, "image", stored, owner="alive")


def test_a_claim_fails_when_the_row_changed_since_the_diff(db_url: str) -> None:
    from catalog.labelling import LabelResult

    _, sessions = open_catalogue(db_url)
    obj = _obj("a.jpg")
    assert claims.claim_object(sessions, obj, "image", None, owner="one")
    with sessions() as session:
        seen = stored_media(get_media(session, "s3", "b", "a.jpg"))  # type: ignore[arg-type]
    with sessions.begin() as session:
        store_result(
            session, obj, "image", LabelResult("rekognition", "3.0", 50.0), sync_run_id=None
        )
    assert not claims.claim_object(sessions, obj, "image", seen, owner="two")


def test_claim_pending_hands_each_row_to_one_claimer(db_url: str) -> None:
    _, sessions = open_catalogue(db_url)
    with sessions.begin() as session:
        for i in range(5):
            record_pending(session, _obj(f"v{i}.mp4"), "video")
    with sessions.begin() as session:
        first = claims.claim_pending(session, owner="one", limit=3)
    with sessions.begin() as session:
        second = claims.claim_pending(session, owner="two", limit=10)
    assert len(first) == 3 and len(second) == 2
    assert not set(first) & set(second)
    with sessions.begin() as session:
        assert claims.release_claims(session, owner="one") == 3
    with sessions.begin() as session:
        assert sorted(claims.claim_pending(session, owner="two", limit=10)) == sorted(first)


@pytest.mark.parametrize(
    ("stored", "incoming", "stale"),
    [
        (None, "0055AED6DCD90281E5", False),
        ("0055AED6DCD90281E5", None, False),
        ("0055AED6DCD90281E5", "0055AED6DCD90281E5", False),
        ("0055AED6DCD90281E5", "0055AED6DCD90281E6", False),
        ("0055AED6DCD90281E6", "0055AED6DCD90281E5", True),
        ("0055AED6DCD90281E5", "0055AED6DCD90281", True),
        ("0055AED6DCD902", "0055AED6DCD90281E5", False),
    ],
)
def test_sequencers_compare_right_padded(
    stored: str | None, incoming: str | None, stale: bool
) -> None:
    assert is_stale_sequencer(stored, incoming) is stale
