"""Local folders are first-class: prefix: in every spelling a user types, and no Rekognition
spend for what the offline labeller did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import delete

from catalog.ingest.indexing import refresh_index
from catalog.store.bitmaps import FORMAT_MARK, forget_snapshots, index_state, open_index
from catalog.store.engine import open_catalogue
from catalog.store.schema import BitmapState, MediaBitmap
from tests.factories import make_image
from tests.onnx_models import write_constant_detector


@pytest.fixture
def library(invoke, tmp_path: Path) -> Path:
    """photos/2024/{a,b}.png and photos/2023/c.png, labelled Person by a constant detector."""
    root = tmp_path / "photos"
    for rel in ("2024/a.png", "2024/b.png", "2023/c.png"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_image(fmt="PNG", boxes=[((200, 10, 10), (0, 0, 40 + len(rel), 40))]))
    model = write_constant_detector(tmp_path / "tiny.onnx", [(0, 320, 320, 100, 100, 0.9)])
    result = invoke("sync", str(root), "--model", str(model), "--no-progress")
    assert result.exit_code == 0, result.output
    return root


def _keys(invoke, query: str) -> set[str]:
    result = invoke("search", query, "--format", "json")
    assert result.exit_code == 0, result.output
    return {Path(hit["uri"].removeprefix("file://")).name for hit in json.loads(result.stdout)}


def test_prefix_as_a_file_uri(invoke, library):
    assert _keys(invoke, f"prefix:file://{library}/2024/") == {"a.png", "b.png"}


def test_prefix_as_an_absolute_path(invoke, library):
    assert _keys(invoke, f'prefix:"{library}/2023/"') == {"c.png"}


def test_prefix_relative_to_the_working_directory(invoke, library, monkeypatch):
    monkeypatch.chdir(library.parent)
    assert _keys(invoke, "prefix:photos/2024/") == {"a.png", "b.png"}
    monkeypatch.chdir(library)
    assert _keys(invoke, "Person prefix:2023/") == {"c.png"}


def test_offline_labelling_costs_nothing_in_stats(invoke, library):
    whole = json.loads(invoke("stats", "--format", "json").stdout)
    subset = json.loads(invoke("stats", "--where", "Person", "--format", "json").stdout)
    assert whole["estimated_spend_usd"] == 0
    assert subset["estimated_spend_usd"] == 0


def _by_prefix(invoke) -> list[dict[str, object]]:
    result = invoke("stats", "--label", "Person", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["label"]["by_prefix"]


def _facet_prefixes(invoke) -> list[dict[str, object]]:
    result = invoke("search", "Person", "--facets", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["prefixes"]


@pytest.mark.parametrize("indexed", [True, False], ids=["index", "sql"])
def test_stats_and_facets_count_local_media_under_folders_of_the_synced_root(
    invoke, library, db_url, indexed
):
    if not indexed:  # drop the index: the same figures come from SQL
        with open_catalogue(db_url)[1].begin() as session:
            session.execute(delete(BitmapState))
    else:
        assert invoke("db", "index").exit_code == 0
    folders = [f"{library}/2024/", f"{library}/2023/"]
    assert _by_prefix(invoke) == [
        {"prefix": folders[0], "media": 2},
        {"prefix": folders[1], "media": 1},
    ]
    assert _facet_prefixes(invoke) == [
        {"value": folders[0], "count": 2},
        {"value": folders[1], "count": 1},
    ]
    # A prefix shown is a query that selects exactly its media.
    assert _keys(invoke, f'prefix:"{folders[0]}"') == {"a.png", "b.png"}


def test_local_folders_under_a_nested_synced_root_and_at_the_root(invoke, library, tmp_path):
    (library / "top.png").write_bytes(make_image(fmt="PNG"))
    deeper = library / "2024"
    (deeper / "trip").mkdir()
    (deeper / "trip" / "d.png").write_bytes(
        make_image(fmt="PNG", boxes=[((9, 9, 9), (0, 0, 5, 5))])
    )
    model = tmp_path / "tiny.onnx"
    for root in (library, deeper):  # the deeper root is the one its files count under
        assert invoke("sync", str(root), "--model", str(model), "--no-progress").exit_code == 0
    prefixes = {entry["prefix"]: entry["media"] for entry in _by_prefix(invoke)}
    assert prefixes == {
        f"{library}/": 1,  # a file directly in the synced root
        f"{library}/2023/": 1,
        f"{deeper}/": 2,  # 2024/{a,b}.png sit directly in the deeper synced root
        f"{deeper}/trip/": 1,
    }


def test_an_index_built_by_an_older_catalog_is_not_read_and_is_rebuilt(invoke, library, db_url):
    sessions = open_catalogue(db_url)[1]
    assert invoke("db", "index").exit_code == 0
    with sessions.begin() as session:  # what an older build wrote: no format mark
        session.execute(delete(MediaBitmap).where(MediaBitmap.name == FORMAT_MARK))
    forget_snapshots()
    with sessions() as session:
        assert index_state(session) == "outdated"
        assert open_index(session) is None
    assert _by_prefix(invoke)[0]["prefix"] == f"{library}/2024/"  # answered from SQL
    assert refresh_index(sessions) is not None  # a sync's refresh rebuilds it, changes or not
    with sessions() as session:
        assert index_state(session) == "current"
        assert open_index(session) is not None
