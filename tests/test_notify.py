"""`catalog notify setup`: adds the queue notification, keeps the others, is idempotent."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.conftest import REGION


@pytest.fixture
def sqs(aws_env: dict[str, str]) -> Any:
    return boto3.client("sqs", region_name=REGION)


def _arn(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def test_setup_adds_the_queue_notification_and_keeps_the_others(
    invoke: Any, s3: Any, sqs: Any, bucket: str
) -> None:
    other = sqs.create_queue(QueueName="other")["QueueUrl"]
    ours = sqs.create_queue(QueueName="ours")["QueueUrl"]
    existing = {
        "Id": "thumbnails",
        "QueueArn": _arn(sqs, other),
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "thumbs/"}]}},
    }
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [existing]}
    )
    result = invoke(
        "notify",
        "setup",
        f"s3://{bucket}/photos/",
        "--queue",
        ours,
        "--format",
        "json",
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["notification_added"] is True and data["queue_policy_updated"] is True
    configs = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert [c["Id"] for c in configs] == ["thumbnails", data["configuration_id"]]
    added = configs[1]
    assert added["QueueArn"] == _arn(sqs, ours)
    assert sorted(added["Events"]) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    assert added["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "photos/"}]
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=ours, AttributeNames=["Policy"])["Attributes"]["Policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    account = _arn(sqs, ours).split(":")[4]  # moto's caller is the queue's account
    assert statement["Condition"] == {
        "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"},
        "StringEquals": {"aws:SourceAccount": account},
    }


def test_an_older_statement_without_the_source_account_is_replaced(
    invoke: Any, sqs: Any, bucket: str
) -> None:
    url = sqs.create_queue(QueueName="ours")["QueueUrl"]
    arn = _arn(sqs, url)
    old = {
        "Sid": f"catalog-s3-{bucket}",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": arn,
        "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
    }
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [old]})},
    )
    result = invoke("notify", "setup", f"s3://{bucket}/photos/", "--queue", url)
    assert result.exit_code == 0, result.output
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": arn.split(":")[4]}


def test_setup_twice_changes_nothing(invoke: Any, s3: Any, sqs: Any, bucket: str) -> None:
    url = sqs.create_queue(QueueName="ours")["QueueUrl"]
    first = invoke("notify", "setup", f"s3://{bucket}/photos/", "--queue", url)
    before = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    second = invoke("notify", "setup", f"s3://{bucket}/photos/", "--queue", url, "--format", "json")
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert json.loads(second.stdout)["notification_added"] is False
    assert json.loads(second.stdout)["queue_policy_updated"] is False
    assert s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"] == before
    assert (
        "already go to"
        in invoke("notify", "setup", f"s3://{bucket}/photos/", "--queue", url).stderr
    )


def test_setup_with_a_missing_queue_is_one_error_line(
    invoke: Any, bucket: str, aws_env: Any
) -> None:
    result = invoke(
        "notify", "setup", f"s3://{bucket}/p/", "--queue", "http://127.0.0.1:1/123456789012/nope"
    )
    assert result.exit_code == 2
    # (The in-process moto server's request log may share the captured stderr; ours is the end.)
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: no such queue http://127.0.0.1:1/123456789012/nope"
    )
