"""The offline text reader: Pillow-rendered text read back by RapidOCR's real models, in
Rekognition's shape, then synced from a folder and found with `text:`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from catalog.ingest.sync import run_sync
from catalog.ingest.types import SyncOptions
from catalog.labelling import ImageInput
from catalog.labelling.features import parse_features
from catalog.read.search import search
from catalog.uris import parse_uri

pytest.importorskip("rapidocr")
pytest.importorskip("onnxruntime")


def rendered(lines: list[tuple[str, tuple[int, int]]], size=(640, 260), fmt="PNG") -> bytes:
    """A white picture with black text drawn at each (x, y)."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    for text, at in lines:
        draw.text(at, text, fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def reader():
    from catalog.labelling.ocr import LocalTextReader

    return LocalTextReader()


def test_rendered_text_is_read_back_as_lines_and_words(reader):
    data = rendered([("EMERGENCY EXIT", (30, 40)), ("OPEN 24 HOURS", (30, 150))])
    result = reader.read_image(ImageInput(data=data))
    lines = [t for t in result.texts if t.kind == "LINE"]
    assert [t.text for t in lines] == ["EMERGENCY EXIT", "OPEN 24 HOURS"]
    assert all(t.confidence > 80 for t in lines)
    words = [(t.text, t.parent_idx) for t in result.texts if t.kind == "WORD"]
    assert words == [
        ("EMERGENCY", lines[0].idx),
        ("EXIT", lines[0].idx),
        ("OPEN", lines[1].idx),
        ("24", lines[1].idx),
        ("HOURS", lines[1].idx),
    ]
    first = lines[0].box  # drawn from x=30, y=40 on a 640x260 picture: ratios, not pixels
    assert 0.02 < first.left < 0.07 and 0.1 < first.top < 0.2
    assert 0.5 < first.width < 0.75 and 0.1 < first.height < 0.3
    assert result.reader == "local" and result.model_version.startswith("rapidocr-")


def test_a_picture_without_text_reads_nothing(reader):
    assert reader.read_image(ImageInput(data=rendered([]))).texts == []


def test_unreadable_bytes_are_a_per_object_error(reader):
    from catalog.errors import ObjectError

    with pytest.raises(ObjectError) as caught:
        reader.read_image(ImageInput(data=b"not an image"))
    assert caught.value.code == "InvalidImageFormat"


def test_folder_sync_reads_text_offline_and_finds_it(sessions, tmp_path: Path):
    (tmp_path / "sign.png").write_bytes(rendered([("NO PARKING", (40, 80))]))
    (tmp_path / "blank.jpg").write_bytes(rendered([], fmt="JPEG"))
    report = run_sync(
        parse_uri(str(tmp_path)),
        sessions=sessions,
        clients=None,
        options=SyncOptions(features=parse_features("labels,text")),
    )
    assert (report.labelled, report.failed) == (2, 0)
    with sessions() as session:
        hits = list(search(session, 'text:"no parking"').hits)
    assert [hit.key.rsplit("/", 1)[-1] for hit in hits] == ["sign.png"]
    (match,) = hits[0].matches
    assert match.text == "NO PARKING" and match.confidence > 80


def sign_video(tmp_path: Path) -> Path:
    """2 s of H.264: "GATE 7" for the first second, "BOARDING" for the next."""
    import av

    path = tmp_path / "sign.mp4"
    font = ImageFont.load_default(size=40)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 480, 160, "yuv420p"
        for index in range(10):
            image = Image.new("RGB", (480, 160), "white")
            ImageDraw.Draw(image).text(
                (30, 50), "GATE 7" if index < 5 else "BOARDING", fill="black", font=font
            )
            frame = av.VideoFrame.from_image(image)
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_video_text_is_read_a_frame_every_second(reader, tmp_path):
    result = reader.read_video(str(sign_video(tmp_path)))
    lines = [(t.timestamp_ms, t.text) for t in result.texts if t.kind == "LINE"]
    assert lines == [(0, "GATE 7"), (1000, "BOARDING")]
