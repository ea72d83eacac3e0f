"""The hostile library synced and rendered through every output: nothing breaks, nothing leaks."""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from catalog.store.schema import Media
from tests.hostile import BOMB, HOSTILE_LABEL, HOSTILE_NAMES, SKIPPED, build_hostile_library
from tests.onnx_models import write_constant_detector

# What must never reach a terminal raw: C0 (but LF between lines and the TAB that separates the
# columns of a table off a terminal), DEL, C1, bidi overrides.
FORBIDDEN = {chr(c) for c in range(0x20) if c not in (0x09, 0x0A)}
FORBIDDEN |= {chr(c) for c in range(0x7F, 0xA0)}
FORBIDDEN |= set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
SECOND_LABEL = "Evil\x1b]0;L\x1b\\"


def raw_controls(text: str) -> set[str]:
    return {char for char in text if char in FORBIDDEN}


def _build_library(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    build_hostile_library(root, tmp_path / "outside")
    return root


def _sync_labelled(invoke: Any, library: Path, tmp_path: Path) -> dict[str, Any]:
    """Sync the library with a detector whose two classes have hostile names."""
    model = write_constant_detector(
        tmp_path / "m.onnx", [(0, 320, 320, 100, 100, 0.9), (1, 300, 300, 100, 100, 0.8)]
    )
    classes = tmp_path / "classes.txt"
    names = [HOSTILE_LABEL, SECOND_LABEL, *(f"c{i}" for i in range(78))]
    classes.write_text("\n".join(names) + "\n", encoding="utf-8")
    result = invoke(
        "sync", str(library), "--model", str(model), "--classes", str(classes), "--format", "json"
    )
    assert result.exit_code == 1, result.output  # the bomb failed; everything else is labelled
    return dict(json.loads(result.stdout))


# The tests that take `labelled` only read the synced library, so each backend syncs it once and
# they share that catalogue; a test that syncs for itself gets its own library and an empty one.
@pytest.fixture(scope="module")
def shared(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    """(catalogue URL, library, sync report) of the library synced once for this backend."""
    from catalog.cli import app

    root = tmp_path_factory.mktemp("hostile")
    library = _build_library(root)
    server, name = None, ""
    if backend == "postgres":
        server = request.getfixturevalue("postgres_server")
        name = server.create_database()
        url = server.url(name)
    else:
        url = f"sqlite:///{root / 'catalog.db'}"
    runner = CliRunner()
    report = _sync_labelled(
        lambda *args: runner.invoke(app, ["--db", url, *args], catch_exceptions=False),
        library,
        root,
    )
    yield url, library, report
    if server is not None:
        server.drop_database(name)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if "labelled" in request.fixturenames:
        return str(request.getfixturevalue("shared")[0])
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture
def library(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if "labelled" in request.fixturenames:
        return Path(request.getfixturevalue("shared")[1])
    return _build_library(tmp_path)


@pytest.fixture
def labelled(shared: tuple[str, Path, dict[str, Any]]) -> dict[str, Any]:
    """The library synced with a detector whose two classes have hostile names."""
    return copy.deepcopy(shared[2])


def test_sync_skips_hidden_junk_outside_links_loops_and_fifos_with_reasons(
    labelled: dict[str, Any],
) -> None:
    expected: dict[str, int] = {}
    for reason in SKIPPED.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert labelled["skipped_reasons"] == expected
    assert labelled["labelled"] + labelled["reused"] == len(HOSTILE_NAMES) + 1  # + inside link


def test_a_bomb_is_a_failure_with_its_reason(labelled: dict[str, Any]) -> None:
    (failure,) = labelled["failures"]
    assert failure["uri"].endswith("/" + BOMB)
    assert failure["code"] == "ImageTooLarge"
    assert "20000x20000" in failure["message"]
    assert "decompression-bomb guard" in failure["message"]


def test_nothing_outside_the_folder_is_read_or_stored(
    labelled: dict[str, Any], sessions: Any, library: Path
) -> None:
    with sessions() as session:
        keys = session.execute(select(Media.key)).scalars().all()
    assert all(key.startswith(str(library) + "/") for key in keys)
    names = [key[len(str(library)) + 1 :] for key in keys]
    assert not any(n.startswith(("outside", "loop/", ".", "@eaDir")) for n in names)
    assert "Thumbs.db" not in names and "fifo.jpg" not in names


def test_include_hidden_and_follow_outside_links_keep_what_is_skipped(
    invoke: Any, library: Path
) -> None:
    result = invoke(
        "sync",
        str(library),
        "--include-hidden",
        "--follow-outside-links",
        "--dry-run",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    reasons = json.loads(result.stdout)["skipped_reasons"]
    assert reasons == {"link loop": 1, "not a regular file": 1, "not an image or video": 2}


def _search_uris(invoke: Any) -> list[str]:
    result = invoke("search", f'"{HOSTILE_LABEL[:10]}"', "--format", "json", "--limit", "0")
    assert result.exit_code == 0, result.output
    return [hit["uri"] for hit in json.loads(result.stdout)]


def test_show_finds_every_uri_exactly_as_search_prints_it(
    labelled: dict[str, Any], invoke: Any
) -> None:
    uris = _search_uris(invoke)
    assert len(uris) == len(HOSTILE_NAMES) + 1
    for uri in uris:
        result = invoke("show", uri, "--format", "json")
        assert result.exit_code == 0, (uri, result.output)
        assert json.loads(result.stdout)["uri"] == uri


@pytest.mark.parametrize(
    "args",
    [
        ("search", '"[/x]Person"'),
        ("search", '"[/x]Person"', "--limit", "3"),
        ("failures",),
        ("stats",),
        ("stats", "--label", "[/x]Person"),
        ("stats", "--where", "prefix:[/x]"),
        ("search", "prefix:[/x]"),
        ("labels",),
    ],
)
def test_human_outputs_show_names_inert(
    labelled: dict[str, Any], invoke: Any, args: tuple[str, ...]
) -> None:
    result = invoke(*args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert raw_controls(result.stdout + result.stderr) == set()
    # Off a terminal a table is tab-separated: a TAB in a name never adds a column.
    assert len({line.count("\t") for line in result.stdout.splitlines()}) <= 1


def test_markup_in_names_is_shown_literally(
    labelled: dict[str, Any], invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # wide enough that no URI is folded
    wide = invoke("search", '"[/x]Person"', "--limit", "0", catch_exceptions=False)
    out = wide.stdout
    for text in ("[/bad].jpg", "[link=https:", "click[/link].jpg", "[bold", "red]x[/]y.jpg"):
        assert text in out
    assert "[/x]Person" in out


def test_show_header_and_labels_are_inert(labelled: dict[str, Any], invoke: Any) -> None:
    for uri in _search_uris(invoke):
        result = invoke("show", uri, catch_exceptions=False)
        assert result.exit_code == 0
        assert raw_controls(result.stdout) == set()
        assert "Evil\\x1b]0;L\\x1b\\" in result.stdout  # the label, escaped visibly


def test_sync_progress_lines_are_inert(invoke: Any, library: Path) -> None:
    bomb = library / ("bomb\x1b]0;T\x07\u202e.png")
    bomb.write_bytes((library / BOMB).read_bytes())
    result = invoke("sync", str(library), "--progress")
    assert result.exit_code == 1
    assert "failed: file://" in result.stderr
    assert raw_controls(result.stderr) == set()


def test_worker_lines_and_log_lines_are_inert(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from catalog.cli import _SafeFormatter
    from catalog.ingest.types import EventKind, SyncEvent
    from catalog.render.progress import worker_events

    worker_events()(SyncEvent(EventKind.FAILED, "s3://b/a\x1b]52;c;eA==\x07", "Code: \u202ex"))
    line = capsys.readouterr().err
    assert raw_controls(line) == set()
    assert "\\x1b]52;c;eA==\\x07" in line
    record = logging.LogRecord("catalog", logging.WARNING, "", 0, "key %s", ("a\x1b[2J",), None)
    assert _SafeFormatter("%(message)s").format(record) == "key a\\x1b[2J"


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    "args",
    [
        ("export",),
        ("search", '"[/x]Person"', "--format", "csv"),
        ("failures", "--format", "csv"),
        ("labels", "--format", "csv"),
    ],
)
def test_csv_cells_never_start_a_formula_and_rows_never_split(
    labelled: dict[str, Any], invoke: Any, args: tuple[str, ...]
) -> None:
    result = invoke(*args, catch_exceptions=False)
    assert result.exit_code == 0
    rows = _csv_rows(result.stdout)
    assert len({len(row) for row in rows}) == 1  # a CR or LF in a name never splits a row
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_raw_csv_writes_cells_as_stored(
    labelled: dict[str, Any], invoke: Any, library: Path
) -> None:
    neutral = invoke("export", catch_exceptions=False).stdout
    raw = invoke("export", "--raw-csv", catch_exceptions=False).stdout
    label_column = 5
    labels = {HOSTILE_LABEL, SECOND_LABEL, ""}  # "": the bomb, catalogued without labels
    assert {row[label_column] for row in _csv_rows(raw)[1:]} == labels
    assert {row[label_column] for row in _csv_rows(neutral)[1:]} == labels
    keys = {row[2] for row in _csv_rows(raw)[1:]}
    assert str(library / "cr\rinside.jpg") in keys  # quoted, so it survives as one cell
    assert str(library / "lf\ninside.jpg") in keys


def test_csv_neutralises_formula_keys_of_s3_objects() -> None:
    from catalog.render.writers import write_csv

    out = io.StringIO()
    keys = ['=HYPERLINK("http://evil")', "+1+2", "-3+4", "@SUM(1+1)", "\tx", "\rx", "a\rb"]
    write_csv(({"key": key, "n": -3} for key in keys), ["key", "n"], out)
    rows = _csv_rows(out.getvalue())
    assert [row[0] for row in rows[1:]] == [
        '\'=HYPERLINK("http://evil")',
        "'+1+2",
        "'-3+4",
        "'@SUM(1+1)",
        "'\tx",
        "'\rx",
        "a\rb",
    ]
    assert {row[1] for row in rows[1:]} == {"-3"}  # numbers are numbers, not formulas
    raw = io.StringIO()
    write_csv(({"key": key} for key in keys), ["key"], raw, raw=True)
    assert [row[0] for row in _csv_rows(raw.getvalue())[1:]] == keys


def test_report_renders_the_hostile_library(
    labelled: dict[str, Any], invoke: Any, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = invoke("report", "--out", str(out), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "[/x]Person" in html
    assert "\x1b" not in html and "<script>alert" not in html
    assert raw_controls(result.stderr) == set()


def test_drawing_a_bomb_is_a_one_line_error(labelled: dict[str, Any], invoke: Any, tmp_path):
    uri = next(f["uri"] for f in labelled["failures"])
    result = invoke("show", uri, "--draw", str(tmp_path / "boxes.png"))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "decompression-bomb guard" in result.stderr
