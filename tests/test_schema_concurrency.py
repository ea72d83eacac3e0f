"""Many processes opening a new, empty catalogue at the same moment all come up on one schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from catalog.store.engine import head_revision
from catalog.store.schema import Base

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = 8
ROUNDS = 4

# Each child imports everything first, then for every round: reads a database URL and a start
# file, says it is ready, spins until the start file appears (so all eight open the catalogue
# within a millisecond or so of each other) and reports what its `opened(url)` returned.
_CHILD_LOOP = """
import os, sys, time
import catalog.store.engine as store
for line in sys.stdin:
    url, start = line.split()
    print("ready", flush=True)
    while not os.path.exists(start):
        time.sleep(0.0005)
    try:
        print("ok", opened(url), flush=True)
    except Exception as exc:
        print("error", type(exc).__name__, str(exc).replace(chr(10), " "), flush=True)
"""
# What the child does with the URL; it prints what this returns.
_CHILD = (
    """
def opened(url):
    engine, _ = store.open_catalogue(url)
    revision = store.current_revision(engine)
    engine.dispose()
    return revision
"""
    + _CHILD_LOOP
)


def _start_children(script: str = _CHILD) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]


def _stop_children(children: list[subprocess.Popen[str]]) -> None:
    for child in children:
        assert child.stdin is not None
        child.stdin.close()
    for child in children:
        child.wait(timeout=60)


def _open_together(children: list[subprocess.Popen[str]], url: str, start: Path) -> list[str]:
    for child in children:
        assert child.stdin is not None
        child.stdin.write(f"{url} {start}\n")
        child.stdin.flush()
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
    start.touch()
    answers = []
    for child in children:
        assert child.stdout is not None
        answers.append(child.stdout.readline().strip())
    return answers


def _assert_one_schema(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [v for (v,) in versions] == [head_revision()]
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _run_rounds(urls: list[str], tmp_path: Path) -> None:
    children = _start_children()
    try:
        for index, url in enumerate(urls):
            answers = _open_together(children, url, tmp_path / f"start-{index}")
            assert answers == [f"ok {head_revision()}"] * PROCESSES, answers
            _assert_one_schema(url)
    finally:
        _stop_children(children)


@pytest.mark.slow
def test_eight_processes_create_one_sqlite_catalogue_together(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / f'round-{i}.db'}" for i in range(ROUNDS)]
    _run_rounds(urls, tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_eight_processes_create_one_postgres_catalogue_together(
    postgres_server: object, tmp_path: Path
) -> None:
    server = postgres_server
    urls = [server.url(server.create_database()) for _ in range(ROUNDS)]  # type: ignore[attr-defined]
    _run_rounds(urls, tmp_path)


# Only the connection's set-up: every child connects to the same brand-new file at once. Each
# connection switches the file to WAL; SQLite refuses one of two such switches at once with
# "database is locked" (no busy wait), which failed a few rounds in ten before it was retried.
_CONNECT_CHILD = (
    """
def opened(url):
    engine = store.make_engine(url)
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    engine.dispose()
    return mode
"""
    + _CHILD_LOOP
)


def test_processes_connecting_to_a_new_sqlite_file_together_all_switch_it_to_wal(
    tmp_path: Path,
) -> None:
    children = _start_children(_CONNECT_CHILD)
    try:
        for index in range(30):
            url = f"sqlite:///{tmp_path / f'new-{index}.db'}"
            answers = _open_together(children, url, tmp_path / f"go-{index}")
            assert answers == ["ok wal"] * PROCESSES, (index, answers)
    finally:
        _stop_children(children)
