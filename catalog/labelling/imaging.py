"""Pillow: read any supported image, undo EXIF rotation, convert and downscale to Rekognition's limits."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from catalog.errors import ObjectError
from catalog.labelling.media import BYTES_MAX, MAX_DIMENSION, MIN_DIMENSION

# Allow large photographs (panoramas) but still refuse decompression bombs.
Image.MAX_IMAGE_PIXELS = 400_000_000


@dataclass(frozen=True)
class PreparedImage:
    """JPEG bytes Rekognition accepts as `Image.Bytes`, with the frame size they show."""

    data: bytes
    width: int
    height: int


def open_image(data: bytes) -> Image.Image:
    """Decode image bytes (first frame of an animation) with EXIF orientation applied."""
    if not data:
        raise ObjectError("EmptyObject", "the object is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.seek(0)
            image.load()
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
    try:
        return ImageOps.exif_transpose(image) or image
    except (OSError, ValueError, SyntaxError):
        return image  # a broken EXIF block: keep the pixels as stored


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
