"""Boxes land on the right pixels; video contact sheets show the frames at the labelled moments."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import av
import pytest
from PIL import Image

from catalog.errors import NotFoundError
from catalog.read.details import InstanceDetail, LabelDetail, MediaDetail
from catalog.render import draw
from catalog.sources.read import MediaReader
from tests.factories import make_image

WHITE = (255, 255, 255)


def _detail(kind: str, labels: list[LabelDetail], uri: str = "s3://b/k") -> MediaDetail:
    return MediaDetail(
        uri=uri,
        kind=kind,
        status="labelled",
        size_bytes=1,
        etag="e",
        last_modified_at=datetime(2024, 1, 1, tzinfo=UTC),
        storage_class=None,
        labelled_at=None,
        error_code=None,
        error_message=None,
        width=None,
        height=None,
        duration_ms=None,
        codec=None,
        container_format=None,
        frame_rate=None,
        labeller="rekognition",
        model_version="3.0",
        min_confidence=50.0,
        labels=labels,
    )


def _close(pixel, colour, tolerance=0):
    return all(abs(p - c) <= tolerance for p, c in zip(pixel[:3], colour, strict=True))


@pytest.mark.parametrize("size", [(200, 150), (640, 480), (3000, 2000)])
def test_box_edges_are_drawn_at_the_boxs_pixels(size):
    width, height = size
    image = Image.new("RGB", size, WHITE)
    box = draw.Box("Car", 93.4, 0.25, 0.4, 0.5, 0.5)
    out = draw.draw_boxes(image, [box])
    colour = draw.label_colour("Car")
    line = draw.line_width_for(size)
    x0, y0 = round(0.25 * width), round(0.4 * height)
    x1, y1 = round(0.75 * width) - 1, round(0.9 * height) - 1
    mid_y, mid_x = (y0 + y1) // 2, (x0 + x1) // 2
    px = out.load()
    # Outer edges: left, right, bottom, and the top edge's right end (clear of the tag).
    for x, y in [(x0, mid_y), (x1, mid_y), (mid_x, y1), (x1 - 1, y0)]:
        assert _close(px[x, y], colour), (x, y, px[x, y])
    # The line is `line` pixels thick, drawn inwards: just inside it and just outside it is white.
    assert _close(px[x0 + line - 1, mid_y], colour)
    assert _close(px[x0 + line, mid_y], WHITE)
    assert _close(px[x0 - 1, mid_y], WHITE)
    assert _close(px[x1 + 1, mid_y], WHITE)
    assert _close(px[mid_x, y1 + 1], WHITE)
    # The tag (label and confidence) sits right above the box's top-left corner.
    assert _close(px[x0, y0 - 1], colour)
    assert _close(px[x0 + 1, y0 - 2], colour)


def test_line_width_and_type_scale_with_the_picture():
    assert draw.line_width_for((200, 150)) == 2
    assert draw.line_width_for((4000, 3000)) == 12
    assert draw.font_size_for((4000, 3000)) > 5 * draw.font_size_for((200, 150))


def test_tag_text_is_written_in_a_contrasting_colour():
    image = Image.new("RGB", (400, 300), WHITE)
    out = draw.draw_boxes(image, [draw.Box("Person", 88.0, 0.1, 0.5, 0.5, 0.4)])
    colour = draw.label_colour("Person")
    y0 = round(0.5 * 300)
    tag = out.crop((40, 0, 400, y0)).getcolors(400 * 300)
    colours = {c for _, c in tag}
    assert colour in colours
    assert draw._text_colour(colour) in colours or any(
        _close(c, draw._text_colour(colour), 90) for c in colours
    )


def test_box_at_the_top_edge_puts_its_tag_inside():
    image = Image.new("RGB", (300, 300), WHITE)
    out = draw.draw_boxes(image, [draw.Box("Dog", 70.0, 0.0, 0.0, 0.5, 0.5)])
    colour = draw.label_colour("Dog")
    px = out.load()
    assert _close(px[0, 0], colour)
    assert _close(px[2 + 3, 2 + 3], colour)  # the tag's background, inside the box
    assert _close(px[200, 200], WHITE)


def test_draw_image_uses_the_stored_instances_and_captions_boxless_labels():
    data = make_image(400, 300, background=(250, 250, 250))
    detail = _detail(
        "image",
        [
            LabelDetail("Car", 95.0, [], [], [], [InstanceDetail(0.5, 0.5, 0.25, 0.25, 95.0)]),
            LabelDetail("Outdoors", 80.0, [], [], []),
        ],
    )
    out = draw.draw_media(detail, data)
    assert out.width == 400 and out.height > 300  # the caption band below
    assert _close(out.getpixel((299, 200)), draw.label_colour("Car"), 40)  # JPEG tolerance
    assert _close(out.getpixel((100, 100)), (250, 250, 250), 10)


def test_a_transparent_png_is_drawn_and_thumbnailed_on_a_light_background():
    picture = Image.new("RGBA", (200, 150), (0, 0, 0, 0))  # fully transparent
    picture.paste((200, 30, 30, 255), (120, 90, 180, 140))  # one opaque red patch
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    detail = _detail("image", [LabelDetail("Logo", 90.0, [], [], [])])
    out = draw.draw_media(detail, buffer.getvalue())
    assert min(out.getpixel((20, 20))) >= 240  # transparent -> light, not black
    assert _close(out.getpixel((150, 115)), (200, 30, 30), 10)
    thumbnail = Image.open(io.BytesIO(draw.to_jpeg_bytes(picture)))
    assert min(thumbnail.getpixel((20, 20))) >= 240


def _make_video(seconds: int = 3, fps: int = 10) -> bytes:
    """A clip whose background is blue in second 0, green in second 1, red in second 2."""
    colours = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 0)]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"g": "5"}
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_image(Image.new("RGB", (320, 240), colours[i // fps]))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def test_decoded_frames_are_the_ones_at_the_timestamps():
    frames = draw.decode_frames(_make_video(), [500, 1500, 2500, 1000])
    expected = {500: (0, 0, 255), 1000: (0, 255, 0), 1500: (0, 255, 0), 2500: (255, 0, 0)}
    for ts, colour in expected.items():
        assert _close(frames[ts].getpixel((160, 20)), colour, 40), ts


def test_contact_sheet_shows_labelled_moments_with_their_boxes():
    detail = _detail(
        "video",
        [
            LabelDetail(
                "Person",
                90.0,
                [],
                [],
                [],
                instances=[InstanceDetail(0.25, 0.25, 0.5, 0.5, 90.0, 2500)],
                timestamps_ms=[500, 2500],
            ),
            LabelDetail("Outdoors", 80.0, [], [], [], timestamps_ms=[1500]),
        ],
    )
    sheet = draw.draw_media(detail, _make_video())
    # Three cells side by side: 320 px frames, 4 px gaps, caption bands below.
    assert sheet.width == 3 * 320 + 4 * 4
    cells = [(4 + i * 324, 4) for i in range(3)]
    for (x, y), colour in zip(cells, [(0, 0, 255), (0, 255, 0), (255, 0, 0)], strict=True):
        assert _close(sheet.getpixel((x + 300, y + 230)), colour, 40)
    # The Person box at 2.5 s: left edge at x = 80 inside the third cell.
    x0, y0 = cells[2]
    assert _close(sheet.getpixel((x0 + 80, y0 + 120)), draw.label_colour("Person"), 30)
    assert _close(sheet.getpixel((x0 + 60, y0 + 120)), (255, 0, 0), 40)


def test_pick_moments_prefers_boxed_timestamps_and_spreads_them():
    detail = _detail(
        "video",
        [
            LabelDetail(
                "Car",
                90.0,
                [],
                [],
                [],
                instances=[InstanceDetail(0, 0, 1, 1, 90.0, t) for t in range(0, 10_000, 500)],
                timestamps_ms=list(range(0, 10_000, 500)),
            ),
            LabelDetail("Sky", 90.0, [], [], [], timestamps_ms=[20_000]),
        ],
    )
    picked = draw.pick_moments(detail, max_frames=4)
    assert picked == [0, 3000, 6500, 9500]
    assert draw.pick_moments(detail, max_frames=21)[-1] == 20_000


def test_video_without_moments_is_a_clear_error():
    with pytest.raises(NotFoundError, match="no labelled moments"):
        draw.draw_media(_detail("video", []), b"")


def test_read_media_bytes_reads_local_files(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(b"abc")
    assert MediaReader()(f"file://{path}") == b"abc"
    with pytest.raises(NotFoundError):
        MediaReader()(f"file://{tmp_path}/gone.jpg")
