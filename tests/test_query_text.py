"""`text:` queries over a hand-built catalogue written through the product's write path:
alone, combined with labels and filters, negated, with a confidence, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import QueryError
from catalog.labelling import (
    BoundingBox,
    DetectedLabel,
    DetectedText,
    LabelResult,
    Moment,
    TextResult,
)
from catalog.query.parse import parse_query
from catalog.query.text import TextCondition
from catalog.read.search import count_matches, search
from catalog.sources import SourceObject
from catalog.store.engine import open_catalogue
from catalog.store.media import mark_deleted, store_result

BOX = BoundingBox(0.1, 0.1, 0.5, 0.1)


def line(text: str, confidence: float = 99.0, at_ms: int | None = None) -> DetectedText:
    return DetectedText(text, "LINE", confidence, BOX, timestamp_ms=at_ms)


def word(text: str, parent: int = 0, confidence: float = 99.0) -> DetectedText:
    return DetectedText(text, "WORD", confidence, BOX, idx=1, parent_idx=parent)


# key -> (labels, text lines); None: the item's text was never read
ITEMS: dict[str, tuple[list[str], list[DetectedText] | None]] = {
    "taxi.jpg": (["Car"], [line("TAXI"), line("Emergency Exit", 80.0), word("TAXI")]),
    "exit.jpg": (["Person"], [line("NO EXIT", 95.0), word("NO"), word("EXIT")]),
    "cafe.jpg": (["Person", "Car"], [line("Café Olé", 91.0)]),
    "plain.jpg": (["Dog"], []),
    "unread.jpg": (["Car"], None),
    "words.jpg": (["Dog"], [line("exits here", 70.0), word("EXIT")]),  # a WORD alone never matches
    "clip.mp4": (["Car"], [line("EXIT", 60.0, 500), line("EXIT", 88.0, 1500), line("TAXI", 75, 0)]),
}


def _fill(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    for key, (labels, texts) in ITEMS.items():
        kind = "video" if key.endswith(".mp4") else "image"
        obj = SourceObject("s3", "lib", key, 1000 + len(key), f"etag-{key}")
        detected = [DetectedLabel(n, 90.0) for n in labels]
        result = LabelResult("rekognition", "3.0", 50.0)
        if kind == "video":
            result.moments = [Moment(0, label) for label in detected]
        else:
            result.labels = detected
        text = TextResult("rekognition", "3.0", texts) if texts is not None else None
        with sessions.begin() as session:
            store_result(session, obj, kind, result, sync_run_id=None, text=text)
    return sessions


# The tests that only query share one catalogue per backend; the one that deletes gets its own.
@contextlib.contextmanager
def _filled(backend: str, request: pytest.FixtureRequest, folder: Path) -> Iterator[Any]:
    """The ITEMS catalogue, on a copy of a migrated catalogue; dropped afterwards."""
    server, name = None, ""
    if backend == "postgres":
        server = request.getfixturevalue("postgres_server")
        name = server.create_database(migrated=True)
        url = server.url(name)
    else:
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_file"), folder / "catalog.db")
        url = f"sqlite:///{folder / 'catalog.db'}"
    engine, sessions = open_catalogue(url)
    yield _fill(sessions)
    engine.dispose()
    if server is not None:
        server.drop_database(name)


@pytest.fixture(scope="module")
def catalogue(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    with _filled(backend, request, tmp_path_factory.mktemp("text")) as sessions:
        yield sessions


@pytest.fixture
def own_catalogue(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[sessionmaker[Session]]:
    with _filled(backend, request, tmp_path) as sessions:
        yield sessions


def keys(sessions: sessionmaker[Session], query: str) -> list[str]:
    with sessions() as session:
        return sorted(hit.key for hit in search(session, query).hits)


@pytest.mark.parametrize(
    "query,expected",
    [
        ("text:exit", ["clip.mp4", "exit.jpg", "taxi.jpg"]),
        ("TEXT:EXIT", ["clip.mp4", "exit.jpg", "taxi.jpg"]),
        ('text:"emergency exit"', ["taxi.jpg"]),
        ('text:"exit emergency"', []),
        ('text:"taxi emergency"', []),  # a phrase never runs from one line into the next
        ("text:'no exit'", ["exit.jpg"]),
        ("text:cafe", ["cafe.jpg"]),
        ('text:"CAFÉ olé"', ["cafe.jpg"]),
        ("text:exits", ["words.jpg"]),
        ('text:"exit" > 90', ["exit.jpg"]),
        ("text:exit>=80", ["clip.mp4", "exit.jpg", "taxi.jpg"]),
        ("text:exit < 70", ["clip.mp4"]),
        ("Car AND text:taxi", ["clip.mp4", "taxi.jpg"]),
        ('Car text:"exit"', ["clip.mp4", "taxi.jpg"]),
        ("Person AND NOT text:exit", ["cafe.jpg"]),
        ("NOT text:exit", ["cafe.jpg", "plain.jpg", "unread.jpg", "words.jpg"]),
        ("text:taxi OR Dog", ["clip.mp4", "plain.jpg", "taxi.jpg", "words.jpg"]),
        ("(text:exit OR text:cafe) AND kind:image", ["cafe.jpg", "exit.jpg", "taxi.jpg"]),
        ("text:exit AND text:taxi", ["clip.mp4", "taxi.jpg"]),
        ("text:exit kind:video", ["clip.mp4"]),
        ("text:nowhere", []),
    ],
)
def test_text_queries(catalogue, query, expected):
    assert keys(catalogue, query) == expected


@pytest.mark.parametrize(
    "query,count", [("text:exit", 3), ("Car AND text:taxi", 2), ("NOT text:exit", 4)]
)
def test_counts_agree_with_hits(catalogue, query, count):
    with catalogue() as session:
        assert count_matches(session, query).count == count


def test_matches_name_the_lines_met(catalogue):
    with catalogue() as session:
        hits = {
            hit.key: [m.to_dict() for m in hit.matches]
            for hit in search(session, "Car AND text:exit").hits
        }
    assert hits == {
        "taxi.jpg": [
            {"label": "Car", "confidence": 90.0},
            {"text": "Emergency Exit", "confidence": 80.0},
        ],
        "clip.mp4": [
            {"label": "Car", "confidence": 90.0, "timestamps_ms": [0]},
            {"text": "EXIT", "confidence": 88.0, "timestamps_ms": [500, 1500]},
        ],
    }


def test_negated_text_reports_no_text_matches(catalogue):
    with catalogue() as session:
        (hit,) = list(search(session, "Person AND NOT text:exit").hits)
    assert [m.to_dict() for m in hit.matches] == [{"label": "Person", "confidence": 90.0}]


def test_deleted_media_leave_the_text_index(own_catalogue):
    with own_catalogue.begin() as session:
        media_id = next(h.media_id for h in search(session, "text:taxi kind:image").hits)
        mark_deleted(session, [media_id])
    assert keys(own_catalogue, "text:taxi") == ["clip.mp4"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("text:exit", TextCondition("exit")),
        ('text:"emergency  exit"', TextCondition("emergency exit")),
        ('text:"exit" > 90', TextCondition("exit", ">", 90.0)),
        ("text:exit>=85.5%", TextCondition("exit", ">=", 85.5)),
        ('text:"a>b"', TextCondition("a>b")),
    ],
)
def test_text_terms_parse(text, expected):
    assert parse_query(text) == expected


@pytest.mark.parametrize(
    "text,message",
    [
        ('text:"!!!"', "text: needs a word"),
        ("text:exit > 101", "a confidence is 0-100 percent"),
        ("text:exit > lots", "expected a confidence percent"),
        ("kind:image > 90", "only text: takes a confidence"),
        ('text:"exit', "unterminated quoted name"),
    ],
)
def test_malformed_text_terms_are_query_errors(text, message):
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    assert message in str(caught.value)


@pytest.mark.postgres
def test_postgres_finds_lines_through_the_gin_index(postgres_url):
    from sqlalchemy import text

    from catalog.query.compiled import compile_query
    from catalog.store.engine import open_catalogue

    engine, sessions = open_catalogue(postgres_url)
    obj = SourceObject("s3", "lib", "many.jpg", 1, "e")
    lines = [line(f"shop {n} open") for n in range(3000)] + [line("emergency exit")]
    with sessions.begin() as session:
        result = LabelResult("rekognition", "3.0", 50.0)
        store_result(
            session, obj, "image", result, sync_run_id=None, text=TextResult("r", None, lines)
        )
    with engine.connect() as connection:
        connection.execute(text("ANALYZE text_detections"))
        connection.commit()
    with sessions() as session:
        query = compile_query(session, 'text:"emergency exit"')
        compiled = query.ids().compile(engine, compile_kwargs={"literal_binds": True})
        sql = str(compiled).replace("%%", "%")
        plan = "\n".join(r[0] for r in session.execute(text("EXPLAIN " + sql)))
        assert [h.key for h in search(session, 'text:"emergency exit"').hits] == ["many.jpg"]
    assert "ix_text_detections_fts" in plan, plan
