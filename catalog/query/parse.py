"""Query text -> AST of frozen dataclasses; every malformed input raises QueryError with a position.

The language (the grammar is `grammar.lark`):

    Car                        has the label at all
    Car > 90   Car >= 90%      best confidence in percent (also <, <=, =), compared at 0.01
    "Traffic Light" >= 80      quoted names hold spaces; names are case-insensitive
    count(Person) >= 3         number of instances (bounding boxes) of a label
    A AND B, A OR B, NOT A     any case; parentheses group; `A B` means `A AND B`
    kind:image  kind:video
    prefix:photos/2024/        key prefix (or prefix:s3://bucket/photos/2024/)
    category:"Vehicles and Automotive"
    modified:2024-01..2024-06  last-modified range: year, month or day precision, open ends
    size:>5MB                  object size (B, KB, MB, GB, TB decimal; KiB, MiB, GiB binary)
    text:exit  text:"no exit" > 90   text shown in the item (catalog.query.text)
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from catalog.errors import QueryError
from catalog.query import nodes
from catalog.query.limits import MAX_SIZE_BYTES, check_cost, confidence_percent, query_error
from catalog.query.text import parse_text_term

MAX_QUERY_LENGTH = 4000
MAX_NESTING = 64  # levels of the parse tree (parentheses, NOT, AND/OR)
OPERATORS = (">", ">=", "<", "<=", "=")
KINDS = {"image": "image", "images": "image", "video": "video", "videos": "video"}
FILTERS = ("kind", "prefix", "category", "modified", "size", "text")


# -- parsing ---------------------------------------------------------------------------------------

_EXPECTED = {
    "NAME": "a label name",
    "STRING": "a quoted name",
    "LPAR": "'('",
    "RPAR": "')'",
    "NOT": "NOT",
    "AND": "AND",
    "OR": "OR",
    "COMP": "a comparison (>, >=, <, <=, =)",
    "NUMBER": "a number",
    "COUNT": "count(LABEL)",
    "FILTER_KEY": "a filter (kind:, prefix:, category:, modified:, size:, text:)",
    "FILTER_VALUE": "a filter value",
    "$END": "the end of the query",
}
_QUOTED_RE = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'""")
_TERM_STARTERS = {"NAME", "STRING", "LPAR", "NOT", "COUNT", "FILTER_KEY"}


@cache
def _parser() -> Any:
    from lark import Lark

    grammar = (Path(__file__).parent / "grammar.lark").read_text(encoding="utf-8")
    # cache=True keeps the built LALR tables in the temp directory (keyed by grammar and lark
    # version), which takes about 0.1 s off every `catalog search` start.
    return Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=False, cache=True)


def parse_query(text: str) -> nodes.Node | None:
    """Parse query text into an AST; None for an empty query. Raises QueryError when malformed."""
    for index, char in enumerate(text):
        if "\udc80" <= char <= "\udcff":  # a byte that was not UTF-8 (surrogateescape)
            raise QueryError(
                f"the query is not valid UTF-8 (byte 0x{ord(char) - 0xDC00:02x} at position "
                f"{index + 1}); type it as UTF-8 text",
                index + 1,
            )
    return _parse(text)


@lru_cache(maxsize=256)  # ASTs are immutable; errors are not cached and raise again
def _parse(text: str) -> nodes.Node | None:
    if not text.strip():
        return None
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"the query is longer than {MAX_QUERY_LENGTH} characters", 1)
    from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

    try:
        tree = _parser().parse(text)
    except UnexpectedToken as exc:
        raise _token_error(text, exc) from None
    except UnexpectedCharacters as exc:
        raise _character_error(text, exc) from None
    except UnexpectedInput as exc:  # UnexpectedEOF with other lexers
        pos = (getattr(exc, "pos_in_stream", None) or len(text)) + 1
        raise QueryError(f"malformed query at position {pos}", pos) from None
    except LarkError as exc:
        raise QueryError(f"malformed query: {exc}", None) from None
    try:
        node = _build(tree, text, 0)
    except RecursionError:
        raise QueryError("the query nests too deeply", 1) from None
    check_cost(node, lambda leaf: isinstance(leaf, nodes.CountCondition))
    return node


def _describe(expected: set[str], text: str) -> str:
    wanted: list[str] = []
    if expected & _TERM_STARTERS:
        wanted.append("a label, '(', NOT, count(LABEL) or a filter")
    if "COMP" in expected:
        wanted.append(_EXPECTED["COMP"])
    if "NUMBER" in expected:
        wanted.append(_EXPECTED["NUMBER"])
    if "FILTER_VALUE" in expected:
        wanted.append(_EXPECTED["FILTER_VALUE"])
    if expected & {"AND", "OR"} and not expected & _TERM_STARTERS:
        wanted.append("AND, OR")
    if "RPAR" in expected and text.count("(") > text.count(")"):
        wanted.append("')'")
    if "$END" in expected and not wanted:
        wanted.append(_EXPECTED["$END"])
    if not wanted:
        return "something else"
    return wanted[0] if len(wanted) == 1 else ", ".join(wanted[:-1]) + " or " + wanted[-1]


def _found(text: str, pos: int) -> str:
    if pos >= len(text):
        return "the end of the query"
    word = re.match(r"\S+", text[pos:])
    return f"'{word.group(0) if word else text[pos]}'"


def _token_error(text: str, exc: Any) -> QueryError:
    token = exc.token
    at_end = token.type == "$END"
    pos = len(text) if at_end else token.start_pos
    expected = set(exc.expected)
    if at_end and "RPAR" in expected and text.count("(") > text.count(")"):
        message = "expected ')' to close '('"
    elif token.type == "RPAR" and "$END" in expected:
        message = "unexpected ')' with no '(' to close"
    elif str(token)[:1] in ("'", '"') and not _is_closed_quote(str(token)):
        message = f"unterminated quoted name (add the closing {str(token)[0]})"
    else:
        message = f"expected {_describe(expected, text)}, found {_found(text, pos)}"
    return QueryError(f"malformed query at position {pos + 1}: {message}", pos + 1)


def _character_error(text: str, exc: Any) -> QueryError:
    pos = exc.pos_in_stream
    char = text[pos]
    if char in "\"'":
        message = f"unterminated quoted name (add the closing {char})"
    elif char == ":":
        message = "unexpected ':' (filters are kind:, prefix:, category:, modified:, size:, text:)"
    else:
        allowed = set(exc.allowed or ())
        message = f"expected {_describe(allowed, text)}, found {_found(text, pos)}"
    return QueryError(f"malformed query at position {pos + 1}: {message}", pos + 1)


def _is_closed_quote(value: str) -> bool:
    return bool(_QUOTED_RE.fullmatch(value))


def _unquote(token: Any) -> str:
    value = str(token)
    if token.type == "STRING":
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _build(tree: Any, text: str, depth: int) -> nodes.Node:
    from lark import Token

    if depth > MAX_NESTING:
        raise QueryError(f"the query nests more than {MAX_NESTING} levels deep", 1)
    if isinstance(tree, Token):  # a bare name (`?name` inlines it)
        return _label(tree, None, None)
    kind = tree.data
    children = list(tree.children)
    if kind in ("or_expr", "and_expr"):
        parts = [
            _build(child, text, depth + 1)
            for child in children
            if not (isinstance(child, Token) and child.type in ("AND", "OR"))
        ]
        if kind == "or_expr":
            return nodes.Or(_flatten(nodes.Or, parts))
        return nodes.And(_flatten(nodes.And, parts))
    if kind == "atom":  # ( expr )
        inner = [c for c in children if not (isinstance(c, Token) and c.type in ("LPAR", "RPAR"))]
        return _build(inner[0], text, depth + 1)
    if kind == "negation":
        item = _build(children[1], text, depth + 1)
        return item.item if isinstance(item, nodes.Not) else nodes.Not(item)
    if kind == "label_cond":
        if len(children) == 1:
            return _label(children[0], None, None)
        return _label(children[0], children[1], children[2])
    if kind == "count_cond":
        names = [c for c in children if c.type in ("NAME", "STRING")]
        comp = next(c for c in children if c.type == "COMP")
        number = next(c for c in children if c.type == "NUMBER")
        value = _count_value(number)
        name = _name(names[0])
        return nodes.CountCondition(name, str(comp), value)
    if kind == "filter":
        if str(children[0])[:-1].lower() == "text":
            comp, number = (str(c) for c in children[2:4]) if len(children) == 4 else (None, None)
            quoted = children[1].type == "STRING"
            return parse_text_term(
                _unquote(children[1]), quoted, comp, number, children[1].start_pos
            )
        if len(children) == 4:
            raise query_error(
                children[2].start_pos, "only text: takes a confidence after its value"
            )
        return _filter(children[0], children[1])
    raise query_error(0, f"unexpected {kind}")  # pragma: no cover - the grammar has no other rules


def _flatten(
    cls: type[nodes.And] | type[nodes.Or], parts: list[nodes.Node]
) -> tuple[nodes.Node, ...]:
    flat: list[nodes.Node] = []
    for part in parts:
        flat.extend(part.items if isinstance(part, cls) else (part,))
    return tuple(flat)


def _name(token: Any) -> str:
    name = " ".join(_unquote(token).split())
    if not name:
        raise query_error(token.start_pos, "the label name is empty")
    return name


def _label(name_token: Any, comp: Any, number: Any) -> nodes.LabelCondition:
    name = _name(name_token)
    if comp is None:
        return nodes.LabelCondition(name)
    return nodes.LabelCondition(
        name, str(comp), confidence_percent(str(number), str(comp), number.start_pos)
    )


def _count_value(number: Any) -> int:
    raw = str(number)
    if not re.fullmatch(r"\d{1,9}", raw):
        raise query_error(number.start_pos, f"expected a whole number of instances, found '{raw}'")
    return int(raw)


# -- filters ---------------------------------------------------------------------------------------

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)", re.IGNORECASE)
_DATE_RE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")
_OP_RE = re.compile(r"(>=|<=|>|<|=)?(.*)", re.DOTALL)


def _filter(key_token: Any, value_token: Any) -> nodes.Node:
    key = str(key_token)[:-1].lower()
    value = _unquote(value_token)
    pos = value_token.start_pos
    if key == "kind":
        kind = KINDS.get(value.lower())
        if kind is None:
            raise query_error(pos, f"expected kind:image or kind:video, found '{value}'")
        return nodes.KindFilter(kind)
    if key == "prefix":
        if value.startswith("s3://"):
            bucket, _, prefix = value[len("s3://") :].partition("/")
            if not bucket:
                raise query_error(pos, "expected prefix:s3://BUCKET/PREFIX, found no bucket")
            return nodes.PrefixFilter(prefix, bucket)
        if value.startswith("file://"):
            path = unquote(urlparse(value).path)
            if not path.startswith("/"):
                raise query_error(pos, "expected prefix:file:///ABSOLUTE/PATH")
            return nodes.PrefixFilter(path, local=True)
        return nodes.PrefixFilter(value)
    if key == "category":
        category = " ".join(value.split())
        if not category:
            raise query_error(pos, "the category name is empty")
        return nodes.CategoryFilter(category)
    if key == "modified":
        return _modified(value, pos)
    if key == "size":
        return _size(value, pos)
    raise query_error(
        key_token.start_pos,
        f"unknown filter '{key}:'; expected one of " + ", ".join(f + ":" for f in FILTERS),
    )


def _period(text: str, pos: int) -> tuple[datetime, datetime]:
    """The [start, end) of a year, month or day written YYYY, YYYY-MM or YYYY-MM-DD."""
    match = _DATE_RE.fullmatch(text.strip())
    if not match:
        raise query_error(pos, f"expected a date YYYY, YYYY-MM or YYYY-MM-DD, found '{text}'")
    year, month, day = (int(g) if g else None for g in match.groups())
    try:
        assert year is not None
        if month is None:
            return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        if day is None:
            start = datetime(year, month, 1, tzinfo=UTC)
            days = calendar.monthrange(year, month)[1]
            return start, start + timedelta(days=days)
        start = datetime(year, month, day, tzinfo=UTC)
        return start, start + timedelta(days=1)
    except (ValueError, OverflowError):
        raise query_error(pos, f"'{text}' is not a valid date") from None


def _modified(value: str, pos: int) -> nodes.ModifiedFilter:
    if ".." in value:
        left, _, right = value.partition("..")
        if not left and not right:
            raise query_error(pos, "expected a date range like 2024-01..2024-06")
        start = _period(left, pos)[0] if left else None
        end = _period(right, pos + len(left) + 2)[1] if right else None
        if start and end and start >= end:
            raise query_error(pos, f"the range '{value}' ends before it starts")
        return nodes.ModifiedFilter(start, end)
    op, rest = _split_op(value)
    start, end = _period(rest, pos + len(op))
    return {
        "": nodes.ModifiedFilter(start, end),
        "=": nodes.ModifiedFilter(start, end),
        ">": nodes.ModifiedFilter(end, None),
        ">=": nodes.ModifiedFilter(start, None),
        "<": nodes.ModifiedFilter(None, start),
        "<=": nodes.ModifiedFilter(None, end),
    }[op]


def _split_op(value: str) -> tuple[str, str]:
    match = _OP_RE.fullmatch(value)
    assert match is not None
    return match.group(1) or "", match.group(2)


def _bytes(text: str, pos: int) -> int:
    match = _SIZE_RE.fullmatch(text.strip())
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise query_error(pos, f"expected a size like 5MB (B, KB, MB, GB, TB), found '{text}'")
    size = int(Decimal(match.group(1)) * _SIZE_UNITS[unit])
    if size > MAX_SIZE_BYTES:
        raise query_error(pos, f"the size '{text}' is larger than any object can be")
    return size


def _size(value: str, pos: int) -> nodes.SizeFilter:
    if ".." in value:
        left, _, right = value.partition("..")
        if not left and not right:
            raise query_error(pos, "expected a size range like 1MB..5MB")
        low = _bytes(left, pos) if left else None
        high = _bytes(right, pos + len(left) + 2) if right else None
        return nodes.SizeFilter(low, high)
    op, rest = _split_op(value)
    size = _bytes(rest, pos + len(op))
    return {
        "": nodes.SizeFilter(size, size),
        "=": nodes.SizeFilter(size, size),
        ">": nodes.SizeFilter(size + 1, None),
        ">=": nodes.SizeFilter(size, None),
        "<": nodes.SizeFilter(None, size - 1),
        "<=": nodes.SizeFilter(None, size),
    }[op]
