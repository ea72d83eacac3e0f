"""The gallery's JSON API and HTTP contract: the CLI's JSON byte for byte, errors, safety."""

from __future__ import annotations

import warnings
from urllib.parse import quote

import pytest

from tests.web_library import HOSTILE_KEYS, Library, cli, make_client

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def client(gallery: Library) -> TestClient:
    return make_client(gallery)


# -- the CLI's JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query,extra",
    [
        ("Car", []),
        ("Car > 50 AND NOT Person", []),
        ("Dog OR Cat", ["--sort", "key"]),
        ("", ["--sort", "modified"]),
        ("Person", ["--sort", "confidence"]),
    ],
)
def test_api_search_is_the_cli_json_byte_for_byte(gallery, client, query, extra):
    expected = cli(gallery.db_url, "search", query, "--format", "json", "--limit", "3", *extra)
    sort = f"&sort={extra[1]}" if extra else ""
    response = client.get(f"/api/search?q={quote(query)}&limit=3{sort}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.text == expected.stdout
    assert response.json()  # every query above matches something


def test_api_search_limit_zero_streams_every_match(gallery, client):
    expected = cli(gallery.db_url, "search", "kind:image", "--format", "json")
    assert client.get("/api/search?q=kind:image&limit=0").text == expected.stdout


def test_api_count_is_the_cli_count_json(gallery, client):
    expected = cli(gallery.db_url, "search", "Car", "--count", "--format", "json")
    assert client.get("/api/count?q=Car").text == expected.stdout


@pytest.mark.parametrize(
    "params,args",
    [
        ("", []),
        ("?where=Car&label=Car&top=5", ["--where", "Car", "--label", "Car", "--top", "5"]),
    ],
)
def test_api_stats_is_the_cli_stats_json(gallery, client, params, args):
    expected = cli(gallery.db_url, "stats", *args, "--format", "json")
    assert client.get(f"/api/stats{params}").text == expected.stdout


@pytest.mark.parametrize("key", ["street/car-and-person.jpg", "clips/car.mp4", HOSTILE_KEYS[0]])
def test_api_media_is_the_cli_show_json(gallery, client, key):
    uri = gallery.uri(key)
    expected = cli(gallery.db_url, "show", uri, "--format", "json")
    response = client.get(f"/api/media?uri={quote(uri, safe='')}")
    assert response.text == expected.stdout


def test_api_labels_and_failures_are_the_cli_json(gallery, client):
    labels = cli(gallery.db_url, "labels", "ca", "--format", "json", "--limit", "4")
    assert client.get("/api/labels?q=ca&limit=4").text == labels.stdout
    failures = cli(gallery.db_url, "failures", "--format", "json")
    assert client.get("/api/failures").text == failures.stdout
    assert [f["uri"] for f in client.get("/api/failures").json()] == [
        gallery.uri("broken/not-a-picture.jpg")
    ]


def test_malformed_query_is_400_with_the_cli_message(gallery, client):
    from typer.testing import CliRunner

    from catalog.cli import app

    result = CliRunner().invoke(app, ["--db", gallery.db_url, "search", "Car >", "-f", "json"])
    assert result.exit_code == 2
    message = result.stderr.strip().removeprefix("Error: ")
    response = client.get("/api/search?q=" + quote("Car >"))
    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert client.get("/api/count?q=" + quote("(Car")).status_code == 400
    assert client.get("/api/stats?where=" + quote("Car >")).status_code == 400


def test_unknown_label_hint_rides_in_a_header(client):
    response = client.get("/api/search?q=Dgo")
    assert response.json() == []
    assert "did you mean 'Dog'" in response.headers["x-catalog-hints"]


def test_unknown_media_uri_is_404(gallery, client):
    response = client.get("/api/media?uri=" + quote(gallery.uri("nothing.jpg")))
    assert response.status_code == 404
    assert "is not in the catalogue" in response.json()["error"]


def test_bad_limit_is_400(client):
    assert client.get("/api/search?q=Car&limit=lots").json() == {
        "error": "'limit' must be a whole number (got 'lots')"
    }


# -- facets --------------------------------------------------------------------------------------


def test_facets_count_the_result_set_exactly(client):
    data = client.get("/api/facets?q=" + quote("Car OR Dog")).json()
    assert data["total"] == 8  # 2 street pictures, the video, 3 hostile keys, 2 park pictures
    assert {k["value"]: k["count"] for k in data["kinds"]} == {"image": 7, "video": 1}
    labels = {f["value"]: f["count"] for f in data["labels"]}
    # Co-occurring labels: the ones the query names (Car, Dog) are not offered again.
    assert "Car" not in labels and "Dog" not in labels
    assert labels["Cat"] == 1
    assert all(f["label_id"] for f in data["labels"])
    assert {p["value"]: p["count"] for p in data["prefixes"]} == {
        "street/": 2,
        "clips/": 1,
        "hostile/": 3,
        "park/": 2,
    }
