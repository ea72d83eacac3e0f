"""The queue worker against moto SQS fed by real bucket notifications (in-process)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from sqlalchemy import select

from catalog.aws.clients import AWSClients
from catalog.aws.notify import setup_notifications
from catalog.ingest import indexing, worker
from catalog.ingest.types import SyncOptions
from catalog.ingest.worker import Worker, WorkerOptions, WorkerReport
from catalog.store.bitmap_build import pending_changes
from catalog.store.bitmaps import index_state
from catalog.store.engine import open_catalogue
from catalog.store.schema import Media
from catalog.uris import parse_uri
from tests.conftest import REGION
from tests.factories import car_jpeg

PREFIX = "incoming/"


@pytest.fixture
def db_url(tmp_path: Any) -> str:
    """Event handling does not depend on the backend: SQLite here; the multi-process worker
    tests (test_worker_processes.py) run on PostgreSQL."""
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture
def queue_url(aws_env: dict[str, str], bucket: str) -> str:
    """A queue receiving the bucket's events for incoming/ (its TestEvent is waiting in it)."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="media-events")["QueueUrl"]
    setup_notifications(parse_uri(f"s3://{bucket}/{PREFIX}"), url, clients=AWSClients())
    return str(url)


def _queue_depth(url: str) -> int:
    sqs = boto3.client("sqs", region_name=REGION)
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.fixture
def run_worker(db_url: str, clients: AWSClients) -> Iterator[Callable[..., WorkerReport]]:
    """run_worker(queue_url, until=predicate) runs a worker in a thread until the predicate holds."""
    _, sessions = open_catalogue(db_url)

    def _run(
        url: str, until: Callable[[], bool], timeout: float = 30.0, **opts: Any
    ) -> WorkerReport:
        options = WorkerOptions(url, concurrency=4, wait_time_s=1, visibility_timeout_s=5, **opts)
        worker = Worker(clients, sessions, options, SyncOptions())
        result: list[WorkerReport] = []
        errors: list[BaseException] = []

        def target() -> None:
            try:
                result.append(worker.run())
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        deadline = time.monotonic() + timeout
        try:
            while not until() and time.monotonic() < deadline and thread.is_alive():
                time.sleep(0.1)
        finally:
            worker.stop("test")
            thread.join(30)
        if errors:
            raise errors[0]
        return result[0]

    yield _run


def _media(db_url: str) -> dict[str, str]:
    _, sessions = open_catalogue(db_url)
    with sessions() as session:
        return {key: status for key, status in session.execute(select(Media.key, Media.status))}


def test_worker_labels_created_objects_and_ignores_the_test_event(
    db_url: str, put: Any, queue_url: str, run_worker: Any, rekognition_double: Any
) -> None:
    put(f"{PREFIX}car.jpg", car_jpeg())
    report = run_worker(queue_url, until=lambda: _queue_depth(queue_url) == 0)
    assert _media(db_url) == {f"{PREFIX}car.jpg": "labelled"}
    assert rekognition_double.count("DetectLabels") == 1
    assert report.test_events == 1
    assert report.deleted == 2  # the TestEvent and the object's event


def test_worker_decodes_plus_encoded_keys(
    db_url: str, put: Any, queue_url: str, run_worker: Any
) -> None:
    key = f"{PREFIX}summer holiday/red car+1.jpg"
    put(key, car_jpeg())
    run_worker(queue_url, until=lambda: _queue_depth(queue_url) == 0)
    assert _media(db_url) == {key: "labelled"}


def test_worker_marks_removed_objects_deleted(
    db_url: str, s3: Any, put: Any, bucket: str, queue_url: str, run_worker: Any
) -> None:
    put(f"{PREFIX}car.jpg", car_jpeg())
    run_worker(queue_url, until=lambda: _queue_depth(queue_url) == 0)
    s3.delete_object(Bucket=bucket, Key=f"{PREFIX}car.jpg")
    report = run_worker(queue_url, until=lambda: _queue_depth(queue_url) == 0)
    assert _media(db_url) == {f"{PREFIX}car.jpg": "deleted"}
    assert report.total("deleted") == 1


def test_worker_ignores_objects_outside_the_notified_prefix(
    db_url: str, put: Any, queue_url: str, run_worker: Any
) -> None:
    put("elsewhere/car.jpg", car_jpeg())
    put(f"{PREFIX}car.jpg", car_jpeg())
    run_worker(queue_url, until=lambda: _queue_depth(queue_url) == 0)
    assert _media(db_url) == {f"{PREFIX}car.jpg": "labelled"}


def test_worker_unwraps_sns_envelopes(
    db_url: str, s3: Any, bucket: str, aws_env: Any, run_worker: Any
) -> None:
    s3.put_object(Bucket=bucket, Key="sns/car.jpg", Body=car_jpeg())
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="via-sns")["QueueUrl"]
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": "sns/car.jpg", "size": 1}},
    }
    envelope = {"Type": "Notification", "Message": json.dumps({"Records": [record]})}
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(envelope))
    run_worker(url, until=lambda: _queue_depth(url) == 0)
    assert _media(db_url) == {"sns/car.jpg": "labelled"}


def test_worker_leaves_malformed_messages_to_the_redrive_policy(
    db_url: str, aws_env: Any, run_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="poison")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="this is not an event")
    caplog.set_level(logging.WARNING, logger="catalog.ingest.worker")

    def handled() -> bool:
        # Received is not enough: a worker stopped before it handles a message gives it back.
        return any("left to the redrive policy" in r.getMessage() for r in caplog.records)

    report = run_worker(url, until=handled)
    assert report.malformed >= 1
    assert report.deleted == 0
    assert _queue_depth(url) == 1


def test_worker_drops_events_older_than_the_stored_sequencer(
    db_url: str, s3: Any, bucket: str, aws_env: Any, run_worker: Any
) -> None:
    s3.put_object(Bucket=bucket, Key="seq/car.jpg", Body=car_jpeg())
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="sequenced")["QueueUrl"]

    def send(name: str, sequencer: str) -> None:
        record = {
            "eventName": name,
            "s3": {
                "bucket": {"name": bucket},
                "object": {"key": "seq/car.jpg", "sequencer": sequencer},
            },
        }
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"Records": [record]}))

    send("ObjectCreated:Put", "0055AED6DCD90281E6")
    run_worker(url, until=lambda: _queue_depth(url) == 0)
    s3.delete_object(Bucket=bucket, Key="seq/car.jpg")
    send("ObjectRemoved:Delete", "0055AED6DCD90281E5")  # older than the stored one: dropped
    run_worker(url, until=lambda: _queue_depth(url) == 0)
    assert _media(db_url) == {"seq/car.jpg": "labelled"}
    send("ObjectRemoved:Delete", "0055AED6DCD90281E7")
    run_worker(url, until=lambda: _queue_depth(url) == 0)
    assert _media(db_url) == {"seq/car.jpg": "deleted"}


def test_worker_takes_the_queues_visibility_timeout_unless_told(
    db_url: str, aws_env: Any, clients: AWSClients
) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="slow", Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
    _, sessions = open_catalogue(db_url)
    reports = []
    for override in (None, 11):
        worker = Worker(
            clients, sessions, WorkerOptions(url, visibility_timeout_s=override), SyncOptions()
        )
        threading.Timer(0.5, worker.stop).start()
        reports.append(worker.run())
    assert [r.visibility_timeout_s for r in reports] == [7, 11]


def _deny_head_object(client: Any, key: str) -> None:
    """Make S3 answer 403 to HeadObject on one key, as a bucket policy denying it would."""
    from botocore.awsrequest import AWSResponse

    class _Raw:
        def stream(self, **_kwargs: Any) -> Iterator[bytes]:
            yield b""

    def before_send(request: Any, **_kwargs: Any) -> AWSResponse | None:
        if request.method == "HEAD" and request.url.split("?")[0].endswith("/" + key):
            return AWSResponse(request.url, 403, {"x-amz-request-id": "denied"}, _Raw())
        return None

    client.meta.events.register("before-send.s3.HeadObject", before_send)


def test_a_403_on_one_object_is_that_messages_failure_not_the_workers(
    db_url: str, put: Any, bucket: str, queue_url: str, clients: AWSClients, run_worker: Any
) -> None:
    secret = f"{PREFIX}private/secret.jpg"
    _deny_head_object(clients.s3, "private/secret.jpg")
    put(secret, car_jpeg())
    put(f"{PREFIX}car.jpg", car_jpeg(220))

    def secret_seen() -> bool:
        return _media(db_url).get(secret) == "failed" and (
            _media(db_url).get(f"{PREFIX}car.jpg") == "labelled"
        )

    report = run_worker(queue_url, until=secret_seen)
    assert report.unreadable >= 1
    assert report.stopped_by == "test"  # it kept running: only the test stopped it
    _, sessions = open_catalogue(db_url)
    with sessions() as session:
        code = session.execute(select(Media.error_code).where(Media.key == secret)).scalar_one()
    assert code == "AccessDenied"
    assert _queue_depth(queue_url) == 1  # the secret's message, left to the redrive policy


@pytest.mark.parametrize(
    "body",
    [
        '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"},'
        ' "object": {"key": "k.jpg", "size": "many"}}}]}',
        '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": "b"}}]}',
        '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"},'
        ' "object": ["k.jpg"]}}]}',
        "[1, 2, 3]",
    ],
    ids=["size-not-a-number", "bucket-not-an-object", "object-not-an-object", "a-list"],
)
def test_a_malformed_event_logs_one_line_without_a_traceback(
    body: str, aws_env: Any, run_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="odd")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=body)
    with caplog.at_level("WARNING", logger="catalog"):
        report = run_worker(url, until=lambda: _has_redrive_line(caplog))
    assert report.malformed >= 1
    lines = [r for r in caplog.records if "redrive" in r.getMessage()]
    assert lines and all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)


def _has_redrive_line(caplog: pytest.LogCaptureFixture) -> bool:
    return any("redrive" in r.getMessage() for r in caplog.records)


def test_events_outside_the_bucket_and_prefix_scope_are_dropped(
    db_url: str, s3: Any, bucket: str, aws_env: Any, run_worker: Any
) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="scoped")["QueueUrl"]
    s3.create_bucket(Bucket="someone-elses")
    for target, key in (
        (bucket, "in/car.jpg"),
        (bucket, "out/car.jpg"),
        ("someone-elses", "in/x.jpg"),
    ):
        s3.put_object(Bucket=target, Key=key, Body=car_jpeg())
        record = {
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": target}, "object": {"key": key}},
        }
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"Records": [record]}))
    report = run_worker(
        url, until=lambda: _queue_depth(url) == 0, buckets=(bucket,), prefixes=("in/",)
    )
    assert _media(db_url) == {"in/car.jpg": "labelled"}
    assert report.dropped == 2
    assert report.deleted == 3


def test_a_403_on_an_object_labelled_before_keeps_its_labels(
    db_url: str, put: Any, queue_url: str, clients: AWSClients, run_worker: Any
) -> None:
    put(f"{PREFIX}car.jpg", car_jpeg())
    run_worker(queue_url, until=lambda: _media(db_url).get(f"{PREFIX}car.jpg") == "labelled")
    _deny_head_object(clients.s3, "car.jpg")
    put(f"{PREFIX}car.jpg", car_jpeg())  # the same bytes again: another event, now denied
    _, sessions = open_catalogue(db_url)
    worker = Worker(clients, sessions, WorkerOptions(queue_url, wait_time_s=1), SyncOptions())
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + 30
    while worker.applier.unreadable == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.stop("test")
    thread.join(30)
    assert worker.applier.unreadable >= 1
    assert _media(db_url) == {f"{PREFIX}car.jpg": "labelled"}


def test_worker_rebuilds_the_bitmap_index_as_changes_pile_up(
    db_url: str, put: Any, queue_url: str, run_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "INDEX_CHECK_EVERY_S", 0.2)
    monkeypatch.setattr(indexing, "REBUILD_AFTER", 2)
    _, sessions = open_catalogue(db_url)

    def indexed() -> bool:
        with sessions() as session:
            return index_state(session) == "current" and pending_changes(session) == 0

    for name in ("a.jpg", "b.jpg", "c.jpg"):
        put(f"{PREFIX}{name}", car_jpeg())
    run_worker(queue_url, until=lambda: _queue_depth(queue_url) == 0 and indexed())
    assert len(_media(db_url)) == 3
    assert indexed()  # the three new items are in the persisted bitmaps, none left to patch in
