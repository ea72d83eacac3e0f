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
from catalog.store.schema import Media
from catalog.uris import parse_uri
from tests.conftest import REGION
from tests.factories import RED, make_image

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
