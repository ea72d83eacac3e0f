"""Where the schema's revision scripts are, and the head revision they reach.

Read from the scripts' text, without importing Alembic or SQLAlchemy: every command checks the
catalogue's revision before it reads, and the read path must start fast (a test checks the
answer against Alembic's own, catalog.store.engine.head_revision).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_REVISION_RE = re.compile(r"^(down_)?revision(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.M)


def migrations_dir() -> Path:
    """Where the Alembic scripts are: the packaged copy (`catalog._migrations`, which an editable
    install maps to the source tree's migrations/), else the migrations/ folder beside the
    package when it runs from a checkout that is not installed."""
    try:
        import catalog._migrations as packaged  # type: ignore[import-not-found]
    except ImportError:
        return Path(__file__).resolve().parents[2] / "migrations"
    return Path(packaged.__file__).resolve().parent


@cache
def scripted_head_revision() -> str | None:
    """The head revision, read straight from the scripts (None unless there is exactly one)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (migrations_dir() / "versions").glob("*.py"):
        for down, value in _REVISION_RE.findall(path.read_text(encoding="utf-8")):
            (parents if down else revisions).add(value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None
