"""`handler(event, context)`: S3 event notifications processed in AWS Lambda.

Deploy the package with `catalog.aws_lambda.handler` as the function's handler and trigger it
with the bucket's notifications directly, or with an SQS queue (then enable
ReportBatchItemFailures: only the failed messages return to the queue). Configuration comes
from environment variables:

- CATALOG_DATABASE_URL (required in practice: a PostgreSQL URL; SQLite on /tmp is per-container)
- CATALOG_MIN_CONFIDENCE (default 50), CATALOG_MAX_LABELS (default none)
- CATALOG_TPS (Rekognition requests per second per container, default no cap)
- CATALOG_FEATURES (labels, or labels,text to read the text in images too; default labels)
- CATALOG_CLAIM_LEASE_S (seconds an object stays claimed, default 900: Lambda's longest run)

The engine, clients and labeller are built on the first invocation and reused while the
container lives. Before an invocation returns it delivers the alerts it committed (and any
left queued by earlier ones), retrying a failing target for at most ALERT_DRAIN_S.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from catalog.aws.clients import AWSClients
from catalog.config import normalise_database_url
from catalog.errors import MalformedEventError
from catalog.ingest.pipeline import SyncPipeline
from catalog.ingest.s3_events import EventApplier, ObjectEvent, parse_message, parse_records
from catalog.ingest.types import SyncOptions
from catalog.labelling.factory import build_labeller, build_text_reader
from catalog.labelling.features import TEXT, parse_features
from catalog.labelling.rekognition_image import LABELLER_NAME as REKOGNITION
from catalog.sources.s3 import S3Source

log = logging.getLogger(__name__)

_applier: EventApplier | None = None
_alert_clients: AWSClients | None = None
ALERT_DRAIN_S = 2.0  # how long an invocation waits to retry an alert whose target failed


def build_applier(environ: dict[str, str] | None = None) -> EventApplier:
    """An EventApplier configured from the environment (CATALOG_*)."""
    from catalog.store.engine import open_catalogue

    env = dict(os.environ if environ is None else environ)
    _, sessions = open_catalogue(normalise_database_url(env.get("CATALOG_DATABASE_URL")))
    min_confidence = float(env.get("CATALOG_MIN_CONFIDENCE") or 50.0)
    max_labels = int(env["CATALOG_MAX_LABELS"]) if env.get("CATALOG_MAX_LABELS") else None
    tps = float(env["CATALOG_TPS"]) if env.get("CATALOG_TPS") else None
    lease_s = float(env.get("CATALOG_CLAIM_LEASE_S") or 900.0)
    clients = AWSClients()
    features = parse_features(env.get("CATALOG_FEATURES") or None)
    options = SyncOptions(min_confidence=min_confidence, max_labels=max_labels, features=features)
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

    def make_pipeline(source: S3Source) -> SyncPipeline:
        pipeline = SyncPipeline(source, labeller, sessions, options, text_reader=text_reader)
        pipeline.claim_lease_s = lease_s
        return pipeline

    return EventApplier(clients.s3, sessions, make_pipeline)


def _get_applier() -> EventApplier:
    global _applier
    if _applier is None:
        _applier = build_applier()
    return _applier


def reset() -> None:
    """Forget the cached configuration (the next invocation reads the environment again)."""
    global _applier, _alert_clients
    _applier = None
    _alert_clients = None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Process one Lambda invocation: S3 records directly, or SQS messages carrying them.

    For SQS batches returns {"batchItemFailures": [...]} naming the messages to retry (ones
    claimed by another process right now, or that failed); a malformed message is reported
    as failed too, so the queue's redrive policy deals with it. For direct S3 invocations an
    object that cannot be settled raises, so Lambda's own retry runs it again.
    """
    records = event.get("Records") or []
    try:
        if records and all(r.get("eventSource") == "aws:sqs" for r in records):
            return _handle_sqs(records)
        events: list[ObjectEvent] = parse_message(event)
        if not _get_applier().apply_all(events):
            raise RuntimeError("an object is claimed by another process; retry later")
        return {"processed": len(events)}
    finally:
        _deliver_alerts()


def _deliver_alerts() -> None:
    """Deliver the alerts this invocation committed (and any left from earlier ones)."""
    from catalog.alerts.dispatch import AlertDispatcher

    global _alert_clients
    if _applier is None:
        return
    if _alert_clients is None:
        _alert_clients = AWSClients()
    AlertDispatcher(_applier.sessions, _alert_clients).flush(drain_s=ALERT_DRAIN_S)


def _handle_sqs(records: list[dict[str, Any]]) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    applier = _get_applier()
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            settled = applier.apply_all(parse_message(record.get("body") or ""))
        except MalformedEventError as exc:
            log.warning("message %s is not an S3 event (%s); left to redrive", message_id, exc)
            settled = False
        except Exception:  # this message fails; the rest of the batch still counts
            log.exception("message %s failed", message_id)
            settled = False
        if not settled:
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


__all__ = ["build_applier", "handler", "parse_records", "reset"]
