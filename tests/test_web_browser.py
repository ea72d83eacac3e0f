"""The gallery in a real browser: Debian's Chromium driven by Playwright for Python.

Screenshots of the search page, a media page with boxes, a video page and the statistics page
are written to $CATALOG_SCREENSHOTS (default: the test's temporary folder).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web_library import HOSTILE_KEYS, Library, live_server, media_id

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]


@pytest.fixture(scope="module")
def base_url(gallery: Library) -> Iterator[str]:
    from catalog.web.app import ServeOptions, create_app

    app = create_app(ServeOptions(gallery.db_url, cache_dir=gallery.root / "thumbs"))
    with live_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    page.dialogs = []
    page.console_errors = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on(
        "console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None
    )
    page.set_default_timeout(15_000)
    yield page
    page.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("CATALOG_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def search(page: Any, base_url: str, query: str) -> None:
    page.goto(base_url + "/")
    page.fill("#q", query)
    page.press("#q", "Enter")
    page.wait_for_load_state()


def wait_until(page: Any, expression: str, timeout_s: float = 10.0) -> None:
    """Poll a JS expression through page.evaluate (wait_for_function would need 'unsafe-eval')."""
    import time

    deadline = time.monotonic() + timeout_s
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(50)


def result_names(page: Any) -> list[str]:
    return page.locator("#grid .card .name").all_inner_texts()


# -- search ----------------------------------------------------------------------------------------


def test_typing_a_query_shows_its_results_and_exact_count(page, base_url):
    search(page, base_url, "Car AND NOT Person")
    page.wait_for_selector("#count[data-count]")
    assert sorted(result_names(page)) == sorted(["street/two-cars.jpg", *HOSTILE_KEYS])
    assert page.inner_text("#count") == "4"
    assert "q=Car+AND+NOT+Person" in page.url


def test_a_malformed_query_shows_the_parser_message_at_its_position(page, base_url):
    search(page, base_url, "Car > AND Dog")
    error = page.locator("#query-error")
    assert "malformed query at position 7" in error.inner_text()
    assert page.inner_text("#query-error mark.at") == "A"
    assert page.locator("#grid").count() == 0


def test_an_unknown_label_shows_the_did_you_mean_hint(page, base_url):
    search(page, base_url, "Dgo")
    assert "did you mean 'Dog'" in page.inner_text(".hint")


def test_autocomplete_offers_a_label_with_its_count(page, base_url):
    page.goto(base_url + "/")
    page.click("#q")
    page.keyboard.type("Person > 50 AND ca")
    page.wait_for_selector("#suggestions li[data-label='Car']")
    suggestion = page.locator("#suggestions li[data-label='Car']")
    assert suggestion.locator(".s-count").inner_text() == "6"
    suggestion.dispatch_event("mousedown")
    assert page.input_value("#q") == "Person > 50 AND Car "


def test_a_facet_refines_the_query_and_back_restores_the_search(page, base_url):
    search(page, base_url, "Dog OR Car")
    page.wait_for_selector("#facets[data-loaded=true]")
    first = sorted(result_names(page))
    page.click("#facets a.facet[data-term='kind:video']")
    page.wait_for_load_state()
    assert page.input_value("#q") == "(Dog OR Car) kind:video"
    assert result_names(page) == ["clips/car.mp4"]
    page.go_back()
    page.wait_for_load_state()
    assert page.input_value("#q") == "Dog OR Car"
    assert sorted(result_names(page)) == first


def test_sort_and_paging_keep_the_query_in_the_url(page, base_url):
    page.goto(base_url + "/?q=Car")
    page.select_option("#sort", "key")
    page.wait_for_url("**sort=key**")
    names = result_names(page)
    assert names == sorted(names)
    assert names[0] == "clips/car.mp4"
    assert page.input_value("#q") == "Car"


# -- media -----------------------------------------------------------------------------------------


def test_clicking_a_result_opens_its_page_with_boxes_where_they_were_found(
    page, base_url, gallery, screenshots
):
    search(page, base_url, "Car AND Person")
    page.click("#grid .card a.name")
    page.wait_for_selector("#picture")
    wait_until(page, "document.getElementById('picture').complete")
    picture = page.locator("#picture").bounding_box()
    detail = page.evaluate(
        "fetch('/api/media?uri=' + encodeURIComponent("
        "document.getElementById('media-uri').textContent)).then(r => r.json())"
    )
    stored = [
        (label["name"], instance["bounding_box"])
        for label in detail["labels"]
        for instance in label["instances"]
    ]
    overlay = page.locator("#overlay").bounding_box()
    assert overlay == pytest.approx(picture, abs=1)  # the overlay covers exactly the picture
    drawn = page.locator("#overlay rect.box")
    assert drawn.count() == len(stored) == 2
    stroke = 3  # the outline straddles the box edge: 1.5 px either side
    for i, (name, box) in enumerate(stored):
        rect = drawn.nth(i).bounding_box()
        assert drawn.nth(i).get_attribute("data-name") == name
        assert rect["x"] - picture["x"] == pytest.approx(
            box["left"] * picture["width"] - stroke / 2, abs=1
        )
        assert rect["y"] - picture["y"] == pytest.approx(
            box["top"] * picture["height"] - stroke / 2, abs=1
        )
        assert rect["width"] == pytest.approx(box["width"] * picture["width"] + stroke, abs=1)
        assert rect["height"] == pytest.approx(box["height"] * picture["height"] + stroke, abs=1)
    # The red block (Car) is at 20..220 x 30..200 of a 400x300 picture.
    car = drawn.nth(0).bounding_box() if stored[0][0] == "Car" else drawn.nth(1).bounding_box()
    assert car["x"] - picture["x"] == pytest.approx(20 / 400 * picture["width"], abs=3)
    assert car["width"] == pytest.approx(201 / 400 * picture["width"], abs=5)
    page.hover(".label-row[data-label='0']")
    assert "hl" in page.locator("#overlay rect.box[data-label='0']").first.get_attribute("class")
    assert "focus" in page.locator("#overlay").get_attribute("class")
    page.mouse.move(5, 5)
    assert "focus" not in page.locator("#overlay").get_attribute("class")
    page.screenshot(path=str(screenshots / "media-boxes.png"), full_page=True)


def test_clicking_a_video_moment_seeks_the_player_and_draws_its_boxes(
    page, base_url, gallery, screenshots
):
    page.goto(f"{base_url}/media/{media_id(gallery, 'clips/car.mp4')}")
    wait_until(page, "document.getElementById('player').readyState >= 1")
    moment = page.locator(".track").filter(has_text="Car").locator("button.moment").first
    assert moment.get_attribute("data-ts") == "500"
    moment.click()
    wait_until(page, "Math.abs(document.getElementById('player').currentTime - 0.5) < 0.01")
    wait_until(page, "document.getElementById('player').dataset.moment === '500'")
    shown = page.locator("#overlay rect.box.shown")
    names = sorted(shown.nth(i).get_attribute("data-name") for i in range(shown.count()))
    assert names == ["Car", "Person"]
    later = (
        page.locator(".track").filter(has_text="Person").locator("button.moment[data-ts='1500']")
    )
    later.click()
    wait_until(page, "Math.abs(document.getElementById('player').currentTime - 1.5) < 0.01")
    wait_until(page, "document.getElementById('player').dataset.moment === '1500'")
    shown = page.locator("#overlay rect.box.shown")
    assert [shown.nth(i).get_attribute("data-name") for i in range(shown.count())] == ["Person"]
    page.wait_for_timeout(300)
    page.screenshot(path=str(screenshots / "media-video.png"), full_page=True)


# -- statistics and failures ---------------------------------------------------------------------


def test_the_stats_page_draws_its_charts(page, base_url, screenshots):
    page.goto(base_url + "/stats")
    bars = page.locator("#chart-top-labels svg.bar rect")
    assert bars.count() >= 5
    widths = [float(bars.nth(i).get_attribute("width")) for i in range(bars.count())]
    assert widths[0] == 1000 and widths == sorted(widths, reverse=True)
    page.click("#chart-top-labels a:text-is('Car')")
    page.wait_for_url("**label=Car**")
    assert page.inner_text(".spread h2").startswith("Car")
    histogram = page.locator("#chart-histogram rect")
    assert histogram.count() == 10
    counts = page.locator("#chart-histogram text.value").all_text_contents()
    assert counts == ["0", "0", "0", "0", "0", "0", "1", "0", "0", "5"]  # two-cars.jpg: 66.5%
    assert page.locator("#chart-cooccurring svg.bar").count() >= 1
    assert page.locator("#chart-prefix th").all_inner_texts()[0] == "hostile/"
    page.screenshot(path=str(screenshots / "stats.png"), full_page=True)


def test_the_stats_where_box_takes_a_query(page, base_url):
    page.goto(base_url + "/stats")
    page.fill("#where", "Dog")
    page.press("#where", "Enter")
    page.wait_for_load_state()
    assert page.inner_text("#totals .total >> nth=0").startswith("2")


def test_the_failures_page_lists_codes_and_the_retry_command(page, base_url):
    page.goto(base_url + "/failures")
    assert "InvalidImageFormatException" in page.inner_text("#failures")
    assert page.input_value(".command-text") == "catalog sync s3://gallery/ --retry-failed"
    page.click(".code-filter")
    assert "code=InvalidImageFormatException" in page.url


# -- hostile names and the screenshots -------------------------------------------------------------


def test_a_hostile_key_is_shown_as_text_and_runs_nothing(page, base_url, gallery):
    search(page, base_url, "prefix:hostile/")
    page.wait_for_selector("#grid")
    assert sorted(result_names(page)) == sorted(HOSTILE_KEYS)
    page.goto(f"{base_url}/media/{media_id(gallery, HOSTILE_KEYS[0])}")
    assert page.inner_text("#media-uri") == gallery.uri(HOSTILE_KEYS[0])
    assert page.locator("main script, main b").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == []


def test_screenshot_of_the_search_page(page, base_url, screenshots):
    search(page, base_url, "Car OR Dog OR Cat")
    page.wait_for_selector("#facets[data-loaded=true]")
    wait_until(page, "Array.from(document.querySelectorAll('#grid img')).every(i => i.complete)")
    page.screenshot(path=str(screenshots / "search.png"), full_page=True)
    assert page.console_errors == []
