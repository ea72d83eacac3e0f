"""`catalog search --facets` and `catalog db index` through the CLI, on a real catalogue."""

from __future__ import annotations

import json

from catalog.labelling import DetectedLabel, LabelResult
from catalog.sources import SourceObject
from catalog.store.engine import open_catalogue
from catalog.store.media import store_result


def _store(db_url: str, key: str, labels: dict[str, float]) -> None:
    sessions = open_catalogue(db_url)[1]
    result = LabelResult(
        "rekognition", "3.0", 50.0, labels=[DetectedLabel(n, c) for n, c in labels.items()]
    )
    with sessions.begin() as session:
        store_result(
            session, SourceObject("s3", "b", key, 10, key, None), "image", result, sync_run_id=None
        )


def test_search_facets_prints_the_result_sets_facets_as_json(db_url, invoke):
    _store(db_url, "2024/a.jpg", {"Car": 95.0, "Dog": 80.0})
    _store(db_url, "2024/b.jpg", {"Car": 91.0, "Tree": 70.0, "Dog": 60.0})
    _store(db_url, "holiday/c.jpg", {"Car": 50.0, "Tree": 99.0})
    for rebuilt in (False, True):
        if rebuilt:
            done = invoke("db", "index", catch_exceptions=False)
            assert done.exit_code == 0
            assert "Built bitmap index generation 1" in done.stderr
        result = invoke("search", "car > 90", "--facets", catch_exceptions=False)
        assert result.exit_code == 0
        data = json.loads(result.stdout)
        labels = [(f["value"], f["count"]) for f in data["labels"]]
        assert data["query"] == "car > 90"
        assert data["total"] == 2
        assert data["kinds"] == [{"value": "image", "count": 2}]
        assert labels == [("Dog", 2), ("Tree", 1)]
        assert all(isinstance(f["label_id"], int) for f in data["labels"])
        assert data["prefixes"] == [{"value": "2024/", "count": 2}]


def test_search_facets_with_a_malformed_query_is_a_one_line_error(db_url, invoke):
    assert invoke("db", "upgrade").exit_code == 0
    result = invoke("search", "Car >", "--facets")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: malformed query")
    assert "Traceback" not in result.output
