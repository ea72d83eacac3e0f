"""Shared fixtures: a moto S3 server, the Rekognition double, a migrated catalogue, the CLI."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from catalog.aws.clients import AWSClients
from catalog.store.engine import open_catalogue
from tests.rekognition_double import FakeRekognition

pytest_plugins = ["tests.pg"]

REGION = "us-east-1"
BUCKET = "media-library"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--integration", action="store_true", help="run tests against live AWS")


def pytest_configure(config: pytest.Config) -> None:
    # Tests press Ctrl-C with _thread.interrupt_main() and send SIGINT to children; both do
    # nothing while SIGINT is ignored, as a shell without job control starts background jobs.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--integration"):
        return
    skip = pytest.mark.skip(reason="live AWS: opt in with --integration")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server on loopback for S3 and SQS."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def rekognition_double(moto_endpoint: str) -> Iterator[FakeRekognition]:
    """The Rekognition stand-in, reading objects from the moto S3."""
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    fake = FakeRekognition(s3=s3)
    fake.sns = boto3.client(  # completion messages of jobs given a NotificationChannel
        "sns",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    fake.endpoint = fake.start()  # type: ignore[attr-defined]
    yield fake
    fake.stop()


def set_aws_environment(
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
    rekognition_double: FakeRekognition,
    config_dir: Path,
) -> dict[str, str]:
    """Dummy credentials and endpoint overrides, exactly as a user would set them; empty servers."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_S3": moto_endpoint,
        "AWS_ENDPOINT_URL_SQS": moto_endpoint,
        "AWS_ENDPOINT_URL_SNS": moto_endpoint,
        # notify asks STS for the caller's account: without this it waits for the real endpoint
        "AWS_ENDPOINT_URL_STS": moto_endpoint,
        "AWS_ENDPOINT_URL_REKOGNITION": rekognition_double.endpoint,  # type: ignore[attr-defined]
        "AWS_CONFIG_FILE": str(config_dir / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(config_dir / "aws-credentials"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    rekognition_double.reset()
    return env


@pytest.fixture
def aws_env(
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
    rekognition_double: FakeRekognition,
    tmp_path: Path,
) -> Iterator[dict[str, str]]:
    """Dummy credentials and endpoint overrides, exactly as a user would set them."""
    yield set_aws_environment(monkeypatch, moto_endpoint, rekognition_double, tmp_path)
    rekognition_double.reset()


@pytest.fixture
def s3(aws_env: dict[str, str]) -> Any:
    """A plain boto3 S3 client on the moto server, for arranging test data."""
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def bucket(s3: Any) -> str:
    """An empty bucket."""
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture
def put(s3: Any, bucket: str) -> Callable[..., str]:
    """put(key, data, **extra) uploads an object and returns its s3:// URI."""

    def _put(key: str, data: bytes, **extra: Any) -> str:
        s3.put_object(Bucket=bucket, Key=key, Body=data, **extra)
        return f"s3://{bucket}/{key}"

    return _put


# Every catalogue test runs on both backends (PostgreSQL ones are marked, to deselect them).
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend of a catalogue a test module builds once and shares between its tests."""
    return str(request.param)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A real catalogue: a SQLite file, or a fresh database on the session's PostgreSQL.

    Empty, unless the test takes `sessions`, whose set-up migrates the catalogue anyway: then it
    is a copy of one catalogue migrated once per session (the same schema, made by the same
    upgrade), which spares each such test a run of every migration.
    """
    migrated = "sessions" in request.fixturenames
    if request.param == "postgres":
        return str(request.getfixturevalue("migrated_postgres_url" if migrated else "postgres_url"))
    path = tmp_path / "catalog.db"
    if migrated:
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_file"), path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite catalogue the product's own upgrade brought to head, to be copied."""
    path = tmp_path_factory.mktemp("migrated") / "catalog.db"
    engine, _ = open_catalogue(f"sqlite:///{path}")
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name("catalog.db-wal").exists()
    return path


@pytest.fixture
def sessions(db_url: str) -> sessionmaker[Session]:
    """A session factory on a migrated catalogue."""
    return open_catalogue(db_url)[1]


@pytest.fixture
def clients(aws_env: dict[str, str]) -> AWSClients:
    """The product's own AWS clients (standard chain + endpoint overrides)."""
    return AWSClients()


@pytest.fixture
def invoke(db_url: str) -> Callable[..., Any]:
    """invoke('sync', 's3://...') runs the CLI in-process against the test catalogue."""
    from catalog.cli import app

    runner = CliRunner()

    def _invoke(*args: str, catch_exceptions: bool = True, input: str | None = None) -> Any:
        return runner.invoke(
            app, ["--db", db_url, *args], catch_exceptions=catch_exceptions, input=input
        )

    return _invoke


@pytest.fixture(scope="module")
def gallery(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, rekognition_double: Any
) -> Iterator[Any]:
    """The web gallery's library (tests.web_library), synced once per test module."""
    from tests.web_library import gallery_library

    with gallery_library(
        tmp_path_factory.mktemp("gallery"), moto_endpoint, rekognition_double
    ) as lib:
        yield lib
