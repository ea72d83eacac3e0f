"""Decoding under a pixel cap: bombs refused from their header, huge JPEGs decoded reduced."""

from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image

from catalog.errors import ObjectError
from catalog.labelling import imaging
from catalog.labelling.imaging import DECODE_MAX_PIXELS, open_image, prepare_image
from tests.hostile import bomb_png


def test_a_png_bomb_is_refused_before_it_is_decoded() -> None:
    with pytest.raises(ObjectError) as raised:
        open_image(bomb_png(20000))
    assert raised.value.code == "ImageTooLarge"
    assert "20000x20000" in raised.value.message


def test_preparing_a_bomb_for_rekognition_is_refused_too() -> None:
    with pytest.raises(ObjectError, match="ImageTooLarge"):
        prepare_image(bomb_png(12000))


def test_a_jpeg_over_the_cap_is_decoded_at_a_reduced_scale() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (9000, 6000), (10, 120, 200)).save(buffer, format="JPEG")
    image = open_image(buffer.getvalue())
    assert image.width * image.height <= DECODE_MAX_PIXELS
    assert (image.width, image.height) == (4500, 3000)  # 54 MP at 1/2 scale


def test_concurrent_decodes_share_one_pixel_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = imaging._PixelBudget(100)
    held: list[int] = []
    peak = [0]
    lock = threading.Lock()

    def decode(pixels: int) -> None:
        with budget.reserve(pixels):
            with lock:
                held.append(pixels)
                peak[0] = max(peak[0], sum(held))
            time.sleep(0.05)
            with lock:
                held.remove(pixels)

    threads = [threading.Thread(target=decode, args=(60,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert peak[0] == 60  # two 60-pixel decodes never overlap in a 100-pixel budget
    assert budget.available == 100
