"""Alerts from the other runners: a queue worker delivers while it runs, Lambda before it returns."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from catalog.alerts.rules import add_rule
from catalog.aws.clients import AWSClients
from catalog.aws.notify import setup_notifications
from catalog.ingest import aws_lambda
from catalog.ingest.types import SyncOptions
from catalog.ingest.worker import Worker, WorkerOptions
from catalog.store.engine import open_catalogue
from catalog.uris import parse_uri
from tests.conftest import REGION
from tests.factories import car_jpeg


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalog.db'}"


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_worker_delivers_alerts_while_it_runs(
    aws_env: dict[str, str], bucket: str, put: Any, db_url: str, tmp_path: Path
) -> None:
    _, sessions = open_catalogue(db_url)
    out = tmp_path / "alerts.jsonl"
    with sessions.begin() as session:
        add_rule(session, "cars", "Automobile", [f"file:{out}"])
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="media-events")["QueueUrl"]
    setup_notifications(parse_uri(f"s3://{bucket}/in/"), url, clients=AWSClients())
    options = WorkerOptions(url, concurrency=2, wait_time_s=1, visibility_timeout_s=5)
    worker = Worker(AWSClients(), sessions, options, SyncOptions())
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        put("in/car.jpg", car_jpeg())
        deadline = time.monotonic() + 30
        while not lines(out) and time.monotonic() < deadline:
            time.sleep(0.1)
        delivered_while_running = lines(out)
    finally:
        worker.stop("test")
        thread.join(30)
    assert [m["uri"] for m in delivered_while_running] == ["s3://media-library/in/car.jpg"]
    assert len(lines(out)) == 1


def test_lambda_delivers_what_it_committed_before_returning(
    aws_env: dict[str, str], bucket: str, put: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'lambda.db'}"
    monkeypatch.setenv("CATALOG_DATABASE_URL", url)
    _, sessions = open_catalogue(url)
    out = tmp_path / "alerts.jsonl"
    with sessions.begin() as session:
        add_rule(session, "cars", "Car", [f"file:{out}"])
    aws_lambda.reset()
    try:
        put("in/car.jpg", car_jpeg())
        record = {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": "in/car.jpg", "size": 1}},
        }
        assert aws_lambda.handler({"Records": [record]}) == {"processed": 1}
        (message,) = lines(out)
        assert message["uri"] == "s3://media-library/in/car.jpg" and message["rule"] == "cars"
        aws_lambda.handler({"Records": [record]})  # the same event again: unchanged, no alert
        assert len(lines(out)) == 1
    finally:
        aws_lambda.reset()
