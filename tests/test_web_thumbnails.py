"""Gallery thumbnails: made once with Pillow or PyAV, cached by media and ETag, served with ETags."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import update

from catalog.store.engine import open_catalogue
from catalog.store.schema import Media
from catalog.web.thumbnails import (
    ThumbnailCache,
    ThumbnailSource,
    default_cache_dir,
    make_thumbnail,
)
from tests.factories import RED, make_image
from tests.web_library import BUCKET, Library, make_client, media_id

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def client(gallery: Library, tmp_path: Path) -> TestClient:
    return make_client(gallery, cache_dir=tmp_path / "thumbs")


def picture(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_a_thumbnail_is_a_jpeg_of_about_320_pixels_cached_on_disk(gallery, client, tmp_path):
    mid = media_id(gallery, "street/car-and-person.jpg")
    response = client.get(f"/media/{mid}/thumbnail")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert picture(response.content).size == (320, 240)
    assert response.headers["cache-control"] == "private, max-age=86400"
    (cached,) = (tmp_path / "thumbs").iterdir()
    assert cached.name.startswith(f"{mid}-") and cached.read_bytes() == response.content


def test_the_browser_revalidates_with_the_etag(gallery, client):
    mid = media_id(gallery, "park/dog.png")
    first = client.get(f"/media/{mid}/thumbnail")
    again = client.get(f"/media/{mid}/thumbnail", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_a_changed_object_gets_a_new_thumbnail(gallery, client, tmp_path):
    mid = media_id(gallery, "street/two-cars.jpg")
    before = client.get(f"/media/{mid}/thumbnail")
    _, sessions = open_catalogue(gallery.db_url)
    with sessions.begin() as session:
        etag = session.get(Media, mid).etag
        session.execute(update(Media).where(Media.id == mid).values(etag='"changed"'))
    try:
        after = client.get(f"/media/{mid}/thumbnail")
        assert after.headers["etag"] != before.headers["etag"]
        assert len(list((tmp_path / "thumbs").glob(f"{mid}-*.jpg"))) == 2
    finally:
        with sessions.begin() as session:
            session.execute(update(Media).where(Media.id == mid).values(etag=etag))


def test_a_video_thumbnail_is_its_poster_frame(gallery, client):
    response = client.get(f"/media/{media_id(gallery, 'clips/car.mp4')}/thumbnail")
    image = picture(response.content).convert("RGB")
    assert image.size == (160, 120)  # smaller than 320 px: never enlarged
    # The blue block (Person) fills 100..150 x 60..110 of the 160x120 frame all along.
    r, g, b = image.getpixel((125, 85))
    assert b > 180 and r < 80 and g < 80


def test_a_local_video_thumbnail_is_made_from_the_file(gallery, client):
    path = gallery.local_dir / "astronaut-pan.mp4"
    response = client.get(f"/media/{media_id(gallery, str(path))}/thumbnail")
    assert response.headers["content-type"] == "image/jpeg"
    assert max(picture(response.content).size) == 320


def test_an_object_gone_from_s3_gets_a_placeholder_and_the_page_renders(gallery, client):
    import boto3

    s3 = boto3.client("s3")
    key = "park/dog-and-cat.jpg"
    data = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.delete_object(Bucket=BUCKET, Key=key)
    try:
        response = client.get(f"/media/{media_id(gallery, key)}/thumbnail")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/svg+xml"
        assert response.headers["cache-control"] == "no-store"
        assert client.get("/?q=Cat").status_code == 200
    finally:
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)


def test_exif_orientation_is_applied():
    # Stored 400x200 with orientation 6 (rotate 90 degrees clockwise to view): shown 200x400.
    data = make_image(400, 200, boxes=[(RED, (0, 0, 200, 200))], exif_orientation=6)
    from catalog.labelling.imaging import open_image

    thumb = picture(make_thumbnail(open_image(data)))
    assert thumb.size == (160, 320)
    r, g, _b = thumb.convert("RGB").getpixel((80, 60))  # red block lands on top once turned
    assert r > 200 and g < 60


def test_transparent_pixels_land_on_a_light_background():
    image = Image.new("RGBA", (400, 200), (0, 0, 0, 0))
    thumb = picture(make_thumbnail(image)).convert("RGB")
    assert thumb.size == (320, 160)
    assert all(channel > 230 for channel in thumb.getpixel((10, 10)))


def test_many_requests_for_one_thumbnail_make_it_once(gallery, tmp_path, monkeypatch):
    import threading

    calls: list[str] = []
    cache = ThumbnailCache(tmp_path / "t", lambda: None, workers=2)
    original = cache._render

    def counting(source: ThumbnailSource) -> bytes:
        calls.append(source.uri)
        threading.Event().wait(0.2)
        return make_thumbnail(Image.new("RGB", (10, 10)))

    monkeypatch.setattr(cache, "_render", counting)
    source = ThumbnailSource(1, "s3://b/k.jpg", "image", "b", "k.jpg", '"e"', 10)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(source))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["s3://b/k.jpg"] and len(set(results)) == 1 and results[0].is_file()
    assert original is not None
    cache.close()


@pytest.mark.parametrize(
    "url,expected",
    [
        ("sqlite:////data/photos.db", Path("/data/photos.thumbnails")),
        ("sqlite:///relative.db", Path("relative.thumbnails")),
    ],
)
def test_the_cache_sits_beside_a_sqlite_catalogue(url, expected):
    assert default_cache_dir(url) == expected


def test_a_postgresql_catalogue_caches_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = default_cache_dir("postgresql+psycopg://me:secret@db/cat")
    assert first.parent == tmp_path / "catalog"
    assert "secret" not in str(first)
    assert first != default_cache_dir("postgresql+psycopg://me:secret@db/other")
