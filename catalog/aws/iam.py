"""`catalog iam-policy`: the least-privilege IAM policy this tool needs for one S3 prefix.

Listing needs s3:ListBucket on the bucket (unconditioned: HeadBucket, which sync calls first, is
authorised by ListBucket and carries no prefix); reading objects, HeadObject and Rekognition's
own reads of them need s3:GetObject on the prefix; the Rekognition label operations act on no
resource and take "*"; a queue worker (or a Lambda fed by SQS) needs to receive, delete and
extend the visibility of messages, and read the queue's attributes.
"""

from __future__ import annotations

import re
from typing import Any

from catalog.errors import UsageError
from catalog.uris import MediaURI

_QUEUE_URL_RE = re.compile(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(\d{12})/([^/]+)$")
_QUEUE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$")

SQS_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
)
REKOGNITION_ACTIONS = (
    "rekognition:DetectLabels",
    "rekognition:StartLabelDetection",
    "rekognition:GetLabelDetection",
)


def queue_arn(value: str) -> str:
    """An SQS queue ARN from an ARN or a queue URL (https://sqs.REGION.amazonaws.com/ID/NAME)."""
    if _QUEUE_ARN_RE.match(value):
        return value
    match = _QUEUE_URL_RE.match(value)
    if match:
        region, account, name = match.groups()
        partition = "aws-cn" if ".amazonaws.com.cn/" in value else partition_for_region(region)
        return f"arn:{partition}:sqs:{region}:{account}:{name}"
    raise UsageError(
        f"'{value}' is not an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME) or queue URL"
    )


PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


def partition_for_region(region: str | None) -> str:
    """The ARN partition of a region: aws-cn for China, aws-us-gov for GovCloud, else aws."""
    if region and region.startswith("cn-"):
        return "aws-cn"
    if region and region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def escape_arn_pattern(text: str) -> str:
    """`text` matched literally in an IAM resource ARN: $, * and ? become ${$}, ${*}, ${?}."""
    return re.sub(r"[$*?]", lambda match: "${" + match.group(0) + "}", text)


def iam_policy(
    uri: MediaURI,
    queue: str | None = None,
    *,
    partition: str | None = None,
    region: str | None = None,
    transcode_prefix: str | None = None,
) -> dict[str, Any]:
    """The IAM policy document (as a dict) for syncing `uri` and, with a queue, for workers.

    The partition is `partition`, else the queue ARN's, else the region's. The prefix is
    escaped, so a key holding * or ? grants only itself. With `transcode_prefix`, a statement
    lets `sync --transcode` write its copies there.
    """
    if not uri.is_s3:
        raise UsageError(f"{uri} is not an s3:// URI")
    arn_queue = queue_arn(queue) if queue else None
    if partition is None:
        partition = arn_queue.split(":")[1] if arn_queue else partition_for_region(region)
    if partition not in PARTITIONS:
        raise UsageError(f"'{partition}' is not an AWS partition; use {', '.join(PARTITIONS)}")
    bucket_arn = f"arn:{partition}:s3:::{uri.bucket}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ListThePrefix",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": bucket_arn,
        },
        {
            "Sid": "ReadTheObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": f"{bucket_arn}/{escape_arn_pattern(uri.key)}*",
        },
        {
            "Sid": "LabelWithRekognition",
            "Effect": "Allow",
            "Action": list(REKOGNITION_ACTIONS),
            "Resource": "*",
        },
    ]
    if transcode_prefix is not None:
        statements.append(
            {
                "Sid": "WriteTranscodedCopies",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": f"{bucket_arn}/{escape_arn_pattern(transcode_prefix)}*",
            }
        )
    if arn_queue:
        statements.append(
            {
                "Sid": "ConsumeS3Events",
                "Effect": "Allow",
                "Action": list(SQS_ACTIONS),
                "Resource": arn_queue,
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}
