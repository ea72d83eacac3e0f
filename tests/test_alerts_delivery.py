"""Alert delivery: moto SNS and SQS, a signed webhook that fails, a sync killed mid-delivery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from catalog.alerts.rules import add_rule
from catalog.ingest.sync import run_sync
from catalog.ingest.types import SyncOptions
from catalog.uris import parse_uri
from tests.alert_receivers import WebhookReceiver
from tests.factories import car_jpeg, make_image

ROOT = "s3://media-library/"
SECRET = "s3cr3t"


@pytest.fixture
def sns_env(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", moto_endpoint)


@pytest.fixture
def receiver() -> Any:
    hook = WebhookReceiver(secret=SECRET)
    hook.start()
    yield hook
    hook.stop()


def add(sessions: Any, name: str, query: str, *targets: str, secret: str | None = None) -> None:
    with sessions.begin() as session:
        add_rule(session, name, query, list(targets), secret=secret)


def sync(clients: Any, sessions: Any) -> Any:
    return run_sync(
        parse_uri(ROOT), sessions=sessions, clients=clients, options=SyncOptions(), tps=None
    )


def drain_queue(sqs: Any, url: str) -> list[dict[str, Any]]:
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages") or []
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_sns_and_sqs_targets_get_each_alert_once(
    sns_env: None, clients: Any, sessions: Any, put: Any
) -> None:
    sqs = boto3.client("sqs")
    sns = boto3.client("sns")
    direct = sqs.create_queue(QueueName="alerts-direct")["QueueUrl"]
    via_sns = sqs.create_queue(QueueName="alerts-via-sns")["QueueUrl"]
    via_arn = sqs.get_queue_attributes(QueueUrl=via_sns, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic = sns.create_topic(Name="catalog-alerts")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=via_arn)
    add(sessions, "cars", "Car", f"sqs:{direct}", f"sns:{topic}")
    for n in range(3):
        put(f"a/car{n}.jpg", car_jpeg(200 + n))
    put("a/plain.jpg", make_image())
    sync(clients, sessions)
    sync(clients, sessions)  # nothing new: nothing sent again
    from_queue = drain_queue(sqs, direct)
    from_topic = [json.loads(envelope["Message"]) for envelope in drain_queue(sqs, via_sns)]
    for received in (from_queue, from_topic):
        assert sorted(m["uri"] for m in received) == [
            f"s3://media-library/a/car{n}.jpg" for n in range(3)
        ]
        assert not [e for e, n in Counter(m["event_id"] for m in received).items() if n > 1]
    assert {m["event_id"] for m in from_queue} == {m["event_id"] for m in from_topic}


def test_a_failing_webhook_keeps_alerts_queued_then_delivers_them_signed(
    clients: Any, sessions: Any, put: Any, receiver: WebhookReceiver, invoke: Any
) -> None:
    add(sessions, "cars", "Car", receiver.url, secret=SECRET)
    receiver.mode = "fail"
    put("a/car.jpg", car_jpeg())
    put("a/car2.jpg", car_jpeg(240))
    first = invoke("sync", ROOT, "--no-progress")
    assert first.exit_code == 0, first.output  # a target that is down does not fail the sync
    (rule,) = json.loads(invoke("alerts", "list", "--format", "json").stdout)
    assert rule["backlog"] == 2
    assert "HTTP 500" in rule["last_error"]
    assert receiver.accepted == []
    receiver.mode = "ok"
    time.sleep(1.5)  # past the first backoff step
    second = invoke("sync", ROOT, "--no-progress")
    assert second.exit_code == 0, second.output
    assert sorted(p["uri"] for p in receiver.accepted) == [
        "s3://media-library/a/car.jpg",
        "s3://media-library/a/car2.jpg",
    ]
    assert receiver.bad_signatures == 0 and receiver.duplicates() == []
    (rule,) = json.loads(invoke("alerts", "list", "--format", "json").stdout)
    assert (rule["backlog"], rule["delivered"], rule["last_error"]) == (0, 2, None)


def test_a_wrong_secret_is_refused_by_the_receiver(
    clients: Any, sessions: Any, put: Any, receiver: WebhookReceiver
) -> None:
    add(sessions, "cars", "Car", receiver.url, secret="not-the-secret")
    put("a/car.jpg", car_jpeg())
    sync(clients, sessions)
    assert receiver.bad_signatures >= 1 and receiver.accepted == []


def test_sync_killed_between_commit_and_delivery_delivers_on_the_next_run(
    aws_env: dict[str, str],
    clients: Any,
    sessions: Any,
    db_url: str,
    put: Any,
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    add(sessions, "cars", "Car", receiver.url, secret=SECRET)
    put("a/car.jpg", car_jpeg())
    receiver.mode = "hang"  # the first delivery never gets an answer
    env = {**os.environ, **aws_env}
    process = subprocess.Popen(
        [sys.executable, "-m", "catalog", "--db", db_url, "sync", ROOT, "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert receiver.arrived.wait(60), "the sync never tried to deliver"
        process.send_signal(signal.SIGKILL)  # committed, sent, not yet marked delivered
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    assert receiver.accepted == []
    receiver.mode = "ok"
    report = sync(clients, sessions)
    assert report.unchanged == 1
    assert [p["uri"] for p in receiver.accepted] == ["s3://media-library/a/car.jpg"]
    sync(clients, sessions)
    assert len(receiver.accepted) == 1 and receiver.duplicates() == []
