"""Several `catalog worker` processes on one PostgreSQL catalogue, fed by real bucket notifications."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import func, select

from catalog.aws.clients import AWSClients
from catalog.aws.notify import setup_notifications
from catalog.store.engine import open_catalogue
from catalog.store.schema import LabelResult as LabelResultRow
from catalog.store.schema import Media, VideoMoment
from catalog.uris import parse_uri
from tests.conftest import REGION
from tests.factories import RED, car_video, make_image

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "incoming/"

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    open_catalogue(postgres_url)  # migrated once, before the workers start
    return postgres_url


@pytest.fixture
def queue_url(aws_env: dict[str, str], bucket: str) -> str:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="media-events")["QueueUrl"]
    setup_notifications(parse_uri(f"s3://{bucket}/{PREFIX}"), url, clients=AWSClients())
    return str(url)


def _image(i: int) -> bytes:
    return make_image(160 + i, 120, boxes=[(RED, (10, 10, 80, 100))])


def _spawn(db_url: str, queue: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "catalog",
            "--db",
            db_url,
            "worker",
            "--queue",
            queue,
            "--wait-time",
            "1",
            "--format",
            "json",
            "--quiet",
            *extra,
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _labelled(db_url: str) -> int:
    _, sessions = open_catalogue(db_url)
    with sessions() as session:
        return int(
            session.execute(
                select(func.count()).select_from(Media).where(Media.status == "labelled")
            ).scalar_one()
        )


def _results_per_media(db_url: str) -> list[int]:
    _, sessions = open_catalogue(db_url)
    with sessions() as session:
        rows = session.execute(
            select(LabelResultRow.media_id, func.count()).group_by(LabelResultRow.media_id)
        ).all()
    return sorted(n for _, n in rows)


def _queue_depth(url: str) -> int:
    attrs = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def _stop(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-3000:]
        reports.append(json.loads(out))
    return reports


def test_four_workers_label_every_image_once(
    pg_url: str, put: Any, queue_url: str, rekognition_double: Any
) -> None:
    count = 24
    rekognition_double.latency_s = 0.05
    for i in range(count):
        put(f"{PREFIX}img-{i:03d}.jpg", _image(i))
    workers = [_spawn(pg_url, queue_url, "--concurrency", "4") for _ in range(4)]
    try:
        _wait_for(lambda: _labelled(pg_url) == count and _queue_depth(queue_url) == 0)
    finally:
        reports = _stop(workers)
    assert rekognition_double.count("DetectLabels") == count
    assert _results_per_media(pg_url) == [1] * count
    assert sum(r["labelled"] for r in reports) == count
    assert all(r["stopped_by"] == "SIGTERM" for r in reports)


def test_a_killed_workers_messages_return_and_are_finished_by_the_others(
    pg_url: str, put: Any, queue_url: str, rekognition_double: Any
) -> None:
    count = 12
    rekognition_double.latency_s = 1.0
    for i in range(count):
        put(f"{PREFIX}img-{i:03d}.jpg", _image(i))
    options = ("--concurrency", "4", "--visibility-timeout", "4")
    victim = _spawn(pg_url, queue_url, *options)
    _wait_for(lambda: rekognition_double.count("DetectLabels") >= 2)
    victim.kill()  # SIGKILL: no cleanup, its messages and claims are left held
    victim.communicate(timeout=30)
    survivors = [_spawn(pg_url, queue_url, *options) for _ in range(2)]
    try:
        _wait_for(lambda: _labelled(pg_url) == count and _queue_depth(queue_url) == 0)
    finally:
        _stop(survivors)
    assert _results_per_media(pg_url) == [1] * count


def test_sigterm_finishes_in_flight_work_then_exits_cleanly(
    pg_url: str, put: Any, queue_url: str, rekognition_double: Any
) -> None:
    rekognition_double.latency_s = 1.5
    put(f"{PREFIX}slow.jpg", _image(1))
    worker = _spawn(pg_url, queue_url)
    _wait_for(lambda: rekognition_double.count("DetectLabels") == 1)
    (report,) = _stop([worker])
    assert report["stopped_by"] == "SIGTERM"
    assert report["labelled"] == 1
    assert _labelled(pg_url) == 1
    assert _queue_depth(queue_url) == 0


def test_sigterm_stops_an_idle_worker_within_two_seconds(pg_url: str, queue_url: str) -> None:
    worker = _spawn(pg_url, queue_url, "--wait-time", "20")  # SQS's longest long poll
    _wait_for(lambda: _queue_depth(queue_url) == 0)  # the TestEvent is settled: idle now
    time.sleep(1.0)  # well inside a 20 s long poll
    worker.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    out, err = worker.communicate(timeout=2.0)  # the bound: raises if it takes longer
    assert time.monotonic() - sent < 2.0
    assert worker.returncode == 0, err[-3000:]
    assert json.loads(out)["stopped_by"] == "SIGTERM"


def _claimed_by(db_url: str, pid: int) -> int:
    _, sessions = open_catalogue(db_url)
    with sessions() as session:
        return int(
            session.execute(
                select(func.count()).select_from(Media).where(Media.claimed_by.like(f"%:{pid}:%"))
            ).scalar_one()
        )


def test_sigkill_of_one_of_three_workers_everything_labelled_once_within_three_timeouts(
    pg_url: str, put: Any, queue_url: str, rekognition_double: Any
) -> None:
    visibility_s = 5
    boto3.client("sqs", region_name=REGION).set_queue_attributes(
        QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(visibility_s)}
    )
    count = 18
    rekognition_double.latency_s = 1.0
    for i in range(count):
        put(f"{PREFIX}img-{i:03d}.jpg", _image(i))
    workers = [_spawn(pg_url, queue_url, "--concurrency", "4") for _ in range(3)]
    victim, survivors = workers[0], workers[1:]
    try:
        _wait_for(lambda: _claimed_by(pg_url, victim.pid) > 0)
        victim.kill()  # SIGKILL, and not reaped yet: its claims name a zombie
        killed = time.monotonic()
        _wait_for(lambda: _labelled(pg_url) == count, timeout=3 * visibility_s)
        recovered_s = time.monotonic() - killed
        _wait_for(lambda: _queue_depth(queue_url) == 0, timeout=3 * visibility_s)
    finally:
        victim.kill()
        victim.communicate(timeout=30)
        reports = _stop(survivors)
    assert recovered_s < 3 * visibility_s
    assert _results_per_media(pg_url) == [1] * count
    assert all(r["visibility_timeout_s"] == visibility_s for r in reports)


def test_a_video_uploaded_into_a_worker_only_deployment_is_labelled_with_moments(
    pg_url: str, put: Any, queue_url: str, rekognition_double: Any
) -> None:
    put(f"{PREFIX}clip.mp4", car_video())
    worker = _spawn(pg_url, queue_url, "--poll-interval", "0.05")
    try:
        _wait_for(lambda: _labelled(pg_url) == 1 and _queue_depth(queue_url) == 0)
    finally:
        (report,) = _stop([worker])
    assert _moments(pg_url) > 0
    assert rekognition_double.count("StartLabelDetection") == 1
    assert report["labelled"] == 1
    assert report["video_jobs"]["started"] == 1


def _moments(db_url: str) -> int:
    _, sessions = open_catalogue(db_url)
    with sessions() as session:
        return int(session.execute(select(func.count()).select_from(VideoMoment)).scalar_one())


def _stored_job(db_url: str) -> str | None:
    _, sessions = open_catalogue(db_url)
    with sessions() as session:
        return session.execute(select(Media.job_id)).scalar_one_or_none()


def test_a_killed_workers_video_job_is_resumed_by_the_next_worker_not_started_again(
    pg_url: str, put: Any, queue_url: str, rekognition_double: Any
) -> None:
    rekognition_double.video_polls = 10**6  # the job runs until the test says otherwise
    put(f"{PREFIX}clip.mp4", car_video())
    first = _spawn(pg_url, queue_url, "--poll-interval", "0.05")
    try:
        # Once the job is stored the message is done with: it is deleted, the job polled.
        _wait_for(lambda: _stored_job(pg_url) is not None and _queue_depth(queue_url) == 0)
        _wait_for(lambda: rekognition_double.count("GetLabelDetection") > 0)
    finally:
        first.kill()
        first.communicate(timeout=30)
    rekognition_double.video_polls = 0
    for job in rekognition_double.jobs.values():
        job["polls_left"] = 0
    second = _spawn(pg_url, queue_url, "--poll-interval", "0.05")
    try:
        _wait_for(lambda: _labelled(pg_url) == 1)
    finally:
        (report,) = _stop([second])
    assert rekognition_double.count("StartLabelDetection") == 1
    assert report["video_jobs"] == {"started": 0, "resumed": 1, "completions": 0}
    assert _moments(pg_url) > 0


def test_with_an_sns_topic_the_worker_collects_jobs_from_their_completion_messages(
    pg_url: str, put: Any, queue_url: str, rekognition_double: Any
) -> None:
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="AmazonRekognitionJobs")["TopicArn"]
    queue_arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    rekognition_double.video_polls = 10**6  # only the completion message ends it
    put(f"{PREFIX}clip.mp4", car_video())
    worker = _spawn(
        pg_url,
        queue_url,
        "--notification-topic-arn",
        topic,
        "--role-arn",
        "arn:aws:iam::123456789012:role/RekognitionSNS",
        "--poll-interval",
        "0.05",
    )
    try:
        _wait_for(lambda: _stored_job(pg_url) is not None and _queue_depth(queue_url) == 0)
        time.sleep(0.5)
        assert rekognition_double.count("GetLabelDetection") == 0  # started, and not polled
        assert rekognition_double.complete_jobs()
        _wait_for(lambda: _labelled(pg_url) == 1 and _queue_depth(queue_url) == 0)
    finally:
        (report,) = _stop([worker])
    assert rekognition_double.count("GetLabelDetection") == 1  # the result, read once
    assert rekognition_double.count("StartLabelDetection") == 1
    assert report["video_jobs"]["completions"] == 1
    assert _moments(pg_url) > 0
