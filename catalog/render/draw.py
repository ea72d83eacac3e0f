"""Pictures of labels: bounding boxes drawn on images, and contact sheets of labelled video moments.

Line width and type size scale with the picture, so a label stays legible on a 200-pixel
thumbnail and on a 6000-pixel photograph. Text uses Pillow's bundled TrueType font, so no font
files are needed.
"""

from __future__ import annotations

import io
import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from catalog.errors import CatalogError, NotFoundError, ObjectError, UsageError
from catalog.read.details import MediaDetail

# Distinct, saturated colours that read on photographs; a label keeps its colour everywhere.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (170, 110, 40),
)
SHEET_BACKGROUND = (32, 32, 32)
DEFAULT_MAX_FRAMES = 12


@dataclass(frozen=True)
class Box:
    """A box to draw: ratios of the frame (origin top-left), and what it is."""

    label: str
    confidence: float  # percent
    left: float
    top: float
    width: float
    height: float


def label_colour(name: str) -> tuple[int, int, int]:
    """The colour a label is drawn in (stable across runs and pictures)."""
    return PALETTE[zlib.crc32(name.encode("utf-8")) % len(PALETTE)]


def line_width_for(size: tuple[int, int]) -> int:
    """Box outline width in pixels for a picture of this size."""
    return max(2, round(min(size) / 250))


def font_size_for(size: tuple[int, int]) -> int:
    """Type size in pixels for a picture of this size."""
    return max(11, round(min(size) / 28))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def box_pixels(box: Box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box's inclusive pixel corners (x0, y0, x1, y1), clipped to the picture."""
    width, height = size
    x0 = round(box.left * width)
    y0 = round(box.top * height)
    x1 = round((box.left + box.width) * width) - 1
    y1 = round((box.top + box.height) * height) - 1
    return (
        min(max(x0, 0), width - 1),
        min(max(y0, 0), height - 1),
        min(max(x1, 0), width - 1),
        min(max(y1, 0), height - 1),
    )


def draw_boxes(image: Image.Image, boxes: Sequence[Box]) -> Image.Image:
    """A copy of `image` with every box outlined and tagged with its label and confidence."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    line = line_width_for(out.size)
    font = _font(font_size_for(out.size))
    pad = max(1, line // 2 + 1)
    corners = [(box, box_pixels(box, out.size)) for box in boxes]
    for box, (x0, y0, x1, y1) in corners:
        draw.rectangle((x0, y0, x1, y1), outline=label_colour(box.label), width=line)
    # Tags after every outline, so no outline crosses a tag.
    for box, (x0, y0, _x1, y1) in corners:
        colour = label_colour(box.label)
        text = f"{box.label} {box.confidence:.0f}%"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tag_w, tag_h = right - left + 2 * pad, bottom - top + 2 * pad
        tag_y = y0 - tag_h if y0 - tag_h >= 0 else min(y0 + line, max(y1 - tag_h, 0))
        tag_x = min(x0, max(out.width - tag_w, 0))
        draw.rectangle((tag_x, tag_y, tag_x + tag_w - 1, tag_y + tag_h - 1), fill=colour)
        draw.text(
            (tag_x + pad - left, tag_y + pad - top), text, fill=_text_colour(colour), font=font
        )
    return out


def _caption_band(width: int, lines: Sequence[str], font_size: int) -> Image.Image:
    font = _font(font_size)
    line_h = round(font_size * 1.35)
    band = Image.new("RGB", (width, line_h * len(lines) + font_size // 2), SHEET_BACKGROUND)
    draw = ImageDraw.Draw(band)
    for i, text in enumerate(lines):
        draw.text(
            (font_size // 2, font_size // 4 + i * line_h), text, fill=(240, 240, 240), font=font
        )
    return band


def _stack(top: Image.Image, bottom: Image.Image) -> Image.Image:
    out = Image.new("RGB", (top.width, top.height + bottom.height), SHEET_BACKGROUND)
    out.paste(top, (0, 0))
    out.paste(bottom, (0, top.height))
    return out


def _fit_text(text: str, width: int, font_size: int) -> str:
    """Cut a caption to roughly what fits in `width` pixels."""
    chars = max(8, int(width / (font_size * 0.55)))
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _image_boxes(detail: MediaDetail, only_label: str | None) -> list[Box]:
    labels = [
        Box(label.name, inst.confidence, inst.left, inst.top, inst.width, inst.height)
        for label in detail.labels
        if only_label is None or label.name == only_label
        for inst in label.instances
    ]
    return labels + (text_boxes(detail) if only_label is None else [])


def text_boxes(detail: MediaDetail, timestamp_ms: int | None = None) -> list[Box]:
    """The item's lines of text (at one moment, for video) as boxes tagged with their text."""
    return [
        Box(f"“{t.text}”", t.confidence, t.left, t.top, t.width, t.height)
        for t in detail.text or ()
        if t.kind == "LINE" and t.timestamp_ms == timestamp_ms
    ]


def draw_image(
    detail: MediaDetail,
    data: bytes,
    *,
    only_label: str | None = None,
    max_side: int | None = None,
) -> Image.Image:
    """An image with its boxes, and a caption listing the labels that have no box."""
    from catalog.labelling.imaging import open_image, to_rgb

    try:
        image = to_rgb(open_image(data))
    except ObjectError as exc:
        raise CatalogError(f"cannot draw {detail.uri}: {exc.message}") from exc
    if max_side is not None:
        image.thumbnail((max_side, max_side))
    out = draw_boxes(image, _image_boxes(detail, only_label))
    if only_label is not None:
        return out
    unboxed = [label for label in detail.labels if not label.instances]
    if not unboxed:
        return out
    size = max(11, font_size_for(out.size) * 3 // 4)
    text = ", ".join(f"{label.name} {label.confidence:.0f}%" for label in unboxed)
    return _stack(out, _caption_band(out.width, [_fit_text(text, out.width, size)], size))


def pick_moments(
    detail: MediaDetail, max_frames: int = DEFAULT_MAX_FRAMES, only_label: str | None = None
) -> list[int]:
    """Timestamps worth a frame: those with boxes first, spread evenly over the video."""
    with_boxes: set[int] = set()
    labelled: set[int] = set()
    for label in detail.labels:
        if only_label is not None and label.name != only_label:
            continue
        labelled.update(label.timestamps_ms)
        with_boxes.update(i.timestamp_ms for i in label.instances if i.timestamp_ms is not None)
    chosen = _spread(sorted(with_boxes), max_frames)
    rest = sorted(labelled - set(chosen))
    chosen += _spread(rest, max_frames - len(chosen))
    return sorted(chosen)


def _spread(values: list[int], count: int) -> list[int]:
    if count <= 0 or not values:
        return []
    if len(values) <= count:
        return list(values)
    step = (len(values) - 1) / max(count - 1, 1)
    return sorted({values[round(i * step)] for i in range(count)})


def decode_frames(data: bytes, timestamps_ms: Sequence[int]) -> dict[int, Image.Image]:
    """The video frame shown at each timestamp (decoded with PyAV, seeking to each)."""
    import av

    frames: dict[int, Image.Image] = {}
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise CatalogError("the file has no video stream to draw")
            stream = container.streams.video[0]
            base = float(stream.time_base) if stream.time_base else 1 / 90_000
            start = float(stream.start_time or 0) * base
            for ts in sorted(set(timestamps_ms)):
                target = start + ts / 1000
                container.seek(int(target / base), stream=stream, backward=True)
                chosen: Any = None
                for frame in container.decode(stream):
                    if frame.time is None:
                        continue
                    if chosen is not None and frame.time > target + 1e-6:
                        break
                    chosen = frame
                    if frame.time >= target - 1e-6:
                        break
                if chosen is not None:
                    frames[ts] = chosen.to_image().convert("RGB")
    except av.FFmpegError as exc:
        raise CatalogError(f"cannot decode the video: {exc}") from exc
    return frames


def draw_contact_sheet(
    detail: MediaDetail,
    data: bytes,
    *,
    max_frames: int = DEFAULT_MAX_FRAMES,
    only_label: str | None = None,
    cell_side: int = 480,
    columns: int = 4,
) -> Image.Image:
    """A grid of frames at labelled moments, each with that moment's boxes and labels."""
    stamps = pick_moments(detail, max_frames, only_label)
    if not stamps:
        raise NotFoundError(f"{detail.uri} has no labelled moments to draw")
    frames = decode_frames(data, stamps)
    boxes_at: dict[int, list[Box]] = defaultdict(list)
    names_at: dict[int, list[str]] = defaultdict(list)
    for label in detail.labels:
        if only_label is not None and label.name != only_label:
            continue
        for ts in label.timestamps_ms:
            names_at[ts].append(label.name)
        for inst in label.instances:
            if inst.timestamp_ms is not None:
                boxes_at[inst.timestamp_ms].append(
                    Box(label.name, inst.confidence, inst.left, inst.top, inst.width, inst.height)
                )
    cells: list[Image.Image] = []
    for ts in stamps:
        frame = frames.get(ts)
        if frame is None:
            continue
        frame.thumbnail((cell_side, cell_side))
        text_at = text_boxes(detail, ts) if only_label is None else []
        drawn = draw_boxes(frame, boxes_at.get(ts, []) + text_at)
        size = max(11, font_size_for(drawn.size) * 3 // 4)
        caption = _fit_text(
            f"{ts / 1000:.1f}s  " + ", ".join(names_at.get(ts, [])), drawn.width, size
        )
        cells.append(_stack(drawn, _caption_band(drawn.width, [caption], size)))
    if not cells:
        raise CatalogError(f"no frames could be decoded from {detail.uri}")
    cols = min(columns, len(cells))
    rows = math.ceil(len(cells) / cols)
    gap = 4
    cell_w = max(c.width for c in cells)
    cell_h = max(c.height for c in cells)
    sheet = Image.new(
        "RGB",
        (cols * cell_w + (cols + 1) * gap, rows * cell_h + (rows + 1) * gap),
        SHEET_BACKGROUND,
    )
    for i, cell in enumerate(cells):
        row, col = divmod(i, cols)
        sheet.paste(cell, (gap + col * (cell_w + gap), gap + row * (cell_h + gap)))
    return sheet


def draw_media(
    detail: MediaDetail,
    data: bytes,
    *,
    only_label: str | None = None,
    max_side: int | None = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> Image.Image:
    """The picture `catalog show --draw` writes: boxes on an image, or a video contact sheet."""
    if detail.kind == "video":
        return draw_contact_sheet(
            detail,
            data,
            max_frames=max_frames,
            only_label=only_label,
            cell_side=min(max_side or 480, 480),
        )
    return draw_image(detail, data, only_label=only_label, max_side=max_side)


def save_picture(image: Image.Image, path: Path) -> Path:
    """Write the picture; the format follows the file's extension (PNG, JPEG, WebP)."""
    try:
        image.save(path)
    except (ValueError, KeyError) as exc:
        raise UsageError(f"cannot write {path}: use a .png, .jpg or .webp file name") from exc
    except OSError as exc:
        raise CatalogError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def to_jpeg_bytes(image: Image.Image, quality: int = 82) -> bytes:
    """JPEG bytes of a picture (for inline thumbnails)."""
    from catalog.labelling.imaging import to_rgb

    buffer = io.BytesIO()
    to_rgb(image).save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def write_media_picture(detail: MediaDetail, path: Path, read: Callable[[str], bytes]) -> Path:
    """Fetch the item with `read` (by URI), draw its boxes (or contact sheet), write to `path`."""
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise UsageError(f"cannot write {path}: use a .png, .jpg or .webp file name")
    picture = draw_media(detail, read(detail.uri))
    return save_picture(picture, path)
