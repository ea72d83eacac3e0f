"""Local folders are first-class: prefix: in every spelling a user types, and no Rekognition
spend for what the offline labeller did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
