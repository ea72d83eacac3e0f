"""The Lambda handler: S3 notifications delivered straight to Lambda or through SQS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from catalog.ingest import aws_lambda
from catalog.store.engine import open_catalogue
from catalog.store.schema import Media
from tests.factories import car_jpeg


@pytest.fixture
def lambda_env(
    aws_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'lambda.db'}"
    monkeypatch.setenv("CATALOG_DATABASE_URL", url)
    monkeypatch.setenv("CATALOG_MIN_CONFIDENCE", "75")
    aws_lambda.reset()
    yield url
    aws_lambda.reset()


def _record(bucket: str, key: str, name: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1, "eTag": "x"}},
    }


def _statuses(url: str) -> dict[str, str]:
    _, sessions = open_catalogue(url)
    with sessions() as session:
        return {k: s for k, s in session.execute(select(Media.key, Media.status))}


def test_direct_s3_event_labels_the_object_with_the_configured_confidence(
    lambda_env: str, put: Any, bucket: str
) -> None:
    put("in/red car.jpg", car_jpeg())
    result = aws_lambda.handler({"Records": [_record(bucket, "in/red+car.jpg")]}, None)
    assert result == {"processed": 1}
    assert _statuses(lambda_env) == {"in/red car.jpg": "labelled"}
    _, sessions = open_catalogue(lambda_env)
    with sessions() as session:
        from catalog.store.schema import LabelResult

        assert session.execute(select(LabelResult.min_confidence)).scalar_one() == 75.0


def test_sqs_batch_reports_only_the_failed_messages(
    lambda_env: str, put: Any, s3: Any, bucket: str
) -> None:
    put("in/car.jpg", car_jpeg())
    put("in/gone.jpg", car_jpeg(210))
    aws_lambda.handler({"Records": [_record(bucket, "in/gone.jpg")]}, None)
    s3.delete_object(Bucket=bucket, Key="in/gone.jpg")
    sns_wrapped = {
        "Type": "Notification",
        "Message": json.dumps({"Records": [_record(bucket, "in/car.jpg")]}),
    }
    event = {
        "Records": [
            {"eventSource": "aws:sqs", "messageId": "m1", "body": json.dumps(sns_wrapped)},
            {"eventSource": "aws:sqs", "messageId": "m2", "body": "not json"},
            {
                "eventSource": "aws:sqs",
                "messageId": "m3",
                "body": json.dumps(
                    {"Records": [_record(bucket, "in/gone.jpg", "ObjectRemoved:Delete")]}
                ),
            },
            {
                "eventSource": "aws:sqs",
                "messageId": "m4",
                "body": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
            },
        ]
    }
    assert aws_lambda.handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert _statuses(lambda_env) == {"in/car.jpg": "labelled", "in/gone.jpg": "deleted"}
