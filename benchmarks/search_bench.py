"""Search benchmark: bulk-load a synthetic catalogue, then time the product's search functions.

    python benchmarks/search_bench.py                     # 1,000,000 media into /work/bench/search-1m.db
    python benchmarks/search_bench.py --media 20000 --db /tmp/s.db
    python benchmarks/search_bench.py --db /work/bench/search-1m.db --reuse   # time an existing file

Prints the bulk-import time and database size, then the median of 20 warm runs (after one
warm-up) of each query through catalog.search, `catalog search` as a whole process, and a
naive JSON-column scan (labels as a JSON array per media, json_each) as the baseline ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import synthetic  # noqa: E402
from catalog.read.search import count_matches, first_page_ids, search  # noqa: E402
from catalog.store.engine import open_catalogue  # noqa: E402

PAGE_QUERIES = {
    "Car > 90": "Car > 90",
    "rare label": "Label2900",
    "3-term": "Car > 90 AND Person >= 80 AND NOT Dog",
    "OR": "Dog > 90 OR Cat > 90",
}
COUNT_QUERIES = {
    "Car (common)": "Car",
    "Car > 90": "Car > 90",
    "3-term": "Car > 90 AND Person >= 80 AND NOT Dog",
    "OR": "Dog > 90 OR Cat > 90",
}
TARGETS_MS = {
    ("page", "Car > 90"): 10,
    ("page", "rare label"): 10,
    ("page", "3-term"): 10,
    ("page", "OR"): 10,
    ("count", "Car (common)"): 10,
    ("count", "Car > 90"): 10,
    ("count", "3-term"): 150,
    ("count", "OR"): 50,
}


def median_ms(fn: Callable[[], Any], runs: int, warm_up: bool = True) -> tuple[float, Any]:
    """Median wall time in ms of `runs` calls (after one warm-up call)."""
    result = fn() if warm_up else None
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def naive_table(db_path: str, naive_path: str) -> float:
    """Build the naive baseline (one JSON array of labels per media) in a side file; seconds."""
    started = time.perf_counter()
    conn = sqlite3.connect(naive_path)
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'naive_media'").fetchone():
        conn.close()
        return 0.0
    conn.execute("PRAGMA main.journal_mode=OFF")
    conn.execute("ATTACH DATABASE ? AS cat", (db_path,))
    conn.execute("CREATE TABLE naive_media(id INTEGER PRIMARY KEY, kind TEXT, labels TEXT)")
    conn.execute(
        """INSERT INTO naive_media
           SELECT d.media_id, m.kind,
                  json_group_array(json_object('Name', l.name, 'Confidence', d.confidence_x100 / 100.0))
           FROM cat.detections d JOIN cat.labels l ON l.id = d.label_id
           JOIN cat.media m ON m.id = d.media_id
           GROUP BY d.media_id"""
    )
    conn.commit()
    conn.close()
    return time.perf_counter() - started


NAIVE_HAS = (
    "EXISTS (SELECT 1 FROM json_each(labels) WHERE json_extract(value, '$.Name') = ? "
    "AND json_extract(value, '$.Confidence') > ?)"
)
NAIVE_QUERIES = {
    ("page", "Car > 90"): (
        f"SELECT id FROM naive_media WHERE {NAIVE_HAS} ORDER BY id DESC LIMIT 50",
        ("Car", 90),
    ),
    ("page", "rare label"): (
        f"SELECT id FROM naive_media WHERE {NAIVE_HAS} ORDER BY id DESC LIMIT 50",
        ("Label2900", 0),
    ),
    ("count", "Car > 90"): (f"SELECT count(*) FROM naive_media WHERE {NAIVE_HAS}", ("Car", 90)),
}


def raw_connection(db_path: str) -> sqlite3.Connection:
    """A plain sqlite3 connection with the product's pragmas (for the floor column)."""
    conn = sqlite3.connect(db_path)
    for pragma in ("cache_size=-262144", "mmap_size=2147483648", "temp_store=MEMORY"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def floor_ms(session: Any, raw: sqlite3.Connection, query: str, kind: str, runs: int) -> float:
    """The same SQL the product runs, executed straight through sqlite3 (the floor)."""
    from catalog.query.compile import count_select, newest_page, plan_query
    from catalog.query.parse import parse_query

    query_plan, _ = plan_query(session, parse_query(query))
    stmt = newest_page(query_plan, 50) if kind == "page" else count_select(query_plan)
    compiled = stmt.compile(session.get_bind())
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    ms, _ = median_ms(lambda: raw.execute(str(compiled), params).fetchall(), runs)
    return ms


def process_ms(db_path: str, runs: int) -> tuple[float, float]:
    """Median wall time of `python -m catalog search` as a whole process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [
        sys.executable,
        "-m",
        "catalog",
        "--db",
        db_path,
        "search",
        "Car > 90",
        "--format",
        "json",
        "--limit",
        "50",
    ]
    times = []
    cpu = []
    for _ in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - started) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000)
    return statistics.median(times[1:]), statistics.median(cpu[1:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--media", type=int, default=1_000_000)
    parser.add_argument("--db", default="/work/bench/search-1m.db")
    parser.add_argument("--reuse", action="store_true", help="time an existing file, do not build")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--build-only", action="store_true", help="build the file and stop")
    parser.add_argument("--no-naive", action="store_true", help="skip the JSON-scan baseline")
    args = parser.parse_args()

    db_path = str(Path(args.db).resolve())
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    if not args.reuse:
        for suffix in ("", "-wal", "-shm", ".naive"):
            Path(db_path + suffix).unlink(missing_ok=True)
        print(f"building {args.media:,} media into {db_path} ...", flush=True)
        timings = synthetic.build(db_path, args.media, log=lambda m: print(m, flush=True))
        print(
            f"bulk import: {timings['total_s']:.1f} s total ({timings['rows']:,} rows inserted in "
            f"{timings['insert_s']:.1f} s, summaries {timings['summaries_s']:.1f} s, "
            f"ANALYZE {timings['analyze_s']:.1f} s, bitmap index {timings['index_s']:.1f} s)"
        )
    size = sum(Path(db_path + s).stat().st_size for s in ("", "-wal") if Path(db_path + s).exists())
    print(f"database size: {size / 1e9:.2f} GB ({db_path})")

    if args.build_only:
        return
    _, sessions = open_catalogue(f"sqlite:///{db_path}")
    results: dict[tuple[str, str], float] = {}
    raw = raw_connection(db_path)
    with sessions() as session:
        print(f"\nmedian of {args.runs} warm runs through catalog.search (ms):")
        for name, query in PAGE_QUERIES.items():
            ms, _ids = median_ms(lambda q=query: first_page_ids(session, q, 50), args.runs)
            full, hits = median_ms(
                lambda q=query: list(search(session, q, limit=50).hits), args.runs
            )
            results[("page", name)] = full
            floor = floor_ms(session, raw, query, "page", args.runs)
            print(
                f"  first page (50) {name:<12} {query!r:<45} ids {ms:8.2f}  "
                f"with hits {full:8.2f}  [{len(hits)} hits]  raw-sqlite3 floor {floor:7.2f}  "
                f"target <= {TARGETS_MS[('page', name)]}"
            )
        for name, query in COUNT_QUERIES.items():
            ms, result = median_ms(lambda q=query: count_matches(session, q), args.runs)
            results[("count", name)] = ms
            floor = floor_ms(session, raw, query, "count", args.runs)
            print(
                f"  exact count     {name:<12} {query!r:<45} {ms:8.2f}  "
                f"[{result.count:,}]  raw-sqlite3 floor {floor:7.2f}  "
                f"target <= {TARGETS_MS[('count', name)]}"
            )
    whole, cpu = process_ms(db_path, 5)
    print(
        f"  `catalog search 'Car > 90' --format json --limit 50` whole process: {whole:.0f} ms "
        f"wall, {cpu:.0f} ms CPU (target <= 1000)"
    )

    if not args.no_naive:
        naive_path = db_path + ".naive"
        built = naive_table(db_path, naive_path)
        print(
            f"\nnaive JSON-column baseline ({naive_path}, built in {built:.0f} s), median of 3 runs (no warm-up):"
        )
        conn = sqlite3.connect(naive_path)
        for key, (sql, params) in NAIVE_QUERIES.items():
            ms, _ = median_ms(lambda s=sql, p=params: conn.execute(s, p).fetchall(), 3, False)
            ratio = ms / results[key] if results.get(key) else float("nan")
            print(
                f"  {key[0]:<5} {key[1]:<12} naive {ms:10.1f} ms  product {results[key]:8.2f} ms  ratio {ratio:,.0f}x"
            )
        conn.close()


if __name__ == "__main__":
    main()
