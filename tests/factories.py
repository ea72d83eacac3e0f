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
