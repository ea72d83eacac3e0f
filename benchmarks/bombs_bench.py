"""Peak memory of syncing a folder of decompression bombs (and of drawing one).

Builds a folder with `--bombs` small files that declare huge pixel counts (1-bit PNGs of
20000x20000, a GIF and a TIFF of the same size, and a 12000x9000 JPEG that is really that big),
plus a few ordinary photos, then runs `catalog sync DIR --concurrency 2` as its own process
with the offline labeller and prints that process's peak resident memory (the target is under
500 MB), the failures recorded with their reasons, and the same for `catalog show --draw` on a
bomb and on the large JPEG.

Run: python benchmarks/bombs_bench.py [--bombs 6] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.factories import RED, make_image  # noqa: E402
from tests.hostile import bomb_png  # noqa: E402

TARGET_MB = 500
CATALOG = [sys.executable, "-m", "catalog"]


def _bomb(fmt: str, side: int = 20000) -> bytes:
    buffer = io.BytesIO()
    if fmt == "PNG":
        return bomb_png(side)
    Image.new("1", (side, side)).save(buffer, format=fmt, compression="group4")
    return buffer.getvalue()


def build_folder(folder: Path, bombs: int) -> dict[str, int]:
    """The bombs and ordinary photos; returns their sizes on disk."""
    folder.mkdir(parents=True)
    formats = ["PNG", "GIF", "TIFF"]
    sizes = {}
    for i in range(bombs):
        fmt = formats[i % len(formats)]
        name = f"bomb-{i}.{fmt.lower()}"
        data = _bomb(fmt) if fmt != "GIF" else _gif_bomb()
        (folder / name).write_bytes(data)
        sizes[name] = len(data)
    big = io.BytesIO()
    Image.new("RGB", (12000, 9000), (30, 90, 160)).save(big, format="JPEG", quality=70)
    (folder / "large-108mp.jpg").write_bytes(big.getvalue())
    sizes["large-108mp.jpg"] = len(big.getvalue())
    for i in range(4):
        (folder / f"photo-{i}.jpg").write_bytes(make_image(640 + i, 480, background=RED))
    return sizes


def _gif_bomb(side: int = 20000) -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (side, side)).save(buffer, format="GIF")
    return buffer.getvalue()


def run_measured(args: list[str], cwd: Path) -> tuple[int, float, float, str]:
    """Run a command; (exit code, peak RSS in MB, seconds, stdout)."""
    started = time.monotonic()
    process = subprocess.Popen(
        args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    stdout = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024, time.monotonic() - started, stdout


def main() -> None:
    """Build, sync, draw, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bombs", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.build:
        sizes = build_folder(options.build, options.bombs)
        print(sum(sizes.values()))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = work / "library"
        # Built in a process of its own: a child forked from a parent that has held a 108 MP
        # picture would start with that parent's resident memory and spoil the measurement.
        built = subprocess.run(
            [sys.executable, __file__, "--bombs", str(options.bombs), "--build", str(folder)],
            check=True,
            capture_output=True,
            text=True,
        )
        on_disk = int(built.stdout) / 1e6
        print(f"folder: {options.bombs} bombs + 1 large JPEG + 4 photos, {on_disk:.1f} MB on disk")
        db = ["--db", str(work / "catalog.db")]
        code, peak, took, out = run_measured(
            [
                *CATALOG,
                *db,
                "sync",
                str(folder),
                "--concurrency",
                str(options.concurrency),
                "--no-progress",
                "--format",
                "json",
            ],
            work,
        )
        report = json.loads(out)
        verdict = "OK" if peak < TARGET_MB else "OVER"
        print(
            f"sync: peak RSS {peak:.0f} MB (target < {TARGET_MB} MB: {verdict}), {took:.1f} s, "
            f"exit {code}, labelled {report['labelled'] + report['reused']}, "
            f"failed {report['failed']}"
        )
        for failure in report["failures"]:
            print(f"  {Path(failure['uri']).name}: {failure['code']}: {failure['message']}")
        for name in ("bomb-0.png", "large-108mp.jpg"):
            code, peak, took, _ = run_measured(
                [*CATALOG, *db, "show", f"file://{folder / name}", "--draw", str(work / "d.png")],
                work,
            )
            print(f"show --draw {name}: peak RSS {peak:.0f} MB, {took:.1f} s, exit {code}")


if __name__ == "__main__":
    main()
