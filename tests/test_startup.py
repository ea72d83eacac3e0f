"""The read commands start without SQLAlchemy: on an indexed SQLite catalogue, `search`,
`stats` (with --label and --where) and `show` read through the driver alone, and each command
loads only its own module of the command-line layer. (Their start-up time is measured by
benchmarks/startup_bench.py; a test never fails on a wall-clock time.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import car_jpeg

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Runs the command line in this interpreter, then reports which modules it had loaded.
PROBE = """
import json, sys
from catalog.cli import main
sys.argv = ["catalog", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _loaded(*args: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=False
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples, labelled offline (a sync builds the bitmap index at its end)."""
    path = tmp_path_factory.mktemp("startup") / "catalog.db"
    done = subprocess.run(
        [sys.executable, "-m", "catalog", "--db", str(path), "sync", str(EXAMPLES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("search", "Face > 50", "--format", "json"),
        ("search", "Person AND NOT Cat", "--count"),
        ("stats",),
        ("stats", "--label", "Person"),
        ("show", (EXAMPLES / "astronaut.png").as_uri()),
    ],
    ids=lambda args: " ".join(args[:3]),
)
def test_read_commands_answer_without_sqlalchemy(catalogue, args):
    code, modules = _loaded("--db", str(catalogue), *args)
    assert code in (None, 0)
    assert not {m for m in modules if m.split(".")[0] == "sqlalchemy"}
    assert "catalog.cli.sync" not in modules and "catalog.web" not in modules


def test_stats_where_on_a_rekognition_library_answers_without_sqlalchemy(
    tmp_path, aws_env, put, rekognition_double
):
    for i in range(3):
        put(f"cars/{i}.jpg", car_jpeg())
    db = str(tmp_path / "catalog.db")
    done = subprocess.run(
        [sys.executable, "-m", "catalog", "--db", db, "sync", "s3://media-library/cars/"],
        env={**os.environ, **aws_env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    code, modules = _loaded("--db", db, "stats", "--where", "Car > 50", "--format", "json")
    assert code in (None, 0)
    assert "sqlalchemy" not in modules


def test_stats_where_on_an_offline_library_prices_it_in_sql(catalogue):
    # Offline-labelled media cost nothing: which media Rekognition labelled is asked of SQL.
    code, modules = _loaded("--db", str(catalogue), "stats", "--where", "Face OR Cat")
    assert code in (None, 0)
    assert "sqlalchemy" in modules


def test_a_query_the_index_cannot_answer_loads_sqlalchemy_and_still_answers(catalogue):
    # Upper confidence bounds are met moment by moment in videos: only SQL answers them.
    code, modules = _loaded("--db", str(catalogue), "search", "Face < 99", "--count")
    assert code in (None, 0)
    assert "sqlalchemy" in modules


def test_commands_close_the_catalogue_before_they_end(catalogue):
    # A process ending without closing its SQLite connections leaves catalog.db-wal and -shm
    # behind; the sync above and a read that opened a session must both have closed theirs.
    wal = catalogue.with_name(catalogue.name + "-wal")
    assert not wal.exists()
    code, _ = _loaded("--db", str(catalogue), "stats", "--where", "Face OR Cat")
    assert code in (None, 0)
    done = subprocess.run(
        [sys.executable, "-m", "catalog", "--db", str(catalogue), "stats", "--where", "Face"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not wal.exists()
