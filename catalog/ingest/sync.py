"""`run_sync`: one sync of an S3 prefix or a local folder, assembled from its parts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import UsageError
from catalog.ingest.pipeline import SyncPipeline
from catalog.ingest.types import EventHandler, SyncOptions, SyncReport, no_events
from catalog.labelling.factory import (
    DEFAULT_TPS,
    LOCAL,
    build_labeller,
    build_text_reader,
    default_labeller,
)
from catalog.labelling.features import TEXT
from catalog.labelling.rekognition_image import LABELLER_NAME as REKOGNITION
from catalog.sources import Source
from catalog.uris import MediaURI

if TYPE_CHECKING:
    from catalog.aws.clients import AWSClients


def run_sync(
    uri: MediaURI,
    *,
    sessions: sessionmaker[Session],
    clients: AWSClients | None,
    options: SyncOptions,
    tps: float | None = DEFAULT_TPS,
    on_event: EventHandler = no_events,
    labeller: str | None = None,
    model_path: str | Path | None = None,
    classes_path: str | Path | None = None,
    notify_run: Sequence[str] = (),
) -> SyncReport:
    """Sync one S3 prefix or local folder into the catalogue and return what happened.

    The labeller defaults to Rekognition for S3 and to the local (OpenCV) labeller for folders;
    a folder labelled by Rekognition sends each image's bytes. Alerts run beside the sync and
    what it committed is delivered before it returns; `notify_run` targets get one message
    with the finished run's summary.
    """
    choice = labeller or default_labeller(uri.is_s3)
    chosen = build_labeller(
        choice,
        clients=clients,
        min_confidence=options.min_confidence,
        max_labels=options.max_labels,
        tps=tps,
        model_path=model_path,
        classes_path=classes_path,
        dry_run=options.dry_run,
    )
    if choice == LOCAL:
        # CPU-bound: more threads than cores only adds memory.
        options = replace(options, concurrency=min(options.concurrency, os.cpu_count() or 1))
    source: Source
    if uri.is_s3:
        if clients is None:
            raise UsageError("an S3 sync needs AWS clients")
        from catalog.sources.s3 import S3Source

        source = S3Source(clients.s3, uri.bucket, uri.key)
    else:
        from catalog.sources.local import LocalSource

        source = LocalSource(
            uri.key,
            include_hidden=options.include_hidden,
            follow_outside_links=options.follow_outside_links,
        )
    video_step = None
    if options.videos and uri.is_s3 and choice == REKOGNITION and clients is not None:
        from catalog.ingest.videos import make_video_phase

        video_step = make_video_phase(clients, options)
    text_reader = None
    if TEXT in options.features:
        text_reader = build_text_reader(choice, clients=clients, tps=tps)
    pipeline = SyncPipeline(
        source, chosen, sessions, options, on_event, video_step=video_step, text_reader=text_reader
    )
    if video_step is not None:
        # Videos are claimed like images, so a sync and a worker never poll the same job.
        video_step.claim_owner = pipeline.claim_owner
        video_step.claim_lease_s = pipeline.claim_lease_s
    if options.dry_run:
        return pipeline.run()
    from catalog.alerts.dispatch import AlertDispatcher
    from catalog.alerts.runs import queue_run_notice

    with AlertDispatcher(sessions, clients):
        report = pipeline.run()
        if notify_run:
            queue_run_notice(sessions, report, notify_run)
    return report
