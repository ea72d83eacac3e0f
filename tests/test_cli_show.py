"""`catalog show` and `catalog failures`: output shapes and exit codes."""

from __future__ import annotations

import json

from tests.factories import BLUE, RED, make_image


def test_show_json_has_labels_confidences_instances_and_parents(invoke, put):
    put(
        "show/car.jpg",
        make_image(200, 100, boxes=[(RED, (0, 0, 100, 50)), (BLUE, (150, 50, 200, 100))]),
    )
    assert invoke("sync", "s3://media-library/show/").exit_code == 0
    result = invoke(
        "show", "s3://media-library/show/car.jpg", "--format", "json", catch_exceptions=False
    )
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["uri"], data["kind"], data["status"]) == (
        "s3://media-library/show/car.jpg",
        "image",
        "labelled",
    )
    assert data["labeller"] == "rekognition" and data["model_version"] == "3.0"
    labels = {label["name"]: label for label in data["labels"]}
    car = labels["Car"]
    assert car["parents"] == ["Vehicle", "Transportation"]
    assert car["aliases"] == ["Automobile"]
    assert car["categories"] == ["Vehicles and Automotive"]
    (box,) = car["instances"]
    assert box["bounding_box"]["left"] == 0.0
    assert 0.45 <= box["bounding_box"]["width"] <= 0.55
    assert 0 < car["confidence"] <= 100
    assert labels["Person"]["instances"][0]["bounding_box"]["left"] >= 0.7


def test_show_table_lists_labels(invoke, put):
    put("show/p.png", make_image(boxes=[(BLUE, (10, 10, 100, 100))], fmt="PNG"))
    invoke("sync", "s3://media-library/show/")
    result = invoke("show", "s3://media-library/show/p.png")
    assert result.exit_code == 0
    assert "Person" in result.stdout
    assert "s3://media-library/show/p.png" in result.stdout


def test_show_unknown_uri_is_one_line_exit_2(invoke, bucket):
    assert invoke("db", "upgrade").exit_code == 0
    result = invoke("show", "s3://media-library/nothing.jpg")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: s3://media-library/nothing.jpg is not in the catalogue")
    assert result.stdout == ""


def test_failures_empty_table_and_json(invoke, bucket):
    assert invoke("db", "upgrade").exit_code == 0
    assert json.loads(invoke("failures", "--format", "json").stdout) == []
    assert "No failed media" in invoke("failures").stderr


def test_failures_csv_and_jsonl(invoke, put):
    put("bad/one.jpg", b"not an image")
    assert invoke("sync", "s3://media-library/bad/").exit_code == 1
    csv_out = invoke("failures", "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "uri,kind,code,message,attempts,updated_at"
    assert csv_out[1].startswith(
        "s3://media-library/bad/one.jpg,image,InvalidImageFormatException,"
    )
    (line,) = invoke("failures", "--format", "jsonl").stdout.splitlines()
    assert json.loads(line)["code"] == "InvalidImageFormatException"
