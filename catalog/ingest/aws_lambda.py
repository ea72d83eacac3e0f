"""`handler(event, context)`: S3 event notifications and Rekognition job completions in AWS Lambda.

Deploy the package with `catalog.aws_lambda.handler` as the function's handler and trigger it
with the bucket's notifications directly, through SNS, or with an SQS queue (then enable
ReportBatchItemFailures: only the failed messages return to the queue). Images are labelled in
the invocation. A video's job is started (and its JobId committed) and the invocation returns;
Rekognition's completion message, published to CATALOG_NOTIFICATION_TOPIC_ARN and delivered to
the function (SNS directly, or an SQS queue subscribed to the topic), makes a later invocation
collect the result. Configuration comes from environment variables:

- CATALOG_DATABASE_URL (required in practice: a PostgreSQL URL; SQLite on /tmp is per-container)
- CATALOG_MIN_CONFIDENCE (default 50), CATALOG_MAX_LABELS (default none)
- CATALOG_TPS (Rekognition requests per second per container, default no cap)
- CATALOG_FEATURES (labels, or labels,text to read the text in images too; default labels)
- CATALOG_CLAIM_LEASE_S (seconds an object stays claimed, default 900: Lambda's longest run)
- CATALOG_NOTIFICATION_TOPIC_ARN and CATALOG_ROLE_ARN (Rekognition's SNS topic and the role
  it publishes with), CATALOG_TRANSCODE (1: convert videos Rekognition cannot read),
  CATALOG_TRANSCODE_PREFIX, CATALOG_VIDEOS (0: record videos pending, start no jobs)
- CATALOG_BUCKETS, CATALOG_PREFIXES (comma-separated: events for anything else are dropped)

The engine, clients and labeller are built on the first invocation and reused while the
container lives. Before an invocation returns it delivers the alerts it committed (and any
left queued by earlier ones), retrying a failing target for at most ALERT_DRAIN_S.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from catalog.aws.clients import AWSClients
from catalog.config import normalise_database_url
from catalog.errors import MalformedEventError
from catalog.ingest.pipeline import SyncPipeline
from catalog.ingest.s3_events import (
    CREATED,
    EventApplier,
    ObjectEvent,
    Scope,
    parse_message,
    parse_records,
)
from catalog.ingest.types import SyncOptions
from catalog.ingest.video_events import EventVideos, build_event_videos, parse_job_completion
from catalog.labelling import media as media_rules
from catalog.labelling.factory import build_labeller, build_text_reader
from catalog.labelling.features import TEXT, parse_features
from catalog.labelling.rekognition_image import LABELLER_NAME as REKOGNITION
from catalog.sources.s3 import S3Source
from catalog.store.schema import KIND_VIDEO

log = logging.getLogger(__name__)

DEFAULT_WAIT_S = 60.0  # longest wait for a video's job to start when there is no context
_SAFETY_MARGIN_S = 10.0  # left of the invocation's time when giving up on a start


@dataclass
class LambdaRuntime:
    """What one container keeps between invocations: the event applier and the video side."""

    applier: EventApplier
    videos: EventVideos | None


_runtime: LambdaRuntime | None = None
_alert_clients: AWSClients | None = None
ALERT_DRAIN_S = 2.0  # how long an invocation waits to retry an alert whose target failed


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def build_runtime(environ: Mapping[str, str] | None = None) -> LambdaRuntime:
    """The applier and video side configured from the environment (CATALOG_*)."""
    from catalog.store.engine import open_catalogue

    env = dict(os.environ if environ is None else environ)
    _, sessions = open_catalogue(normalise_database_url(env.get("CATALOG_DATABASE_URL")))
    min_confidence = float(env.get("CATALOG_MIN_CONFIDENCE") or 50.0)
    max_labels = int(env["CATALOG_MAX_LABELS"]) if env.get("CATALOG_MAX_LABELS") else None
    tps = float(env["CATALOG_TPS"]) if env.get("CATALOG_TPS") else None
    lease_s = float(env.get("CATALOG_CLAIM_LEASE_S") or 900.0)
    clients = AWSClients()
    features = parse_features(env.get("CATALOG_FEATURES") or None)
    options = SyncOptions(
        min_confidence=min_confidence,
        max_labels=max_labels,
        features=features,
        videos=env.get("CATALOG_VIDEOS", "1") != "0",
        transcode=env.get("CATALOG_TRANSCODE", "0") == "1",
        transcode_prefix=env.get("CATALOG_TRANSCODE_PREFIX") or "catalog-transcoded/",
        notification_topic_arn=env.get("CATALOG_NOTIFICATION_TOPIC_ARN") or None,
        role_arn=env.get("CATALOG_ROLE_ARN") or None,
    )
    text_reader = (
        build_text_reader(REKOGNITION, clients=clients, tps=tps) if TEXT in features else None
    )
    labeller = build_labeller(
        REKOGNITION,
        clients=clients,
        min_confidence=min_confidence,
        max_labels=max_labels,
        tps=tps,
    )
    scope = Scope(_split(env.get("CATALOG_BUCKETS")), _split(env.get("CATALOG_PREFIXES")))
    videos: EventVideos | None = None
    if options.videos:
        # Jobs are started here and collected from their completion message, never polled.
        videos = build_event_videos(
            clients, sessions, options, labeller, lease_s=lease_s, keep_polling=False, scope=scope
        )

    def make_pipeline(source: S3Source) -> SyncPipeline:
        phase = videos.phase if videos is not None else None
        pipeline = SyncPipeline(
            source, labeller, sessions, options, video_step=phase, text_reader=text_reader
        )
        pipeline.claim_lease_s = lease_s
        return pipeline

    return LambdaRuntime(EventApplier(clients.s3, sessions, make_pipeline, scope), videos)


def build_applier(environ: Mapping[str, str] | None = None) -> EventApplier:
    """An EventApplier configured from the environment (CATALOG_*)."""
    return build_runtime(environ).applier


def _get_runtime() -> LambdaRuntime:
    global _runtime
    if _runtime is None:
        _runtime = build_runtime()
    return _runtime


def reset() -> None:
    """Forget the cached configuration (the next invocation reads the environment again)."""
    global _runtime, _alert_clients
    if _runtime is not None and _runtime.videos is not None:
        _runtime.videos.phase.close()
    _runtime = None
    _alert_clients = None


def _records(event: Any) -> list[Mapping[str, Any]]:
    """The event's Records, or MalformedEventError for anything Lambda would not send."""
    if not isinstance(event, Mapping):
        raise MalformedEventError(
            "the Lambda event must be a JSON object (an S3, SNS or SQS event with Records, or "
            f"a Rekognition job completion), not {type(event).__name__}"
        )
    records = event.get("Records")
    if records is None:
        return []
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise MalformedEventError("the Lambda event's Records must be a list of JSON objects")
    return records


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """Process one Lambda invocation: S3 records, SNS records or SQS messages carrying them.

    For SQS batches returns {"batchItemFailures": [...]} naming the messages to retry (ones
    claimed by another process right now, or that failed); a malformed message is reported
    as failed too, so the queue's redrive policy deals with it. For direct S3 or SNS
    invocations, anything that cannot be settled raises, so Lambda's own retry runs it again.
    An event that is not a JSON object with a Records list raises MalformedEventError.
    """
    records = _records(event)
    try:
        return _dispatch(event, records, context)
    finally:
        _deliver_alerts()


def _deliver_alerts() -> None:
    """Deliver the alerts this invocation committed (and any left from earlier ones)."""
    from catalog.alerts.dispatch import AlertDispatcher

    global _alert_clients
    if _runtime is None:
        return
    if _alert_clients is None:
        _alert_clients = AWSClients()
    AlertDispatcher(_runtime.applier.sessions, _alert_clients).flush(drain_s=ALERT_DRAIN_S)


def _dispatch(event: Any, records: list[Mapping[str, Any]], context: Any) -> dict[str, Any]:
    if records and all(r.get("eventSource") == "aws:sqs" for r in records):
        return _handle_sqs(records, context)
    runtime = _get_runtime()
    if records and all(r.get("EventSource") == "aws:sns" for r in records):
        bodies = [str((r.get("Sns") or {}).get("Message") or "") for r in records]
        if not all(_handle_body(runtime, body, context) for body in bodies):
            raise RuntimeError("a message could not be settled yet; Lambda will retry it")
        return {"processed": len(bodies)}
    completion = parse_job_completion(event) if not records else None
    if completion is not None:
        if not _handle_body(runtime, dict(event), context):
            raise RuntimeError(f"job {completion.job_id} could not be collected yet; retry")
        return {"processed": 1}
    events: list[ObjectEvent] = parse_message(event)
    if not all(_apply(runtime, item, context) for item in events):
        raise RuntimeError("an object could not be settled yet (claimed elsewhere, or denied)")
    return {"processed": len(events)}


def _wait_s(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return DEFAULT_WAIT_S
    return max(1.0, float(remaining()) / 1000.0 - _SAFETY_MARGIN_S)


def _apply(runtime: LambdaRuntime, event: ObjectEvent, context: Any) -> bool:
    if not runtime.applier.apply(event):
        return False
    if (
        runtime.videos is not None
        and event.action == CREATED
        and media_rules.kind_of(event.key) == KIND_VIDEO
    ):
        return runtime.videos.handover(event.uri, _wait_s(context))
    return True


def _handle_body(runtime: LambdaRuntime, body: str | Mapping[str, Any], context: Any) -> bool:
    """One message: a Rekognition completion, or S3 events (raises MalformedEventError)."""
    completion = parse_job_completion(body)
    if completion is not None:
        if runtime.videos is None:
            log.warning("job %s: videos are off (CATALOG_VIDEOS=0)", completion.job_id)
            return False
        return runtime.videos.collect(completion, _wait_s(context))
    return all(_apply(runtime, event, context) for event in parse_message(body))


def _handle_sqs(records: list[Mapping[str, Any]], context: Any) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    runtime = _get_runtime()
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            settled = _handle_body(runtime, str(record.get("body") or ""), context)
        except MalformedEventError as exc:
            log.warning("message %s is not an S3 event (%s); left to redrive", message_id, exc)
            settled = False
        except Exception as exc:  # this message fails; the rest of the batch still counts
            log.warning("message %s failed: %s: %s", message_id, type(exc).__name__, exc)
            log.debug("message %s failed", message_id, exc_info=True)
            settled = False
        if not settled:
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


__all__ = ["build_applier", "build_runtime", "handler", "parse_records", "reset"]
