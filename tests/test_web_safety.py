"""The gallery's safety: only catalogued files by id, presigned S3 URLs, tokens, headers, escaping."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from markupsafe import escape
from sqlalchemy import select

from catalog.store.engine import open_catalogue
from catalog.store.schema import Media
from tests.web_library import HOSTILE_KEYS, Library, gallery_library

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

LOCAL = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def library(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, rekognition_double: Any
) -> Iterator[Library]:
    with gallery_library(
        tmp_path_factory.mktemp("gallery"), moto_endpoint, rekognition_double
    ) as lib:
        yield lib


def make_client(library: Library, base_url: str = LOCAL, **options: Any) -> TestClient:
    from catalog.web.app import ServeOptions, create_app

    options.setdefault("cache_dir", library.root / "thumbs")
    app = create_app(ServeOptions(library.db_url, **options))
    return TestClient(app, base_url=base_url, follow_redirects=False)


@pytest.fixture(scope="module")
def client(library: Library) -> TestClient:
    return make_client(library)


def media_id(library: Library, key: str) -> int:
    _, sessions = open_catalogue(library.db_url)
    with sessions() as session:
        return session.execute(select(Media.id).where(Media.key == key)).scalar_one()


# -- media bytes ---------------------------------------------------------------------------------


def test_a_catalogued_local_file_is_served_by_its_media_id(library, client):
    path = library.local_dir / "chelsea.png"
    response = client.get(f"/media/{media_id(library, str(path))}/file")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == path.read_bytes()


def test_a_local_video_answers_range_requests(library, client):
    path = library.local_dir / "astronaut-pan.mp4"
    response = client.get(
        f"/media/{media_id(library, str(path))}/file", headers={"range": "bytes=0-99"}
    )
    assert response.status_code == 206
    assert response.content == path.read_bytes()[:100]


@pytest.mark.parametrize(
    "url",
    [
        "/media/999999/file",
        "/media/-1/file",
        "/media/abc/file",
        "/media/1/../../../../etc/passwd",
        "/media/%2e%2e/%2e%2e/etc/passwd",
        "/file?path=/etc/passwd",
        "/media/file?path=/etc/passwd",
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    ],
)
def test_a_path_that_is_not_a_catalogued_item_is_refused(client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert b"root:" not in response.content


def test_an_uncatalogued_file_beside_catalogued_ones_is_refused(library, client):
    secret = library.local_dir / "secret.txt"
    secret.write_text("do not serve")
    ids = [media_id(library, str(library.local_dir / "chelsea.png"))]
    for candidate in range(1, max(ids) + 50):
        response = client.get(f"/media/{candidate}/file")
        assert b"do not serve" not in response.content


def test_a_deleted_local_file_is_404_not_a_traceback(library, client, tmp_path):
    path = library.local_dir / "coffee.png"
    mid = media_id(library, str(path))
    moved = tmp_path / "coffee.png"
    path.rename(moved)
    try:
        response = client.get(f"/media/{mid}/file")
        assert response.status_code == 404
        assert "no longer exists on disk" in response.text
    finally:
        moved.rename(path)


def test_s3_media_redirect_to_a_short_lived_presigned_url(library, client):
    response = client.get(f"/media/{media_id(library, 'street/car-and-person.jpg')}/file")
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = response.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert int(query["X-Amz-Expires"][0]) <= 900
    assert "X-Amz-Signature" in query
    assert library.env["AWS_SECRET_ACCESS_KEY"] not in location.replace("testing%2F", "")
    import requests

    assert requests.get(location, timeout=10).content[:2] == b"\xff\xd8"


def test_no_page_carries_aws_credentials(library, client):
    for url in ["/", "/?q=Car", "/stats", "/failures", "/api/search?q=Car&limit=0"]:
        body = client.get(url).text
        assert "X-Amz-Credential" not in body and "AWS_SECRET" not in body


# -- access --------------------------------------------------------------------------------------


def test_a_non_local_host_refuses_requests_without_the_token(library):
    client = make_client(library, "http://192.0.2.10:8765", host="0.0.0.0", token="s3cret-token")
    refused = client.get("/api/stats")
    assert refused.status_code == 403
    assert "token" in refused.text
    assert client.get("/api/stats?token=wrong").status_code == 403
    assert client.get("/media/1/file").status_code == 403
    opened = client.get("/?token=s3cret-token")
    assert opened.status_code == 200
    assert "HttpOnly" in opened.headers["set-cookie"]
    assert "SameSite=Strict" in opened.headers["set-cookie"]
    assert client.get("/api/stats").status_code == 200  # the cookie now carries the token


def test_a_local_server_refuses_other_host_names(library):
    client = make_client(library, "http://attacker.example:8765")
    assert client.get("/api/stats").status_code == 403
    assert make_client(library, "http://localhost:8765").get("/api/stats").status_code == 200


def test_every_response_sends_a_strict_content_security_policy(client):
    for url in ["/", "/stats", "/api/stats", "/media/999999/file", "/static/app.css"]:
        csp = client.get(url).headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "default-src 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    headers = client.get("/").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_the_server_is_read_only(client, method):
    for url in ["/", "/api/search", "/api/media", "/media/1/file"]:
        assert client.request(method, url).status_code == 405


def test_pages_carry_no_inline_scripts_or_styles(library, client):
    mid = media_id(library, "clips/car.mp4")
    for url in ["/", "/?q=Car", f"/media/{mid}", "/stats", "/failures", "/?q=Car+>"]:
        body = client.get(url).text
        assert "<script>" not in body.replace("&lt;script&gt;", "")
        assert " style=" not in body and "<style" not in body
        assert " onclick=" not in body and "javascript:" not in body


# -- names are data ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_a_hostile_key_is_escaped_on_every_page(library, client, key):
    mid = media_id(library, key)
    name = key.rsplit("/", 1)[-1]
    for url in [f"/media/{mid}", "/?q=prefix:hostile/"]:
        body = client.get(url).text
        assert "<script>alert(1)</script>" not in body
        assert "<b>.jpg" not in body
        assert str(escape(name)) in body
