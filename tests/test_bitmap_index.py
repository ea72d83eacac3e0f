"""The bitmap index answers exactly what plain SQL answers, on SQLite and PostgreSQL.

Random catalogues are written through the product's write path (labelling, re-labelling,
failures, pending videos, deletions, touched modification times), with index rebuilds at random
points in between, and random queries are compared: the index's ids against the planner's SQL,
facets from the index against facets grouped in SQL. Concurrent writers and a rebuild racing
them must leave the index exact too.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyroaring import BitMap
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from catalog.labelling import BoundingBox, DetectedLabel, Instance, LabelResult, Moment, VideoInfo
from catalog.query.compiled import compile_query
from catalog.read.facets import _from_index, _from_sql, facets
from catalog.read.groupings import cooccurring_labels
from catalog.sources import SourceObject
from catalog.store.bitmap_build import rebuild_bitmaps
from catalog.store.bitmaps import forget_snapshots, open_index
from catalog.store.bitslices import BitSlices
from catalog.store.media import mark_deleted, record_pending, store_failure, store_result
from catalog.store.readers import open_reader
from catalog.store.reads import get_media, touch_media
from catalog.store.schema import Base, Label, Media
from catalog.store.vocabulary import vocabulary

NAMES = ["Person", "Car", "Dog", "Cat", "Tree"]
PREFIXES = ["2023/", "2024/", "holiday/", ""]
_serial = count()

labels_st = st.dictionaries(
    st.sampled_from(NAMES), st.integers(min_value=5000, max_value=10000), min_size=0, max_size=4
)
op_st = st.one_of(
    st.tuples(st.just("image"), st.integers(0, 11), labels_st, st.integers(0, 3)),
    st.tuples(st.just("video"), st.integers(0, 11), labels_st, st.integers(1, 4)),
    st.tuples(st.just("fail"), st.integers(0, 11), st.booleans()),
    st.tuples(st.just("pending"), st.integers(0, 11), st.booleans()),
    st.tuples(st.just("delete"), st.integers(0, 11)),
    st.tuples(st.just("touch"), st.integers(0, 11), st.integers(0, 400)),
    st.tuples(
        st.just("rebuild"),
    ),
)

term_st = st.one_of(
    st.sampled_from(NAMES),
    st.builds(
        lambda name, op, value: f"{name} {op} {value}",
        st.sampled_from(NAMES),
        st.sampled_from([">", ">=", "="]),
        st.one_of(st.integers(45, 100), st.sampled_from(["90.5", "62.25", "99.99"])),
    ),
    st.sampled_from(["kind:image", "kind:video", "size:>1005B", "size:..1010B"]),
)
query_st = st.recursive(
    term_st,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a} AND {b})", inner, inner),
        st.builds(lambda a, b: f"({a} OR {b})", inner, inner),
        st.builds(lambda a: f"NOT {a}", inner),
    ),
    max_leaves=5,
)


def _obj(prefix: str, slot: int, etag: str, modified: datetime) -> SourceObject:
    key = f"{PREFIXES[slot % 4]}{prefix}-{slot:02d}.{'mp4' if slot % 5 == 4 else 'jpg'}"
    return SourceObject("s3", "bucket", key, 1000 + slot, etag, modified)


def _apply(sessions: sessionmaker[Session], prefix: str, op: tuple) -> None:  # type: ignore[type-arg]
    kind, *args = op
    if kind == "rebuild":
        with sessions.begin() as session:
            rebuild_bitmaps(session)
        return
    slot = args[0]
    modified = datetime(2024, 1 + slot % 12, 3, tzinfo=UTC)
    etag = f"{prefix}-{next(_serial)}"
    media_kind = "video" if slot % 5 == 4 else "image"
    obj = _obj(prefix, slot, etag, modified)
    with sessions.begin() as session:
        if kind in ("image", "video"):
            labels: dict[str, int] = args[1]
            if media_kind == "video":
                moments = [
                    Moment(ts * 500, DetectedLabel(name, (conf - ts * 7) / 100))
                    for name, conf in labels.items()
                    for ts in range(args[2])
                ]
                result = LabelResult(
                    "rekognition-video",
                    "3.0",
                    50.0,
                    moments=moments,
                    video=VideoInfo("h264", "mp4", 1000 * (slot + 1), 25.0, 320, 240),
                )
            else:
                result = LabelResult(
                    "rekognition",
                    "3.0",
                    50.0,
                    labels=[
                        DetectedLabel(
                            name,
                            conf / 100,
                            tuple(
                                Instance(BoundingBox(0.1, 0.1, 0.2, 0.2), 60.0)
                                for _ in range(args[2])
                            ),
                        )
                        for name, conf in labels.items()
                    ],
                )
            store_result(session, obj, media_kind, result, sync_run_id=None)
        elif kind == "fail":
            changed = obj if args[1] else _obj(prefix, slot, "same", modified)
            store_failure(session, changed, media_kind, "Boom", "it failed")
        elif kind == "pending":
            record_pending(
                session, obj if args[1] else _obj(prefix, slot, "same", modified), media_kind
            )
        elif kind == "delete":
            media = get_media(session, "s3", "bucket", obj.key)
            if media is not None:
                mark_deleted(session, [media.id])
        elif kind == "touch":
            media = get_media(session, "s3", "bucket", obj.key)
            if media is not None:
                touch_media(session, media.id, modified + timedelta(days=args[1]))


def _assert_index_agrees(sessions: sessionmaker[Session], queries: list[str]) -> None:
    _assert_pages_agree(sessions, queries)
    with sessions() as session:
        for text in queries:
            compiled = compile_query(session, text)
            from_sql = BitMap(session.execute(compiled.ids()).scalars())
            from_index = compiled.bitmap()
            if from_index is not None:
                assert from_index == from_sql, text
                assert compiled.count() == len(from_sql), text
            named = {t.label_id for t in compiled.plan.positive_terms}
            index = compiled.index()
            if index is not None and from_index is not None:
                assert _from_index(session, index, from_index, named, 3) == _from_sql(
                    session, compiled, named, 3
                ), text
        # Co-occurrence from the index (largest labels first, stopping early) against SQL.
        everything = select(Media.id)
        for (name,) in session.execute(select(Label.name)).all():
            label_id = session.scalar(select(Label.id).where(Label.name == name))
            for limit in (1, 2, 5):
                assert cooccurring_labels(session, label_id, limit) == cooccurring_labels(
                    session, label_id, limit, subset=everything
                ), name


def _assert_pages_agree(sessions: sessionmaker[Session], queries: list[str]) -> None:
    """Newest-first pages from the index (a reader without a session: the command line's way)
    are the planner's SQL pages, from the first page to any later one."""
    url = sessions.kw["bind"].url.render_as_string(hide_password=False)
    reader = open_reader(url)
    try:
        if reader.has_session:  # PostgreSQL readers read through a session: nothing to compare
            return
        with sessions() as session:
            for text in queries:
                from_index = compile_query(reader, text)
                from_sql = compile_query(session, text)
                for limit, before in ((3, None), (None, None), (2, 40), (None, 1)):
                    assert from_index.page(limit, before_id=before) == from_sql.page(
                        limit, before_id=before
                    ), (text, limit, before)
    finally:
        reader.close()


def _empty(sessions: sessionmaker[Session]) -> None:
    """Start an example from an empty catalogue (a fresh database per example is too slow)."""
    with sessions.begin() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())
    vocabulary.forget()
    forget_snapshots()


@pytest.fixture
def catalogue(db_url: str) -> sessionmaker[Session]:
    from catalog.store.engine import open_catalogue

    return open_catalogue(db_url)[1]


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(op_st, min_size=1, max_size=20), queries=st.lists(query_st, min_size=1, max_size=6)
)
def test_index_agrees_with_sql_on_random_catalogues(catalogue, ops, queries):
    _empty(catalogue)
    prefix = f"h{next(_serial)}"
    for op in ops:
        _apply(catalogue, prefix, op)
    _assert_index_agrees(catalogue, [*queries, "", "Person", "NOT Car"])


def test_unsupported_terms_fall_back_to_sql(catalogue):
    _apply(catalogue, "u", ("image", 1, {"Car": 9000}, 2))
    _apply(catalogue, "u", ("rebuild",))
    with catalogue() as session:
        for text in ("Car < 95", "count(Car) >= 2", "prefix:2024/", "modified:2024"):
            compiled = compile_query(session, text)
            assert compiled.bitmap() is None, text
        assert compile_query(session, "Car >= 90").bitmap() == BitMap(
            session.execute(select(Media.id)).scalars()
        )


def test_index_never_built_answers_from_sql(catalogue):
    _apply(catalogue, "n", ("image", 1, {"Car": 9000}, 0))
    with catalogue() as session:
        assert open_index(session) is None
        assert compile_query(session, "Car").count() == 1
        result = facets(session, "Car")
    assert (result.total, result.kinds[0].value, result.prefixes[0].value) == (1, "image", "2024/")


def test_facets_count_labels_kinds_and_prefixes(catalogue):
    _apply(catalogue, "f", ("image", 1, {"Car": 9500, "Dog": 8000}, 0))
    _apply(catalogue, "f", ("image", 2, {"Car": 9100, "Dog": 7000, "Tree": 6000}, 0))
    _apply(catalogue, "f", ("video", 4, {"Car": 9900, "Tree": 9000}, 2))
    _apply(catalogue, "f", ("image", 3, {"Cat": 9900}, 0))
    _apply(catalogue, "f", ("rebuild",))
    with catalogue() as session:
        result = facets(session, "Car > 90", top=2)
    assert result.to_dict() == {
        "total": 3,
        "kinds": [{"value": "image", "count": 2}, {"value": "video", "count": 1}],
        "labels": [
            {"value": "Dog", "count": 2, "label_id": result.labels[0].label_id},
            {"value": "Tree", "count": 2, "label_id": result.labels[1].label_id},
        ],
        "prefixes": [{"value": "2023/", "count": 1}, {"value": "2024/", "count": 1}],
    }


def _writer(
    sessions: sessionmaker[Session], prefix: str, seed: int, errors: list[BaseException]
) -> None:
    import random

    rng = random.Random(seed)
    try:
        for _ in range(30):
            kind = rng.choice(["image", "image", "video", "delete", "fail"])
            slot = rng.randrange(12)
            labels = {n: rng.randint(5000, 10000) for n in rng.sample(NAMES, rng.randint(1, 3))}
            if kind in ("image", "video"):
                op: tuple = (kind, slot, labels, 2)  # type: ignore[type-arg]
            elif kind == "delete":
                op = ("delete", slot)
            else:
                op = ("fail", slot, True)
            for attempt in range(10):
                try:
                    _apply(sessions, prefix, op)
                    break
                except OperationalError:
                    # PostgreSQL breaks label_stats deadlocks between re-labelling writers by
                    # failing one transaction (rolled back whole); a worker retries it.
                    if attempt == 9:
                        raise
    except BaseException as exc:  # pragma: no cover - reported by the test
        errors.append(exc)


def test_concurrent_writers_and_rebuilds_leave_the_index_exact(catalogue):
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_writer, args=(catalogue, f"w{i}", i, errors)) for i in range(3)
    ]

    def rebuild_repeatedly() -> None:
        try:
            for _ in range(5):
                _apply(catalogue, "r", ("rebuild",))
        except BaseException as exc:  # pragma: no cover - reported by the test
            errors.append(exc)

    threads.append(threading.Thread(target=rebuild_repeatedly))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    queries = ["Car > 90", "Dog OR Cat >= 70", "Person AND NOT Tree", "kind:video", ""]
    _assert_index_agrees(catalogue, queries)
    _apply(catalogue, "r", ("rebuild",))
    _assert_index_agrees(catalogue, queries)


@given(
    values=st.dictionaries(st.integers(0, 5000), st.integers(0, 20000), max_size=60),
    subset=st.sets(st.integers(0, 5000), max_size=60),
    low=st.integers(0, 20001),
    high=st.one_of(st.none(), st.integers(0, 20001)),
)
def test_bit_slices_answer_ranges_sums_and_maxima(values, subset, low, high):
    import numpy as np

    ids = np.array(sorted(values), dtype=np.int64)
    slices = BitSlices.build(ids, np.array([values[i] for i in sorted(values)], dtype=np.int64))
    slices = BitSlices.from_bytes(slices.to_bytes())
    chosen = BitMap(subset)
    inside = {i for i, v in values.items() if v >= low and (high is None or v <= high)}
    assert slices.between(low, high) == BitMap(inside)
    assert slices.total(chosen) == sum(v for i, v in values.items() if i in subset)
    assert slices.maximum(chosen) == max(
        (v for i, v in values.items() if i in subset), default=None
    )
    patched = slices.copy()
    patched.patch(chosen, {i: 7 for i in subset})
    expected = {i: v for i, v in values.items() if i not in subset} | {i: 7 for i in subset}
    assert {i: patched.value_of(i) for i in expected} == expected


class _SetsIndex:
    """The one BitmapIndex method top_shared_labels reads: label sets by name."""

    def __init__(self, sets: dict[int, BitMap]) -> None:
        self.sets = sets
        self.read: list[str] = []

    def bitmaps(self, names):
        self.read.extend(names)
        return {name: self.sets.get(int(name.split(":")[1]), BitMap()) for name in names}


@settings(max_examples=200, deadline=None)
@given(
    sets=st.dictionaries(
        st.integers(1, 60), st.sets(st.integers(0, 40), min_size=1), min_size=1, max_size=60
    ),
    subset=st.sets(st.integers(0, 40)),
    top=st.integers(1, 8),
    exclude=st.sets(st.integers(1, 60), max_size=3),
    batch=st.sampled_from([1, 3, 16]),
)
def test_top_shared_labels_stops_early_and_agrees_with_counting_every_label(
    sets, subset, top, exclude, batch
):
    import sqlite3

    from catalog.read import subsets
    from catalog.read.subsets import top_counts, top_shared_labels
    from catalog.store.sql import Db

    subsets._SIZE_BATCH = batch  # restored below; batches of one stop the soonest
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE labels (id INTEGER PRIMARY KEY, name TEXT)")
    connection.execute("CREATE TABLE label_stats (label_id INTEGER, media_count INTEGER)")
    for label_id, media in sets.items():
        name = f"L{label_id * 37 % 101:03d}"  # unique, in another order than the ids
        connection.execute("INSERT INTO labels VALUES (?, ?)", (label_id, name))
        connection.execute("INSERT INTO label_stats VALUES (?, ?)", (label_id, len(media)))
    db = Db(connection, "sqlite", "memory")
    index = _SetsIndex({label_id: BitMap(media) for label_id, media in sets.items()})
    chosen = BitMap(subset)
    every = {
        label_id: len(BitMap(media) & chosen)
        for label_id, media in sets.items()
        if label_id not in exclude and BitMap(media) & chosen
    }
    expected = top_counts(db, every, top)
    try:
        assert top_shared_labels(db, index, chosen, top, exclude=exclude) == expected
    finally:
        subsets._SIZE_BATCH = 16


def test_top_shared_labels_reads_only_the_labels_that_can_still_enter():
    import sqlite3

    from catalog.read.subsets import top_shared_labels
    from catalog.store.sql import Db

    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE labels (id INTEGER PRIMARY KEY, name TEXT)")
    connection.execute("CREATE TABLE label_stats (label_id INTEGER, media_count INTEGER)")
    sets = {label_id: BitMap(range(1000 - 10 * label_id)) for label_id in range(1, 91)}
    for label_id, media in sets.items():
        connection.execute("INSERT INTO labels VALUES (?, ?)", (label_id, f"L{label_id:02d}"))
        connection.execute("INSERT INTO label_stats VALUES (?, ?)", (label_id, len(media)))
    index = _SetsIndex(sets)
    found = top_shared_labels(Db(connection, "sqlite", "memory"), index, BitMap(range(1000)), 3)
    assert found == [(1, "L01", 990), (2, "L02", 980), (3, "L03", 970)]
    assert len(index.read) == 16  # the first batch; the second could not change the answer
