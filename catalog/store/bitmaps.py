"""The media-id bitmap index: persisted Roaring bitmaps, patched with what changed since.

What is indexed (every set holds non-deleted media ids only):

* `live` (every non-deleted item), `labelled` (the media whose labels are stored: what the
  query language's universe is), `status:<status>`, `kind:<kind>`, `prefix:<first segment>` (S3
  keys), `folder:<folder path>/` (local files), `month:<YYYY-MM of LastModified, or unknown>`;
* per label: `label:<id>` (the media carrying it), `conf:<id>` (bit-sliced best confidence,
  hundredths) and `dets:<id>` (bit-sliced detection count);
* `size` and `duration` (bit-sliced size_bytes and duration_ms).

Exactness: every write path (store.media) calls `note_changed` (catalog.store.bitmap_build) in
its own transaction, which records the media id in `bitmap_changes`. A reader loads the persisted bitmaps of the current
generation and re-reads the changed items from the tables, so what it answers is what plain
SQL over the same tables answers. `rebuild_bitmaps` folds the changes into a new generation and
forgets only the change versions it has seen. A reader that sees the generation move under it
raises StaleIndexError and its caller answers from SQL instead; so does a reader of a catalogue
whose index was never built, or whose change list has grown past OVERLAY_LIMIT.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pyroaring import AbstractBitMap, BitMap, FrozenBitMap

from catalog.errors import StaleIndexError
from catalog.store.bitslices import BitSlices
from catalog.store.sql import Db, Reader, db_of
from catalog.store.values import SOURCE_FILE, STATUS_DELETED, STATUS_LABELLED
from catalog.uris import key_prefix

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Written with every build; an index without it was built by an older catalog whose sets mean
# something else (local files under `prefix:`), so readers answer from SQL until it is rebuilt.
FORMAT_MARK = "format:2"
OVERLAY_LIMIT = 50_000  # beyond this many changed items, re-reading them costs like SQL does
UNKNOWN_MONTH = "unknown"


def _place(source: str, key: str) -> str:
    """The set naming where an item sits: its first key segment (S3, '' at the bucket's root) or
    its folder (a local file: the absolute path of the folder, which does not depend on which
    folder was synced; catalog.read.folders counts folders under their synced roots)."""
    if source == SOURCE_FILE:
        return f"folder:{key.rsplit('/', 1)[0]}/"
    return f"prefix:{key_prefix(key, 1)}"


def media_month(modified: datetime | None) -> str:
    """'YYYY-MM' of LastModified in UTC, or 'unknown'."""
    return modified.strftime("%Y-%m") if modified is not None else UNKNOWN_MONTH


def media_names(
    status: str, kind: str, source: str, key: str, modified: datetime | None
) -> list[str]:
    """The sets one media item belongs to (besides `labelled`, which depends on its labels)."""
    return [
        "live",
        f"status:{status}",
        f"kind:{kind}",
        _place(source, key),
        f"month:{media_month(modified)}",
    ]


# -- the snapshot cache ----------------------------------------------------------------------------


@dataclass
class _Snapshot:
    """Deserialised bitmaps of one generation of one database (shared by readers, never patched)."""

    generation: int
    items: dict[str, FrozenBitMap | BitSlices] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)


_SNAPSHOTS: dict[str, _Snapshot] = {}
_SNAPSHOTS_LOCK = threading.Lock()


def _snapshot(db: Db, generation: int) -> _Snapshot:
    key = db.key
    with _SNAPSHOTS_LOCK:
        found = _SNAPSHOTS.get(key)
        if found is None or found.generation != generation:
            found = _SNAPSHOTS[key] = _Snapshot(generation)
        return found


def forget_snapshots() -> None:
    """Drop every cached snapshot (tests; memory)."""
    with _SNAPSHOTS_LOCK:
        _SNAPSHOTS.clear()


# -- what changed since the snapshot ---------------------------------------------------------------


@dataclass
class _Changed:
    """The current facts of the media items changed since the snapshot was built."""

    ids: BitMap = field(default_factory=BitMap)
    members: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    values: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))


# The media columns an item's sets and values come from (`media_names`, size, duration); the
# builder (catalog.store.bitmap_build) selects the same ones for every item.
MEDIA_FACT_COLUMNS = (
    "id",
    "status",
    "kind",
    "source",
    "key",
    "last_modified_at",
    "size_bytes",
    "duration_ms",
)
_MEDIA_FACTS = (
    f"SELECT {', '.join('m.' + c for c in MEDIA_FACT_COLUMNS)} FROM media m "
    "JOIN bitmap_changes c ON c.media_id = m.id WHERE m.status != :deleted"
)
_CHANGED_DETECTIONS = (
    "SELECT d.media_id, d.label_id, d.confidence_x100, d.detection_count FROM detections d "
    "JOIN bitmap_changes c ON c.media_id = d.media_id"
)


def _read_changed(db: Db) -> _Changed | None:
    """The changed items' current rows (None when there are too many to patch in)."""
    count = db.scalar("SELECT count(*) FROM bitmap_changes")
    changed = _Changed()
    if not count:
        return changed
    if count > OVERLAY_LIMIT:
        return None
    changed.ids = BitMap(row[0] for row in db.rows("SELECT media_id FROM bitmap_changes"))
    carrying: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for media_id, label_id, conf, dets in db.rows(_CHANGED_DETECTIONS):
        carrying[media_id].append((label_id, conf, dets))
    facts = db.rows(_MEDIA_FACTS, {"deleted": STATUS_DELETED})
    for media_id, status, kind, source, key, modified, size_bytes, duration_ms in facts:
        labels = carrying.get(media_id, [])
        names = media_names(status, kind, source, key, db.utc(modified))
        if status == STATUS_LABELLED or labels:
            names.append("labelled")
        for name in names:
            changed.members[name].append(media_id)
        changed.values["size"][media_id] = int(size_bytes or 0)
        if duration_ms is not None:
            changed.values["duration"][media_id] = int(duration_ms)
        for label_id, conf, dets in labels:
            changed.members[f"label:{label_id}"].append(media_id)
            changed.values[f"conf:{label_id}"][media_id] = int(conf)
            changed.values[f"dets:{label_id}"][media_id] = int(dets)
    return changed


# -- the reader ------------------------------------------------------------------------------------


class BitmapIndex:
    """One reader's view of the index: the snapshot patched with the changed items.

    Bitmaps it returns are the reader's own (patched copies): callers may modify them.
    """

    def __init__(self, db: Db, snapshot: _Snapshot, changed: _Changed) -> None:
        self.db = db
        self.snapshot = snapshot
        self.changed = changed
        self._bitmaps: dict[str, AbstractBitMap] = {}
        self._slices: dict[str, BitSlices] = {}

    @property
    def generation(self) -> int:
        """The generation of the persisted bitmaps this view patches."""
        return self.snapshot.generation

    def bitmap(self, name: str) -> BitMap:
        """The named set (an empty one when nothing carries the name)."""
        found = self._bitmaps.get(name)
        if found is None:
            base = self._load([name]).get(name)
            found = self._patched(name, base)
        return BitMap(found)

    def bitmaps(self, names: list[str]) -> dict[str, AbstractBitMap]:
        """The named sets, those not yet read fetched in one round trip (read-only bitmaps)."""
        items = self._load(names)
        return {name: self._patched(name, items.get(name)) for name in names}

    def slices(self, name: str, *, keep: bool = True) -> BitSlices:
        """The named bit-sliced values ('conf:<id>', 'dets:<id>', 'size', 'duration').

        `keep=False` reads them for one use without caching them (a dense label's slices
        take megabytes; a statistic that visits twenty labels need not hold them all).
        """
        found = self._slices.get(name)
        if found is None:
            base = self._load([name], keep=keep).get(name)
            found = base if isinstance(base, BitSlices) else BitSlices()
            values = self.changed.values.get(name, {})
            if values or found.exist.intersect(self.changed.ids):
                found = found.copy()  # the cached snapshot is shared: patch a copy
                found.patch(self.changed.ids, values)
            if keep:
                self._slices[name] = found
        return found

    def group(self, kind: str) -> dict[str, AbstractBitMap]:
        """Every non-empty set named '<kind>:...' (prefix, month, label), by the rest of its name.

        The bitmaps are read-only (shared with the cached snapshot when no change touches them).
        """
        start = f"{kind}:"
        with_changes = {n for n in self.changed.members if n.startswith(start)}
        items = self._load_group(kind)
        result: dict[str, AbstractBitMap] = {}
        for name in sorted(set(items) | with_changes):
            bm = self._patched(name, items.get(name))
            if bm:
                result[name[len(start) :]] = bm
        return result

    def _patched(self, name: str, base: Any) -> AbstractBitMap:
        found = self._bitmaps.get(name)
        if found is not None:
            return found
        found = base if isinstance(base, FrozenBitMap) else FrozenBitMap()
        added = self.changed.members.get(name, ())
        if added or found.intersect(self.changed.ids):
            patched = BitMap(found)
            patched -= self.changed.ids
            patched.update(added)
            found = patched
        self._bitmaps[name] = found
        return found

    def _load(self, names: list[str], *, keep: bool = True) -> dict[str, Any]:
        snap = self.snapshot
        missing = [n for n in names if n not in snap.items]
        if missing and not any(n.split(":", 1)[0] in snap.groups for n in missing):
            rows = self.db.rows(
                "SELECT name, generation, data FROM media_bitmaps WHERE name IN (:names)",
                {"names": missing},
            )
            if not keep:
                once: dict[str, Any] = {}
                self._store(rows, once)
                return {n: once.get(n, snap.items.get(n)) for n in names}
            self._store(rows, snap.items)
        return {n: snap.items.get(n) for n in names}

    def _load_group(self, kind: str) -> dict[str, Any]:
        snap = self.snapshot
        if kind not in snap.groups:
            rows = self.db.iter_rows(
                "SELECT name, generation, data FROM media_bitmaps "
                "WHERE name >= :start AND name < :end",
                {"start": f"{kind}:", "end": f"{kind};"},
            )  # streamed: each blob is dropped once deserialised (a group holds thousands)
            self._store(rows, snap.items)
            snap.groups.add(kind)
        start = f"{kind}:"
        return {n: v for n, v in snap.items.items() if n.startswith(start)}

    def _store(self, rows: Any, into: dict[str, Any]) -> None:
        for name, generation, data in rows:
            if generation != self.snapshot.generation:
                raise StaleIndexError("the bitmap index was rebuilt while it was read")
            if name.split(":", 1)[0] in ("conf", "dets", "size", "duration"):
                into[name] = BitSlices.from_bytes(data)
            else:
                into[name] = FrozenBitMap.deserialize(data)


# The current generation, and the generation of its format mark (None when it has none).
_STATE = (
    "SELECT generation, (SELECT generation FROM media_bitmaps WHERE name = :mark) "
    "FROM bitmap_state WHERE id = 1"
)


def index_state(source: Session | Reader | Db) -> Literal["none", "outdated", "current"]:
    """Whether the index was never built, was built by an older catalog, or can be read."""
    state = db_of(source).first(_STATE, {"mark": FORMAT_MARK})
    if state is None:
        return "none"
    return "current" if state[1] == state[0] else "outdated"


def open_index(source: Session | Reader | Db) -> BitmapIndex | None:
    """The index as of now, or None when it cannot answer exactly (answer from SQL then)."""
    db = db_of(source)
    state = db.first(_STATE, {"mark": FORMAT_MARK})
    if state is None or state[1] != state[0]:
        return None  # never built, or built by an older catalog (see FORMAT_MARK)
    generation = state[0]
    changed = _read_changed(db)
    if changed is None:
        return None
    return BitmapIndex(db, _snapshot(db, generation), changed)
