"""The contract of `catalog stats`, `report`, `export` and `show --draw`: shapes, formats, exit codes."""

from __future__ import annotations

import csv
import io
import json

import pytest
from PIL import Image

from catalog.read.export import iter_export_rows
from catalog.render import draw
from tests.factories import car_jpeg
from tests.stats_fixtures import Expected, Library, build_library
from tests.test_stats import _expected_labels


@pytest.fixture(scope="module")
def db_url(tmp_path_factory) -> str:
    """One catalogue for this module's read-only tests (they never write to it)."""
    return f"sqlite:///{tmp_path_factory.mktemp('cli-stats') / 'catalog.db'}"


@pytest.fixture(scope="module")
def library(db_url) -> Library:
    from catalog.store.engine import open_catalogue

    return build_library(open_catalogue(db_url)[1])


@pytest.fixture
def fresh_invoke(tmp_path):
    """invoke() on an empty catalogue of its own."""
    from typer.testing import CliRunner

    from catalog.cli import app

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    return lambda *args, **kw: CliRunner().invoke(app, ["--db", url, *args], **kw)


def _run(invoke, *args: str):
    result = invoke(*args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_stats_json_has_the_documented_shape(invoke, library):
    data = json.loads(_run(invoke, "stats", "--format", "json", "--top", "5").stdout)
    labelled = library.labelled()
    assert set(data["media"]) >= {"total", "images", "videos", "labelled", "failed", "pending"}
    assert data["media"]["labelled"] == len(labelled)
    assert data["labels"] == _expected_labels(library.live(), 5)
    media = [label["media"] for label in data["labels"]]
    assert media == sorted(media, reverse=True)
    assert "label" not in data and "where" not in data


def test_stats_label_adds_its_sections(invoke, library):
    data = json.loads(_run(invoke, "stats", "-f", "json", "--label", "Dog").stdout)
    spread = data["label"]
    carrying = [e for e in library.live() if "Dog" in e.labels]
    assert spread["name"] == "Dog"
    assert [b["media"] for b in spread["histogram"]] == [
        sum(1 for e in carrying if min(9, e.labels["Dog"][0] // 1000) == i) for i in range(10)
    ]
    assert spread["histogram"][9] == {
        "bin": "90-100",
        "from": 90,
        "to": 100,
        "media": spread["histogram"][9]["media"],
    }
    assert sum(p["media"] for p in spread["by_prefix"]) == len(carrying)
    assert sum(m["media"] for m in spread["by_month"]) == len(carrying)


def _car_over_90(library: Library) -> list[Expected]:
    return [e for e in library.labelled() if e.labels.get("Car", (0, 0))[0] > 9000]


def test_stats_where_restricts_every_figure(invoke, library):
    chosen = _car_over_90(library)
    assert chosen, "the fixtures should hold some Car > 90"
    data = json.loads(
        _run(
            invoke, "stats", "-f", "json", "--top", "50", "--where", "Car > 90", "--label", "Car"
        ).stdout
    )
    assert data["where"] == "Car > 90"
    assert data["media"]["total"] == data["media"]["labelled"] == len(chosen)
    assert data["labels"] == _expected_labels(chosen, 50)
    assert [b["media"] for b in data["label"]["histogram"]] == [0] * 9 + [len(chosen)]


def test_stats_csv_lists_the_labels(invoke, library):
    rows = list(
        csv.DictReader(io.StringIO(_run(invoke, "stats", "-f", "csv", "--top", "3").stdout))
    )
    assert [r["name"] for r in rows] == [
        label["name"] for label in _expected_labels(library.live(), 3)
    ]
    assert list(rows[0]) == [
        "name",
        "media",
        "detections",
        "mean_confidence",
        "max_confidence",
        "share",
    ]


def test_stats_csv_with_a_label_lists_its_sections(invoke, library):
    rows = list(
        csv.DictReader(io.StringIO(_run(invoke, "stats", "-f", "csv", "--label", "Cat").stdout))
    )
    assert [r["key"] for r in rows if r["section"] == "histogram"] == [
        f"{i * 10}-{i * 10 + 10}" for i in range(10)
    ]
    assert {r["section"] for r in rows} >= {"histogram", "cooccurring", "prefix", "month"}


def test_stats_table_shows_totals_and_bars(invoke, library):
    out = _run(invoke, "stats", "--top", "3", "--label", "Person").stdout
    top = _expected_labels(library.live(), 3)
    assert f"labelled {len(library.labelled())}" in out
    assert all(label["name"] in out for label in top)
    assert "█" in out and "Confidence histogram" in out and "Co-occurring labels" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("stats", "--where", "Car >"), "Error: "),
        (("stats", "--label", "Unicorn"), "Error: no label called 'Unicorn'"),
        (("export", "--where", "(Car"), "Error: "),
        (("export", "--where", "Car > abc"), "Error: "),
        (("report", "--out", "/nonexistent-dir/r.html"), "Error: cannot write"),
    ],
)
def test_errors_are_one_line_and_exit_2(invoke, library, args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert result.stdout == ""  # nothing written before the error (no CSV header)


def _expected_rows(items: list[Expected]) -> list[tuple[str, str, float]]:
    return sorted(
        (f"s3://media-library/{e.key}", name, conf / 100)
        for e in items
        for name, (conf, _) in e.labels.items()
    )


def _unlabelled_rows(items: list[Expected]) -> list[tuple[str, str, float]]:
    """Items without labels are exported too: one row with an empty label."""
    return sorted((f"s3://media-library/{e.key}", "", -1.0) for e in items if not e.labels)


def _row(r: dict) -> tuple[str, str, float]:
    return (
        r["uri"],
        r["label"],
        float(r["confidence"]) if r["confidence"] not in ("", None) else -1.0,
    )


def test_export_csv_streams_every_label_row(invoke, library):
    rows = list(csv.DictReader(io.StringIO(_run(invoke, "export").stdout)))
    assert list(rows[0]) == [
        "uri",
        "bucket",
        "key",
        "kind",
        "last_modified",
        "label",
        "confidence",
        "instance_count",
        "instances",
    ]
    assert sorted(_row(r) for r in rows) == sorted(
        _expected_rows(library.live()) + _unlabelled_rows(library.live())
    )
    by_key = {e.key: e for e in library.live()}
    for r in rows:
        if not r["label"]:
            assert (r["confidence"], r["instance_count"], r["instances"]) == ("", "0", "[]")
            continue
        boxes = json.loads(r["instances"])
        if by_key[r["key"]].kind == "image":
            assert int(r["instance_count"]) == len(boxes)
            assert max(1, len(boxes)) == by_key[r["key"]].labels[r["label"]][1]


def test_export_jsonl_with_where(invoke, library):
    lines = _run(invoke, "export", "--format", "jsonl", "--where", "Car > 90").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert sorted((r["uri"], r["label"], r["confidence"]) for r in records) == _expected_rows(
        _car_over_90(library)
    )
    assert all(set(r) >= {"uri", "label", "confidence", "instances"} for r in records)


def test_export_batches_do_not_change_the_rows(db_url, library):
    from catalog.store.engine import open_catalogue

    with open_catalogue(db_url)[1]() as session:
        small = [r.to_dict() for r in iter_export_rows(session, batch_size=7)]
        large = [r.to_dict() for r in iter_export_rows(session, batch_size=10_000)]
    assert small == large
    assert len(small) == len(_expected_rows(library.live()) + _unlabelled_rows(library.live()))


def test_report_command_writes_a_self_contained_page(invoke, library, tmp_path):
    out = tmp_path / "r.html"
    result = _run(invoke, "report", "--out", str(out), "--where", "Car > 90")
    page = out.read_text()
    assert "Wrote" in result.stderr and result.stdout == ""
    assert page.count("<svg") >= 4
    assert "media matching <code>Car &gt; 90</code>" in page


@pytest.mark.slow
def test_show_draw_fetches_the_image_from_s3_and_draws_its_boxes(
    fresh_invoke, put, tmp_path, rekognition_double
):
    uri = put("photos/car.jpg", car_jpeg(400, 300))
    _run(fresh_invoke, "sync", "s3://media-library/photos/", "--no-progress")
    out = tmp_path / "car.png"
    result = _run(fresh_invoke, "show", uri, "--draw", str(out), "--format", "json")
    car = next(label for label in json.loads(result.stdout)["labels"] if label["name"] == "Car")
    box = car["instances"][0]["bounding_box"]
    picture = Image.open(out).convert("RGB")
    assert picture.width == 400
    x0, y0, x1, y1 = draw.box_pixels(
        draw.Box("Car", 0, box["left"], box["top"], box["width"], box["height"]), (400, 300)
    )
    colour = draw.label_colour("Car")
    for x, y in [(x0, (y0 + y1) // 2), (x1, (y0 + y1) // 2), ((x0 + x1) // 2, y1)]:
        assert all(
            abs(a - b) <= 30 for a, b in zip(picture.getpixel((x, y)), colour, strict=True)
        ), (x, y)
    assert f"Wrote {out}" in result.stderr


def test_show_draw_refuses_an_unknown_picture_format(invoke, library, tmp_path):
    result = invoke(
        "show", "s3://media-library/2023/img-000.jpg", "--draw", str(tmp_path / "x.txt")
    )
    assert result.exit_code == 2
    assert "use a .png, .jpg or .webp" in result.stderr


@pytest.mark.parametrize("command", ["stats", "report", "export"])
def test_commands_have_help(invoke, command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example: catalog " + command in " ".join(result.stdout.split())
