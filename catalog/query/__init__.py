"""The search language: grammar (grammar.lark), parser (parse.py) and SQL compiler (compile.py)."""

from __future__ import annotations

from catalog.query.parse import Node, parse_query

__all__ = ["Node", "parse_query"]
