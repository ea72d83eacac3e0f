"""Search semantics over a small hand-built catalogue written through the product's write path."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import QueryError
from catalog.labelling import BoundingBox, DetectedLabel, Instance, LabelResult, Moment
from catalog.read.search import count_matches, matching_media_ids, search
from catalog.sources import SourceObject
from catalog.store.engine import open_catalogue
from catalog.store.media import mark_deleted, record_pending, store_result
from catalog.store.schema import (
    Detection,
    LabelHistogram,
    LabelStat,
    Media,
    MediaTotal,
    VideoMoment,
)
from tests.reference_compiler import reference_ids

BUCKET = "lib"
MB = 1_000_000
BOX = Instance(BoundingBox(0.1, 0.1, 0.2, 0.2), 90.0)
CAR_TAXONOMY = {"aliases": ("Automobile",), "categories": ("Vehicles and Automotive",)}


def label(name: str, confidence: float, boxes: int = 0, **taxonomy: Sequence[str]) -> DetectedLabel:
    """A detected label with `boxes` instances."""
    return DetectedLabel(
        name,
        confidence,
        tuple([BOX] * boxes),
        aliases=tuple(taxonomy.get("aliases", ())),
        categories=tuple(taxonomy.get("categories", ())),
    )


def car(confidence: float, boxes: int = 0) -> DetectedLabel:
    """Car, with Rekognition's alias Automobile and its category."""
    return label("Car", confidence, boxes, **CAR_TAXONOMY)


# key -> (kind, size, last modified, labels or moments)
IMAGES: dict[str, tuple[int, datetime, list[DetectedLabel]]] = {
    "img/a.jpg": (6 * MB, datetime(2024, 2, 10, tzinfo=UTC), [car(95, 2), label("Person", 85, 3)]),
    "img/b.jpg": (MB, datetime(2024, 7, 1, tzinfo=UTC), [car(90), label("Dog", 99, 1)]),
    "img/c.jpg": (
        5 * MB,
        datetime(2024, 6, 30, 23, 59, tzinfo=UTC),
        [label("Person", 80, 1), label("Dog", 50, 1)],
    ),
    "img/d.jpg": (
        2 * MB,
        datetime(2023, 12, 31, tzinfo=UTC),
        [
            label("Cat", 70, 1),
            label("Traffic Light", 88, 1),
            label("Pet", 65, aliases=("Companion",)),
            label("Kitten", 60, aliases=("Companion",)),
        ],
    ),
    "photos/2024/e.jpg": (
        5 * MB + 1,
        datetime(2024, 1, 1, tzinfo=UTC),
        [car(90.01), label("Person", 79.99, 5)],
    ),
    "img/blank.jpg": (1000, datetime(2024, 3, 1, tzinfo=UTC), []),
}
VIDEOS: dict[str, list[tuple[int, DetectedLabel]]] = {
    "vid/v1.mp4": [
        (0, car(60)),
        (500, car(92, 1)),
        (1000, car(75)),
        (1000, label("Person", 81, 1)),
        (2000, label("Dog", 55)),
    ],
    "vid/v2.mp4": [(0, label("Person", 99, 4)), (500, label("Person", 70, 1))],
}


def _obj(key: str, size: int, modified: datetime) -> SourceObject:
    return SourceObject("s3", BUCKET, key, size, f"etag-{key}", modified)


def build_catalogue(sessions: sessionmaker[Session]) -> None:
    """The hand-built catalogue: images, videos, a deleted and a pending item."""
    with sessions.begin() as session:
        for key, (size, modified, labels) in IMAGES.items():
            result = LabelResult("rekognition", "3.0", 50.0, labels=labels, width=10, height=10)
            store_result(session, _obj(key, size, modified), "image", result, sync_run_id=None)
        for key, moments in VIDEOS.items():
            result = LabelResult(
                "rekognition-video",
                "3.0",
                50.0,
                moments=[Moment(ts, lab) for ts, lab in moments],
            )
            obj = _obj(key, 20 * MB, datetime(2024, 5, 5, tzinfo=UTC))
            store_result(session, obj, "video", result, sync_run_id=None)
        gone = store_result(
            session,
            _obj("img/gone.jpg", MB, datetime(2024, 2, 2, tzinfo=UTC)),
            "image",
            LabelResult("rekognition", "3.0", 50.0, labels=[car(99)]),
            sync_run_id=None,
        )
        mark_deleted(session, [gone.id])
        record_pending(
            session, _obj("vid/pending.mp4", MB, datetime(2024, 2, 2, tzinfo=UTC)), "video"
        )


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> sessionmaker[Session]:
    """A session factory over the hand-built catalogue (built once; the tests only read it)."""
    path = tmp_path_factory.mktemp("search") / "catalog.db"
    sessions = open_catalogue(f"sqlite:///{path}")[1]
    build_catalogue(sessions)
    return sessions


def _keys(session: Session, ids: Sequence[int]) -> set[str]:
    return set(session.scalars(select(Media.key).where(Media.id.in_(ids))))


A, B, C, D, E = "img/a.jpg", "img/b.jpg", "img/c.jpg", "img/d.jpg", "photos/2024/e.jpg"
BLANK, V1, V2 = "img/blank.jpg", "vid/v1.mp4", "vid/v2.mp4"
LABELLED = {A, B, C, D, E, BLANK, V1, V2}

SEMANTICS: list[tuple[str, set[str]]] = [
    ("Car", {A, B, E, V1}),
    ("car", {A, B, E, V1}),
    ("CAR > 90", {A, E, V1}),  # B is exactly 90: not above it
    ("Car >= 90", {A, B, E, V1}),
    ("Car >= 90%", {A, B, E, V1}),
    ("Car > 90.005", {A, E, V1}),
    ("Car > 92", {A}),  # the video's best moment is 92
    ("Car >= 92", {A, V1}),
    ("Car < 80", {V1}),  # a video moment at 60 and 75
    ("Car <= 60", {V1}),
    ("Car < 60", set()),
    ("Car = 90", {B}),
    ("NOT Car", {C, D, BLANK, V2}),  # not the deleted or the pending item
    ("NOT Car > 90", {B, C, D, BLANK, V2}),
    ("not (car > 90)", {B, C, D, BLANK, V2}),
    ("Automobile", {A, B, E, V1}),  # Rekognition's alias of Car
    ("Companion", {D}),  # alias of both Pet and Kitten
    ("Companion >= 65", {D}),
    ("Companion > 65", set()),
    ('"Traffic Light" >= 88', {D}),
    ("'traffic light' > 88", set()),
    ("count(Person) >= 3", {A, E, V2}),
    ("count(Person) > 3", {E, V2}),
    ("count(Person) < 3", {C, V1, V2}),  # V2 has a moment with one person
    ("count(Person) = 1", {C, V1, V2}),
    ("count(Dog) >= 1", {B, C}),
    ("Car > 90 AND Person >= 80 AND NOT Dog", {A}),  # V1 has Person 81 but also a Dog
    ("Car>90 Person>=80 NOT Dog", {A}),
    ("Car > 90 and Person >= 80", {A, V1}),
    ("Dog OR Cat", {B, C, D, V1}),
    ("Dog > 90 OR Cat", {B, D}),
    ("(Dog OR Cat) AND Person", {C, V1}),
    ("(Dog OR Cat) AND (Person OR Car)", {B, C, V1}),
    ("NOT Dog AND NOT Person", {D, BLANK}),
    ("NOT (Dog OR Person)", {D, BLANK}),
    ("Person NOT count(Person) >= 3", {C, V1}),
    ("kind:video", {V1, V2}),
    ("kind:image", {A, B, C, D, E, BLANK}),
    ("kind:image Person", {A, C, E}),
    ("prefix:photos/", {E}),
    ("prefix:s3://lib/img/", {A, B, C, D, BLANK}),
    ("prefix:s3://other/img/", set()),
    ("prefix:IMG/", set()),  # keys are case-sensitive
    ('category:"vehicles and automotive"', {A, B, E, V1}),
    ("NOT category:'Vehicles and Automotive'", {C, D, BLANK, V2}),
    ("modified:2024-01..2024-06", {A, C, E, BLANK, V1, V2}),
    ("modified:2024-02", {A}),
    ("modified:2024-07..", {B}),
    ("modified:..2023", {D}),
    ("modified:2024-01-01..2024-01-01", {E}),
    ("modified:>2024-06", {B}),
    ("size:>5MB", {A, E, V1, V2}),
    ("size:>=5MB", {A, C, E, V1, V2}),
    ("size:<2MB", {B, BLANK}),
    ("size:1MB..2MB", {B, D}),
    ("size:>5MB kind:image", {A, E}),
    ("Car size:<=5MB", {B}),
    ("Caar", set()),  # unknown names match nothing
    ("Car OR Caar", {A, B, E, V1}),
    ("NOT Caar", LABELLED),
    ("Caar OR NOT Car", {C, D, BLANK, V2}),
]


@pytest.mark.parametrize(("query", "expected"), SEMANTICS)
def test_search_semantics(catalogue: sessionmaker[Session], query: str, expected: set[str]) -> None:
    with catalogue() as session:
        hits = list(search(session, query).hits)
        assert {h.key for h in hits} == expected
        assert count_matches(session, query).count == len(expected)


@pytest.mark.parametrize(("query", "expected"), SEMANTICS)
def test_matching_media_ids_agrees_without_a_session(
    catalogue: sessionmaker[Session], query: str, expected: set[str]
) -> None:
    with catalogue() as session:
        ids = session.scalars(reference_ids(query)).all()
        assert _keys(session, ids) == expected
        planned = session.scalars(matching_media_ids(query, session=session)).all()
        assert sorted(planned) == sorted(ids)


def test_empty_query_selects_every_non_deleted_media(catalogue: sessionmaker[Session]) -> None:
    with catalogue() as session:
        for query in (None, "", "   "):
            ids = session.scalars(reference_ids(query)).all()
            assert _keys(session, ids) == LABELLED | {"vid/pending.mp4"}


def test_matching_media_ids_raises_query_error() -> None:
    with pytest.raises(QueryError, match="position 6"):
        reference_ids("Car >")


TERMS = st.sampled_from(
    [
        "Car", "car > 90", "Car >= 90", "Car < 80", "Automobile", "Person >= 80", "Dog",
        "Dog > 90", "Cat", "Companion", "count(Person) >= 3", "count(Person) < 3", "Caar",
        "kind:video", "kind:image", "prefix:img/", "size:>5MB", "modified:2024-01..2024-06",
        "category:'Vehicles and Automotive'",
    ]
)  # fmt: skip


def _queries() -> st.SearchStrategy[str]:
    return st.recursive(
        TERMS,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from([" AND ", " OR ", " "]), inner).map(
                lambda t: f"({t[0]}{t[1]}{t[2]})"
            ),
            inner.map(lambda q: f"NOT {q}"),
        ),
        max_leaves=6,
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=_queries())
def test_planned_search_agrees_with_the_plain_filter(
    catalogue: sessionmaker[Session], query: str
) -> None:
    with catalogue() as session:
        plain = set(session.scalars(reference_ids(query)))
        hits = [h.media_id for h in search(session, query).hits]
        assert sorted(hits, reverse=True) == hits  # newest first
        assert set(hits) == plain
        assert count_matches(session, query).count == len(plain)


def test_bulk_load_rebuilds_exact_summaries(tmp_path: Path) -> None:
    from benchmarks import synthetic

    path = tmp_path / "bulk.db"
    synthetic.build(str(path), 300, log=lambda _m: None)
    engine, sessions = open_catalogue(f"sqlite:///{path}")
    with engine.connect() as connection:
        stats = connection.execute(
            select(LabelStat.label_id, LabelStat.media_count, LabelStat.confidence_sum_x100)
        ).all()
        recomputed = connection.execute(
            select(Detection.label_id, func.count(), func.sum(Detection.confidence_x100)).group_by(
                Detection.label_id
            )
        ).all()
        assert sorted(stats) == sorted(recomputed)
        histogram_total = connection.execute(select(func.sum(LabelHistogram.media_count))).scalar()
        assert (
            histogram_total
            == connection.execute(select(func.count()).select_from(Detection)).scalar()
        )
        totals = dict(
            connection.execute(select(MediaTotal.kind, MediaTotal.media_count)).tuples().all()
        )
        assert sum(totals.values()) == 300
        assert set(totals) == {"image", "video"}
        assert connection.execute(select(func.count()).select_from(VideoMoment)).scalar()
    with sessions() as session:
        # One-label counts come from the summaries; the others from SQL: both must agree.
        for query in ("Car", "Car >= 90", "Car > 90", "Car > 90 OR NOT Person", "Dog >= 50"):
            plain = session.scalars(reference_ids(query)).all()
            assert count_matches(session, query).count == len(plain), query
