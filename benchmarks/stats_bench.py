"""Time `catalog stats` in-process: the default view and one label's histogram (median of warm runs).

    python benchmarks/stats_bench.py /work/bench/search-1m.db
    python benchmarks/stats_bench.py /tmp/stats-50k.db --generate 50000   # build it first if missing

The target (issue 5) is <= 10 ms for both at 1,000,000 media. `--generate N` writes a synthetic
catalogue through catalog.store (the product's write path, so the summary tables are real):
90% images / 10% videos, a 3,000-label vocabulary drawn Zipf-like, 5-25 labels per image.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from catalog.labelling import BoundingBox
from catalog.store.media import add_billing, store_result
from catalog.store.runs import start_sync_run

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from catalog.labelling import DetectedLabel, Instance, LabelResult, Moment, VideoInfo
from catalog.read.breakdowns import find_label, label_spread
from catalog.read.groupings import label_histogram
from catalog.read.stats import library_stats
from catalog.sources import SourceObject
from catalog.store.engine import open_catalogue
from catalog.store.schema import Label, LabelStat, Media

VOCABULARY = 3000
OBJECT_LABELS = 450  # the first 15% get boxes


def _zipf_weights(n: int) -> list[float]:
    return [1.0 / (rank + 2) for rank in range(n)]


def generate(path: Path, count: int, seed: int = 1) -> None:
    """Write `count` synthetic media through catalog.store, 500 per transaction."""
    rng = random.Random(seed)
    names = ["Person", "Outdoors", "Nature", "Plant", "Tree", "Car", "Dog", "Cat"]
    names += [f"Label{i}" for i in range(len(names), VOCABULARY)]
    weights = _zipf_weights(VOCABULARY)
    _, sessions = open_catalogue(f"sqlite:///{path}")
    started = time.perf_counter()
    base = datetime(2020, 1, 1, tzinfo=UTC)
    with sessions.begin() as session:
        run_id = start_sync_run(session, "s3://bench/", "rekognition").id
    for first in range(0, count, 500):
        with sessions.begin() as session:
            for i in range(first, min(first + 500, count)):
                is_video = i % 10 == 9
                k = rng.randint(5, 25) if not is_video else rng.randint(3, 8)
                picked: dict[str, None] = {}
                while len(picked) < k:
                    picked[rng.choices(names, weights)[0]] = None
                modified = base + timedelta(days=rng.randrange(6 * 365))
                key = f"{2020 + i % 6}/{'videos' if is_video else 'photos'}/{i:08d}" + (
                    ".mp4" if is_video else ".jpg"
                )
                obj = SourceObject("s3", "bench", key, 1000 + i, f"etag{i}", modified)

                def conf() -> float:
                    return round(100 - 50 * rng.betavariate(1.5, 3), 2)

                if is_video:
                    moments = [
                        Moment(ts, DetectedLabel(name, conf()))
                        for name in picked
                        for ts in range(0, rng.randint(2, 10) * 500, 500)
                    ]
                    result = LabelResult(
                        "rekognition-video",
                        "3.0",
                        50.0,
                        moments=moments,
                        video=VideoInfo("h264", "mp4", 30_000, 25.0, 1280, 720),
                    )
                    store_result(session, obj, "video", result, sync_run_id=run_id)
                    add_billing(session, run_id, video_ms=30_000)
                else:
                    labels = []
                    for name in picked:
                        c = conf()
                        boxes = (
                            tuple(
                                Instance(BoundingBox(0.1, 0.1, 0.3, 0.3), c)
                                for _ in range(rng.randint(0, 3))
                            )
                            if names.index(name) < OBJECT_LABELS
                            else ()
                        )
                        labels.append(DetectedLabel(name, c, boxes))
                    result = LabelResult("rekognition", "3.0", 50.0, labels=labels)
                    store_result(session, obj, "image", result, sync_run_id=run_id)
                    add_billing(session, run_id, images=1)
        done = min(first + 500, count)
        if done % 10_000 == 0 or done == count:
            rate = done / (time.perf_counter() - started)
            print(f"generated {done:,} media ({rate:,.0f}/s)", file=sys.stderr)
    with sessions() as session:
        session.execute(select(func.count()).select_from(Media))
    with sessions.begin() as session:
        session.connection().exec_driver_sql("ANALYZE")


def _median_ms(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--generate", type=int, default=0, help="build N media first if missing")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--spread", action="store_true", help="also time --label's full spread")
    args = parser.parse_args()
    if not args.path.exists():
        if not args.generate:
            parser.error(f"{args.path} does not exist (pass --generate N to build it)")
        generate(args.path, args.generate)
    _, sessions = open_catalogue(f"sqlite:///{args.path.resolve()}")
    with sessions() as session:
        media = session.execute(select(func.count()).select_from(Media)).scalar_one()
        labels = session.execute(
            select(Label.name, LabelStat.media_count)
            .join(LabelStat, LabelStat.label_id == Label.id)
            .where(LabelStat.media_count > 0)
            .order_by(LabelStat.media_count.desc())
        ).all()
    common, rare = labels[0], labels[-1]

    def default_view() -> object:
        with sessions() as session:
            return library_stats(session)

    def histogram(name: str) -> Callable[[], object]:
        def run() -> object:
            with sessions() as session:
                return label_histogram(session, find_label(session, name).id)

        return run

    results: dict[str, object] = {
        "catalogue": str(args.path),
        "media": media,
        "labels": len(labels),
    }
    for name, fn in (
        ("default_view", default_view),
        (f"histogram[{common.name}, {common.media_count} media]", histogram(common.name)),
        (f"histogram[{rare.name}, {rare.media_count} media]", histogram(rare.name)),
    ):
        median, worst = _median_ms(fn, args.runs)
        results[name] = {"median_ms": round(median, 3), "max_ms": round(worst, 3)}
    if args.spread:

        def spread() -> object:
            with sessions() as session:
                return label_spread(session, common.name)

        median, worst = _median_ms(spread, 3)
        results[f"label_spread[{common.name}] (scans; no target)"] = {
            "median_ms": round(median, 1),
            "max_ms": round(worst, 1),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
