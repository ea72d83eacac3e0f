"""Four `catalog worker` processes on one PostgreSQL catalogue label N images from S3 events.

Everything is real but AWS: a throwaway PostgreSQL server, moto (S3 + SQS, with the bucket's
notifications delivering ObjectCreated events to the queue) and the Rekognition double with
200 ms latency and a 50 requests/s cap (beyond it: ThrottlingException). Prints aggregate
images/s, duplicates (objects labelled more than once; must be 0) and lost (objects never
labelled; must be 0).

Then the recovery after a crash: three workers on a queue whose own VisibilityTimeout is
--recovery-visibility seconds, one of them SIGKILLed while it holds objects; prints how long
after the kill the last object was labelled (the target: within about the visibility timeout,
at most 3x), and again duplicates and lost.

    PYTHONPATH=. python benchmarks/workers_bench.py [--images 2000] [--workers 4]
        [--recovery-images 60] [--recovery-visibility 5]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.aws.clients import AWSClients  # noqa: E402
from catalog.aws.notify import setup_notifications  # noqa: E402
from catalog.store.engine import open_catalogue  # noqa: E402
from catalog.store.schema import LabelResult, Media  # noqa: E402
from catalog.uris import parse_uri  # noqa: E402
from tests.factories import RED, make_image  # noqa: E402
from tests.pg import PostgresServer, find_bindir  # noqa: E402
from tests.rekognition_double import FakeRekognition  # noqa: E402

REGION = "us-east-1"
BUCKET = "bench-media"
PREFIX = "incoming/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8, help="messages in flight per worker")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rate-limit", type=float, default=50.0)
    parser.add_argument(
        "--upload-rate", type=float, default=60.0, help="images uploaded per second"
    )
    parser.add_argument("--recovery-images", type=int, default=60, help="0: skip the kill test")
    parser.add_argument("--recovery-visibility", type=int, default=5)
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    bindir = find_bindir()
    if bindir is None:
        sys.exit("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    pg = PostgresServer(bindir)
    pg.start()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    home = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ENDPOINT_URL_SQS": endpoint,
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
    }
    os.environ.update(env)
    s3 = boto3.client("s3", region_name=REGION)
    fake = FakeRekognition(s3=s3)
    rekognition = fake.start()
    os.environ["AWS_ENDPOINT_URL_REKOGNITION"] = rekognition
    workers: list[subprocess.Popen[str]] = []
    try:
        db_url = pg.url(pg.create_database())
        _, sessions = open_catalogue(db_url)
        s3.create_bucket(Bucket=BUCKET)
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="bench-events")["QueueUrl"]
        setup_notifications(parse_uri(f"s3://{BUCKET}/{PREFIX}"), queue, clients=AWSClients())
        fake.latency_s = args.latency
        fake.rate_limit = args.rate_limit
        tps = args.rate_limit / args.workers * 0.95  # each worker's share of the account quota
        started = time.monotonic()
        for _ in range(args.workers):
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "catalog",
                        "--db",
                        db_url,
                        "worker",
                        "--queue",
                        queue,
                        "--concurrency",
                        str(args.concurrency),
                        "--tps",
                        f"{tps:.2f}",
                        "--wait-time",
                        "2",
                        "--format",
                        "json",
                        "--quiet",
                    ],
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        print(
            f"uploading {args.images} images at {args.upload_rate:.0f}/s while the workers run "
            "(each upload sends an S3 event to the queue)..."
        )
        from PIL import Image

        from tests.rekognition_double import labels_for_image

        sample = make_image(200, 150, boxes=[(RED, (5, 5, 100, 75))])
        canned = labels_for_image(Image.open(io.BytesIO(sample)), 50.0)
        for i in range(args.images):
            # Paced like a live library: moto's SQS scans its whole queue on every receive,
            # so a backlog of thousands would measure moto, not the workers.
            time.sleep(max(0.0, started + i / args.upload_rate - time.monotonic()))
            # Distinct bytes per image, so no result is reused: every image is a Rekognition call.
            width = 100 + i % 400
            height = 100 + (i // 400) % 400
            data = make_image(width, height, boxes=[(RED, (5, 5, width // 2, height // 2))])
            key = f"{PREFIX}img-{i:05d}.jpg"
            # The double's answer is computed once here, not per call: its pure-Python pixel
            # scan would otherwise make the double (in this process, under one GIL) the
            # bottleneck instead of the 50 requests/s cap being measured.
            fake.canned[key] = canned
            s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        labelled = 0
        while labelled < args.images:
            time.sleep(0.5)
            with sessions() as session:
                labelled = session.execute(
                    select(func.count()).select_from(Media).where(Media.status == "labelled")
                ).scalar_one()
            if time.monotonic() - started > 1800:
                print("gave up after 30 minutes")
                break
        elapsed = time.monotonic() - started
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        reports = []
        for proc in workers:
            out, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                print(f"worker exited {proc.returncode}: {err[-2000:]}")
            else:
                reports.append(json.loads(out))
        with sessions() as session:
            results = Counter(
                media_id for (media_id,) in session.execute(select(LabelResult.media_id))
            )
            statuses = dict(
                session.execute(select(Media.status, func.count()).group_by(Media.status)).all()
            )
        duplicates = sum(1 for n in results.values() if n > 1)
        lost = args.images - statuses.get("labelled", 0)
        calls = fake.count("DetectLabels")
        print(
            f"workers={args.workers} concurrency={args.concurrency} per-worker tps={tps:.2f} "
            f"latency={args.latency}s cap={args.rate_limit}/s"
        )
        print(
            f"images={args.images} elapsed={elapsed:.1f}s aggregate={args.images / elapsed:.1f} images/s"
        )
        print(
            f"duplicates={duplicates} lost={lost} DetectLabels calls={calls} "
            f"throttled={fake.throttled} per-worker labelled={[r['labelled'] for r in reports]}"
        )
        if args.recovery_images:
            recovery_ok = measure_recovery(args, db_url, sessions, s3, fake, canned)
            if not recovery_ok:
                sys.exit(1)
        if duplicates or lost:
            sys.exit(1)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
        fake.stop()
        moto.stop()
        pg.stop()


def _spawn_worker(db_url: str, queue: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "catalog", "--db", db_url, "worker", "--queue", queue),
            *("--wait-time", "1", "--format", "json", "--quiet", *extra),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _count_labelled(sessions: Any, prefix: str) -> int:
    with sessions() as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(Media)
                .where(Media.status == "labelled", Media.key.startswith(prefix))
            ).scalar_one()
        )


def measure_recovery(
    args: argparse.Namespace, db_url: str, sessions: Any, s3: Any, fake: Any, canned: Any
) -> bool:
    """SIGKILL one of three workers while it holds objects; time until all are labelled."""
    prefix = "recovery/"
    visibility = args.recovery_visibility
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(
        QueueName="bench-recovery", Attributes={"VisibilityTimeout": str(visibility)}
    )["QueueUrl"]
    setup_notifications(parse_uri(f"s3://{BUCKET}/{prefix}"), queue, clients=AWSClients())
    fake.rate_limit = None
    fake.latency_s = 1.0  # every worker holds objects for a second: the kill always hits some
    workers = [_spawn_worker(db_url, queue, "--concurrency", "4") for _ in range(3)]
    victim = workers[0]
    try:
        for i in range(args.recovery_images):
            key = f"{prefix}img-{i:05d}.jpg"
            fake.canned[key] = canned
            s3.put_object(Bucket=BUCKET, Key=key, Body=make_image(120 + i % 300, 100))
        held = 0
        deadline = time.monotonic() + 120
        while held < 3 and time.monotonic() < deadline:  # kill it while it holds several
            with sessions() as session:
                held = session.execute(
                    select(func.count())
                    .select_from(Media)
                    .where(Media.claimed_by.like(f"%:{victim.pid}:%"))
                ).scalar_one()
            time.sleep(0.05)
        victim.kill()
        killed = time.monotonic()
        victim.communicate(timeout=30)
        while _count_labelled(sessions, prefix) < args.recovery_images:
            if time.monotonic() - killed > 30 * visibility:
                break
            time.sleep(0.1)
        recovered = time.monotonic() - killed
    finally:
        for proc in workers[1:]:
            proc.send_signal(signal.SIGTERM)
        for proc in workers[1:]:
            proc.communicate(timeout=120)
    with sessions() as session:
        results = Counter(
            media_id
            for (media_id,) in session.execute(
                select(LabelResult.media_id)
                .join(Media, Media.id == LabelResult.media_id)
                .where(Media.key.startswith(prefix))
            )
        )
    duplicates = sum(1 for n in results.values() if n > 1)
    lost = args.recovery_images - _count_labelled(sessions, prefix)
    print(
        f"recovery: SIGKILL of 1 of 3 workers holding {held} objects; all "
        f"{args.recovery_images} labelled {recovered:.1f}s after the kill "
        f"(queue visibility timeout {visibility}s, {recovered / visibility:.1f}x); "
        f"duplicates={duplicates} lost={lost}"
    )
    return not duplicates and not lost


if __name__ == "__main__":
    main()
