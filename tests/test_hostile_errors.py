"""Whole-run errors from hostile or damaged input: one line, exit 2, nothing stored touched."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from catalog.cli import app
from catalog.store.engine import open_catalogue


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(result: Any, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    """A real, migrated catalogue file."""
    from catalog.store import engine

    path = tmp_path / "catalog.db"
    open_catalogue(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:  # everything into the file itself, not the WAL
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    engine._upgraded.clear()  # the commands below check the schema again, as a new process does
    return path


@pytest.mark.parametrize("command", [("search", "Face"), ("stats",), ("failures",)])
def test_a_file_that_is_not_a_database(tmp_path: Path, command: tuple[str, ...]) -> None:
    path = tmp_path / "notadb.db"
    path.write_bytes(b"hello, this is not a database\n" * 10)
    before = path.read_bytes()
    result = run("--db", str(path), *command)
    assert_one_line_error(result, str(path), "is not a catalogue", "nothing was changed")
    assert path.read_bytes() == before


def test_a_truncated_catalogue(catalogue: Path) -> None:
    damaged = catalogue.with_name("damaged.db")
    damaged.write_bytes(catalogue.read_bytes()[:5000])
    before = damaged.read_bytes()
    result = run("--db", str(damaged), "search", "Face")
    assert_one_line_error(result, str(damaged), "damaged", ".recover")
    assert damaged.read_bytes() == before


def test_a_read_only_catalogue_on_sync(catalogue: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    before = catalogue.read_bytes()
    # Opened read-only by SQLite itself: the test holds as root, where chmod would not.
    url = f"sqlite:///file:{catalogue}?mode=ro&uri=true"
    result = run("--db", url, "sync", str(folder), "--no-progress")
    assert_one_line_error(result, str(catalogue), "read-only", "writable --db")
    assert catalogue.read_bytes() == before


def test_a_catalogue_from_a_newer_schema_revision(catalogue: Path) -> None:
    with sqlite3.connect(catalogue) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    before = catalogue.read_bytes()
    for command in (("search", "Face"), ("db", "upgrade")):
        result = run("--db", str(catalogue), *command)
        assert_one_line_error(result, str(catalogue), "revision 9999", "upgrade catalog")
    assert catalogue.read_bytes() == before


def test_a_locked_catalogue(
    catalogue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("catalog.store.engine.SQLITE_BUSY_TIMEOUT_MS", 200)
    folder = tmp_path / "photos"
    folder.mkdir()
    holder = sqlite3.connect(catalogue, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer, holding the lock past the timeout
    try:
        result = run("--db", str(catalogue), "sync", str(folder), "--no-progress")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_one_line_error(result, str(catalogue), "locked by another process")


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql://u@host:notaport/db", "not a database URL"),
        ("postgresql://u@[::1/db", "not a database URL"),
        ("postgressql://catalog:SECRETPW@db.internal/x", "postgressql://catalog:***@"),
        ("postgresql://catalog@127.0.0.1:1/x?password=SECRETPW2", "password=***"),
    ],
)
def test_bad_database_urls_are_one_line_and_never_show_a_password(url: str, needle: str) -> None:
    result = run("--db", url, "search", "Face")
    assert_one_line_error(result, needle)
    assert "SECRETPW" not in result.stderr


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("size:>99999999999999999999999999999TB", "larger than any object"),
        (" ".join(f"NOT count(Car)>={i}" for i in range(190)), "190 conditions"),
        (" ".join(f"NOT count(Car)>={i}" for i in range(17)), "17 count() conditions"),
        (" OR ".join(f"Car > {i % 100}" for i in range(101)), "at most 100 are allowed"),
        ("Car\udcff", "not valid UTF-8"),
    ],
)
def test_hostile_queries_are_one_line_errors(catalogue: Path, query: str, needle: str) -> None:
    result = run("--db", str(catalogue), "search", query)
    assert_one_line_error(result, needle)


def test_nesting_that_would_overflow_sqlites_parser_is_refused(catalogue: Path) -> None:
    query = "kind:image"
    for i in range(30):
        query = f"(Car > {i} {'AND' if i % 2 else 'OR'} {query})"
    result = run("--db", str(catalogue), "search", query)
    assert_one_line_error(result, "levels deep")


def test_the_deepest_allowed_query_runs(catalogue: Path) -> None:
    from catalog.query.limits import MAX_DEPTH
    from tests.stats_fixtures import build_library

    build_library(open_catalogue(f"sqlite:///{catalogue}")[1])  # Car is a known label

    query = "kind:image"
    for i in range(MAX_DEPTH):
        query = f"(Car > {i} {'AND' if i % 2 else 'OR'} {query})"
    result = run("--db", str(catalogue), "search", query, "--count")
    assert result.exit_code == 0, result.output


def test_an_invalid_utf8_uri_is_one_line(catalogue: Path) -> None:
    result = run("--db", str(catalogue), "show", "s3://bucket/a\udcff.jpg")
    assert_one_line_error(result, "not valid UTF-8")


def test_verbose_keeps_aws_wire_logging_out_and_redacts_secrets() -> None:
    from catalog.cli import _configure_logging, _SafeFormatter

    _configure_logging(True)
    try:
        assert logging.getLogger("catalog").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("botocore").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("botocore.endpoint").isEnabledFor(logging.DEBUG)
    finally:
        _configure_logging(False)
    line = (
        "headers={'X-Amz-Security-Token': b'IQoJb3JpZ2luSECRET', 'Authorization': "
        "b'AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261130/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=0123abcdSECRET'} url=https://b.s3/k?X-Amz-Signature=ff"
    )
    record = logging.LogRecord("catalog", logging.WARNING, "", 0, line, None, None)
    shown = _SafeFormatter("%(message)s").format(record)
    assert "SECRET" not in shown and "AKIAEXAMPLE" not in shown and "=ff" not in shown
    assert "X-Amz-Security-Token': b'***'" in shown


def test_a_fifo_swapped_in_during_a_sync_is_skipped_not_waited_for(tmp_path: Path) -> None:
    import os

    from catalog.ingest.sync import run_sync
    from catalog.ingest.types import EventKind, SyncEvent, SyncOptions
    from catalog.uris import parse_uri
    from tests.factories import make_image

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes(make_image(width=120 + len(name)))
    victim = folder / "b.jpg"

    def swap(event: SyncEvent) -> None:
        if event.kind == EventKind.LISTED:  # listed as a regular file; now a FIFO
            victim.unlink()
            os.mkfifo(victim)

    _, sessions = open_catalogue(f"sqlite:///{tmp_path / 'catalog.db'}")
    reports: list[Any] = []
    worker = threading.Thread(
        target=lambda: reports.append(
            run_sync(
                parse_uri(str(folder)),
                sessions=sessions,
                clients=None,
                options=SyncOptions(),
                on_event=swap,
            )
        ),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the sync blocked on the FIFO"
    (report,) = reports
    assert dict(report.skipped) == {"not a regular file": 1}
    assert report.failed == 0


def test_drawing_a_file_swapped_for_a_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    import os

    from tests.factories import make_image

    folder = tmp_path / "photos"
    folder.mkdir()
    picture = folder / "a.jpg"
    picture.write_bytes(make_image())
    db = str(tmp_path / "catalog.db")
    assert run("--db", db, "sync", str(folder), "--no-progress").exit_code == 0
    picture.unlink()
    os.mkfifo(picture)
    results: list[Any] = []
    worker = threading.Thread(
        target=lambda: results.append(
            run("--db", db, "show", f"file://{picture}", "--draw", str(tmp_path / "d.png"))
        ),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "show --draw blocked on the FIFO"
    assert_one_line_error(results[0], "not a regular file")
