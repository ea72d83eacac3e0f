"""`catalog notify setup`: point a bucket's S3 event notifications for a prefix at an SQS queue.

The bucket's notification configuration is one document (queues, topics, Lambda functions,
EventBridge): it is read, our queue configuration is added when an equivalent one is not there
yet, and the whole document is written back, so every other notification is kept. The queue's
access policy gets a statement letting S3 (this bucket only) send to it, since S3 refuses a
destination it cannot write to. Running it again changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from catalog.aws.clients import AWSClients
from catalog.aws.errors import error_code, error_message, translate_error
from catalog.errors import AWSError, UsageError
from catalog.uris import MediaURI

EVENTS = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
_CONFIG_KEYS = (
    "TopicConfigurations",
    "QueueConfigurations",
    "LambdaFunctionConfigurations",
    "EventBridgeConfiguration",
)


@dataclass(frozen=True)
class NotifySetupReport:
    """What `notify setup` found and changed."""

    bucket: str
    prefix: str
    queue_arn: str
    configuration_id: str
    notification_added: bool
    queue_policy_updated: bool


def _prefix_of(config: dict[str, Any]) -> str | None:
    rules = (config.get("Filter") or {}).get("Key", {}).get("FilterRules") or []
    for rule in rules:
        if str(rule.get("Name", "")).lower() == "prefix":
            return str(rule.get("Value", ""))
    return "" if not rules else None


def _covers(config: dict[str, Any], queue_arn: str, prefix: str) -> bool:
    """True when an existing queue configuration already sends our events for the prefix."""
    if config.get("QueueArn") != queue_arn or _prefix_of(config) != prefix:
        return False
    rules = (config.get("Filter") or {}).get("Key", {}).get("FilterRules") or []
    if any(str(r.get("Name", "")).lower() == "suffix" and r.get("Value") for r in rules):
        return False
    events = set(config.get("Events") or [])
    return all(e in events for e in EVENTS)


def configuration_id(bucket: str, prefix: str, queue_arn: str) -> str:
    """A stable Id for our queue configuration."""
    digest = hashlib.sha256(f"{bucket}/{prefix}|{queue_arn}".encode()).hexdigest()[:12]
    return f"catalog-{digest}"


def _queue_policy_statement(bucket: str, queue_arn: str, account: str) -> dict[str, Any]:
    """S3 may send this bucket's events, and only for a bucket `account` owns (AWS's advice:
    aws:SourceArn alone lets a same-named bucket in another account send once this is deleted)."""
    partition = queue_arn.split(":")[1] if queue_arn.count(":") >= 5 else "aws"
    return {
        "Sid": f"catalog-s3-{bucket}"[:100],
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:s3:::{bucket}"},
            "StringEquals": {"aws:SourceAccount": account},
        },
    }


def _bucket_account(clients: AWSClients, queue_arn: str) -> str:
    """The account that owns the bucket: the caller's (who may configure its notifications)."""
    try:
        return str(clients.client("sts").get_caller_identity()["Account"])
    except (ClientError, BotoCoreError, KeyError):
        return queue_arn.split(":")[4]  # the queue's account, the usual same-account set-up


def _ensure_queue_policy(
    sqs: Any, queue_url: str, bucket: str, queue_arn: str, account: str
) -> bool:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])
    raw = (attributes.get("Attributes") or {}).get("Policy")
    policy: dict[str, Any] = json.loads(raw) if raw else {"Version": "2012-10-17"}
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    wanted = _queue_policy_statement(bucket, queue_arn, account)
    if wanted in statements:
        return False
    # Ours from an earlier version (no aws:SourceAccount) is replaced, not duplicated.
    policy["Statement"] = [s for s in statements if s.get("Sid") != wanted["Sid"]] + [wanted]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    return True


def setup_notifications(
    uri: MediaURI, queue_url: str, *, clients: AWSClients, queue_policy: bool = True
) -> NotifySetupReport:
    """Send the prefix's ObjectCreated/ObjectRemoved events to the queue (idempotent)."""
    if not uri.is_s3:
        raise UsageError(f"{uri} is not an s3:// URI")
    if not queue_url.startswith(("https://", "http://")):
        raise UsageError(f"'{queue_url}' is not an SQS queue URL (https://sqs...)")
    sqs = clients.client("sqs")
    s3 = clients.s3
    try:
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        queue_arn = str(arn["Attributes"]["QueueArn"])
    except (ClientError, BotoCoreError) as exc:
        if error_code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise AWSError(f"no such queue {queue_url}", error_code(exc)) from exc
        raise translate_error(exc, f"reading the queue {queue_url}") from exc
    policy_updated = False
    try:
        if queue_policy:
            account = _bucket_account(clients, queue_arn)
            policy_updated = _ensure_queue_policy(sqs, queue_url, uri.bucket, queue_arn, account)
    except (ClientError, BotoCoreError) as exc:
        raise translate_error(exc, f"updating the access policy of {queue_url}") from exc
    config_id = configuration_id(uri.bucket, uri.key, queue_arn)
    try:
        current = s3.get_bucket_notification_configuration(Bucket=uri.bucket)
        document = {k: current[k] for k in _CONFIG_KEYS if k in current}
        queues = list(document.get("QueueConfigurations") or [])
        if any(_covers(config, queue_arn, uri.key) for config in queues):
            return NotifySetupReport(
                uri.bucket, uri.key, queue_arn, config_id, False, policy_updated
            )
        entry: dict[str, Any] = {"Id": config_id, "QueueArn": queue_arn, "Events": list(EVENTS)}
        if uri.key:
            entry["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": uri.key}]}}
        document["QueueConfigurations"] = [c for c in queues if c.get("Id") != config_id] + [entry]
        s3.put_bucket_notification_configuration(
            Bucket=uri.bucket, NotificationConfiguration=document
        )
    except ClientError as exc:
        if error_code(exc) == "InvalidArgument":
            raise AWSError(
                f"S3 refused the notification for {uri}: {error_message(exc)} (an overlapping "
                "prefix may already send these events elsewhere)",
                error_code(exc),
            ) from exc
        raise translate_error(exc, f"configuring notifications on s3://{uri.bucket}") from exc
    except BotoCoreError as exc:
        raise translate_error(exc, f"configuring notifications on s3://{uri.bucket}") from exc
    return NotifySetupReport(uri.bucket, uri.key, queue_arn, config_id, True, policy_updated)
