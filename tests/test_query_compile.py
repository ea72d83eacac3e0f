"""The compiler: name resolution, bounds, driver choice, UNION for OR, parameterised SQL only."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session, sessionmaker

from catalog.query.compile import Scan, UnionPlan, count_select, newest_page, plan
from catalog.query.nodes import CountCondition, LabelCondition, Not
from catalog.query.parse import parse_query
from catalog.query.resolve import LabelTerm, Resolution, resolve
from catalog.read.search import matching_media_ids
from catalog.store.schema import Label
from tests.reference_compiler import reference_ids
from tests.test_search import build_catalogue

CAR, PERSON, DOG, CAT = 1, 2, 3, 4
RES = Resolution(
    labels={"car": (CAR,), "person": (PERSON,), "dog": (DOG,), "cat": (CAT,), "pet": (DOG, CAT)},
    categories={"animals": (DOG, CAT)},
    names={CAR: "Car", PERSON: "Person", DOG: "Dog", CAT: "Cat"},
    media_counts={CAR: 2000, PERSON: 6000, DOG: 700, CAT: 500},
    histograms={CAR: {9: 900, 8: 1100}, PERSON: {9: 3000, 8: 3000}, DOG: {9: 200, 5: 500}},
)


def _plan(text: str) -> object:
    node = parse_query(text)
    assert node is not None
    return plan(resolve(node, RES), RES)


@pytest.mark.parametrize(
    ("condition", "bounds"),
    [
        (LabelCondition("Car", ">", 90.0), (9001, None)),
        (LabelCondition("Car", ">=", 90.0), (9000, None)),
        (LabelCondition("Car", "<", 90.0), (None, 8999)),
        (LabelCondition("Car", "<=", 90.0), (None, 9000)),
        (LabelCondition("Car", "=", 90.0), (9000, 9000)),
        # Thresholds round to hundredths as stored confidences do (to_x100), then compare.
        (LabelCondition("Car", ">", 90.005), (9001, None)),
        (LabelCondition("Car", ">=", 90.005), (9000, None)),
        (LabelCondition("Car", "<=", 90.005), (None, 9000)),
        (LabelCondition("Adult", ">", 98.37744140625), (9839, None)),
        (LabelCondition("Adult", ">=", 98.37744140625), (9838, None)),
        (LabelCondition("Abies", ">=", 59.13471984863281), (5913, None)),
        (LabelCondition("Abies", ">", 59.13471984863281), (5914, None)),
        (LabelCondition("Car", "<", 90.006), (None, 9000)),
        (LabelCondition("Car", "=", 90.004), (9000, 9000)),
        (LabelCondition("Car"), (None, None)),
    ],
)
def test_confidence_bounds_compare_at_stored_hundredths(
    condition: LabelCondition, bounds: tuple[int | None, int | None]
) -> None:
    assert condition.range_x100 == bounds


def test_count_bounds() -> None:
    assert CountCondition("Person", ">", 2).count_range == (3, None)
    assert CountCondition("Person", "<", 3).count_range == (None, 2)


def test_an_equality_compares_at_hundredths() -> None:
    result = _plan("Car = 90.004")
    assert isinstance(result, Scan)
    assert result.driver == LabelTerm(CAR, "confidence", 9000, 9000)


def test_and_is_driven_by_the_most_selective_positive_term() -> None:
    # Car > 90 is estimated at 900 media (histogram bin 9), Person >= 80 at 6000; Dog is negated.
    result = _plan("Person >= 80 AND Car > 90 AND NOT Dog")
    assert isinstance(result, Scan)
    assert result.driver == LabelTerm(CAR, "confidence", 9001, None)
    assert Not(LabelTerm(DOG, "confidence", None, None)) in result.rest
    assert LabelTerm(PERSON, "confidence", 8000, None) in result.rest


def test_or_is_a_union_of_driven_branches() -> None:
    result = _plan("Dog > 90 OR Cat")
    assert isinstance(result, UnionPlan)
    drivers = {branch.driver for branch in result.branches if isinstance(branch, Scan)}
    assert drivers == {
        LabelTerm(DOG, "confidence", 9001, None),
        LabelTerm(CAT, "confidence", None, None),
    }


def test_an_alias_naming_two_labels_is_an_or() -> None:
    result = _plan("Pet")
    assert isinstance(result, UnionPlan)
    assert len(result.branches) == 2


def test_a_rare_or_drives_an_and_by_distribution() -> None:
    # Dog OR Cat (1,200) is rarer than Person (6,000): two scans, each probing Person.
    result = _plan("Person AND (Dog OR Cat)")
    assert isinstance(result, UnionPlan)
    assert all(isinstance(b, Scan) and b.rest for b in result.branches)


def test_only_negative_terms_scan_media() -> None:
    result = _plan("NOT Dog")
    assert isinstance(result, Scan)
    assert result.driver is None


@pytest.mark.parametrize(("text", "matches_all"), [("Caar", False), ("NOT Caar", True)])
def test_unknown_names_fold_to_constants(text: str, matches_all: bool) -> None:
    result = _plan(text)
    assert (result == Scan(None, ())) if matches_all else result is None


def _sql(stmt: object) -> str:
    return str(stmt.compile(dialect=sqlite.dialect()))  # type: ignore[attr-defined]


def test_first_pages_order_by_the_driver_media_id_and_stop_at_the_limit() -> None:
    node = parse_query("Car > 90 AND NOT Dog")
    assert node is not None
    from catalog.query.compile import QueryPlan

    resolved = resolve(node, RES)
    sql = _sql(newest_page(QueryPlan(resolved, plan(resolved, RES), ()), 50))
    assert "FROM detections AS d" in sql
    assert "ORDER BY id DESC" in sql
    assert "NOT (EXISTS" in sql
    assert "LIMIT" in sql


def test_or_counts_use_union() -> None:
    node = parse_query("Dog OR Cat")
    assert node is not None
    from catalog.query.compile import QueryPlan

    resolved = resolve(node, RES)
    sql = _sql(count_select(QueryPlan(resolved, plan(resolved, RES), ())))
    assert "UNION" in sql
    assert "count(*)" in sql


HOSTILE = '"x\'); DROP TABLE media; --" OR prefix:"\'; DELETE FROM labels; --"'


def test_query_text_never_reaches_the_sql_text(sessions: sessionmaker[Session]) -> None:
    stmt = reference_ids(HOSTILE)
    assert "DROP TABLE" not in _sql(stmt)
    assert "DELETE FROM" not in _sql(stmt)
    build_catalogue(sessions)
    with sessions() as session:
        assert session.scalars(stmt).all() == []
        assert session.scalars(matching_media_ids(HOSTILE, session=session)).all() == []
        assert "media" in inspect(session.get_bind()).get_table_names()
        assert session.scalar(select(func.count()).select_from(Label)) == 7


def test_wide_ors_scan_media_instead_of_exploding_into_unions() -> None:
    text = " AND ".join(f"(Car OR Dog{i})" for i in range(40))
    many = Resolution(
        labels={"car": (CAR,), **{f"dog{i}": (100 + i,) for i in range(40)}},
        categories={},
        names={CAR: "Car"},
        media_counts={CAR: 10, **{100 + i: 5 for i in range(40)}},
    )
    node = parse_query(text)
    assert node is not None
    result = plan(resolve(node, many), many)
    assert result is not None
    from catalog.query.compile import plan_leaves

    assert sum(1 for _ in plan_leaves(result)) <= 32
