"""The query parser: text -> AST, and one clean QueryError with a position for anything else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.errors import QueryError
from catalog.query.nodes import (
    And,
    CategoryFilter,
    CountCondition,
    KindFilter,
    LabelCondition,
    ModifiedFilter,
    Not,
    Or,
    PrefixFilter,
    SizeFilter,
)
from catalog.query.parse import parse_query

CAR = LabelCondition("Car")
DOG = LabelCondition("Dog")


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


PARSES = [
    ("Car", CAR),
    ("  Car  ", CAR),
    ("Car > 90", LabelCondition("Car", ">", 90.0)),
    ("Car>90", LabelCondition("Car", ">", 90.0)),
    ("Car >= 90%", LabelCondition("Car", ">=", 90.0)),
    ("Car < 50.5", LabelCondition("Car", "<", 50.5)),
    ("Car <= 0", LabelCondition("Car", "<=", 0.0)),
    ("Car = 100", LabelCondition("Car", "=", 100.0)),
    ('"Traffic Light" >= 80', LabelCondition("Traffic Light", ">=", 80.0)),
    ("'Traffic  Light'", LabelCondition("Traffic Light")),
    ("T-Shirt", LabelCondition("T-Shirt")),
    ("count(Person) >= 3", CountCondition("Person", ">=", 3)),
    ("COUNT ( Person ) > 0", CountCondition("Person", ">", 0)),
    ('count("Traffic Light") = 2', CountCondition("Traffic Light", "=", 2)),
    ("Car AND Dog", And((CAR, DOG))),
    ("Car and Dog", And((CAR, DOG))),
    ("Car Dog", And((CAR, DOG))),
    ("Car OR Dog", Or((CAR, DOG))),
    ("Car or Dog", Or((CAR, DOG))),
    ("NOT Car", Not(CAR)),
    ("not not Car", CAR),
    ("Car OR Dog AND Cat", Or((CAR, And((DOG, LabelCondition("Cat")))))),
    ("(Car OR Dog) Cat", And((Or((CAR, DOG)), LabelCondition("Cat")))),
    ("Car AND Dog AND Cat", And((CAR, DOG, LabelCondition("Cat")))),
    (
        "Car>90 Person>=80 NOT Dog",
        And((LabelCondition("Car", ">", 90.0), LabelCondition("Person", ">=", 80.0), Not(DOG))),
    ),
    ("Android OR Notebook", Or((LabelCondition("Android"), LabelCondition("Notebook")))),
    ("kind:image", KindFilter("image")),
    ("KIND:Videos", KindFilter("video")),
    ("prefix:photos/2024/", PrefixFilter("photos/2024/")),
    ("prefix:s3://my-bucket/photos/", PrefixFilter("photos/", "my-bucket")),
    ('prefix:"my photos/"', PrefixFilter("my photos/")),
    ('category:"Vehicles and Automotive"', CategoryFilter("Vehicles and Automotive")),
    ("modified:2024-01..2024-06", ModifiedFilter(_utc(2024, 1, 1), _utc(2024, 7, 1))),
    ("modified:2024-01..", ModifiedFilter(_utc(2024, 1, 1), None)),
    ("modified:..2024-02", ModifiedFilter(None, _utc(2024, 3, 1))),
    ("modified:2024", ModifiedFilter(_utc(2024, 1, 1), _utc(2025, 1, 1))),
    ("modified:2024-02-29", ModifiedFilter(_utc(2024, 2, 29), _utc(2024, 3, 1))),
    ("modified:2024-12..2025-01-15", ModifiedFilter(_utc(2024, 12, 1), _utc(2025, 1, 16))),
    ("modified:>=2024-03", ModifiedFilter(_utc(2024, 3, 1), None)),
    ("modified:<2024-03", ModifiedFilter(None, _utc(2024, 3, 1))),
    ("size:>5MB", SizeFilter(5_000_001, None)),
    ("size:>=5mb", SizeFilter(5_000_000, None)),
    ("size:<1KB", SizeFilter(None, 999)),
    ("size:<=1.5GB", SizeFilter(None, 1_500_000_000)),
    ("size:1MB..2MiB", SizeFilter(1_000_000, 2 * 1024 * 1024)),
    ("size:1000", SizeFilter(1000, 1000)),
    ("kind:video NOT prefix:tmp/", And((KindFilter("video"), Not(PrefixFilter("tmp/"))))),
]


@pytest.mark.parametrize(("text", "expected"), PARSES)
def test_parses(text: str, expected: object) -> None:
    assert parse_query(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_query_is_none(text: str) -> None:
    assert parse_query(text) is None


ERRORS = [
    ("Car >", 6, "expected a number"),
    ("((Car", 6, "expected ')'"),
    ("Car > abc", 7, "expected a confidence percent after '>', found 'abc'"),
    ("AND", 1, "expected a label"),
    ("Car AND", 8, "expected a label"),
    ("Car OR OR Dog", 8, "found 'OR'"),
    ("NOT", 4, "expected a label"),
    ("Car)", 4, "no '(' to close"),
    ("()", 2, "found ')'"),
    ('"Car', 1, "unterminated quoted name"),
    ("Car > 101", 7, "0-100 percent"),
    ("Car > -5", 7, "expected a confidence percent"),
    ("Car >> 5", 6, "expected a confidence percent after '>', found '>'"),
    ("count(Person) > 2.5", 17, "whole number"),
    ("count(Person)", 14, "comparison"),
    ("count() > 1", 7, "expected a label"),
    ("kind:photo", 6, "kind:image or kind:video"),
    ("colour:red", 1, "unknown filter 'colour:'"),
    ("kind:", 6, "filter value"),
    ("modified:2024-13", 10, "not a valid date"),
    ("modified:yesterday", 10, "expected a date"),
    ("modified:2024-06..2024-01", 10, "ends before it starts"),
    ("size:>5XB", 7, "expected a size"),
    ("Car ! 3", 5, "found '!'"),
    ('""', 1, "empty"),
]


@pytest.mark.parametrize(("text", "position", "message"), ERRORS)
def test_malformed_queries_name_the_position(text: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(text)
    assert info.value.position == position
    assert str(info.value).startswith(f"malformed query at position {position}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_overlong_and_deeply_nested_queries_are_clean_errors() -> None:
    with pytest.raises(QueryError, match="longer than"):
        parse_query("Car " * 2000)
    assert parse_query("(" * 200 + "Car" + ")" * 200) == CAR
    with pytest.raises(QueryError, match="nests more than"):
        parse_query("NOT " * 100 + "Car")


QUERY_ALPHABET = st.sampled_from(
    [
        "Car", "car", "Dog", '"Traffic Light"', "'x'", "AND", "or", "NOT", "not", "(", ")",
        ">", ">=", "<", "<=", "=", "90", "90%", "5.5", "abc", "count(", "count", "kind:",
        "image", "prefix:", "s3://b/p", "category:", "modified:", "2024-01..2024-06", "..",
        "size:", ">5MB", "1MB..2MB", ":", '"', "'", "\\", "%", " ", "  ", "\t", "é", "-", ",",
    ]
)  # fmt: skip


def _parses_or_clean_error(text: str) -> None:
    try:
        parse_query(text)
    except QueryError as exc:
        assert str(exc).strip()
        assert "\n" not in str(exc)


@settings(max_examples=250, deadline=None)
@given(st.lists(QUERY_ALPHABET, max_size=14).map("".join))
def test_any_token_soup_parses_or_raises_query_error(text: str) -> None:
    _parses_or_clean_error(text)


@settings(max_examples=250, deadline=None)
@given(st.text(max_size=60))
def test_any_text_parses_or_raises_query_error(text: str) -> None:
    _parses_or_clean_error(text)
