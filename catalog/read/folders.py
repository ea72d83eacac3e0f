"""Where media are counted in prefix breakdowns: a key's first segments, or a local folder.

An S3 key is counted under its first `depth` key segments ('2024/06/a.jpg' -> '2024/'). A local
file is counted under the folder `depth` levels below the folder it was synced from (the synced
root, from `sync_runs`): syncing ~/Pictures counts ~/Pictures/2024/a.jpg under
'/home/me/Pictures/2024/', not under the first segment of its absolute path ('home/'). The
prefix is the folder's absolute path, so `prefix:` with it selects exactly those media.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyroaring import BitMap

from catalog.errors import UsageError
from catalog.store.bitmaps import BitmapIndex
from catalog.store.sql import Db, Reader, db_of
from catalog.store.values import SOURCE_FILE
from catalog.uris import key_prefix, parse_uri

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def local_roots(source: Session | Reader | Db) -> list[str]:
    """The folders local syncs started from (each ending in '/'), deepest first."""
    roots = set()
    for (synced,) in db_of(source).rows(
        "SELECT DISTINCT source FROM sync_runs WHERE source LIKE :pattern", {"pattern": "file://%"}
    ):
        try:
            path = parse_uri(synced).key
        except UsageError:  # not a URI this version reads: count its files from the filesystem root
            continue
        roots.add(path if path.endswith("/") else path + "/")
    return sorted(roots, key=lambda root: (-len(root), root))


def media_prefix(source: str, key: str, depth: int, roots: Sequence[str]) -> str:
    """The prefix a media item is counted under (see the module docstring).

    `key` may also be a local folder's path ending in '/': its files' prefix at that depth.
    """
    if source != SOURCE_FILE:
        return key_prefix(key, depth)
    root = next((r for r in roots if key.startswith(r)), "/")
    below = key_prefix(key[len(root) :], depth)
    return root + below if below else root


def folder_prefix_counts(
    index: BitmapIndex, subset: BitMap, roots: Sequence[str]
) -> dict[str, int]:
    """Media of `subset` per prefix (depth 1) from the index: S3 key prefixes and local folders.

    The index holds each local file under its own folder ('folder:<path>/'), which does not
    depend on the synced roots; the folders are merged here into the folder below their root.
    """
    counts: dict[str, int] = {}
    for value, bm in index.group("prefix").items():
        n = bm.intersection_cardinality(subset)
        if n:
            counts[value] = n
    for folder, bm in index.group("folder").items():
        n = bm.intersection_cardinality(subset)
        if n:
            prefix = media_prefix(SOURCE_FILE, folder, 1, roots)  # a folder ends in '/'
            counts[prefix] = counts.get(prefix, 0) + n
    return counts
