"""`catalog iam-policy`: the least-privilege policy JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest


def test_policy_for_a_prefix_without_a_queue(invoke: Any) -> None:
    result = invoke("iam-policy", "s3://media-library/photos/", catch_exceptions=False)
    assert result.exit_code == 0
    policy = json.loads(result.stdout)
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListThePrefix",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": "arn:aws:s3:::media-library",
            },
            {
                "Sid": "ReadTheObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": "arn:aws:s3:::media-library/photos/*",
            },
            {
                "Sid": "LabelWithRekognition",
                "Effect": "Allow",
                "Action": [
                    "rekognition:DetectLabels",
                    "rekognition:StartLabelDetection",
                    "rekognition:GetLabelDetection",
                ],
                "Resource": "*",
            },
        ],
    }


@pytest.mark.parametrize(
    "queue",
    [
        "arn:aws:sqs:eu-west-1:123456789012:media-events",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/media-events",
    ],
)
def test_policy_with_a_queue_grants_only_the_consumer_actions(invoke: Any, queue: str) -> None:
    result = invoke("iam-policy", "s3://media-library", "--queue", queue, catch_exceptions=False)
    statements = json.loads(result.stdout)["Statement"]
    assert statements[1]["Resource"] == "arn:aws:s3:::media-library/*"
    assert statements[-1] == {
        "Sid": "ConsumeS3Events",
        "Effect": "Allow",
        "Action": [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
        ],
        "Resource": "arn:aws:sqs:eu-west-1:123456789012:media-events",
    }


@pytest.mark.parametrize(
    "args", [["file:///tmp/x"], ["s3://media-library/", "--queue", "media-events"]]
)
def test_bad_arguments_are_one_error_line(invoke: Any, args: list[str]) -> None:
    result = invoke("iam-policy", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")


def test_wildcards_in_the_prefix_are_matched_literally(invoke: Any) -> None:
    result = invoke("iam-policy", "s3://media-library/a*b?$/", catch_exceptions=False)
    statement = json.loads(result.stdout)["Statement"][1]
    assert statement["Resource"] == "arn:aws:s3:::media-library/a${*}b${?}${$}/*"


@pytest.mark.parametrize(
    ("args", "partition"),
    [
        (["--region", "cn-north-1"], "aws-cn"),
        (["--region", "us-gov-west-1"], "aws-us-gov"),
        (["--region", "eu-west-1"], "aws"),
        (
            ["iam-policy", "--queue", "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q"],
            "aws-us-gov",
        ),
        (["iam-policy", "--partition", "aws-cn"], "aws-cn"),
    ],
)
def test_the_partition_follows_the_region_the_queue_or_the_option(
    invoke: Any, args: list[str], partition: str
) -> None:
    if args[0] == "iam-policy":
        result = invoke(*args, "s3://media-library/p/", catch_exceptions=False)
    else:
        result = invoke(*args, "iam-policy", "s3://media-library/p/", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    resources = [s["Resource"] for s in json.loads(result.stdout)["Statement"]]
    assert resources[0] == f"arn:{partition}:s3:::media-library"


def test_transcode_adds_put_object_on_the_copies_prefix_only_when_asked(invoke: Any) -> None:
    plain = json.loads(invoke("iam-policy", "s3://media-library/p/").stdout)
    assert not any("s3:PutObject" in s["Action"] for s in plain["Statement"])
    result = invoke("iam-policy", "s3://media-library/p/", "--transcode", catch_exceptions=False)
    (put,) = [s for s in json.loads(result.stdout)["Statement"] if "s3:PutObject" in s["Action"]]
    assert put["Resource"] == "arn:aws:s3:::media-library/catalog-transcoded/*"
