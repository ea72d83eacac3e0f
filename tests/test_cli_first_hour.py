"""What a new user runs into in the first hour: options where they type them, the region they
set, read commands that never create an empty catalogue, and the catalogue named on request."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.cli import app, hoist_global_options
from tests.factories import RED, make_image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["sync", "s3://b/p", "--region", "us-east-1"],
            ["--region", "us-east-1", "sync", "s3://b/p"],
        ),
        (
            ["search", "Car", "--db=x.db", "-f", "json"],
            ["--db=x.db", "search", "Car", "-f", "json"],
        ),
        (
            ["--profile", "p", "sync", "d", "--db", "y.db"],
            ["--profile", "p", "--db", "y.db", "sync", "d"],
        ),
        (["search", "--", "--region"], ["search", "--", "--region"]),
    ],
)
def test_global_options_are_moved_before_the_subcommand(args, expected):
    assert hoist_global_options(args) == expected


def test_region_after_the_subcommand_is_accepted(invoke, put, rekognition_double):
    put("after/a.jpg", make_image(boxes=[(RED, (0, 0, 60, 60))]))
    result = invoke("sync", "s3://media-library/after/", "--region", "us-east-1", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert "No such option" not in result.stderr


def test_an_invalid_region_after_the_subcommand_is_checked_too(invoke, bucket):
    result = invoke("sync", "s3://media-library/", "--region", "mars")
    assert result.exit_code == 2
    assert "'mars' is not an AWS region name" in result.stderr


def test_aws_region_is_honoured(invoke, put, monkeypatch, rekognition_double):
    put("env/a.jpg", make_image(boxes=[(RED, (0, 0, 60, 60))]))
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    result = invoke("sync", "s3://media-library/env/", "--no-progress")
    assert result.exit_code == 0, result.stderr


def test_no_region_at_all_advises_what_works(invoke, bucket, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    result = invoke("sync", "s3://media-library/")
    assert result.exit_code == 2
    assert "AWS_REGION" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_dry_run_of_a_folder_with_rekognition_needs_no_region(tmp_path, monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    db = tmp_path / "catalog.db"
    result = CliRunner().invoke(
        app, ["--db", str(db), "sync", str(EXAMPLES), "--dry-run", "--labeller", "rekognition"]
    )
    assert result.exit_code == 0, result.stderr
    shown = result.stdout + result.stderr
    assert "images to label" in shown
    assert "Estimated Rekognition cost: $0.004" in shown


@pytest.mark.parametrize(
    "args",
    [
        ["search", "Face"],
        ["labels"],
        ["stats"],
        ["failures"],
        ["export"],
        ["show", "file:///x.jpg"],
        ["db", "current"],
    ],
)
def test_read_commands_do_not_create_a_catalogue(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CATALOG_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert f"no catalogue at {tmp_path / 'catalog.db'}" in result.stderr
    assert not (tmp_path / "catalog.db").exists()


def test_version_and_db_current_name_the_catalogue(tmp_path):
    db = tmp_path / "mine.db"
    runner = CliRunner()
    assert runner.invoke(app, ["--db", str(db), "db", "upgrade"]).exit_code == 0
    version = runner.invoke(app, ["--db", str(db), "--version"])
    assert version.exit_code == 0
    assert f"catalogue: {db}" in version.stdout
    current = runner.invoke(app, ["--db", str(db), "db", "current"])
    assert current.exit_code == 0
    assert "(head)" in current.stdout
    assert f"catalogue: {db}" in current.stderr


def test_a_postgres_url_is_named_without_its_password():
    from catalog.config import describe_database_url

    shown = describe_database_url("postgresql+psycopg://catalog:SECRETPW@db.internal/catalog")
    assert "SECRETPW" not in shown
    assert "db.internal/catalog" in shown
