"""Start-up of the common read commands, as whole processes, against the floor.

The floor is Python itself opening the same SQLite file and running one query. Each command
is timed as `catalog ...` in a fresh process, interleaved with the floor so that both see the
same machine load; the script prints medians and the ratio (target: at most 10x the floor).

    python benchmarks/startup_bench.py [--media 2000] [--runs 9] [--db PATH]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import synthetic  # noqa: E402

FLOOR = (
    "import sqlite3, sys\n"
    "c = sqlite3.connect(sys.argv[1])\n"
    "c.execute('select m.id from media m join detections d on d.media_id = m.id "
    "where d.label_id = 1 and d.confidence_x100 > 9000 order by m.id desc limit 50').fetchall()\n"
)


def _time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),  # the installed catalog, never a source tree's catalog/ here
    )
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=int, default=2000, help="catalogue size (default 2000)")
    parser.add_argument("--runs", type=int, default=9, help="timed runs per command (default 9)")
    parser.add_argument("--db", help="an existing catalogue to use instead of building one")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter whose installed catalog is timed, e.g. a venv made with "
        "`pip install '.[app]'` as users install it (default: this one)",
    )
    args = parser.parse_args()
    # Bytecode as any installed copy has it after its first run (PYTHONDONTWRITEBYTECODE, set on
    # some machines, would otherwise make every timed process compile the package again).
    compileall.compile_dir(ROOT / "catalog", quiet=1)

    folder = tempfile.mkdtemp(prefix="catalog-startup-")
    db = args.db or os.path.join(folder, "catalog.db")
    if not args.db:
        synthetic.build(db, args.media, log=lambda _line: None)
    import sqlite3

    key = sqlite3.connect(db).execute("select bucket, key from media limit 1").fetchone()
    uri = f"s3://{key[0]}/{key[1]}"
    catalog = [args.python, "-m", "catalog", "--db", db]
    commands = {
        "catalog search 'Car > 90' --format json": [
            *catalog,
            "search",
            "Car > 90",
            "--format",
            "json",
        ],
        "catalog stats": [*catalog, "stats"],
        "catalog show URI": [*catalog, "show", uri],
        "catalog --help": [*catalog, "--help"],
    }
    floor_command = [args.python, "-c", FLOOR, db]
    floors: list[float] = []
    timings: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():  # warm the page cache and bytecode
        _time(command)
    _time(floor_command)
    for _ in range(args.runs):
        for name, command in commands.items():
            floors.append(_time(floor_command))
            timings[name].append(_time(command))
    floor = statistics.median(floors)
    print(f"catalogue: {db} ({args.media:,} media)" if not args.db else f"catalogue: {db}")
    print(f"{'command':44s} {'median ms':>10s} {'x floor':>8s}")
    print(f"{'floor: python + sqlite3 + one query':44s} {floor:10.1f} {1.0:8.1f}")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:44s} {median:10.1f} {median / floor:8.1f}")
    print("target: each command at most 10x the floor")


if __name__ == "__main__":
    main()
