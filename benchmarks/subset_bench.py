"""Statistics over any subset (issue 14): the product next to the floor, raw SQL on the same file.

    python benchmarks/subset_bench.py --db /tmp/bench1m.db            # a search_bench.py catalogue
    python benchmarks/subset_bench.py --db /tmp/s.db --runs 5 --process-runs 2

Builds the bitmap index first if the file has none (and prints how long that took and its size).
Every row prints the product's median wall time over warm runs (and its median CPU time, which
a shared, loaded machine inflates less), the floor (the SQL a SQL-only design runs, executed
through plain sqlite3 on the same file), and the target. `catalog stats` rows are whole
processes, with their peak resident memory; the others are in-process, with the process's peak.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.search_bench import raw_connection  # noqa: E402
from catalog.query.compile import count_select, newest_page  # noqa: E402
from catalog.query.compiled import compile_query  # noqa: E402
from catalog.read.breakdowns import find_label  # noqa: E402
from catalog.read.facets import facets  # noqa: E402
from catalog.read.groupings import cooccurring_labels  # noqa: E402
from catalog.read.search import count_matches, search  # noqa: E402
from catalog.store.bitmap_build import pending_changes, rebuild_bitmaps  # noqa: E402
from catalog.store.bitmaps import open_index  # noqa: E402
from catalog.store.engine import open_catalogue  # noqa: E402

PAGE_QUERIES = {
    "Car > 90": "Car > 90",
    "rare label": "Label2900",
    "3-term": "Car > 90 AND Person >= 80 AND NOT Dog",
    "OR": "Dog > 90 OR Cat > 90",
}
FLOOR_COOCCURRENCE = (
    "SELECT o.label_id, count(*) AS shared FROM detections m "
    "JOIN detections o ON o.media_id = m.media_id "
    "WHERE m.label_id = ? AND o.label_id != ? GROUP BY o.label_id ORDER BY shared DESC LIMIT 10"
)
FLOOR_LIBRARY_FACETS = (
    "SELECT (SELECT group_concat(label_id) FROM (SELECT label_id FROM label_stats "
    "ORDER BY media_count DESC LIMIT 20)), (SELECT group_concat(media_count) FROM media_totals), "
    "(SELECT count(*) FROM (SELECT substr(key, 1, instr(key, '/')) AS p, count(*) FROM media "
    "WHERE status != 'deleted' GROUP BY p))"
)
FLOOR_LABEL_GROUPS = (
    "SELECT m.source, substr(m.key, 1, instr(m.key, '/')), strftime('%Y-%m', m.last_modified_at), "
    "count(*) FROM media m JOIN detections d ON d.media_id = m.id WHERE d.label_id = ? "
    "GROUP BY 1, 2, 3"
)


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """Median wall and CPU milliseconds of `runs` warm calls (after one warm-up)."""
    result = fn()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus), result


def process(
    db: str, args: list[str], runs: int, python: str | None = None
) -> tuple[float, float, float]:
    """Median wall ms, CPU ms and peak RSS (MB) of `catalog --db DB ARGS` as whole processes.

    Run under /usr/bin/time: a child forked straight from this (large) process would report
    this process's resident memory as its own peak. `python` times the catalog installed for
    another interpreter (this source tree's by default).
    """
    env = dict(os.environ) if python else dict(os.environ, PYTHONPATH=str(ROOT))
    command = [python or sys.executable, "-m", "catalog", "--db", f"sqlite:///{db}", *args]
    walls, cpus, peaks = [], [], []
    with tempfile.NamedTemporaryFile("r") as report:
        timed_command = ["/usr/bin/time", "-o", report.name, "-f", "%U %S %M", *command]
        for _ in range(runs + 1):
            started = time.perf_counter()
            subprocess.run(
                timed_command,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                cwd=tempfile.gettempdir() if python else None,  # not this tree's catalog/
            )
            walls.append((time.perf_counter() - started) * 1000)
            user, system, peak_kb = report.read().split()[-3:]
            report.seek(0)
            cpus.append((float(user) + float(system)) * 1000)
            peaks.append(int(peak_kb) / 1024)
    return statistics.median(walls[1:]), statistics.median(cpus[1:]), max(peaks[1:])


def raw_sql(raw: Any, session: Any, stmt: Any) -> tuple[str, tuple[Any, ...]]:
    """A statement of the product compiled for plain sqlite3."""
    compiled = stmt.compile(session.get_bind())
    return str(compiled), tuple(compiled.params[name] for name in compiled.positiontup or ())


def row(what: str, product: str, floor: str, target: str, note: str = "") -> None:
    """One line of the table."""
    print(f"| {what:<58} | {product:>26} | {floor:>16} | {target:>16} | {note}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", default="/tmp/bench1m.db")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--floor-runs", type=int, default=3)
    parser.add_argument("--process-runs", type=int, default=5)
    parser.add_argument(
        "--python",
        help="time the whole-process rows with this interpreter's installed catalog, e.g. a "
        "venv made with `pip install '.[app]'` as users install it (default: this source tree)",
    )
    args = parser.parse_args()
    # Bytecode as any installed copy has it after its first run (PYTHONDONTWRITEBYTECODE, set on
    # some machines, would otherwise make every timed process compile the package again).
    compileall.compile_dir(ROOT / "catalog", quiet=1)
    db = str(Path(args.db).resolve())
    _, sessions = open_catalogue(f"sqlite:///{db}")
    with sessions() as session:
        built = open_index(session) is not None and pending_changes(session) == 0
    if not built:
        started = time.perf_counter()
        with sessions.begin() as session:
            report = rebuild_bitmaps(session)
        assert report is not None, "another process rebuilt the index meanwhile"
        print(
            f"bitmap index built in {time.perf_counter() - started:.1f} s: {report.bitmaps:,} "
            f"bitmaps, {report.size_bytes / 1e6:.1f} MB"
        )
    raw = raw_connection(db)
    index_mb = raw.execute("SELECT sum(length(data)) FROM media_bitmaps").fetchone()[0] / 1e6
    media = raw.execute("SELECT count(*) FROM media").fetchone()[0]
    detections = raw.execute("SELECT count(*) FROM detections").fetchone()[0]
    print(
        f"catalogue {db}: {media:,} media, {detections:,} media-label rows; bitmap index "
        f"{index_mb:.1f} MB in media_bitmaps ({index_mb * 1e6 / detections:.1f} bytes per row)"
    )
    print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    cooccurrence_floor = 0.0
    row("what", "product wall (CPU) ms", "floor ms", "target", "")
    row("-" * 58, "-" * 26, "-" * 16, "-" * 16, "")

    for label, where in (("--label Person", None), ("--where 'Car > 90'", "Car > 90")):
        cli = ["stats", "--format", "json"] + (
            ["--label", "Person"] if where is None else ["--where", where]
        )
        wall, cpu, peak = process(db, cli, args.process_runs, args.python)
        with sessions() as session:
            if where is None:
                person = find_label(session, "Person").id
                cooccurrence_floor = timed(
                    lambda p=person: raw.execute(FLOOR_COOCCURRENCE, (p, p)).fetchall(),
                    args.floor_runs,
                )[0]
                floor = (
                    cooccurrence_floor
                    + timed(
                        lambda p=person: raw.execute(FLOOR_LABEL_GROUPS, (p,)).fetchall(),
                        args.floor_runs,
                    )[0]
                )
            else:
                compiled = compile_query(session, where)
                sql, params = raw_sql(raw, session, compiled.ids())
                top = (
                    "SELECT label_id, count(*) AS n, sum(detection_count), sum(confidence_x100), "
                    f"max(confidence_x100) FROM detections WHERE media_id IN ({sql}) "
                    "GROUP BY label_id ORDER BY n DESC LIMIT 20"
                )
                floor = timed(
                    lambda t=top, p=params: raw.execute(t, p).fetchall(), args.floor_runs
                )[0]
        target = "<= 200, 150 MB" if where is None else "<= 300, 150 MB"
        row(
            f"`catalog stats {label}` whole process",
            f"{wall:.0f} ({cpu:.0f}) {peak:.0f} MB",
            f"{floor:.0f}",
            target,
        )
        with sessions() as session:
            from catalog.read.stats import library_stats

            wall, cpu, _ = timed(
                lambda w=where: library_stats(session, label=None if w else "Person", where=w),
                args.runs,
            )
        row("  the same, in-process (library_stats)", f"{wall:.1f} ({cpu:.1f})", "", "")

    with sessions() as session:
        for query, target in (
            (PAGE_QUERIES["3-term"], "<= 30"),
            (PAGE_QUERIES["OR"], "<= 15"),
        ):
            wall, cpu, result = timed(lambda q=query: count_matches(session, q), args.runs)
            plan = compile_query(session, query).plan
            sql, params = raw_sql(raw, session, count_select(plan))
            floor = timed(lambda s=sql, p=params: raw.execute(s, p).fetchall(), args.floor_runs)[0]
            row(
                f"exact count, {query}",
                f"{wall:.2f} ({cpu:.2f})",
                f"{floor:.2f}",
                target,
                f"{result.count:,}",
            )
        for name, query in PAGE_QUERIES.items():
            wall, cpu, hits = timed(
                lambda q=query: list(search(session, q, limit=50).hits), args.runs
            )
            plan = compile_query(session, query).plan
            sql, params = raw_sql(raw, session, newest_page(plan, 50))
            floor = timed(lambda s=sql, p=params: raw.execute(s, p).fetchall(), args.runs)[0]
            row(
                f"first page, 50 hits with matches: {name}",
                f"{wall:.2f} ({cpu:.2f})",
                f"{floor:.2f}",
                "<= 3",
                f"{len(hits)} hits",
            )
        for name, query in {"everything": "", **PAGE_QUERIES}.items():
            wall, cpu, result = timed(lambda q=query: facets(session, q), args.runs)
            compiled = compile_query(session, query)
            sql, params = raw_sql(raw, session, compiled.ids())
            grouped = (
                "SELECT label_id, count(*) AS n FROM detections "
                f"WHERE media_id IN ({sql}) GROUP BY label_id ORDER BY n DESC LIMIT 20"
            )
            if not query:  # SQL answers the whole library's labels from label_stats
                grouped, params = FLOOR_LIBRARY_FACETS, ()
            floor = timed(
                lambda g=grouped, p=params: raw.execute(g, p).fetchall(), args.floor_runs
            )[0]
            row(
                f"facets (top 20 labels, kinds, prefixes): {name}",
                f"{wall:.1f} ({cpu:.1f})",
                f"{floor:.0f}",
                "<= 100",
                f"{result.total:,} media",
            )
        person = find_label(session, "Person").id
        wall, cpu, _ = timed(lambda: cooccurring_labels(session, person), args.runs)
        row(
            "co-occurrence of Person (exact)",
            f"{wall:.1f} ({cpu:.1f})",
            f"{cooccurrence_floor:.0f}",
            "<= 100",
            "floor: the exact SQL self-join, measured above",
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of this benchmark process (every in-process row above): {peak:.0f} MB")


if __name__ == "__main__":
    main()
