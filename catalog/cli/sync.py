"""`catalog sync`: index an S3 prefix or a local folder."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from catalog.cli.options import (
    DetailFormatOpt,
    FeaturesOpt,
    MaxLabelsOpt,
    MaxVideoJobsOpt,
    MinConfidenceOpt,
    OutputFormat,
    PollIntervalOpt,
    RoleArnOpt,
    TranscodeOpt,
    TranscodePrefixOpt,
    aws_clients,
    notification_topic_option,
    sessions,
)
from catalog.errors import EXIT_OBJECTS_FAILED


class LabellerChoice(StrEnum):
    """The labellers `--labeller` accepts."""

    rekognition = "rekognition"
    local = "local"


def sync_command(
    ctx: typer.Context,
    uri: Annotated[
        str,
        typer.Argument(
            help="What to index: s3://BUCKET[/PREFIX], a directory or file:///PATH.",
            show_default=False,
            metavar="URI",
        ),
    ],
    min_confidence: MinConfidenceOpt = 50.0,
    max_labels: MaxLabelsOpt = None,
    images: Annotated[bool, typer.Option("--images/--no-images", help="Label images.")] = True,
    videos: Annotated[
        bool, typer.Option("--videos/--no-videos", help="Record (and label) videos.")
    ] = True,
    reuse: Annotated[
        bool,
        typer.Option(
            "--reuse/--no-reuse",
            help="Copy labels from an already-labelled object with the same content (ETag and size) "
            "instead of paying Rekognition again.",
        ),
    ] = True,
    retry_failed: Annotated[
        bool, typer.Option(help="Label again the objects that failed before.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            help="Show what would be labelled and its estimated cost; call nothing billable."
        ),
    ] = False,
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="Rekognition requests in flight.")
    ] = 16,
    tps: Annotated[
        float, typer.Option(min=0, help="Most Rekognition requests started per second (0: no cap).")
    ] = 50.0,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show progress on stderr.")
    ] = True,
    output: DetailFormatOpt = OutputFormat.table,
    labeller: Annotated[
        LabellerChoice | None,
        typer.Option(
            help="Who labels: rekognition (Amazon) or local (OpenCV, offline). "
            "Default: rekognition for S3, local for a directory.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="A YOLO ONNX object detector for the local labeller (YOLOv5/v7/v8/v11 or YOLOX "
            "output; COCO classes unless --classes says otherwise).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    classes: Annotated[
        Path | None,
        typer.Option(
            help="The --model's class names, one per line.", dir_okay=False, show_default=False
        ),
    ] = None,
    max_video_jobs: MaxVideoJobsOpt = 20,
    transcode: TranscodeOpt = False,
    transcode_prefix: TranscodePrefixOpt = "catalog-transcoded/",
    notification_topic_arn: Annotated[
        str | None,
        notification_topic_option(
            "the sync then stops once every job started instead of polling them"
        ),
    ] = None,
    role_arn: RoleArnOpt = None,
    poll_interval: PollIntervalOpt = 5.0,
    notify_run: Annotated[
        list[str] | None,
        typer.Option(
            "--notify-run",
            help="Send one message with the finished run's summary (counts, failures, spend) "
            "here: sns:TOPIC_ARN, sqs:QUEUE_URL, an https:// webhook or file:PATH (repeatable).",
            show_default=False,
        ),
    ] = None,
    features: FeaturesOpt = "labels",
    include_hidden: Annotated[
        bool,
        typer.Option(
            "--include-hidden",
            help="A folder: also index hidden files and folders (.name) and system junk "
            "(@eaDir, Thumbs.db, ...), which are skipped by default.",
        ),
    ] = False,
    follow_outside_links: Annotated[
        bool,
        typer.Option(
            "--follow-outside-links",
            help="A folder: follow symbolic links that lead outside it (skipped by default).",
        ),
    ] = False,
) -> None:
    """Label every new or changed image and video under an S3 prefix or in a folder.

    Unchanged objects are never labelled again; objects gone from the source are marked deleted.
    Videos under S3 run as Rekognition jobs beside the images; an interrupted sync resumes its
    jobs. A folder is labelled offline by OpenCV unless --labeller rekognition is given.
    Exit status: 0 done, 1 some objects failed (see 'catalog failures'), 2 the run could not
    start or finish (bad URI, bucket, credentials), 130 interrupted (finished work is kept).

    Example: catalog sync s3://my-photos/2024/ --min-confidence 70 --features labels,text;
    catalog sync ./photos
    """
    from catalog.alerts.targets import parse_target
    from catalog.ingest.sync import run_sync
    from catalog.ingest.types import SyncOptions
    from catalog.labelling.features import parse_features
    from catalog.render.progress import sync_progress
    from catalog.render.views import render_sync_report
    from catalog.uris import parse_uri

    target = parse_uri(uri)
    run_targets = [parse_target(t) for t in notify_run or ()]
    options = SyncOptions(
        min_confidence=min_confidence,
        max_labels=max_labels,
        images=images,
        videos=videos,
        reuse=reuse,
        retry_failed=retry_failed,
        dry_run=dry_run,
        concurrency=concurrency,
        max_video_jobs=max_video_jobs,
        transcode=transcode,
        transcode_prefix=transcode_prefix,
        notification_topic_arn=notification_topic_arn,
        role_arn=role_arn,
        poll_interval_s=poll_interval,
        features=parse_features(features),
        include_hidden=include_hidden,
        follow_outside_links=follow_outside_links,
    )
    # A dry run of a folder calls nothing: it needs no AWS configuration, even for Rekognition.
    needs_aws = (
        target.is_s3
        or (labeller == LabellerChoice.rekognition and not dry_run)
        or any(t.is_aws for t in run_targets)
    )
    clients = aws_clients(ctx, max_pool_connections=concurrency + 8) if needs_aws else None
    with sync_progress(progress and output == OutputFormat.table) as on_event:
        report = run_sync(
            target,
            sessions=sessions(ctx, create=True),
            clients=clients,
            options=options,
            tps=tps or None,
            on_event=on_event,
            labeller=labeller.value if labeller else None,
            model_path=model,
            classes_path=classes,
            notify_run=[t.text for t in run_targets],
        )
    render_sync_report(report, output.value)
    if report.failed:
        raise typer.Exit(EXIT_OBJECTS_FAILED)


def register(app: typer.Typer) -> None:
    """Add the command to the app."""
    app.command("sync")(sync_command)
