"""A synthetic Rekognition-like catalogue (db-limits.md's generator), bulk-loaded into SQLite.

N media: about 90% images with 5-25 distinct labels each, drawn from a Zipf-Mandelbrot
vocabulary of 3,000 labels (p(r) ~ 1/(r+1)); confidence = 100 - 50*Beta(a_label, 3) (50-100,
mean about 86); about 15% of labels are objects with 0-6 boxes per image. About 10% videos with
60-600 moments (500 ms slots) over 5-30 labels; each label is seen in one contiguous run, its
detections row holds the best moment. Everything goes through benchmarks.bulkload.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from benchmarks.bulkload import (
    BulkBatch,
    analyze,
    bulk_load,
    create_indexes,
    drop_secondary_indexes,
    insert_labels,
    rebuild_summaries,
)
from catalog.store.bitmap_build import rebuild_bitmaps
from catalog.store.engine import open_catalogue

VOCABULARY = 3000
# Real names at the ranks whose frequencies db-limits.md reports (Person 63%, Car 21%, ...).
NAMED_RANKS = {
    0: "Person",
    1: "Outdoors",
    2: "Nature",
    3: "Plant",
    4: "Tree",
    5: "Sky",
    6: "Building",
    7: "Car",
    8: "Vehicle",
    9: "Transportation",
    27: "Dog",
    35: "Cat",
    60: "Traffic Light",
}
ALIASES = {"Car": ["Automobile"], "Dog": ["Canine"], "Cat": ["Kitty"]}
CATEGORIES = {
    "Car": ["Vehicles and Automotive"],
    "Vehicle": ["Vehicles and Automotive"],
    "Transportation": ["Vehicles and Automotive"],
    "Traffic Light": ["Vehicles and Automotive"],
    "Dog": ["Animals and Pets"],
    "Cat": ["Animals and Pets"],
}
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def label_names() -> list[str]:
    """The vocabulary in rank order (rank r is Label{r} unless it has a real name)."""
    return [NAMED_RANKS.get(r, f"Label{r}") for r in range(VOCABULARY)]


def generate(
    n_media: int, label_ids: list[int], seed: int = 7, batch: int = 5000
) -> Iterator[BulkBatch]:
    """Batches of rows for media ids 1..n_media."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / (np.arange(VOCABULARY) + 1.0)
    cdf = np.cumsum(weights / weights.sum())
    alpha = rng.uniform(0.6, 1.8, VOCABULARY)
    is_object = rng.random(VOCABULARY) < 0.15
    names = label_names()
    for name in ("Person", "Car", "Dog", "Cat", "Traffic Light"):
        is_object[names.index(name)] = True
    ids = np.asarray(label_ids)
    now = datetime.now(UTC)
    for start in range(0, n_media, batch):
        out = BulkBatch()
        count = min(batch, n_media - start)
        videos = (rng.random(count) < 0.1).tolist()
        draws = np.searchsorted(cdf, rng.random((count, 60))).tolist()
        n_labels = np.where(videos, rng.integers(5, 31, count), rng.integers(5, 26, count)).tolist()
        sizes = rng.integers(50_000, 12_000_000, count).tolist()
        ages = rng.integers(0, 5 * 365 * 86400, count).tolist()
        ranks = [list(dict.fromkeys(draws[j]))[: n_labels[j]] for j in range(count)]
        # Images: every label of the batch in one draw.
        flat = np.fromiter(
            (r for j in range(count) if not videos[j] for r in ranks[j]), dtype=np.int64
        )
        confs = np.rint((100 - 50 * rng.beta(alpha[flat], 3)) * 100).astype(np.int64).tolist()
        boxes = (rng.integers(0, 7, len(flat)) * is_object[flat]).tolist()
        flat_ids = ids[flat].tolist()
        k = 0
        for j in range(count):
            media_id = start + j + 1
            video = videos[j]
            modified = EPOCH + timedelta(seconds=ages[j])
            folder, ext = ("videos", "mp4") if video else ("photos", "jpg")
            out.media.append(
                {
                    "id": media_id,
                    "source": "s3",
                    "bucket": "bench",
                    "key": f"{folder}/{modified:%Y/%m}/{media_id:07d}.{ext}",
                    "etag": f"{media_id:032x}",
                    "size_bytes": sizes[j] * (20 if video else 1),
                    "last_modified_at": modified,
                    "kind": "video" if video else "image",
                    "status": "labelled",
                    "attempts": 1,
                    "labelled_at": now,
                    "first_seen_at": now,
                    "updated_at": now,
                    "width": 1920,
                    "height": 1080,
                    "duration_ms": None,
                }
            )
            if video:
                _video_rows(rng, out, media_id, ranks[j], ids, alpha, is_object)
                continue
            n = len(ranks[j])
            for label_id, conf, n_boxes in zip(
                flat_ids[k : k + n], confs[k : k + n], boxes[k : k + n], strict=True
            ):
                out.detections.append((label_id, media_id, conf, n_boxes, max(1, n_boxes)))
                for idx in range(n_boxes):
                    out.instances.append((media_id, label_id, idx, None, conf, 0.1, 0.1, 0.2, 0.2))
            k += n
        yield out


def _video_rows(
    rng: Any, out: BulkBatch, media_id: int, ranks: list[int], ids: Any, alpha: Any, is_object: Any
) -> None:
    total = int(rng.integers(60, 601))
    slots = max(total // 2, 30)
    per_label = max(1, total // len(ranks))
    out.media[-1]["duration_ms"] = slots * 500
    n = len(ranks)
    confs = np.rint((100 - 50 * rng.beta(np.repeat(alpha[ranks], per_label), 3)) * 100)
    confs_l = confs.astype(np.int64).reshape(n, per_label).tolist()
    counts_l = (rng.integers(0, 4, (n, per_label)) * is_object[ranks][:, None]).tolist()
    firsts = rng.integers(0, max(1, slots - per_label), n).tolist()
    for rank, first, lconfs, lcounts in zip(ranks, firsts, confs_l, counts_l, strict=True):
        label_id = int(ids[rank])
        stamps = range(first * 500, (first + per_label) * 500, 500)
        out.moments.extend(
            zip(
                [media_id] * per_label, [label_id] * per_label, stamps, lconfs, lcounts, strict=True
            )
        )
        best = max(lconfs)
        out.detections.append((label_id, media_id, best, max(lcounts), per_label))
        out.segments.append((media_id, label_id, first * 500, (first + per_label - 1) * 500, best))


def build(
    path: str, n_media: int, log: Any = print, defer_indexes: bool = True
) -> dict[str, float]:
    """Create the catalogue file at `path`; returns timings in seconds."""
    engine, _ = open_catalogue(f"sqlite:///{path}")
    started = time.perf_counter()
    with engine.connect() as connection:
        # A new file nobody else reads yet: no fsync per checkpoint while loading.
        connection.exec_driver_sql("PRAGMA journal_mode=OFF")
        connection.exec_driver_sql("PRAGMA synchronous=OFF")
        connection.commit()
        with connection.begin():
            dropped = drop_secondary_indexes(connection) if defer_indexes else []
            names = label_names()
            id_by_name = insert_labels(connection, names, ALIASES, CATEGORIES)
        label_ids = [id_by_name[n] for n in names]
        rows = 0
        done = 0
        last = time.perf_counter()
        for batch in generate(n_media, label_ids):
            rows += bulk_load(connection, [batch])
            done += len(batch.media)
            if time.perf_counter() - last > 30:
                last = time.perf_counter()
                log(f"  {done:,} media, {rows:,} rows, {last - started:.0f}s")
        with connection.begin():
            create_indexes(connection, dropped)
        loaded = time.perf_counter()
        with connection.begin():
            rebuild_summaries(connection)
        summarised = time.perf_counter()
        with connection.begin():
            analyze(connection)
        analysed = time.perf_counter()
        with connection.begin():
            rebuild_bitmaps(connection)  # the load bypassed the write path that keeps it exact
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        connection.commit()
    finished = time.perf_counter()
    engine.dispose()
    return {
        "rows": rows,
        "insert_s": loaded - started,
        "summaries_s": summarised - loaded,
        "analyze_s": analysed - summarised,
        "index_s": finished - analysed,
        "total_s": finished - started,
    }
