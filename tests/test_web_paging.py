"""Search pages by keyset cursor: every sort pages through exactly what `search` returns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from catalog.errors import UsageError
from catalog.read.pages import decode_cursor, encode_cursor, search_page
from catalog.read.search import search
from catalog.store.engine import open_catalogue
from catalog.web.views import quote_name
from tests.web_library import Library, gallery_library


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ],
)
def library(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    moto_endpoint: str,
    rekognition_double: Any,
) -> Iterator[Library]:
    db_url = None
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        db_url = server.url(server.create_database())
    with gallery_library(
        tmp_path_factory.mktemp("gallery"), moto_endpoint, rekognition_double, db_url
    ) as lib:
        yield lib


@pytest.fixture(scope="module")
def sessions(library: Library) -> Any:
    return open_catalogue(library.db_url)[1]


def all_pages(session: Any, query: str, sort: str, size: int) -> list[list[str]]:
    pages, after = [], None
    while True:
        page = search_page(session, query, sort=sort, limit=size, after=after)
        pages.append([hit.uri for hit in page.hits])
        after = page.next_cursor
        if after is None:
            return pages


@pytest.mark.parametrize("sort", ["newest", "key", "modified", "confidence"])
@pytest.mark.parametrize(
    "query", ["", "Car", "Car OR Dog", "Daylight AND NOT Person", "kind:image"]
)
def test_pages_concatenate_to_the_whole_search(sessions, sort, query):
    with sessions() as session:
        expected = [hit.uri for hit in search(session, query, sort=sort).hits]
        pages = all_pages(session, query, sort, 3)
    assert [uri for page in pages for uri in page] == expected
    assert all(len(page) == 3 for page in pages[:-1])
    assert len(expected) > 3 or len(pages) == 1


def test_modified_ties_and_unknown_dates_page_without_loss(sessions):
    from sqlalchemy import update

    from catalog.store.schema import Media

    with sessions.begin() as session:
        session.execute(update(Media).where(Media.id % 3 == 0).values(last_modified_at=None))
    try:
        with sessions() as session:
            expected = [hit.uri for hit in search(session, "", sort="modified").hits]
            pages = all_pages(session, "", "modified", 2)
        assert [uri for page in pages for uri in page] == expected
    finally:
        from datetime import UTC, datetime

        with sessions.begin() as session:
            session.execute(
                update(Media)
                .where(Media.last_modified_at.is_(None))
                .values(last_modified_at=datetime(2024, 1, 1, tzinfo=UTC))
            )


def test_a_query_that_matches_nothing_is_one_empty_page(sessions):
    with sessions() as session:
        page = search_page(session, "Unicorn", limit=5)
    assert page.hits == [] and page.next_cursor is None
    assert page.hints == [
        "No label 'Unicorn' in the catalogue; 'catalog labels' lists the vocabulary."
    ]


@pytest.mark.parametrize("token", ["garbage!", encode_cursor(["x", "y"]), "W10"])
def test_a_bad_cursor_is_a_usage_error(sessions, token):
    with sessions() as session, pytest.raises(UsageError, match="cursor is not valid"):
        search_page(session, "Car", sort="key", limit=2, after=token)


def test_facets_agree_with_counts(sessions):
    from catalog.read.facets import facets
    from catalog.read.search import count_matches

    with sessions() as session:
        found = facets(session, "Daylight OR Face", top=50)
        assert found.total == count_matches(session, "Daylight OR Face").count
        for facet in found.labels:
            refined = f"(Daylight OR Face) AND {quote_name(facet.value)}"
            assert facet.count == count_matches(session, refined).count, facet
        for facet in found.kinds:
            refined = f"(Daylight OR Face) AND kind:{facet.value}"
            assert facet.count == count_matches(session, refined).count


def test_whole_library_facets_agree_with_counts(sessions):
    from catalog.read.facets import facets
    from catalog.read.search import count_matches

    with sessions() as session:
        found = facets(session, "", top=50)
        assert found.total == count_matches(session, "").count
        # A label's facet counts the media carrying that very label (a query by its name also
        # finds labels that name it as a parent, so compare with the detections themselves).
        from sqlalchemy import func, select

        from catalog.store.schema import STATUS_DELETED, Detection, Media

        for f in found.labels:
            carrying = session.execute(
                select(func.count(func.distinct(Detection.media_id)))
                .join(Media, Media.id == Detection.media_id)
                .where(Detection.label_id == f.label_id, Media.status != STATUS_DELETED)
            ).scalar_one()
            assert f.count == carrying, f
        for facet in found.kinds:  # the empty query's result set: every catalogued item
            of_kind = session.execute(
                select(func.count())
                .select_from(Media)
                .where(Media.kind == facet.value, Media.status != STATUS_DELETED)
            ).scalar_one()
            assert facet.count == of_kind, facet
        assert sum(f.count for f in found.prefixes) == found.total


def test_cursors_round_trip():
    assert decode_cursor(encode_cursor(["b", "k/é", 7])) == ["b", "k/é", 7]
