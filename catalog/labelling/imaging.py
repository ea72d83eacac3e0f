"""Pillow: read any supported image, undo EXIF rotation, convert and downscale to Rekognition's limits.

Decoding is where a hostile file costs memory (a 48 KB PNG can declare 20000x20000 pixels), so
every decode goes through `open_image`: it reads the header first, lets JPEGs decode at a
reduced scale (`draft`) when they are larger than `DECODE_MAX_PIXELS`, refuses anything still
larger as a per-object failure, and holds a share of a process-wide pixel budget while it
decodes, so concurrent decodes cannot add up past `DECODE_BUDGET_PIXELS`.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from catalog.errors import ObjectError
from catalog.labelling.media import BYTES_MAX, MAX_DIMENSION, MIN_DIMENSION

# The most pixels one decode may produce (about 72 MB as RGB; a 24 MP camera's full frame).
# Labelling and thumbnails need far fewer: a JPEG larger than this is decoded at 1/2, 1/4 or 1/8
# scale, anything else is refused. The offline labeller's working memory grows with the pixels
# it is given (about 10 bytes a pixel), which is what keeps this cap well below Pillow's own.
DECODE_MAX_PIXELS = 24_000_000
# The pixels all threads may be decoding at once: one image at the cap, or several smaller ones.
DECODE_BUDGET_PIXELS = 32_000_000
# Pillow's own guard is a backstop: above it not even the header of an image is accepted. A JPEG
# decodes at down to 1/8 of its width and height, so up to 64 times the cap can still be read.
Image.MAX_IMAGE_PIXELS = DECODE_MAX_PIXELS * 64


class _PixelBudget:
    """A counting budget of pixels shared by the threads that decode images."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.available = total
        self._condition = threading.Condition()

    @contextmanager
    def reserve(self, pixels: int) -> Iterator[None]:
        """Wait until `pixels` (at most the whole budget) are free, and hold them."""
        wanted = max(1, min(pixels, self.total))
        with self._condition:
            self._condition.wait_for(lambda: self.available >= wanted)
            self.available -= wanted
        try:
            yield
        finally:
            with self._condition:
                self.available += wanted
                self._condition.notify_all()


_DECODE_BUDGET = _PixelBudget(DECODE_BUDGET_PIXELS)


@dataclass(frozen=True)
class PreparedImage:
    """JPEG bytes Rekognition accepts as `Image.Bytes`, with the frame size they show."""

    data: bytes
    width: int
    height: int


def open_image(data: bytes, max_pixels: int = DECODE_MAX_PIXELS) -> Image.Image:
    """Decode image bytes (first frame of an animation) with EXIF orientation applied.

    The header is read first: a JPEG over `max_pixels` is decoded at a reduced scale, and any
    other image over it is refused with ObjectError("ImageTooLarge") before a pixel is decoded.
    """
    if not data:
        raise ObjectError("EmptyObject", "the object is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.seek(0)
            pixels = _reduce_to(image, max_pixels)
            with _DECODE_BUDGET.reserve(pixels):
                image.load()
                return _upright(image)
    except (
        UnidentifiedImageError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise ObjectError("InvalidImageFormat", "not a readable image file") from exc
        raise ObjectError("ImageTooLarge", f"the image has too many pixels ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ObjectError("CorruptImage", f"the image file is damaged: {exc}") from exc


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (a copy only when it must turn)."""
    try:
        if image.getexif().get(0x0112, 1) in (None, 1):
            return image  # exif_transpose would return a full copy of an upright image
        return ImageOps.exif_transpose(image) or image
    except (OSError, ValueError, SyntaxError):
        return image  # a broken EXIF block: keep the pixels as stored


def _reduce_to(image: Image.Image, max_pixels: int) -> int:
    """Ask a JPEG to decode at a scale within `max_pixels`; refuse what stays larger."""
    width, height = image.size
    if width * height > max_pixels and image.format == "JPEG":
        # JPEG scales by 1/2, 1/4 or 1/8: ask for the smallest of them that fits the cap.
        step = 2 ** math.ceil(math.log2(math.sqrt(width * height / max_pixels)))
        image.draft(image.mode, (max(1, width // step), max(1, height // step)))
    if image.width * image.height > max_pixels:
        raise ObjectError(
            "ImageTooLarge",
            f"the image declares {width}x{height} pixels ({width * height / 1e6:.0f} MP); "
            f"images over {max_pixels / 1e6:.0f} MP are not decoded (a decompression-bomb guard)",
        )
    return image.width * image.height


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels; transparency is laid on white (a light background, never black)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.split()[-1])
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    return image.convert("RGB") if image.mode != "RGB" else image


def prepare_image(data: bytes, max_bytes: int = BYTES_MAX) -> PreparedImage:
    """Re-encode `data` as an upright JPEG within Rekognition's dimension and byte limits."""
    image = open_image(data)
    width, height = image.size
    if min(width, height) < MIN_DIMENSION:
        raise ObjectError(
            "ImageTooSmall",
            f"the image is {width}x{height}; Rekognition needs at least {MIN_DIMENSION}x{MIN_DIMENSION} pixels",
        )
    image = to_rgb(image)
    if max(width, height) > MAX_DIMENSION:
        image.thumbnail((MAX_DIMENSION, MAX_DIMENSION), Image.Resampling.LANCZOS)
    quality = 90
    while True:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
        encoded = buffer.getvalue()
        if len(encoded) <= max_bytes:
            return PreparedImage(encoded, image.width, image.height)
        if quality > 75:
            quality -= 10
            continue
        scale = (max_bytes / len(encoded)) ** 0.5 * 0.95
        new_size = (
            max(MIN_DIMENSION, int(image.width * scale)),
            max(MIN_DIMENSION, int(image.height * scale)),
        )
        if new_size == image.size:
            raise ObjectError(
                "ImageTooLarge", "the image cannot be made small enough for Rekognition"
            )
        image = image.resize(new_size, Image.Resampling.LANCZOS)
