"""Gallery benchmark: `catalog serve` on the synthetic catalogue, timed over HTTP.

    python benchmarks/search_bench.py --db /tmp/web_bench.db --build-only   # 1,000,000 media
    python benchmarks/web_bench.py --db /tmp/web_bench.db
    python benchmarks/web_bench.py --db /tmp/small.db --runs 20 --clients 5 --seconds 5

Starts `catalog serve` as its own process and reports, for each query shape, p50/p95/p99 of
the server time (its Server-Timing header: request in to response start) and of the wall time
seen by the client: the search page (first page), `/api/search` (limit 50), a page 100 pages
deep, a cached thumbnail, then 20 clients for 30 s with an error count. Targets: search page
<= 50 ms p95, /api/search <= 20 ms p95, page 100 no slower than page 1, cached thumbnail
<= 5 ms, zero errors under load.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERIES = {
    "first page": "Car > 90",
    "rare label": "Label2900",
    "3-term AND NOT": "Car > 90 AND Person >= 80 AND NOT Dog",
    "OR": "Dog > 90 OR Cat > 90",
}
NEXT_RE = re.compile(r'href="([^"]+)" id="next-page"')


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 (nearest rank)."""
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    return rank(50), rank(95), rank(99)


def server_ms(response: httpx.Response) -> float:
    """The app's own time from its Server-Timing header."""
    match = re.search(r"dur=([\d.]+)", response.headers.get("server-timing", ""))
    return float(match.group(1)) if match else float("nan")


def measure(
    client: httpx.Client, url: str, runs: int, check: Callable[[httpx.Response], bool]
) -> tuple[list[float], list[float]]:
    """Server and wall times (ms) of `runs` GETs after one warm-up."""
    client.get(url)
    server, wall = [], []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        wall.append((time.perf_counter() - started) * 1000)
        if not check(response):
            raise SystemExit(f"GET {url} -> {response.status_code}: {response.text[:200]}")
        server.append(server_ms(response))
    return server, wall


def line(name: str, server: list[float], wall: list[float], target: str) -> str:
    s50, s95, s99 = percentiles(server)
    w50, w95, w99 = percentiles(wall)
    return (
        f"  {name:<34} server p50 {s50:7.2f}  p95 {s95:7.2f}  p99 {s99:7.2f}   "
        f"wall p50 {w50:7.2f}  p95 {w95:7.2f}  p99 {w99:7.2f}   {target}"
    )


def start_server(db: str, cache_dir: str) -> tuple[subprocess.Popen[str], str]:
    """`catalog serve --port 0` in its own process; returns it and its URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "catalog",
            "--db",
            db,
            "serve",
            "--port",
            "0",
            "--cache-dir",
            cache_dir,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for raw in process.stderr:
        match = re.search(r"Serving the catalogue at (\S+)", raw)
        if match:
            return process, match.group(1).rstrip("/")
    raise SystemExit("catalog serve did not start")


def deep_page_url(client: httpx.Client, base: str, query: str, depth: int) -> str:
    """Follow 'Next page' links `depth - 1` times from the first page."""
    url = f"{base}/?q={quote(query)}"
    for _ in range(depth - 1):
        match = NEXT_RE.search(client.get(url).text)
        if not match:
            raise SystemExit(f"fewer than {depth} pages for {query!r}")
        url = base + match.group(1).replace("&amp;", "&")
    return url


def seed_thumbnails(db_url: str, cache_dir: Path, count: int) -> list[int]:
    """Real cached thumbnails for `count` media (the synthetic objects exist nowhere)."""
    from PIL import Image
    from sqlalchemy import select

    from catalog.store.engine import open_catalogue
    from catalog.store.schema import Media
    from catalog.web.thumbnails import ThumbnailSource, make_thumbnail

    _, sessions = open_catalogue(db_url)
    cache_dir.mkdir(parents=True, exist_ok=True)
    data = make_thumbnail(Image.effect_noise((640, 480), 60).convert("RGB"))
    ids = []
    with sessions() as session:
        for media in session.scalars(select(Media).order_by(Media.id.desc()).limit(count)):
            source = ThumbnailSource(
                media.id,
                media.uri,
                media.kind,
                media.bucket,
                media.key,
                media.etag,
                media.size_bytes,
                media.version_id,
            )
            (cache_dir / source.file_name).write_bytes(data)
            ids.append(media.id)
    return ids


async def load(base: str, urls: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` concurrent loops of GETs for `seconds`; latencies and failures."""
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                url = rng.choice(urls)
                started = time.perf_counter()
                try:
                    response = await client.get(url)
                    if response.status_code != 200:
                        errors.append(f"{url} -> {response.status_code}")
                except httpx.HTTPError as exc:
                    errors.append(f"{url} -> {type(exc).__name__}")
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(worker(i) for i in range(clients)))
    return {"latencies": latencies, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", default="/tmp/web_bench.db", help="a search_bench.py catalogue")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--depth", type=int, default=100, help="the deep page to time")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()

    db_path = Path(args.db).resolve()
    if not db_path.exists():
        raise SystemExit(f"no catalogue at {db_path}; build one with benchmarks/search_bench.py")
    db_url = f"sqlite:///{db_path}"
    cache_dir = Path(tempfile.mkdtemp(prefix="web-bench-thumbs-"))
    thumbnail_ids = seed_thumbnails(db_url, cache_dir, 200)
    process, base = start_server(db_url, str(cache_dir))
    ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200  # noqa: E731
    try:
        with httpx.Client(timeout=60) as client:
            total = client.get(f"{base}/api/stats").json()["media"]["total"]
            print(f"catalog serve on {db_path} ({total:,} media), {args.runs} runs each (ms):")
            for name, query in QUERIES.items():
                server, wall = measure(client, f"{base}/?q={quote(query)}", args.runs, ok)
                print(line(f"search page: {name}", server, wall, "target p95 <= 50"))
            for name, query in QUERIES.items():
                url = f"{base}/api/search?q={quote(query)}&limit=50"
                server, wall = measure(client, url, args.runs, ok)
                print(line(f"/api/search: {name}", server, wall, "target p95 <= 20"))
            for name, query in QUERIES.items():
                server, wall = measure(client, f"{base}/api/count?q={quote(query)}", args.runs, ok)
                print(line(f"/api/count: {name}", server, wall, "(fetched by the page)"))
            deep = deep_page_url(client, base, QUERIES["first page"], args.depth)
            first_server, first_wall = measure(
                client, f"{base}/?q={quote(QUERIES['first page'])}", args.runs, ok
            )
            deep_server, deep_wall = measure(client, deep, args.runs, ok)
            print(line("search page: page 1", first_server, first_wall, ""))
            print(
                line(f"search page: page {args.depth}", deep_server, deep_wall, "target ~ page 1")
            )
            thumb_url = f"{base}/media/{thumbnail_ids[0]}/thumbnail"
            server, wall = measure(
                client, thumb_url, args.runs, lambda r: r.headers["content-type"] == "image/jpeg"
            )
            print(line("cached thumbnail", server, wall, "target <= 5"))
            media_url = f"{base}/media/{thumbnail_ids[0]}"
            server, wall = measure(client, media_url, args.runs, ok)
            print(line("media page", server, wall, ""))
            stats_server, stats_wall = measure(client, f"{base}/stats", max(5, args.runs // 10), ok)
            print(line("stats page", stats_server, stats_wall, ""))
        urls = [f"/?q={quote(q)}" for q in QUERIES.values()]
        urls += [f"/api/search?q={quote(q)}&limit=50" for q in QUERIES.values()]
        urls += [f"/api/count?q={quote(q)}" for q in QUERIES.values()]
        urls += [deep.removeprefix(base)]
        urls += [f"/media/{i}/thumbnail" for i in thumbnail_ids[:50]]
        result = asyncio.run(load(base, urls, args.clients, args.seconds))
        p50, p95, p99 = percentiles(result["latencies"])
        requests = len(result["latencies"])
        print(
            f"  load: {args.clients} clients for {args.seconds:.0f} s: {requests:,} requests "
            f"({requests / args.seconds:,.0f}/s), wall p50 {p50:.1f} p95 {p95:.1f} p99 {p99:.1f} ms, "
            f"{len(result['errors'])} errors (target 0)"
        )
        for error in result["errors"][:5]:
            print(f"    {error}")
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
