"""A small real catalogue for the gallery tests: S3 images and a video labelled through the
Rekognition double, hostile keys, a failed object, and a local folder labelled offline."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from typer.testing import CliRunner

from tests.factories import BLUE, GREEN, RED, YELLOW, car_video, make_image

BUCKET = "gallery"
REGION = "us-east-1"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HOSTILE_KEYS = (
    "hostile/<script>alert(1)</script>.jpg",
    "hostile/quote\"s and 'singles' & <b>.jpg",
    "hostile/[bold]x[/].jpg",
)


@dataclass
class Library:
    """Where the catalogue is and what it holds."""

    db_url: str
    root: Path
    local_dir: Path
    env: dict[str, str]

    def uri(self, key: str) -> str:
        """The s3:// URI of a key in the gallery bucket."""
        return f"s3://{BUCKET}/{key}"


def cli(db_url: str, *args: str) -> Any:
    """Run the CLI in-process against the catalogue."""
    from catalog.cli import app

    return CliRunner().invoke(app, ["--db", db_url, *args], catch_exceptions=False)


@contextmanager
def gallery_library(
    root: Path, moto_endpoint: str, rekognition_double: Any, db_url: str | None = None
) -> Iterator[Library]:
    """Build the catalogue (SQLite under `root` unless `db_url`); AWS variables stay set."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                patch.delenv(name, raising=False)
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": moto_endpoint,
            "AWS_ENDPOINT_URL_REKOGNITION": rekognition_double.endpoint,
            "AWS_CONFIG_FILE": str(root / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(root / "aws-credentials"),
        }
        for name, value in env.items():
            patch.setenv(name, value)
        requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
        rekognition_double.reset()
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        objects = {
            # Car on the left half, Person at the right: boxes at known places.
            "street/car-and-person.jpg": make_image(
                400, 300, boxes=[(RED, (20, 30, 220, 200)), (BLUE, (300, 100, 380, 280))]
            ),
            "street/two-cars.jpg": make_image(
                300, 200, boxes=[(RED, (10, 10, 100, 90)), (RED, (180, 100, 290, 190))]
            ),
            "park/dog.png": make_image(240, 180, boxes=[(GREEN, (40, 40, 200, 160))], fmt="PNG"),
            "park/dog-and-cat.jpg": make_image(
                240, 180, boxes=[(GREEN, (10, 10, 110, 170)), (YELLOW, (130, 20, 230, 160))]
            ),
            "clips/car.mp4": car_video(),
            **{
                key: make_image(160, 120, boxes=[(RED, (10 + 5 * i, 10, 90, 90))])
                for i, key in enumerate(HOSTILE_KEYS)
            },
            "broken/not-a-picture.jpg": b"this is not an image",
        }
        for key, data in objects.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        db_url = db_url or f"sqlite:///{root / 'catalog.store.engine'}"
        result = cli(
            db_url,
            "sync",
            f"s3://{BUCKET}/",
            "--no-progress",
            "--poll-interval",
            "0.01",
            "--format",
            "json",
        )
        report = json.loads(result.stdout)
        assert report["failed"] == 1 and report["labelled"] == len(objects) - 1, result.output
        local_dir = root / "photos"
        shutil.copytree(EXAMPLES, local_dir)
        result = cli(db_url, "sync", str(local_dir), "--no-progress", "--format", "json")
        assert json.loads(result.stdout)["failed"] == 0, result.output
        yield Library(db_url, root, local_dir, env)


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port, in a thread."""
    import uvicorn

    from catalog.web.app import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


LOCAL = "http://127.0.0.1:8765"  # the base URL test clients use (a local address: no token)


def make_client(
    library: Library, base_url: str = LOCAL, *, follow_redirects: bool = True, **options: Any
) -> Any:
    """An in-process HTTP client of the gallery over `library` (ServeOptions from `options`)."""
    import warnings

    from catalog.web.app import ServeOptions, create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    options.setdefault("cache_dir", library.root / "thumbs")
    app = create_app(ServeOptions(library.db_url, **options))
    return TestClient(app, base_url=base_url, follow_redirects=follow_redirects)


def media_id(library: Library, key: str) -> int:
    """The catalogued id of the media item with `key`."""
    from sqlalchemy import select

    from catalog.store.engine import open_catalogue
    from catalog.store.schema import Media

    _, sessions = open_catalogue(library.db_url)
    with sessions() as session:
        return int(session.execute(select(Media.id).where(Media.key == key)).scalar_one())
