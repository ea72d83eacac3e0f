"""The Lambda handler: S3 notifications delivered straight to Lambda or through SQS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import func, select

from catalog.errors import MalformedEventError
from catalog.ingest import aws_lambda
from catalog.store.engine import open_catalogue
from catalog.store.schema import Media, TextDetection, VideoMoment
from tests.conftest import REGION
from tests.factories import car_jpeg, car_video


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


@pytest.mark.parametrize("event", [None, [], {"Records": "abc"}, {"Records": ["abc"]}, "text"])
def test_an_event_lambda_would_never_send_raises_a_clear_error(lambda_env: str, event: Any) -> None:
    with pytest.raises(MalformedEventError, match="the Lambda event"):
        aws_lambda.handler(event, None)


def _completions_queue(monkeypatch: pytest.MonkeyPatch, name: str) -> tuple[Any, str]:
    """An SQS queue subscribed to a new SNS topic that Rekognition's job completions go to."""
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="AmazonRekognitionJobs")["TopicArn"]
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    monkeypatch.setenv("CATALOG_NOTIFICATION_TOPIC_ARN", topic)
    monkeypatch.setenv("CATALOG_ROLE_ARN", "arn:aws:iam::123456789012:role/RekognitionSNS")
    return sqs, queue


@pytest.mark.parametrize("delivery", ["sqs", "sns"])
def test_a_video_job_started_by_one_invocation_is_collected_from_its_completion_message(
    delivery: str,
    lambda_env: str,
    put: Any,
    bucket: str,
    rekognition_double: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sqs, queue = _completions_queue(monkeypatch, "job-completions")
    aws_lambda.reset()
    put("in/clip.mp4", car_video())

    started = aws_lambda.handler({"Records": [_record(bucket, "in/clip.mp4")]}, None)

    assert started == {"processed": 1}
    assert _statuses(lambda_env) == {"in/clip.mp4": "pending"}
    assert rekognition_double.count("StartLabelDetection") == 1
    assert rekognition_double.count("GetLabelDetection") == 0  # nothing polls
    rekognition_double.complete_jobs()
    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"]
    if delivery == "sqs":
        event = {
            "Records": [{"eventSource": "aws:sqs", "messageId": "c1", "body": message["Body"]}]
        }
        assert aws_lambda.handler(event, None) == {"batchItemFailures": []}
    else:
        envelope = json.loads(message["Body"])
        event = {"Records": [{"EventSource": "aws:sns", "Sns": envelope}]}
        assert aws_lambda.handler(event, None) == {"processed": 1}

    assert _statuses(lambda_env) == {"in/clip.mp4": "labelled"}
    _, sessions = open_catalogue(lambda_env)
    with sessions() as session:
        moments = session.execute(select(func.count()).select_from(VideoMoment)).scalar_one()
    assert moments > 0
    assert rekognition_double.count("GetLabelDetection") == 1  # the result, read once
    assert rekognition_double.count("StartLabelDetection") == 1


def test_a_video_with_text_is_settled_once_both_completion_messages_arrived(
    lambda_env: str,
    put: Any,
    bucket: str,
    rekognition_double: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sqs, queue = _completions_queue(monkeypatch, "text-completions")
    monkeypatch.setenv("CATALOG_FEATURES", "labels,text")
    aws_lambda.reset()
    put("in/board.mp4", car_video())
    rekognition_double.video_texts["in/board.mp4"] = [(0, "GATE 12", (0.1, 0.1, 0.5, 0.1))]

    started = aws_lambda.handler({"Records": [_record(bucket, "in/board.mp4")]}, None)

    assert started == {"processed": 1}
    assert rekognition_double.count("StartLabelDetection") == 1
    assert rekognition_double.count("StartTextDetection") == 1  # both, before the hand-over
    _, sessions = open_catalogue(lambda_env)
    with sessions() as session:
        row = session.execute(select(Media)).scalar_one()
        assert row.status == "pending" and row.job_id and row.text_job_id
    rekognition_double.complete_jobs()
    messages: list[dict[str, Any]] = []
    while len(messages) < 2:
        got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5, MaxNumberOfMessages=10)
        assert got.get("Messages"), "Rekognition announced both jobs"
        messages.extend(got["Messages"])
    records = [
        {"eventSource": "aws:sqs", "messageId": f"c{n}", "body": message["Body"]}
        for n, message in enumerate(messages)
    ]
    for record in records:  # one message per invocation, as a batch size of 1 would
        aws_lambda.handler({"Records": [record]}, None)

    assert _statuses(lambda_env) == {"in/board.mp4": "labelled"}
    with sessions() as session:
        words = session.scalars(
            select(TextDetection.text).where(TextDetection.kind == "WORD").order_by("id")
        ).all()
        moments = session.execute(select(func.count()).select_from(VideoMoment)).scalar_one()
    assert words == ["GATE", "12"]
    assert moments > 0
    assert rekognition_double.count("StartLabelDetection") == 1
    assert rekognition_double.count("StartTextDetection") == 1
