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
