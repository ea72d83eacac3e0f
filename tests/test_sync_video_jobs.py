"""Video jobs across runs: interrupted syncs resume their jobs, expired jobs start again."""

from __future__ import annotations

import _thread
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from catalog.store.schema import Media, utcnow
from tests.factories import car_video

ROOT = "s3://media-library/clips/"
FAST = ("--no-progress", "--poll-interval", "0.01")
KEYS = ("clips/a.mp4", "clips/b.mov")
TOPIC = ("--notification-topic-arn", "arn:aws:sns:us-east-1:123456789012:AmazonRekognitionJobs")
ROLE = ("--role-arn", "arn:aws:iam::123456789012:role/RekognitionSNS")


def put_two(put: Any) -> None:
    put(KEYS[0], car_video("mp4"))
    put(KEYS[1], car_video("mov"))


def rows(sessions: Any) -> dict[str, Media]:
    with sessions() as session:
        return {m.key: m for m in session.execute(select(Media)).scalars()}


def finish_all_jobs(double: Any) -> None:
    double.video_polls = 0  # and any job started from now on finishes at once
    for job in double.jobs.values():
        job["polls_left"] = 0


def wait_for(condition: Any, what: str, limit_s: float = 60.0) -> None:
    """Poll a condition; the limit only keeps a broken run from hanging forever."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_ctrl_c_while_polling_then_rerun_starts_no_second_job(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any, monkeypatch: Any
) -> None:
    rekognition_double.video_polls = 10**6
    put_two(put)
    original = rekognition_double.op_GetLabelDetection
    interrupted: list[bool] = []

    def get(body: dict[str, Any]) -> dict[str, Any]:
        if len(rekognition_double.jobs) == 2 and not interrupted:
            interrupted.append(True)
            _thread.interrupt_main()  # Ctrl-C, while the sync waits for its jobs
        return original(body)

    monkeypatch.setattr(rekognition_double, "op_GetLabelDetection", get)
    first = invoke("sync", ROOT, *FAST)
    assert first.exit_code == 130
    stored = rows(sessions)
    assert {stored[k].status for k in KEYS} == {"pending"}
    assert {stored[k].job_id for k in KEYS} == set(rekognition_double.jobs)

    finish_all_jobs(rekognition_double)
    second = invoke("sync", ROOT, *FAST, "--format", "json", catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["video_jobs"] == {"started": 0, "resumed": 2}
    assert rekognition_double.count("StartLabelDetection") == 2
    assert {m.status for m in rows(sessions).values()} == {"labelled"}


@pytest.mark.slow
def test_sync_killed_while_jobs_run_resumes_them_on_the_next_run(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any, db_url: str
) -> None:
    rekognition_double.video_polls = 10**6
    put_two(put)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    process = subprocess.Popen(
        [sys.executable, "-m", "catalog", "--db", db_url, "sync", ROOT, *FAST],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: all(m.job_id for m in rows(sessions).values()) and len(rows(sessions)) == 2,
            "both jobs to be stored",
        )
        wait_for(lambda: rekognition_double.count("GetLabelDetection") > 0, "a poll")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert rekognition_double.running_jobs() == 2

    finish_all_jobs(rekognition_double)
    result = invoke("sync", ROOT, *FAST, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert rekognition_double.count("StartLabelDetection") == 2
    assert len(rekognition_double.jobs) == 2
    assert {m.status for m in rows(sessions).values()} == {"labelled"}


def test_with_a_notification_topic_the_sync_leaves_started_jobs_pending(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    rekognition_double.video_polls = 10**6
    put_two(put)
    result = invoke("sync", ROOT, *FAST, *TOPIC, *ROLE, "--format", "json", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["pending"], report["video_jobs"]["started"]) == (2, 2)
    starts = [body for op, body in rekognition_double.calls if op == "StartLabelDetection"]
    assert {body["NotificationChannel"]["SNSTopicArn"] for body in starts} == {TOPIC[1]}
    assert {m.status for m in rows(sessions).values()} == {"pending"}


def test_notification_topic_needs_a_role(invoke: Any, put: Any, rekognition_double: Any) -> None:
    put_two(put)
    result = invoke("sync", ROOT, *FAST, *TOPIC)
    assert result.exit_code == 2
    assert "Error: --notification-topic-arn needs --role-arn" in result.output


def pending_with_jobs(invoke: Any, put: Any, double: Any) -> None:
    """Two videos whose jobs started in an earlier run and are still pending."""
    double.video_polls = 10**6
    put_two(put)
    assert invoke("sync", ROOT, *FAST, *TOPIC, *ROLE).exit_code == 0
    assert double.count("StartLabelDetection") == 2


def test_a_job_whose_results_expired_is_started_again(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    pending_with_jobs(invoke, put, rekognition_double)
    old_jobs = {m.key: m.job_id for m in rows(sessions).values()}
    rekognition_double.expire()
    rekognition_double.video_polls = 0
    result = invoke("sync", ROOT, *FAST, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert rekognition_double.count("StartLabelDetection") == 4
    stored = rows(sessions)
    assert {m.status for m in stored.values()} == {"labelled"}
    assert all(stored[k].job_id != old_jobs[k] for k in KEYS)


def test_a_job_older_than_seven_days_is_started_again_without_asking(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    pending_with_jobs(invoke, put, rekognition_double)
    old_jobs = set(rekognition_double.jobs)
    with sessions.begin() as session:
        session.execute(update(Media).values(job_started_at=utcnow() - timedelta(days=8)))
    rekognition_double.video_polls = 0
    rekognition_double.calls.clear()
    result = invoke("sync", ROOT, *FAST, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    asked = {body["JobId"] for op, body in rekognition_double.calls if op == "GetLabelDetection"}
    assert not asked & old_jobs
    assert rekognition_double.count("StartLabelDetection") == 2
    assert {m.status for m in rows(sessions).values()} == {"labelled"}


def test_retry_failed_starts_a_new_job_for_a_failed_one(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    put("clips/a.mp4", car_video())
    rekognition_double.fail_jobs["clips/a.mp4"] = "Internal error, try again."
    assert invoke("sync", ROOT, *FAST).exit_code == 1
    rekognition_double.fail_jobs.clear()
    result = invoke("sync", ROOT, *FAST, "--retry-failed", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(rekognition_double.jobs) == 2  # a fresh token, not the failed job again
    assert rows(sessions)["clips/a.mp4"].status == "labelled"


def test_a_changed_video_gets_a_new_job(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    put("clips/a.mp4", car_video())
    assert invoke("sync", ROOT, *FAST).exit_code == 0
    put("clips/a.mp4", car_video("mov"))
    assert invoke("sync", ROOT, *FAST).exit_code == 0
    assert rekognition_double.count("StartLabelDetection") == 2
    assert len(rekognition_double.jobs) == 2
