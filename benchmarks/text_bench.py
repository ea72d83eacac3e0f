"""Text search benchmark: `text:` queries at scale, and the offline OCR's images per second.

    python benchmarks/text_bench.py --db /tmp/text1m.db --media 1000000   # build once, then time
    python benchmarks/text_bench.py --db /tmp/text100k.db --media 100000
    python benchmarks/text_bench.py --db /tmp/text1m.db --reuse           # time an existing file
    python benchmarks/text_bench.py --ocr-images 20 --no-search           # offline OCR speed only

The catalogue is the search benchmark's synthetic one (benchmarks/synthetic.py) plus text on 30%
of the images: 1-4 LINEs of 1-4 words each (and their WORD rows), words drawn Zipf-like from a
vocabulary of sign, shop and street words, so common words ("exit") hit many items and rare ones
few. Every image gets a text provenance row (its text was read; most show none). Prints the
median of 20 warm runs of each query's first page (50 newest) through catalog.read.search, and
the offline OCR's images per second on Pillow-rendered signs.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import synthetic  # noqa: E402
from benchmarks.search_bench import median_ms  # noqa: E402
from catalog.read.search import first_page_ids  # noqa: E402
from catalog.store.engine import open_catalogue  # noqa: E402
from catalog.store.text import fts_body, text_words  # noqa: E402

TEXT_SHARE = 0.30
COMMON = [
    "exit",
    "open",
    "closed",
    "sale",
    "no",
    "parking",
    "stop",
    "taxi",
    "entrance",
    "emergency",
    "street",
    "road",
    "avenue",
    "coffee",
    "bar",
    "hotel",
    "pharmacy",
    "police",
    "station",
    "bus",
    "stop",
    "gate",
    "platform",
    "welcome",
    "push",
    "pull",
    "toilets",
    "only",
    "way",
    "one",
    "cafe",
    "bakery",
    "restaurant",
    "menu",
    "free",
    "wifi",
]
QUERIES = {
    "word (common)": ("text:exit", 20),
    "word (rare)": ("text:w9000", 20),
    "phrase": ('text:"emergency exit"', 50),
    "phrase + confidence": ('text:"no parking" > 90', 50),
    "label AND word": ("Car AND text:taxi", 50),
    "label AND phrase": ('Person AND text:"bus stop"', 50),
    "word AND NOT label": ("text:open AND NOT Dog", 50),
}
TEXT_COLUMNS = (
    "id",
    "media_id",
    "kind",
    "idx",
    "parent_idx",
    "timestamp_ms",
    "text",
    "text_folded",
    "confidence_x100",
    "left",
    "top",
    "width",
    "height",
)


def vocabulary(size: int = 20_000) -> list[str]:
    """Sign words first (the common ones), then w{n} filler words, in rank order."""
    return COMMON + [f"w{n}" for n in range(len(COMMON), size)]


def add_text(db_path: str, seed: int = 11, log: Callable[[str], None] = print) -> dict[str, int]:
    """Text rows on TEXT_SHARE of the images, bulk-inserted, then the FTS5 index rebuilt."""
    import sqlite3

    words = vocabulary()
    weights = 1.0 / (np.arange(len(words)) + 1.0) ** 1.1
    cdf = np.cumsum(weights / weights.sum())
    rng = np.random.default_rng(seed)
    connection = sqlite3.connect(db_path)
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    images = [row[0] for row in connection.execute("SELECT id FROM media WHERE kind='image'")]
    texted = set(rng.choice(images, size=int(len(images) * TEXT_SHARE), replace=False).tolist())
    connection.executemany(
        "INSERT INTO text_results (media_id, reader, model_version, read_at) "
        "VALUES (?, 'rekognition', '3.0', '2026-11-30 00:00:00')",
        ((media_id,) for media_id in images),
    )
    next_id = 1
    lines_total = words_total = 0
    batch: list[tuple[Any, ...]] = []
    bodies: list[tuple[int, str]] = []
    for media_id in sorted(texted):
        n_lines = int(rng.integers(1, 5))
        line_rows: list[tuple[Any, ...]] = []
        word_rows: list[tuple[Any, ...]] = []
        for line_id in range(n_lines):
            n_words = int(rng.integers(1, 5))
            picked = [words[i] for i in np.searchsorted(cdf, rng.random(n_words))]
            if rng.random() < 0.05:
                picked = ["emergency", "exit"] if rng.random() < 0.5 else ["no", "parking"]
            text = " ".join(picked).upper()
            conf = int(rng.integers(6000, 10000))
            top = 0.1 + 0.2 * line_id
            folded = " ".join(text_words(text))
            line_rows.append(
                (next_id, media_id, "LINE", line_id, None, None, text, folded, conf, 0.1, top)
            )
            next_id += 1
            for n, word in enumerate(picked):
                position = n_lines + len(word_rows)
                word = word.upper()
                left = 0.1 + 0.15 * n
                word_rows.append(
                    (
                        next_id,
                        media_id,
                        "WORD",
                        position,
                        line_id,
                        None,
                        word,
                        word.lower(),
                        conf,
                        left,
                        top,
                    )
                )
                next_id += 1
        bodies.append((media_id, fts_body([row[7] for row in line_rows])))
        batch.extend(line_rows + word_rows)
        lines_total += len(line_rows)
        words_total += len(word_rows)
        if len(batch) > 50_000:
            _insert(connection, batch, bodies)
            batch, bodies = [], []
    _insert(connection, batch, bodies)
    log(f"  {len(texted):,} images with text: {lines_total:,} lines, {words_total:,} words")
    connection.execute("ANALYZE")
    connection.commit()
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    return {"texted": len(texted), "lines": lines_total, "words": words_total}


def _insert(connection: Any, rows: list[tuple[Any, ...]], bodies: list[tuple[int, str]]) -> None:
    """Text rows (each given up to `top`; every box is 0.6 or 0.14 wide, 0.1 high) and FTS rows."""
    placeholders = ", ".join("?" for _ in TEXT_COLUMNS)
    columns = ", ".join(f'"{c}"' for c in TEXT_COLUMNS)
    full = [(*row, 0.6 if row[2] == "LINE" else 0.14, 0.1) for row in rows]
    connection.executemany(f"INSERT INTO text_detections ({columns}) VALUES ({placeholders})", full)
    connection.executemany("INSERT INTO text_fts (rowid, body) VALUES (?, ?)", bodies)


def time_queries(db_path: str, runs: int) -> None:
    """The first page of each text query, median of `runs` warm runs."""
    _, sessions = open_catalogue(f"sqlite:///{db_path}")
    print(f"{'query':<22} {'text':<34} {'hits':>5} {'median ms':>10} {'target':>7}")
    with sessions() as session:
        for name, (query, target) in QUERIES.items():
            ms, ids = median_ms(lambda q=query: first_page_ids(session, q, 50), runs)
            verdict = "ok" if ms <= target else "SLOW"
            print(f"{name:<22} {query:<34} {len(ids):>5} {ms:>10.1f} {target:>5} {verdict}")


def ocr_speed(images: int) -> None:
    """Images per second of the offline OCR on 1024x768 Pillow-rendered signs."""
    from PIL import Image, ImageDraw, ImageFont

    from catalog.labelling import ImageInput
    from catalog.labelling.ocr import LocalTextReader

    rng = np.random.default_rng(3)
    words = vocabulary(200)
    font = ImageFont.load_default(size=40)
    pictures = []
    for _ in range(images):
        image = Image.new("RGB", (1024, 768), (230, 230, 220))
        draw = ImageDraw.Draw(image)
        for line in range(int(rng.integers(1, 4))):
            text = " ".join(words[int(i)] for i in rng.integers(0, len(words), 3)).upper()
            draw.text((60, 80 + 180 * line), text, fill="black", font=font)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        pictures.append(buffer.getvalue())
    started = time.perf_counter()
    reader = LocalTextReader()
    loaded = time.perf_counter()
    reader.read_image(ImageInput(data=pictures[0]))  # warm-up
    started_reading = time.perf_counter()
    found = sum(len(reader.read_image(ImageInput(data=p)).lines) for p in pictures)
    elapsed = time.perf_counter() - started_reading
    print(
        f"offline OCR: {images} images 1024x768 in {elapsed:.1f}s = {images / elapsed:.2f} "
        f"images/s ({found} lines read; model load {loaded - started:.1f}s)"
    )


def main() -> None:
    """Build (unless --reuse) and time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/text100k.db")
    parser.add_argument("--media", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true", help="time an existing catalogue")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--ocr-images", type=int, default=0, help="also time the offline OCR")
    parser.add_argument("--no-search", action="store_true", help="skip the search timings")
    args = parser.parse_args()
    if not args.no_search:
        if not args.reuse:
            path = Path(args.db)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            started = time.perf_counter()
            timings = synthetic.build(args.db, args.media)
            print(
                f"labels: {args.media:,} media, {timings['rows']:,} rows, {timings['total_s']:.0f}s"
            )
            added = time.perf_counter()
            add_text(args.db)
            print(
                f"text: {time.perf_counter() - added:.0f}s; total {time.perf_counter() - started:.0f}s"
            )
        size_mb = Path(args.db).stat().st_size / 1e6
        print(f"catalogue {args.db}: {size_mb:,.0f} MB")
        time_queries(args.db, args.runs)
    if args.ocr_images:
        ocr_speed(args.ocr_images)


if __name__ == "__main__":
    main()
