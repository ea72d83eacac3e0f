"""`catalog search` and `catalog labels` contract: exit codes, stdout shapes, stderr hints, help."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from catalog.cli import app
from catalog.store.engine import open_catalogue
from tests.test_search import build_catalogue

Invoke = Callable[..., Any]


@pytest.fixture(scope="module")
def catalogue_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The hand-built catalogue in a file, built once for the module (tests only read it)."""
    path: Path = tmp_path_factory.mktemp("cli-search") / "catalog.db"
    url = f"sqlite:///{path}"
    build_catalogue(open_catalogue(url)[1])
    return url


@pytest.fixture
def run(catalogue_url: str) -> Invoke:
    """run('search', 'Car') against the hand-built catalogue."""
    runner = CliRunner()

    def _run(*args: str, catch_exceptions: bool = False) -> Any:
        return runner.invoke(app, ["--db", catalogue_url, *args], catch_exceptions=catch_exceptions)

    return _run


CAR_OVER_90 = [
    {
        "uri": "s3://lib/vid/v1.mp4",
        "kind": "video",
        "matches": [{"label": "Car", "confidence": 92.0, "timestamps_ms": [500]}],
    },
    {
        "uri": "s3://lib/photos/2024/e.jpg",
        "kind": "image",
        "matches": [{"label": "Car", "confidence": 90.01}],
    },
    {
        "uri": "s3://lib/img/a.jpg",
        "kind": "image",
        "matches": [{"label": "Car", "confidence": 95.0}],
    },
]


def _core(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: r[k] for k in ("uri", "kind", "matches")} for r in records]


def test_json_lists_hits_newest_first_with_their_matches(run: Invoke) -> None:
    result = run("search", "Car > 90", "--format", "json")
    assert result.exit_code == 0
    records = json.loads(result.stdout)
    assert _core(records) == CAR_OVER_90
    assert records[2]["size_bytes"] == 6_000_000
    assert records[2]["last_modified_at"] == "2024-02-10T00:00:00+00:00"
    assert result.stderr == ""


def test_jsonl_is_one_object_per_line(run: Invoke) -> None:
    result = run("search", "car>90", "-f", "jsonl")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert _core([json.loads(line) for line in lines]) == CAR_OVER_90


def test_video_matches_list_the_moments_that_met_each_condition(run: Invoke) -> None:
    result = run("search", "kind:video (Car < 80 OR Person)", "-f", "json")
    records = _core(json.loads(result.stdout))
    assert records == [
        {
            "uri": "s3://lib/vid/v2.mp4",
            "kind": "video",
            "matches": [{"label": "Person", "confidence": 99.0, "timestamps_ms": [0, 500]}],
        },
        {
            "uri": "s3://lib/vid/v1.mp4",
            "kind": "video",
            # A video's confidence is the best among the moments that met the condition
            # (Car < 80: 75, not the video's best Car of 92), best match first.
            "matches": [
                {"label": "Person", "confidence": 81.0, "timestamps_ms": [1000]},
                {"label": "Car", "confidence": 75.0, "timestamps_ms": [0, 1000]},
            ],
        },
    ]


def test_csv_has_one_row_per_item_and_matched_label(run: Invoke) -> None:
    result = run("search", "Car > 90 OR Person >= 85", "-f", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["uri"], r["label"], r["confidence"], r["timestamps_ms"]) for r in rows] == [
        ("s3://lib/vid/v2.mp4", "Person", "99.0", "0"),
        ("s3://lib/vid/v1.mp4", "Car", "92.0", "500"),
        ("s3://lib/photos/2024/e.jpg", "Car", "90.01", ""),
        ("s3://lib/img/a.jpg", "Car", "95.0", ""),
        ("s3://lib/img/a.jpg", "Person", "85.0", ""),
    ]


def test_table_is_the_default(run: Invoke) -> None:
    result = run("search", "Dog")
    assert result.exit_code == 0
    assert "s3://lib/img/b.jpg" in result.stdout
    assert "Dog 99.0%" in result.stdout
    assert "3 media" in result.stderr  # the title is a message; stdout holds the rows


def test_table_limit_defaults_to_50_and_says_so(run: Invoke) -> None:
    result = run("search", "NOT Caar", "--limit", "2")
    assert result.exit_code == 0
    assert "2 media (the first 2" in result.stderr


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("newest", ["vid/v1.mp4", "photos/2024/e.jpg", "img/a.jpg"]),
        ("confidence", ["img/a.jpg", "vid/v1.mp4", "photos/2024/e.jpg"]),
        ("key", ["img/a.jpg", "photos/2024/e.jpg", "vid/v1.mp4"]),
        ("modified", ["vid/v1.mp4", "img/a.jpg", "photos/2024/e.jpg"]),
    ],
)
def test_sort_orders(run: Invoke, sort: str, expected: list[str]) -> None:
    result = run("search", "Car > 90", "-f", "json", "--sort", sort)
    assert [r["uri"].removeprefix("s3://lib/") for r in json.loads(result.stdout)] == expected


def test_limit_applies_to_machine_formats_when_given(run: Invoke) -> None:
    result = run("search", "Car > 90", "-f", "json", "-n", "1")
    assert [r["uri"] for r in json.loads(result.stdout)] == ["s3://lib/vid/v1.mp4"]


@pytest.mark.parametrize(
    ("args", "stdout"),
    [
        (["Car > 90", "--count"], "3\n"),
        (["NOT Car", "--count"], "4\n"),
        (["Car > 90", "--count", "-f", "json"], '{"query": "Car > 90", "count": 3}\n'),
    ],
)
def test_count_prints_just_the_number(run: Invoke, args: list[str], stdout: str) -> None:
    result = run("search", *args)
    assert result.exit_code == 0
    assert result.stdout == stdout


@pytest.mark.parametrize(
    ("query", "position", "expected"),
    [
        ("Car >", 6, "expected a number"),
        ("((Car", 6, "expected ')'"),
        ("Car > abc", 7, "expected a confidence percent after '>', found 'abc'"),
        ("AND", 1, "expected a label"),
    ],
)
def test_malformed_queries_exit_2_with_one_line(
    run: Invoke, query: str, position: int, expected: str
) -> None:
    result = run("search", query, "-f", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: malformed query at position {position}: ")
    assert expected in lines[0]


def test_malformed_count_query_exits_2(run: Invoke) -> None:
    result = run("search", "Car >", "--count")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: malformed query at position 6")


def test_unknown_names_give_an_empty_result_and_a_hint(run: Invoke) -> None:
    result = run("search", "Caar > 50 OR 'traffic lihgt'", "-f", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []
    assert "No label 'Caar' in the catalogue; did you mean 'Car'?" in result.stderr
    assert "did you mean 'Traffic Light'?" in result.stderr


def test_unknown_category_hint(run: Invoke) -> None:
    result = run("search", "category:Vehicles", "--count")
    assert result.stdout == "0\n"
    assert "No category 'Vehicles'" in result.stderr


def test_aliases_find_the_labels_they_belong_to(run: Invoke) -> None:
    result = run("search", "automobile > 90", "-f", "json")
    assert _core(json.loads(result.stdout)) == CAR_OVER_90


def test_labels_lists_the_vocabulary_with_counts(run: Invoke) -> None:
    result = run("labels", "-f", "json")
    assert result.exit_code == 0
    labels = {r["label"]: r for r in json.loads(result.stdout)}
    assert labels["Person"] == {
        "label": "Person",
        "media_count": 5,
        "image_count": 3,
        "video_count": 2,
        "mean_confidence": 85.0,
        "aliases": [],
    }
    assert labels["Car"]["aliases"] == ["Automobile"]
    assert "Pet" in labels


@pytest.mark.parametrize(
    ("pattern", "names"),
    [("car", ["Car"]), ("AUTO", ["Car"]), ("*light", ["Traffic Light"]), ("nothing", [])],
)
def test_labels_pattern_matches_names_and_aliases(
    run: Invoke, pattern: str, names: list[str]
) -> None:
    result = run("labels", pattern, "-f", "json")
    assert [r["label"] for r in json.loads(result.stdout)] == names


def test_labels_table(run: Invoke) -> None:
    result = run("labels", "--limit", "2")
    assert result.exit_code == 0
    assert "Person" in result.stdout
    assert "2 of 7 labels" in result.stderr


def test_help_documents_the_language_aliases_and_order() -> None:
    result = CliRunner().invoke(app, ["search", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for phrase in ("count(Person) >= 3", "Automobile", "alias", "newest first", "size:>5MB"):
        assert phrase in text
    assert "vocabulary" in CliRunner().invoke(app, ["labels", "--help"]).stdout


def test_urls_are_presigned_gets(run: Invoke, aws_env: dict[str, str]) -> None:
    result = run("search", "Dog > 90", "-f", "json", "--urls", "--expires", "60")
    assert result.exit_code == 0
    (record,) = json.loads(result.stdout)
    assert record["uri"] == "s3://lib/img/b.jpg"
    assert "lib" in record["url"] and "img/b.jpg" in record["url"]
    params = parse_qs(urlsplit(record["url"]).query)
    assert params["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]  # SigV4, which every region accepts
    assert params["X-Amz-Expires"] == ["60"]


def test_a_table_off_a_terminal_is_plain_tab_separated_rows(run: Invoke) -> None:
    lines = run("search", "Dog").stdout.splitlines()
    assert lines[0].split("\t") == ["uri", "kind", "matches", "modified", "size"]
    assert all(len(line.split("\t")) == 5 for line in lines[1:])
    assert "s3://lib/img/b.jpg" in {line.split("\t")[0] for line in lines[1:]}


def test_a_narrow_terminal_folds_long_uris_instead_of_cutting_them() -> None:
    import io

    from rich.console import Console

    from catalog.render.writers import write_table

    uri = "file:///home/someone/Pictures/2024/holidays/a-very-long-folder-name/IMG_20240612_101010.jpg"
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    write_table(
        [(uri, "image", "Dog 99.0%", "2024-06-12", "1.2 MB")],
        ["uri", "kind", "matches", "modified", "size"],
        console=console,
    )
    shown = "".join(
        line.split("│")[1].strip() for line in out.getvalue().splitlines() if line.startswith("│")
    )
    assert uri in shown
    assert "…" not in out.getvalue().split("│")[1]
