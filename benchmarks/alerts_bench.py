"""Alert rule evaluation cost: milliseconds added per labelled object with 100 rules.

A synthetic catalogue (benchmarks.synthetic) is built, 100 rules are saved (labels with
thresholds, aliases, categories, AND/OR/NOT, kind and count conditions), then N new objects
are labelled through ResultWriter (the write path of sync, worker and Lambda), and the queued results are evaluated in batches the
size a running sync's alert thread takes (BATCH_SIZE). Printed: what queueing adds to each write (the
statement inside the result's transaction), the evaluation cost after a warm-up batch (which
compiles every rule), and their sum per labelled object (the target is <= 2 ms).

    python -m benchmarks.alerts_bench --media 50000 --objects 2000
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete, select

from benchmarks.synthetic import build, label_names
from catalog.alerts.evaluation import BATCH_SIZE, evaluate_batch
from catalog.alerts.rules import add_rule
from catalog.ingest.writer import ResultProvenance, ResultWriter
from catalog.labelling import DetectedLabel, LabelResult
from catalog.sources import SourceObject
from catalog.store.alerts import queue_evaluation
from catalog.store.engine import open_catalogue
from catalog.store.schema import AlertOutbox, Media


def rule_queries(names: list[str], count: int, rng: random.Random) -> list[str]:
    """`count` varied queries over the vocabulary."""
    common = names[:40]
    rare = names[40:600]
    forms = [
        lambda: f'"{rng.choice(rare)}" > {rng.choice((60, 70, 80, 90))}',
        lambda: f'"{rng.choice(common)}" >= 95 AND NOT "{rng.choice(common)}"',
        lambda: f'"{rng.choice(rare)}" OR "{rng.choice(rare)}"',
        lambda: f"Automobile > {rng.choice((80, 90, 95))} kind:image",
        lambda: f'category:"Animals and Pets" "{rng.choice(rare)}"',
        lambda: f'count(Person) >= {rng.choice((3, 4, 5))} "{rng.choice(rare)}"',
        lambda: f'kind:video "{rng.choice(common)}" > 90 "{rng.choice(rare)}"',
        lambda: f'("{rng.choice(rare)}" OR Dog > 97) AND NOT Cat',
    ]
    return [forms[i % len(forms)]() for i in range(count)]


def label_objects(sessions, names: list[str], count: int, offset: int, rng: random.Random) -> float:
    """Store `count` new results through ResultWriter; returns the seconds taken."""
    writer = ResultWriter(sessions, ResultProvenance("rekognition", "3.0", 50.0, None))
    weights = [1 / (r + 1) for r in range(len(names))]
    started = time.perf_counter()
    for n in range(count):
        picked = set(rng.choices(names, weights=weights, k=12))
        labels = [DetectedLabel(name, round(rng.uniform(55, 99.9), 2)) for name in picked]
        obj = SourceObject("s3", "bench", f"new/{offset + n}.jpg", 1000 + n, f"etag-{offset + n}")
        writer.store(obj, "image", LabelResult("rekognition", "3.0", 50.0, labels=labels))
    return time.perf_counter() - started


def time_queueing(sessions, count: int) -> float:
    """Seconds for `count` queue_evaluation calls inside one transaction (what a write adds)."""
    with sessions() as session:
        ids = list(session.scalars(select(Media.id).order_by(Media.id.desc()).limit(count)))
    with sessions.begin() as session:
        started = time.perf_counter()
        for media_id in ids:
            queue_evaluation(session, media_id)
        elapsed = time.perf_counter() - started
        session.rollback()
    return elapsed / max(1, len(ids)) * count


def evaluate_all(sessions, batch: int) -> tuple[int, int, float]:
    """Evaluate every queued result in batches: (results, alerts fired, seconds)."""
    evaluated = fired = 0
    started = time.perf_counter()
    while True:
        with sessions.begin() as session:
            taken, count = evaluate_batch(session, batch)
        evaluated += taken
        fired += count
        if taken == 0:
            return evaluated, fired, time.perf_counter() - started


def main() -> None:
    """Build, label, evaluate and print the per-object costs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=int, default=50_000, help="catalogue size")
    parser.add_argument("--objects", type=int, default=2_000, help="objects labelled and evaluated")
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument(
        "--batch", type=int, default=BATCH_SIZE, help="results per evaluation batch"
    )
    parser.add_argument("--dir", default=None, help="where to build the catalogue")
    args = parser.parse_args()
    rng = random.Random(17)
    directory = Path(args.dir or tempfile.mkdtemp(prefix="alerts-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "catalog.db"
    print(f"building {args.media:,} media in {path} ...")
    build(str(path), args.media, log=print)
    _, sessions = open_catalogue(f"sqlite:///{path}")
    names = label_names()

    started = time.perf_counter()
    for i, query in enumerate(rule_queries(names, args.rules, rng)):
        with sessions.begin() as session:
            add_rule(session, f"rule-{i}", query, [f"file:{directory}/alerts.jsonl"])
    print(f"saved {args.rules} rules in {time.perf_counter() - started:.1f}s")

    # Warm-up: the first batch compiles every rule (again only when the vocabulary changes).
    label_objects(sessions, names, args.batch, 10**6, rng)
    _, _, cold = evaluate_all(sessions, args.batch)

    n = args.objects
    labelling = label_objects(sessions, names, n, 0, rng)
    evaluated, fired, evaluation = evaluate_all(sessions, args.batch)
    queueing = time_queueing(sessions, n)
    with sessions.begin() as session:
        session.execute(delete(AlertOutbox))

    queueing_ms = queueing / n * 1000
    evaluation_ms = evaluation / n * 1000
    print(f"labelled {n:,} objects through ResultWriter: {labelling / n * 1000:.2f} ms each")
    print(f"first batch of {args.batch} (compiles the {args.rules} rules): {cold:.2f}s")
    print(
        f"evaluated {evaluated:,} results in batches of {args.batch}: {evaluation:.2f}s, "
        f"{fired:,} alerts fired"
    )
    print(
        f"rule evaluation per labelled object at {args.rules} rules: "
        f"{queueing_ms + evaluation_ms:.2f} ms "
        f"(queueing {queueing_ms:.3f} ms + evaluation {evaluation_ms:.2f} ms; target <= 2 ms)"
    )


if __name__ == "__main__":
    main()
