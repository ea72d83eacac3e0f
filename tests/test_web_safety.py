"""The gallery's safety: only catalogued files by id, presigned S3 URLs, tokens, headers, escaping."""

from __future__ import annotations

import warnings
from urllib.parse import parse_qs, urlsplit

import pytest
from markupsafe import escape

from tests.web_library import HOSTILE_KEYS, Library, make_client, media_id

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def client(gallery: Library) -> TestClient:
    return make_client(gallery, follow_redirects=False)


# -- media bytes ---------------------------------------------------------------------------------


def test_a_catalogued_local_file_is_served_by_its_media_id(gallery, client):
    path = gallery.local_dir / "chelsea.png"
    response = client.get(f"/media/{media_id(gallery, str(path))}/file")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == path.read_bytes()


def test_a_local_video_answers_range_requests(gallery, client):
    path = gallery.local_dir / "astronaut-pan.mp4"
    response = client.get(
        f"/media/{media_id(gallery, str(path))}/file", headers={"range": "bytes=0-99"}
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


def test_an_uncatalogued_file_beside_catalogued_ones_is_refused(gallery, client):
    secret = gallery.local_dir / "secret.txt"
    secret.write_text("do not serve")
    ids = [media_id(gallery, str(gallery.local_dir / "chelsea.png"))]
    for candidate in range(1, max(ids) + 50):
        response = client.get(f"/media/{candidate}/file")
        assert b"do not serve" not in response.content


def test_a_deleted_local_file_is_404_not_a_traceback(gallery, client, tmp_path):
    path = gallery.local_dir / "coffee.png"
    mid = media_id(gallery, str(path))
    moved = tmp_path / "coffee.png"
    path.rename(moved)
    try:
        response = client.get(f"/media/{mid}/file")
        assert response.status_code == 404
        assert "no longer exists on disk" in response.text
    finally:
        moved.rename(path)


def test_s3_media_redirect_to_a_short_lived_presigned_url(gallery, client):
    response = client.get(f"/media/{media_id(gallery, 'street/car-and-person.jpg')}/file")
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = response.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert int(query["X-Amz-Expires"][0]) <= 900
    assert "X-Amz-Signature" in query
    assert gallery.env["AWS_SECRET_ACCESS_KEY"] not in location.replace("testing%2F", "")
    import requests

    assert requests.get(location, timeout=10).content[:2] == b"\xff\xd8"


def test_no_page_carries_aws_credentials(gallery, client):
    for url in ["/", "/?q=Car", "/stats", "/failures", "/api/search?q=Car&limit=0"]:
        body = client.get(url).text
        assert "X-Amz-Credential" not in body and "AWS_SECRET" not in body


# -- access --------------------------------------------------------------------------------------


def test_a_non_local_host_refuses_requests_without_the_token(gallery):
    client = make_client(
        gallery,
        "http://192.0.2.10:8765",
        follow_redirects=False,
        host="0.0.0.0",
        token="s3cret-token",
    )
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


def test_a_local_server_refuses_other_host_names(gallery):
    client = make_client(gallery, "http://attacker.example:8765", follow_redirects=False)
    assert client.get("/api/stats").status_code == 403
    assert (
        make_client(gallery, "http://localhost:8765", follow_redirects=False)
        .get("/api/stats")
        .status_code
        == 200
    )


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


def test_pages_carry_no_inline_scripts_or_styles(gallery, client):
    mid = media_id(gallery, "clips/car.mp4")
    for url in ["/", "/?q=Car", f"/media/{mid}", "/stats", "/failures", "/?q=Car+>"]:
        body = client.get(url).text
        assert "<script>" not in body.replace("&lt;script&gt;", "")
        assert " style=" not in body and "<style" not in body
        assert " onclick=" not in body and "javascript:" not in body


# -- names are data ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_a_hostile_key_is_escaped_on_every_page(gallery, client, key):
    mid = media_id(gallery, key)
    name = key.rsplit("/", 1)[-1]
    for url in [f"/media/{mid}", "/?q=prefix:hostile/"]:
        body = client.get(url).text
        assert "<script>alert(1)</script>" not in body
        assert "<b>.jpg" not in body
        assert str(escape(name)) in body
