"""An item's text where people look: `catalog show` (table and JSON), `--draw`, the HTML report
and the search table and CSV, with text from users' pictures treated as data."""

from __future__ import annotations

import csv
import io
import json

from PIL import Image

from catalog.render import report
from catalog.render.draw import label_colour
from tests.factories import car_jpeg

SHOW = "s3://media-library/signs/exit.jpg"
LINES = [("EMERGENCY EXIT", (0.1, 0.1, 0.6, 0.2)), ("[bold]Open[/bold]", (0.1, 0.6, 0.5, 0.2))]


def synced(invoke, put, double):
    put("signs/exit.jpg", car_jpeg(400, 300))
    double.texts["signs/exit.jpg"] = LINES
    result = invoke("sync", "s3://media-library/", "--features", "labels,text", "--no-progress")
    assert result.exit_code == 0, result.output


def test_show_json_lists_lines_and_words(invoke, put, rekognition_double):
    synced(invoke, put, rekognition_double)
    data = json.loads(invoke("show", SHOW, "-f", "json", catch_exceptions=False).stdout)
    assert [(t["type"], t["text"]) for t in data["text"]] == [
        ("LINE", "EMERGENCY EXIT"),
        ("LINE", "[bold]Open[/bold]"),
        ("WORD", "EMERGENCY"),
        ("WORD", "EXIT"),
        ("WORD", "[bold]Open[/bold]"),
    ]
    assert data["text"][0]["bounding_box"] == {"left": 0.1, "top": 0.1, "width": 0.6, "height": 0.2}
    assert data["text"][0]["confidence"] == 99.0


def test_show_json_says_null_when_text_was_never_read(invoke, put, aws_env):
    put("plain.jpg", car_jpeg())
    assert invoke("sync", "s3://media-library/", "--no-progress").exit_code == 0
    data = json.loads(invoke("show", "s3://media-library/plain.jpg", "-f", "json").stdout)
    assert data["text"] is None


def test_show_table_lists_lines_as_data_not_markup(invoke, put, rekognition_double):
    synced(invoke, put, rekognition_double)
    out = invoke("show", SHOW, catch_exceptions=False).stdout
    assert "EMERGENCY EXIT" in out
    assert "[bold]Open[/bold]" in out  # shown literally, never interpreted


def test_draw_outlines_text_boxes(invoke, put, rekognition_double, tmp_path):
    synced(invoke, put, rekognition_double)
    target = tmp_path / "boxes.png"
    assert invoke("show", SHOW, "--draw", str(target), catch_exceptions=False).exit_code == 0
    picture = Image.open(target).convert("RGB")
    colour = label_colour("“EMERGENCY EXIT”")
    # The line's box runs from x=40 to x=279 at y=30..89 on the 400x300 picture: its bottom edge.
    bottom = [picture.getpixel((x, 88)) for x in range(60, 260, 10)]
    assert all(sum(abs(a - b) for a, b in zip(p, colour, strict=True)) < 60 for p in bottom)


def test_search_table_and_csv_show_the_lines_met(invoke, put, rekognition_double):
    synced(invoke, put, rekognition_double)
    table = invoke("search", "text:open", catch_exceptions=False).stdout
    assert "Open[/bold]" in table  # the line as read, never interpreted as markup
    rows = list(csv.DictReader(io.StringIO(invoke("search", "text:exit", "-f", "csv").stdout)))
    assert [(r["label"], r["text"], r["confidence"]) for r in rows] == [
        ("", "EMERGENCY EXIT", "99.0")
    ]


def test_report_captions_show_the_text(invoke, put, rekognition_double, sessions, s3):
    synced(invoke, put, rekognition_double)

    def fetch(uri: str) -> bytes:
        bucket, key = uri[len("s3://") :].split("/", 1)
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    with sessions() as session:
        page = report.build_report(session, fetch=fetch).html
    assert "text: “EMERGENCY EXIT”, “[bold]Open[/bold]”" in page
