"""Real media for tests: images made with Pillow (videos with PyAV live beside them)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)
YELLOW = (255, 255, 0)
GREY = (128, 128, 128)
WHITE = (250, 250, 250)


def make_image(
    width: int = 200,
    height: int = 150,
    background: tuple[int, int, int] = WHITE,
    boxes: Sequence[tuple[tuple[int, int, int], tuple[int, int, int, int]]] = (),
    fmt: str = "JPEG",
    exif_orientation: int | None = None,
    noise: bool = False,
) -> bytes:
    """An image with coloured blocks ((colour, (x0, y0, x1, y1)) in pixels) in any format."""
    image = Image.new("RGB", (width, height), background)
    for colour, (x0, y0, x1, y1) in boxes:
        image.paste(colour, (x0, y0, x1, y1))
    if noise:
        import random

        rng = random.Random(width * 7919 + height)
        pixels = image.load()
        assert pixels is not None
        for _ in range(width * height // 2):
            x, y = rng.randrange(width), rng.randrange(height)
            if pixels[x, y] == background:
                pixels[x, y] = tuple(rng.randrange(256) for _ in range(3))
    buffer = io.BytesIO()
    kwargs: dict[str, object] = {}
    if fmt == "JPEG":
        kwargs["quality"] = 95
        if exif_orientation is not None:
            exif = Image.Exif()
            exif[0x0112] = exif_orientation
            kwargs["exif"] = exif.tobytes()
    if fmt == "GIF":
        image = image.convert("P")
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def car_jpeg(width: int = 200, height: int = 150) -> bytes:
    """A JPEG the double labels Car (a solid red block on the left half)."""
    return make_image(width, height, boxes=[(RED, (10, 10, width // 2, height - 10))])


# -- videos (PyAV) ---------------------------------------------------------------------------

# kind -> (container format, encoder): the inputs a video library holds.
VIDEO_KINDS = {
    "mp4": ("mp4", "libx264"),  # H.264 in MP4: Rekognition reads it as it is
    "mov": ("mov", "libx264"),  # H.264 in QuickTime MOV: also read as it is
    "mpeg4": ("mp4", "mpeg4"),  # MPEG-4 Part 2 in MP4: needs transcoding
    "webm": ("webm", "libvpx-vp9"),  # VP9 in WebM: needs transcoding
}

# A block: (colour, (x0, y0, x1, y1) in pixels, shown from second, shown until second).
VideoBlock = tuple[tuple[int, int, int], tuple[int, int, int, int], float, float]


def make_video(
    kind: str = "mp4",
    blocks: Sequence[VideoBlock] = (),
    duration_s: float = 2.0,
    fps: int = 10,
    width: int = 160,
    height: int = 120,
    background: tuple[int, int, int] = WHITE,
) -> bytes:
    """A short video (see VIDEO_KINDS) whose coloured blocks appear and vanish at known times."""
    import av

    fmt, codec = VIDEO_KINDS[kind]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(round(duration_s * fps)):
            at = index / fps
            image = Image.new("RGB", (width, height), background)
            for colour, box, start, end in blocks:
                if start <= at < end:
                    image.paste(colour, box)
            frame = av.VideoFrame.from_image(image)
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def car_video(kind: str = "mp4") -> bytes:
    """2 s: a red block (Car) from 0.5 s to 1.5 s, a blue one (Person) all along."""
    return make_video(
        kind,
        blocks=[
            (RED, (10, 10, 80, 70), 0.5, 1.5),
            (BLUE, (100, 60, 150, 110), 0.0, 2.0),
        ],
    )
