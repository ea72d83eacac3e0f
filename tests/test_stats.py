"""catalog.stats equals statistics computed independently from the fixtures' expected state."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from catalog.errors import NotFoundError, UsageError
from catalog.pricing import estimate_cost
from catalog.read.breakdowns import find_label
from catalog.read.groupings import cooccurring_labels, label_histogram
from catalog.read.stats import (
    failures_by_reason,
    library_stats,
    top_media_for_label,
)
from catalog.store.bitmap_build import rebuild_bitmaps
from catalog.store.bitmaps import open_index
from catalog.store.schema import Media
from catalog.uris import key_prefix
from tests.stats_fixtures import Expected, Library, build_library


@pytest.fixture(scope="module", params=["sql", "patched-index", "rebuilt-index"])
def built(request, tmp_path_factory):
    """One catalogue shared by the read-only tests of this module, read from SQL or the index.

    "patched-index" builds the (empty) index before the writes, so every figure comes from
    bitmaps patched with the changes; "rebuilt-index" rebuilds it after them.
    """
    from catalog.store.engine import open_catalogue

    url = f"sqlite:///{tmp_path_factory.mktemp('stats') / 'catalog.db'}"
    factory = open_catalogue(url)[1]
    if request.param == "sql":
        return factory, build_library(factory)
    with factory.begin() as session:
        rebuild_bitmaps(session)
    library = build_library(factory)
    if request.param == "rebuilt-index":
        with factory.begin() as session:
            report = rebuild_bitmaps(session)
            assert report is not None and report.changes_folded == len(library.expected)
    with factory() as session:
        index = open_index(session)
        assert index is not None
        assert bool(index.changed.ids) == (request.param == "patched-index")
    return factory, library


@pytest.fixture
def sessions(built):
    return built[0]


@pytest.fixture
def library(built) -> Library:
    return built[1]


def _label_table(items: list[Expected]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for e in items:
        for name, (conf, count) in e.labels.items():
            row = table.setdefault(name, {"media": 0, "detections": 0, "sum": 0, "max": 0})
            row["media"] += 1
            row["detections"] += count
            row["sum"] += conf
            row["max"] = max(row["max"], conf)
    return table


def _expected_labels(items: list[Expected], top: int) -> list[dict[str, object]]:
    labelled = len([e for e in items if e.status == "labelled"])
    table = _label_table(items)
    ordered = sorted(table.items(), key=lambda kv: (-kv[1]["media"], kv[0]))[:top]
    return [
        {
            "name": name,
            "media": row["media"],
            "detections": row["detections"],
            "mean_confidence": round(row["sum"] / row["media"] / 100, 2),
            "max_confidence": round(row["max"] / 100, 2),
            "share": round(row["media"] / labelled, 4),
        }
        for name, row in ordered
    ]


def test_totals_match_the_fixtures(sessions, library):
    with sessions() as session:
        result = library_stats(session)
    live = library.live()
    by_status = Counter(e.status for e in library.expected.values())
    assert result.media.to_dict() == {
        "total": len(live),
        "images": sum(e.kind == "image" for e in live),
        "videos": sum(e.kind == "video" for e in live),
        "labelled": by_status["labelled"],
        "failed": by_status["failed"],
        "pending": by_status["pending"],
        "deleted": by_status["deleted"],
        "size_bytes": sum(e.size_bytes for e in live),
    }
    assert result.distinct_labels == len(_label_table(live))
    video_ms = sum(e.duration_ms for e in library.labelled() if e.kind == "video")
    assert result.video_minutes_labelled == pytest.approx(video_ms / 60_000)
    assert result.estimated_spend_usd == pytest.approx(
        estimate_cost(images=library.billed_images, video_ms=library.billed_video_ms)
    )


@pytest.mark.parametrize("top", [1, 3, 20])
def test_top_labels_match_the_fixtures(sessions, library, top):
    with sessions() as session:
        result = library_stats(session, top=top)
    assert [label.to_dict() for label in result.labels] == _expected_labels(library.live(), top)


def test_label_spread_matches_the_fixtures(sessions, library):
    with sessions() as session:
        spread = library_stats(session, label="car").label
    assert spread is not None
    carrying = [e for e in library.live() if "Car" in e.labels]
    histogram = [0] * 10
    for e in carrying:
        histogram[min(9, e.labels["Car"][0] // 1000)] += 1
    others = Counter(name for e in carrying for name in e.labels if name != "Car")
    prefixes = Counter(e.key.split("/")[0] + "/" if "/" in e.key else "" for e in carrying)
    months = Counter(f"{e.modified:%Y-%m}" for e in carrying)
    assert spread.name == "Car"
    assert spread.media == len(carrying)
    assert spread.histogram == histogram
    assert spread.cooccurring == sorted(others.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert spread.by_prefix == sorted(prefixes.items(), key=lambda kv: (-kv[1], kv[0]))
    assert spread.by_month == sorted(months.items())


def test_every_label_histogram_matches_the_fixtures(sessions, library):
    live = library.live()
    with sessions() as session:
        for name in _label_table(live):
            label = find_label(session, name)
            expected = [0] * 10
            for e in live:
                if name in e.labels:
                    expected[min(9, e.labels[name][0] // 1000)] += 1
            assert label_histogram(session, label.id) == expected, name


def test_subset_statistics_aggregate_only_the_selected_media(sessions, library):
    chosen = [e for e in library.labelled() if e.key.startswith("2024/")]
    subset = select(Media.id).where(Media.key.like("2024/%"), Media.status == "labelled")
    with sessions() as session:
        result = library_stats(session, top=50, label="Person", subset=subset, where="x")
    assert result.media.total == result.media.labelled == len(chosen)
    assert result.media.videos == sum(e.kind == "video" for e in chosen)
    assert [label.to_dict() for label in result.labels] == _expected_labels(chosen, 50)
    assert result.label is not None
    assert result.label.media == sum("Person" in e.labels for e in chosen)
    expected = [0] * 10
    for e in chosen:
        if "Person" in e.labels:
            expected[min(9, e.labels["Person"][0] // 1000)] += 1
    assert result.label.histogram == expected
    assert result.label.by_prefix == [("2024/", result.label.media)]


@pytest.mark.parametrize(
    ("where", "chosen"),
    [
        (
            "Car >= 60 AND NOT Dog",
            lambda e: e.labels.get("Car", (0,))[0] >= 6000 and "Dog" not in e.labels,
        ),
        (
            "kind:video OR Person > 90",
            lambda e: e.kind == "video" or e.labels.get("Person", (0,))[0] > 9000,
        ),
        ("Tree", lambda e: "Tree" in e.labels),
    ],
)
def test_where_statistics_match_the_fixtures(sessions, library, where, chosen):
    picked = [e for e in library.live() if e.labels and chosen(e)]
    with sessions() as session:
        result = library_stats(session, top=50, label="Person", where=where)
    assert result.where == where
    assert result.media.total == result.media.labelled == len(picked)
    assert result.media.images == sum(e.kind == "image" for e in picked)
    assert result.media.videos == sum(e.kind == "video" for e in picked)
    assert result.media.size_bytes == sum(e.size_bytes for e in picked)
    assert result.video_minutes_labelled == sum(e.duration_ms for e in picked) / 60_000
    assert result.distinct_labels == len({name for e in picked for name in e.labels})
    assert [label.to_dict() for label in result.labels] == _expected_labels(picked, 50)
    carrying = [e for e in picked if "Person" in e.labels]
    others = Counter(name for e in carrying for name in e.labels if name != "Person")
    assert result.label is not None
    assert result.label.media == len(carrying)
    assert result.label.cooccurring == sorted(others.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert result.label.by_month == sorted(Counter(f"{e.modified:%Y-%m}" for e in carrying).items())


def test_deleting_everything_empties_the_label_statistics(tmp_path):
    from catalog.store.engine import open_catalogue
    from catalog.store.media import mark_deleted

    sessions = open_catalogue(f"sqlite:///{tmp_path / 'own.db'}")[1]
    library = build_library(sessions)

    with sessions.begin() as session:
        ids = list(session.execute(select(Media.id)).scalars())
        mark_deleted(session, ids)
    with sessions() as session:
        result = library_stats(session)
    assert result.labels == []
    assert result.distinct_labels == 0
    assert result.media.total == 0
    assert result.media.deleted == len(library.expected)


def test_unknown_label_is_a_clear_error(sessions, library):
    with sessions() as session, pytest.raises(NotFoundError, match="no label called 'Unicorn'"):
        library_stats(session, label="Unicorn")


def test_top_must_be_positive(sessions, library):
    with sessions() as session, pytest.raises(UsageError, match="--top"):
        library_stats(session, top=0)


def test_failures_are_grouped_by_reason(sessions, library):
    with sessions() as session:
        reasons = failures_by_reason(session)
    assert [(r.code, r.media) for r in reasons] == [("InvalidImageFormat", 3), ("ImageTooLarge", 1)]


def test_top_media_are_the_highest_confidence_ones(sessions, library):
    carrying = sorted(
        (e for e in library.labelled() if "Dog" in e.labels),
        key=lambda e: -e.labels["Dog"][0],
    )
    with sessions() as session:
        dog = find_label(session, "Dog")
        top = top_media_for_label(session, dog.id, dog.name, limit=3)
    assert [t.confidence for t in top] == [e.labels["Dog"][0] / 100 for e in carrying[:3]]


@pytest.mark.parametrize(
    ("key", "depth", "prefix"),
    [
        ("a.jpg", 1, ""),
        ("2024/a.jpg", 1, "2024/"),
        ("2024/06/a.jpg", 2, "2024/06/"),
        ("2024/06/a.jpg", 5, "2024/06/"),
    ],
)
def test_key_prefix(key, depth, prefix):
    assert key_prefix(key, depth) == prefix


def test_cooccurrence_of_a_large_label_is_exact(sessions, library):
    carrying = [e for e in library.live() if "Person" in e.labels]
    actual = Counter(name for e in carrying for name in e.labels if name != "Person")
    expected = sorted(actual.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    with sessions() as session:
        label = find_label(session, "Person")
        found = cooccurring_labels(session, label.id)
    assert found.labels == expected
