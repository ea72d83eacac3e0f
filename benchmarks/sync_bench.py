"""Sync throughput and no-change re-sync cost, against a slow, rate-capped Rekognition double.

Prints:
  * start-up: the time from starting `catalog sync` (a fresh catalogue, a 300-image prefix) to
    its first DetectLabels request, and where it goes (imports, schema creation, listing);
  * images/s for N new images with default settings (concurrency 16, --tps 50) against a double
    with 200 ms latency and a 50 requests/s cap, and how many failed;
  * images/s of a one-at-a-time loop like the tutorials' scripts (list, DetectLabels, insert);
  * a no-change re-sync of a large prefix: Rekognition calls made and its time next to the time
    of listing the prefix alone.

Run: python benchmarks/sync_bench.py [--images 1000] [--naive 100] [--resync-objects 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.aws.clients import AWSClients  # noqa: E402
from catalog.ingest.sync import run_sync  # noqa: E402
from catalog.ingest.types import SyncOptions  # noqa: E402
from catalog.store.engine import open_catalogue  # noqa: E402
from catalog.uris import parse_uri  # noqa: E402
from tests.factories import RED, make_image  # noqa: E402

BUCKET = "bench-media"


def _upload(s3, prefix: str, count: int, base: bytes) -> None:
    def put(i: int) -> None:
        # Distinct content per object (so nothing is reused): bytes after the JPEG end marker.
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}{i:06d}.jpg", Body=base + i.to_bytes(4, "big"))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


def _serve_doubles(latency: float, rate: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """moto and the Rekognition double in their own process, so they do not share our GIL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.rekognition_double",
            "--latency",
            str(latency),
            "--rate",
            str(rate),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def _double(endpoint: str, path: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(settings).encode() if settings is not None else None
    with urllib.request.urlopen(urllib.request.Request(endpoint + path, data=data)) as response:
        body = response.read()
    return json.loads(body) if body else {}


def _process_s(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command,
        check=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def startup(endpoint: str, s3: Any, workdir: Path, count: int, base: bytes) -> None:
    """Seconds from `catalog sync` starting to its first DetectLabels, and where they go."""
    _upload(s3, "startup/", count, base)
    _double(endpoint, "/_config", {"first_call_at": {}})
    python = [sys.executable]
    started = time.time()
    total = _process_s(
        [
            *python,
            "-m",
            "catalog",
            "--db",
            str(workdir / "startup.db"),
            "sync",
            f"s3://{BUCKET}/startup/",
            "--no-progress",
        ]
    )
    first = _double(endpoint, "/_stats")["first_call_at"]["DetectLabels"] - started
    bare = _process_s([*python, "-c", "pass"])
    imports = _process_s(
        [*python, "-c", "import catalog.cli, catalog.ingest.sync, catalog.aws.clients, boto3"]
    )
    schema_db = workdir / "schema-only.db"
    schema = _process_s(
        [
            *python,
            "-c",
            "import sys; from catalog.store.engine import open_catalogue; "
            "open_catalogue('sqlite:///' + sys.argv[1])",
            str(schema_db),
        ]
    )
    imports_engine = _process_s([*python, "-c", "import catalog.store.engine"])
    listing_started = time.perf_counter()
    listed = sum(
        len(page.get("Contents", []))
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="startup/")
    )
    listing = time.perf_counter() - listing_started
    print(
        f"start-up: first DetectLabels {first:.2f} s after `catalog sync` started "
        f"(target < 1.5 s; the whole sync of {count} images took {total:.1f} s). Where it goes: "
        f"Python {bare:.2f} s, imports {imports - bare:.2f} s, schema creation "
        f"{schema - imports_engine:.2f} s, listing {listed} objects {listing:.2f} s, "
        f"the rest (clients, claims, first image) {first - imports - (schema - imports_engine) - listing:.2f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--startup-images", type=int, default=300)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=100)
    parser.add_argument("--resync-objects", type=int, default=20000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args()

    server, endpoints = _serve_doubles(args.latency, args.rate)
    rekognition_endpoint = endpoints["rekognition"]
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_S3=endpoints["moto"],
        AWS_ENDPOINT_URL_REKOGNITION=rekognition_endpoint,
    )
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    base = make_image(120, 100, boxes=[(RED, (10, 10, 70, 90))])
    workdir = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    print(
        f"double: {args.latency * 1000:.0f} ms latency, {args.rate:.0f} requests/s cap", flush=True
    )

    # 0. Start-up of a whole `catalog sync` process on a fresh catalogue.
    startup(rekognition_endpoint, s3, workdir, args.startup_images, base)

    # 1. New images with default settings.
    _upload(s3, "new/", args.images, base)
    _, sessions = open_catalogue(f"sqlite:///{workdir / 'new.db'}")
    defaults = SyncOptions()
    started = time.perf_counter()
    report = run_sync(
        parse_uri(f"s3://{BUCKET}/new/"), sessions=sessions, clients=AWSClients(), options=defaults
    )
    elapsed = time.perf_counter() - started
    stats = _double(rekognition_endpoint, "/_stats")
    print(
        f"sync of {args.images} new images (concurrency {defaults.concurrency}, tps 50): "
        f"{elapsed:.1f} s, {report.labelled / elapsed:.1f} images/s, labelled {report.labelled}, "
        f"failed {report.failed}, throttled responses {stats['throttled']}",
        flush=True,
    )

    # 2. The tutorials' loop: one request at a time.
    rekognition = boto3.client("rekognition")
    db = sqlite3.connect(workdir / "naive.db")
    db.execute("create table labels(key text, name text, confidence real)")
    started = time.perf_counter()
    done = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="new/"):
        for item in page.get("Contents", []):
            if done >= args.naive:
                break
            response = rekognition.detect_labels(
                Image={"S3Object": {"Bucket": BUCKET, "Name": item["Key"]}}, MinConfidence=50
            )
            db.executemany(
                "insert into labels values (?, ?, ?)",
                [(item["Key"], label["Name"], label["Confidence"]) for label in response["Labels"]],
            )
            db.commit()
            done += 1
    elapsed = time.perf_counter() - started
    print(
        f"one-at-a-time loop over {done} images: {elapsed:.1f} s, {done / elapsed:.1f} images/s",
        flush=True,
    )

    # 3. No-change re-sync of a large prefix (seeded quickly: no latency, no cap, canned answer).
    _double(
        rekognition_endpoint,
        "/_config",
        {
            "latency_s": 0.0,
            "rate_limit": None,
            "default_labels": [
                {
                    "Name": "Car",
                    "Confidence": 97.0,
                    "Instances": [],
                    "Parents": [],
                    "Aliases": [],
                    "Categories": [],
                }
            ],
        },
    )
    _upload(s3, "big/", args.resync_objects, base)
    _, big_sessions = open_catalogue(f"sqlite:///{workdir / 'big.db'}")
    first = run_sync(
        parse_uri(f"s3://{BUCKET}/big/"),
        sessions=big_sessions,
        clients=AWSClients(),
        options=SyncOptions(concurrency=32),
        tps=None,
    )
    print(f"seeded {first.labelled} objects for the re-sync test", flush=True)
    listing_times = []
    listed = 0
    for _ in range(3):
        started = time.perf_counter()
        listed = sum(
            len(page.get("Contents", []))
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="big/")
        )
        listing_times.append(time.perf_counter() - started)
    calls_before = _double(rekognition_endpoint, "/_stats")["calls"].get("DetectLabels", 0)
    resync_times = []
    for _ in range(3):
        started = time.perf_counter()
        again = run_sync(
            parse_uri(f"s3://{BUCKET}/big/"),
            sessions=big_sessions,
            clients=AWSClients(),
            options=SyncOptions(),
        )
        resync_times.append(time.perf_counter() - started)
    calls = _double(rekognition_endpoint, "/_stats")["calls"].get("DetectLabels", 0) - calls_before
    listing, resync = min(listing_times), min(resync_times)
    print(
        f"no-change re-sync of {listed} objects: {resync:.2f} s (best of 3), listing alone {listing:.2f} s "
        f"(best of 3), ratio {resync / listing:.2f}x, Rekognition calls {calls}, unchanged {again.unchanged}",
        flush=True,
    )
    assert server.stdin is not None
    server.stdin.close()
    server.wait(timeout=30)


if __name__ == "__main__":
    main()
