"""The search language: grammar (grammar.lark), parser (parse.py) and SQL compiler (compile.py)."""

from __future__ import annotations

from catalog.query.nodes import Node
from catalog.query.parse import parse_query

__all__ = ["Node", "parse_query"]
