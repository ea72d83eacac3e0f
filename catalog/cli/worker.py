"""`catalog worker`, `catalog notify setup` and `catalog iam-policy`: event-driven ingestion."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.cli.options import (
    DetailFormatOpt,
    FeaturesOpt,
    MaxLabelsOpt,
    MaxVideoJobsOpt,
    MinConfidenceOpt,
    NotificationTopicOpt,
    OutputFormat,
    PollIntervalOpt,
    RoleArnOpt,
    TranscodeOpt,
    TranscodePrefixOpt,
    aws_clients,
    sessions,
    settings,
)
from catalog.render.views import render_notify_setup
from catalog.render.writers import write_json_object

notify_app = typer.Typer(
    name="notify",
    help="Manage the S3 event notifications that feed 'catalog worker'.",
    no_args_is_help=True,
)


def worker_command(
    ctx: typer.Context,
    queue: Annotated[
        str, typer.Option("--queue", help="SQS queue URL receiving the bucket's S3 events.")
    ],
    min_confidence: MinConfidenceOpt = 50.0,
    max_labels: MaxLabelsOpt = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="Messages processed at once.")
    ] = 8,
    tps: Annotated[
        float,
        typer.Option(
            min=0,
            help="Most Rekognition requests this worker starts per second (0: no cap); "
            "split the account's quota between the workers.",
        ),
    ] = 0.0,
    wait_time: Annotated[
        int, typer.Option(min=1, max=20, help="SQS long-poll wait in seconds.")
    ] = 20,
    visibility_timeout: Annotated[
        int | None,
        typer.Option(
            min=2,
            max=43200,
            help="Seconds a received message (and its object's claim) stays with this worker; "
            "extended while work runs, so a dead worker's messages return after this long. "
            "Default: the queue's own VisibilityTimeout.",
            show_default=False,
        ),
    ] = None,
    bucket: Annotated[
        list[str] | None,
        typer.Option(
            "--bucket",
            metavar="BUCKET",
            help="Only label events for this bucket (repeatable); others are dropped with a "
            "log line.",
            show_default=False,
        ),
    ] = None,
    prefix: Annotated[
        list[str] | None,
        typer.Option(
            "--prefix",
            metavar="PREFIX",
            help="Only label events for keys under this prefix (repeatable).",
            show_default=False,
        ),
    ] = None,
    videos: Annotated[
        bool, typer.Option("--videos/--no-videos", help="Label videos (Rekognition jobs).")
    ] = True,
    max_video_jobs: MaxVideoJobsOpt = 20,
    transcode: TranscodeOpt = False,
    transcode_prefix: TranscodePrefixOpt = "catalog-transcoded/",
    notification_topic_arn: NotificationTopicOpt = None,
    role_arn: RoleArnOpt = None,
    poll_interval: PollIntervalOpt = 5.0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No line per object on stderr.")
    ] = False,
    output: DetailFormatOpt = OutputFormat.table,
    features: FeaturesOpt = "labels",
) -> None:
    """Label objects as they arrive: consume S3 event notifications from an SQS queue.

    ObjectCreated events label the object (as 'catalog sync' would, videos included),
    ObjectRemoved events mark it deleted. A message is deleted only after its result is
    committed (for a video: once its job is started); one that cannot be processed is left for
    the queue's redrive policy. With --notification-topic-arn, Rekognition's job-completion
    messages arriving on the queue are collected too. SIGTERM or Ctrl-C stops receiving,
    finishes the work in flight, and exits 0. Run as many workers as you like.

    Example: catalog --db postgresql://catalog@db/catalog worker --queue https://sqs.eu-west-1.amazonaws.com/123456789012/media-events
    """
    from catalog.ingest.types import SyncOptions
    from catalog.ingest.worker import WorkerOptions, run_worker
    from catalog.labelling.features import parse_features
    from catalog.render.progress import worker_events
    from catalog.render.views import render_worker_report

    options = WorkerOptions(
        queue, concurrency, wait_time, visibility_timeout, tuple(bucket or ()), tuple(prefix or ())
    )
    sync_options = SyncOptions(
        min_confidence=min_confidence,
        max_labels=max_labels,
        features=parse_features(features),
        videos=videos,
        max_video_jobs=max_video_jobs,
        transcode=transcode,
        transcode_prefix=transcode_prefix,
        notification_topic_arn=notification_topic_arn,
        role_arn=role_arn,
        poll_interval_s=poll_interval,
    )
    clients = aws_clients(ctx, max_pool_connections=concurrency + 8)
    report = run_worker(
        clients=clients,
        sessions=sessions(ctx, create=True),
        options=options,
        sync_options=sync_options,
        tps=tps or None,
        on_event=worker_events(quiet is False),
    )
    render_worker_report(report, output.value)


@notify_app.command("setup")
def notify_setup_command(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="s3://BUCKET[/PREFIX] to watch.", show_default=False)],
    queue: Annotated[str, typer.Option("--queue", help="SQS queue URL to send the events to.")],
    queue_policy: Annotated[
        bool,
        typer.Option(
            "--queue-policy/--no-queue-policy",
            help="Add a statement to the queue's access policy letting this bucket send to it.",
        ),
    ] = True,
    output: DetailFormatOpt = OutputFormat.table,
) -> None:
    """Send a prefix's ObjectCreated/ObjectRemoved events to an SQS queue (idempotent).

    The bucket's other notification configurations are kept.

    Example: catalog notify setup s3://my-photos/2024/ --queue https://sqs.eu-west-1.amazonaws.com/123456789012/media-events
    """
    from catalog.aws.notify import setup_notifications
    from catalog.uris import parse_uri

    report = setup_notifications(
        parse_uri(uri, allow_local=False),
        queue,
        clients=aws_clients(ctx),
        queue_policy=queue_policy,
    )
    render_notify_setup(report, output.value)


def iam_policy_command(
    ctx: typer.Context,
    uri: Annotated[
        str, typer.Argument(help="s3://BUCKET[/PREFIX] the tool will read.", show_default=False)
    ],
    queue: Annotated[
        str | None,
        typer.Option("--queue", help="SQS queue ARN (or URL) a worker will consume."),
    ] = None,
    transcode: Annotated[
        bool,
        typer.Option(
            "--transcode", help="Also let 'sync --transcode' write its copies (s3:PutObject)."
        ),
    ] = False,
    transcode_prefix: Annotated[
        str, typer.Option(help="Where --transcode writes its copies.")
    ] = "catalog-transcoded/",
    partition: Annotated[
        str | None,
        typer.Option(
            help="ARN partition: aws, aws-cn or aws-us-gov. Default: the queue's, else the "
            "--region's, else aws.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the least-privilege IAM policy (JSON) this tool needs for a prefix.

    Example: catalog iam-policy s3://my-photos/2024/ --queue arn:aws:sqs:eu-west-1:123456789012:media-events
    """
    from catalog.aws.iam import iam_policy
    from catalog.uris import parse_uri

    policy = iam_policy(
        parse_uri(uri, allow_local=False),
        queue,
        partition=partition,
        region=settings(ctx).region,
        transcode_prefix=transcode_prefix if transcode else None,
    )
    write_json_object(policy)


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command("worker")(worker_command)
    app.command("iam-policy")(iam_policy_command)
    app.add_typer(notify_app, name="notify")
