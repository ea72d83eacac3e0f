"""The HTML report is self-contained and renders its charts and thumbnails in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from catalog.labelling import BoundingBox, DetectedLabel, Instance, LabelResult, Moment, VideoInfo
from catalog.render import report
from catalog.sources import SourceObject
from catalog.sources.read import MediaReader
from catalog.store.media import store_failure, store_result
from tests.factories import BLUE, RED, make_image
from tests.test_draw import _make_video

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _fetch(uri: str) -> bytes:
    return MediaReader()(uri)


@pytest.fixture
def local_library(sessions, tmp_path):
    """Six local JPEGs with a red Car block (and a blue Person on some), labelled with their boxes."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(6):
        path = folder / f"p{i}.jpg"
        blocks = [(RED, (20, 20, 120, 100))] + ([(BLUE, (200, 40, 280, 200))] if i % 2 else [])
        path.write_bytes(make_image(320, 240, boxes=blocks))
        labels = [
            DetectedLabel(
                "Car",
                90.0 + i,
                (Instance(BoundingBox(20 / 320, 20 / 240, 100 / 320, 80 / 240), 90.0 + i),),
            ),
            DetectedLabel("Outdoors", 70.0 + i),
        ]
        if i % 2:
            labels.append(
                DetectedLabel(
                    "Person",
                    80.0,
                    (Instance(BoundingBox(200 / 320, 40 / 240, 80 / 320, 160 / 240), 80.0),),
                )
            )
        obj = SourceObject(
            "file",
            "",
            str(path),
            path.stat().st_size,
            f"e{i}",
            datetime(2024, 1 + i, 1, tzinfo=UTC),
        )
        with sessions.begin() as session:
            store_result(
                session,
                obj,
                "image",
                LabelResult("rekognition", "3.0", 50.0, labels=labels, width=320, height=240),
                sync_run_id=None,
            )
    clip = folder / "clip.mp4"
    clip.write_bytes(_make_video())
    moment = DetectedLabel("Car", 99.0, (Instance(BoundingBox(0.25, 0.25, 0.5, 0.5), 99.0),))
    video = LabelResult(
        "rekognition-video",
        "3.0",
        50.0,
        moments=[Moment(2500, moment)],
        video=VideoInfo("h264", "mp4", 3000, 10.0, 320, 240),
    )
    obj = SourceObject(
        "file", "", str(clip), clip.stat().st_size, "v", datetime(2024, 3, 1, tzinfo=UTC)
    )
    with sessions.begin() as session:
        store_result(session, obj, "video", video, sync_run_id=None)
    with sessions.begin() as session:
        gone = SourceObject("s3", "b", "x/missing.jpg", 1, "m", datetime(2024, 1, 1, tzinfo=UTC))
        store_failure(session, gone, "image", "InvalidImageFormat", "not an image")
    return folder


def test_report_embeds_its_charts_and_thumbnails(sessions, local_library):
    with sessions() as session:
        result = report.build_report(session, fetch=_fetch)
    page = result.html
    for chart in ("top-labels", "histograms", "timeline", "failures"):
        assert re.search(rf"id='chart-{chart}'><svg", page), chart
    assert result.charts == 4
    # Car has 7 media (the video first), Outdoors 6, Person 3: 4 + 4 + 3 inline JPEG thumbnails.
    assert result.thumbnails == 11, result.thumbnail_errors
    assert page.count('src="data:image/jpeg;base64,') == 11
    assert page.index("clip.mp4") < page.index("p5.jpg")
    assert "InvalidImageFormat" in page
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)
    assert "<link" not in page and "<script" not in page


def test_report_with_a_subset_counts_only_the_selected_media(sessions, local_library):
    from sqlalchemy import select

    from catalog.store.schema import Detection, Label, Media

    persons = (
        select(Media.id)
        .join(Detection, Detection.media_id == Media.id)
        .join(Label, Label.id == Detection.label_id)
        .where(Label.name == "Person")
    )
    with sessions() as session:
        result = report.build_report(session, fetch=_fetch, subset=persons, where="Person")
    assert "media matching <code>Person</code>" in result.html
    assert re.search(r"<b>3</b>media", result.html)


def test_report_without_pictures_says_why(sessions, local_library):
    with sessions() as session:
        result = report.build_report(session, fetch=None)
    assert result.thumbnails == 0
    assert result.html.count("no thumbnail: not fetched") == 11


def _count(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    rgb = image.convert("RGB")
    return sum(
        n
        for n, c in rgb.getcolors(rgb.width * rgb.height) or []
        if all(abs(a - b) <= tolerance for a, b in zip(c, colour, strict=True))
    )


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
# Chromium draws the page; what the page holds is checked on both backends by the tests above.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_report_renders_its_charts_in_headless_chromium(sessions, local_library, tmp_path):
    with sessions() as session:
        result = report.build_report(session, fetch=_fetch)
    page = report.save_report(result, tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,6000",
            "--hide-scrollbars",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = Image.open(shot)
    assert image.size == (1280, 6000)
    bars = (0x3B, 0x6E, 0xA5)  # report.BAR_COLOUR: the top-labels bars and the histograms
    failures = (0xB5, 0x48, 0x3B)
    assert _count(image, bars) > 20_000
    assert _count(image, failures) > 1_000
    # The top-labels chart: the rows just below the table hold bar pixels, not blank page.
    top = image.crop((0, 0, 1280, 1500))
    assert _count(top, bars) > 5_000
    # Thumbnails: red Car blocks decoded from the inline JPEGs.
    assert _count(image, RED, 40) > 10_000
