"""Interrupted syncs lose only what was in flight; whole-run errors end cleanly with exit 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import create_engine, func, select, text

from catalog.store.schema import Detection, Media, SyncRun
from tests.factories import RED, car_jpeg, make_image

pytestmark = pytest.mark.slow


def _cli(db_url, *args):
    return [sys.executable, "-m", "catalog", "--db", db_url, *args]


def _count_labelled(db_url):
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("select count(*) from media where status='labelled'")
            ).scalar_one()
    except Exception:
        return 0
    finally:
        engine.dispose()


def _start(db_url, aws_env, *args):
    env = {**os.environ, **aws_env}
    return subprocess.Popen(
        _cli(db_url, *args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_labelled(db_url, at_least, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _count_labelled(db_url) >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} labelled after {timeout}s")


def test_sync_killed_with_sigkill_resumes_without_duplicates(
    db_url, aws_env, put, rekognition_double, sessions
):
    total = 24
    for i in range(total):
        put(f"kill/{i:02d}.jpg", make_image(boxes=[(RED, (i, 0, 100, 100))]))
    rekognition_double.latency_s = 0.15
    process = _start(
        db_url, aws_env, "sync", "s3://media-library/kill/", "--concurrency", "2", "--no-progress"
    )
    _wait_for_labelled(db_url, 5)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    done_before = _count_labelled(db_url)
    assert 5 <= done_before < total
    calls_before = rekognition_double.count("DetectLabels")

    rekognition_double.latency_s = 0.0
    rerun = subprocess.run(
        _cli(db_url, "sync", "s3://media-library/kill/", "--no-progress"),
        env={**os.environ, **aws_env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert _count_labelled(db_url) == total
    # The re-run labels only what was not committed: in-flight objects at most once more.
    calls_after = rekognition_double.count("DetectLabels") - calls_before
    assert calls_after == total - done_before
    per_key = Counter(
        body["Image"]["S3Object"]["Name"]
        for op, body in rekognition_double.calls
        if op == "DetectLabels" and "Image" in body
    )
    assert max(per_key.values()) <= 2
    with sessions() as session:
        media_count = session.execute(select(func.count()).select_from(Media)).scalar_one()
        car_rows = session.execute(select(func.count()).select_from(Detection)).scalar_one()
    assert media_count == total
    assert car_rows == total * 4  # Car, Vehicle, Transportation and Daylight, once each per image


def test_ctrl_c_exits_130_and_keeps_finished_work(db_url, aws_env, put, rekognition_double):
    for i in range(20):
        put(f"int/{i:02d}.jpg", make_image(boxes=[(RED, (i, 0, 100, 100))]))
    rekognition_double.latency_s = 0.2
    process = _start(
        db_url, aws_env, "sync", "s3://media-library/int/", "--concurrency", "2", "--no-progress"
    )
    _wait_for_labelled(db_url, 3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Interrupted" in stderr
    assert "Traceback" not in stderr
    assert _count_labelled(db_url) >= 3


@pytest.mark.parametrize(
    "args,expected",
    [
        (("sync", "s3://no-such-bucket-here/x/"), "no such bucket"),
        (("sync", "gs://bucket/x"), "unsupported URI scheme"),
        (("sync", "s3://"), "has no bucket name"),
        (("--region", "mars", "sync", "s3://media-library/"), "is not an AWS region name"),
        (
            ("--profile", "nobody", "sync", "s3://media-library/"),
            "profile 'nobody' is not configured",
        ),
    ],
)
def test_whole_run_errors_are_one_line_and_exit_2(invoke, bucket, args, expected):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_missing_credentials_exit_2(invoke, bucket, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = invoke("sync", "s3://media-library/")
    assert result.exit_code == 2
    assert "credentials" in result.stderr


def test_expired_credentials_mid_run_keep_stored_labels(invoke, put, rekognition_double, sessions):
    put("exp/a.jpg", car_jpeg())
    assert invoke("sync", "s3://media-library/exp/").exit_code == 0
    put("exp/b.jpg", make_image(boxes=[(RED, (5, 5, 60, 60))]))
    rekognition_double.fail_keys["exp/b.jpg"] = (
        "ExpiredTokenException",
        "The security token included in the request is expired",
    )
    result = invoke("sync", "s3://media-library/exp/")
    assert result.exit_code == 2
    assert "expired" in result.stderr
    with sessions() as session:
        rows = session.execute(select(Media.key, Media.status, Media.claimed_by)).all()
    # The stored labels survive; the object in flight waits, unclaimed, for the next run.
    assert sorted(rows) == [("exp/a.jpg", "labelled", None), ("exp/b.jpg", "pending", None)]


def test_access_denied_to_rekognition_is_a_whole_run_error(invoke, put, rekognition_double):
    put("den/a.jpg", car_jpeg())
    rekognition_double.fail_keys["den/a.jpg"] = (
        "AccessDeniedException",
        "User is not authorized to perform: rekognition:DetectLabels",
    )
    result = invoke("sync", "s3://media-library/den/")
    assert result.exit_code == 2
    assert "access denied" in result.stderr


def test_sigterm_closes_the_run_row_and_exits_143(
    db_url, aws_env, put, rekognition_double, sessions
):
    for i in range(20):
        put(f"term/{i:02d}.jpg", make_image(boxes=[(RED, (i, 0, 100, 100))]))
    rekognition_double.latency_s = 0.2
    process = _start(
        db_url, aws_env, "sync", "s3://media-library/term/", "--concurrency", "2", "--no-progress"
    )
    _wait_for_labelled(db_url, 3)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 143, stderr
    assert stderr.count("Interrupted") == 1
    assert "Traceback" not in stderr
    with sessions() as session:
        run = session.execute(select(SyncRun).order_by(SyncRun.id.desc())).scalars().first()
    assert run.status == "interrupted"
    assert run.labelled >= 3


def test_an_error_raised_while_stopping_ends_like_the_signal(invoke, monkeypatch, tmp_path):
    """A call cut short by SIGTERM may fail as it unwinds (a database query cancelled under
    it): the command still ends with the interruption's line and exit code, not that error."""
    import catalog.cli as cli

    monkeypatch.setattr(cli, "_stopping", __import__("threading").Event())
    monkeypatch.setattr(cli, "_said_interrupted", __import__("threading").Event())
    monkeypatch.setattr(cli, "_stop_code", [143])
    cli._stopping.set()
    result = invoke("--db", str(tmp_path / "missing.db"), "search", "Car")  # a NotFoundError
    assert result.exit_code == 143
    assert result.stderr.count("Interrupted") == 1
    assert "no catalogue" not in result.stderr


def test_repeated_ctrl_c_ends_with_one_line_and_exit_130(db_url, aws_env, put, rekognition_double):
    for i in range(20):
        put(f"twice/{i:02d}.jpg", make_image(boxes=[(RED, (i, 0, 100, 100))]))
    rekognition_double.latency_s = 1.0  # calls in flight while the sync shuts down
    process = _start(
        db_url, aws_env, "sync", "s3://media-library/twice/", "--concurrency", "4", "--no-progress"
    )
    _wait_for_labelled(db_url, 2)
    for _ in range(4):
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert stderr.count("Interrupted") == 1
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr
