"""The media-id bitmap index: persisted Roaring bitmaps, patched with what changed since.

What is indexed (every set holds non-deleted media ids only):

* `live` (every non-deleted item), `labelled` (the media whose labels are stored: what the
  query language's universe is), `status:<status>`, `kind:<kind>`, `prefix:<first segment>` (S3
  keys), `folder:<folder path>/` (local files), `month:<YYYY-MM of LastModified, or unknown>`;
* per label: `label:<id>` (the media carrying it), `conf:<id>` (bit-sliced best confidence,
  hundredths) and `dets:<id>` (bit-sliced detection count);
* `size` and `duration` (bit-sliced size_bytes and duration_ms).

Exactness: every write path (store.media) calls `note_changed` in its own transaction, which
records the media id in `bitmap_changes`. A reader loads the persisted bitmaps of the current
generation and re-reads the changed items from the tables, so what it answers is what plain
SQL over the same tables answers. `rebuild_bitmaps` folds the changes into a new generation and
forgets only the change versions it has seen. A reader that sees the generation move under it
raises StaleIndexError and its caller answers from SQL instead; so does a reader of a catalogue
whose index was never built, or whose change list has grown past OVERLAY_LIMIT.
"""

from __future__ import annotations

import threading
from array import array
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from itertools import chain
from typing import Any, Literal

from pyroaring import AbstractBitMap, BitMap, FrozenBitMap
from sqlalchemy import Connection, bindparam, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from catalog.errors import StaleIndexError
from catalog.store.bitslices import BitSlices, to_bitmap
from catalog.store.schema import (
    SOURCE_FILE,
    STATUS_DELETED,
    STATUS_LABELLED,
    BitmapChange,
    BitmapState,
    Detection,
    Label,
    Media,
    MediaBitmap,
    utcnow,
)
from catalog.uris import key_prefix

# Written with every build; an index without it was built by an older catalog whose sets mean
# something else (local files under `prefix:`), so readers answer from SQL until it is rebuilt.
FORMAT_MARK = "format:2"
OVERLAY_LIMIT = 50_000  # beyond this many changed items, re-reading them costs like SQL does
UNKNOWN_MONTH = "unknown"

_NOTE_CHANGED = text(
    "INSERT INTO bitmap_changes (media_id, version) VALUES (:media_id, 1) "
    "ON CONFLICT (media_id) DO UPDATE SET version = bitmap_changes.version + 1"
)


def note_changed(session: Session, media_id: int) -> None:
    """Record, in the caller's transaction, that one media item's indexed facts changed."""
    session.execute(_NOTE_CHANGED, {"media_id": media_id})


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


# The media columns an item's sets and values are computed from (`_media_names`, size, duration).
_MEDIA_FACTS = (
    Media.id,
    Media.status,
    Media.kind,
    Media.source,
    Media.key,
    Media.last_modified_at,
    Media.size_bytes,
    Media.duration_ms,
)


def _media_names(row: Any, labelled: bool) -> list[str]:
    """The sets one media row (selected with _MEDIA_FACTS) belongs to."""
    names = [
        "live",
        f"status:{row.status}",
        f"kind:{row.kind}",
        _place(row.source, row.key),
        f"month:{media_month(row.last_modified_at)}",
    ]
    return [*names, "labelled"] if labelled else names


# -- the snapshot cache ----------------------------------------------------------------------------


@dataclass
class _Snapshot:
    """Deserialised bitmaps of one generation of one database (shared by readers, never patched)."""

    generation: int
    items: dict[str, FrozenBitMap | BitSlices] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)


_SNAPSHOTS: dict[str, _Snapshot] = {}
_SNAPSHOTS_LOCK = threading.Lock()


def _snapshot(connection: Connection, generation: int) -> _Snapshot:
    key = connection.engine.url.render_as_string(hide_password=False)
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


def _read_changed(connection: Connection) -> _Changed | None:
    """The changed items' current rows (None when there are too many to patch in)."""
    count = connection.execute(select(func.count()).select_from(BitmapChange)).scalar_one()
    changed = _Changed()
    if not count:
        return changed
    if count > OVERLAY_LIMIT:
        return None
    ids = select(BitmapChange.media_id)
    changed.ids = BitMap(connection.execute(ids).scalars())
    carrying: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for media_id, label_id, conf, dets in connection.execute(
        select(
            Detection.media_id,
            Detection.label_id,
            Detection.confidence_x100,
            Detection.detection_count,
        ).where(Detection.media_id.in_(ids))
    ):
        carrying[media_id].append((label_id, conf, dets))
    for row in connection.execute(
        select(*_MEDIA_FACTS).where(Media.id.in_(ids), Media.status != STATUS_DELETED)
    ):
        labels = carrying.get(row.id, [])
        for name in _media_names(row, row.status == STATUS_LABELLED or bool(labels)):
            changed.members[name].append(row.id)
        changed.values["size"][row.id] = int(row.size_bytes or 0)
        if row.duration_ms is not None:
            changed.values["duration"][row.id] = int(row.duration_ms)
        for label_id, conf, dets in labels:
            changed.members[f"label:{label_id}"].append(row.id)
            changed.values[f"conf:{label_id}"][row.id] = int(conf)
            changed.values[f"dets:{label_id}"][row.id] = int(dets)
    return changed


# -- the reader ------------------------------------------------------------------------------------


class BitmapIndex:
    """One reader's view of the index: the snapshot patched with the changed items.

    Bitmaps it returns are the reader's own (patched copies): callers may modify them.
    """

    def __init__(self, connection: Connection, snapshot: _Snapshot, changed: _Changed) -> None:
        self.connection = connection
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
            rows = self.connection.execute(
                select(MediaBitmap.name, MediaBitmap.generation, MediaBitmap.data).where(
                    MediaBitmap.name.in_(missing)
                )
            ).all()
            if not keep:
                once: dict[str, Any] = {}
                self._store(rows, once)
                return {n: once.get(n, snap.items.get(n)) for n in names}
            self._store(rows, snap.items)
        return {n: snap.items.get(n) for n in names}

    def _load_group(self, kind: str) -> dict[str, Any]:
        snap = self.snapshot
        if kind not in snap.groups:
            rows = self.connection.execute(
                select(MediaBitmap.name, MediaBitmap.generation, MediaBitmap.data).where(
                    MediaBitmap.name >= f"{kind}:", MediaBitmap.name < f"{kind};"
                )
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


@cache
def _state_stmt() -> Any:
    """The current generation, and the generation of its format mark (None when it has none)."""
    marked = select(MediaBitmap.generation).where(MediaBitmap.name == FORMAT_MARK).scalar_subquery()
    return select(BitmapState.generation, marked.label("marked")).where(BitmapState.id == 1)


def index_state(session: Session) -> Literal["none", "outdated", "current"]:
    """Whether the index was never built, was built by an older catalog, or can be read."""
    state = session.connection().execute(_state_stmt()).first()
    if state is None:
        return "none"
    return "current" if state.marked == state.generation else "outdated"


def open_index(session: Session) -> BitmapIndex | None:
    """The index as of now, or None when it cannot answer exactly (answer from SQL then)."""
    connection = session.connection()
    state = connection.execute(_state_stmt()).first()
    if state is None or state.marked != state.generation:
        return None  # never built, or built by an older catalog (see FORMAT_MARK)
    generation = state.generation
    changed = _read_changed(connection)
    if changed is None:
        return None
    return BitmapIndex(connection, _snapshot(connection, generation), changed)


# -- building --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexReport:
    """What a rebuild wrote."""

    generation: int
    bitmaps: int
    size_bytes: int
    changes_folded: int


_LABEL_ROWS = (
    select(Detection.media_id, Detection.confidence_x100, Detection.detection_count)
    .where(Detection.label_id == bindparam("label_id"))
    .order_by(Detection.media_id)
)


def _iter_items(connection: Connection) -> Iterator[tuple[str, bytes]]:
    """Every bitmap and slice set, serialised, from the tables as they are now (streamed)."""
    import numpy as np  # only builders need it; readers start faster without it

    yield FORMAT_MARK, BitMap().serialize()
    members: dict[str, array[int]] = defaultdict(lambda: array("I"))
    ids, sizes, video_ids, durations = array("I"), array("q"), array("I"), array("q")
    has_labels = select(Detection.media_id).where(Detection.media_id == Media.id).exists()
    for row in connection.execute(
        select(*_MEDIA_FACTS, has_labels.label("has_labels")).where(Media.status != STATUS_DELETED)
    ):
        for name in _media_names(row, row.status == STATUS_LABELLED or bool(row.has_labels)):
            members[name].append(row.id)
        ids.append(row.id)
        sizes.append(int(row.size_bytes or 0))
        if row.duration_ms is not None:
            video_ids.append(row.id)
            durations.append(int(row.duration_ms))
    for name, values in members.items():
        yield name, BitMap(values).serialize()
    members.clear()
    yield (
        "size",
        BitSlices.build(np.frombuffer(ids, np.uint32), np.frombuffer(sizes, np.int64)).to_bytes(),
    )
    yield (
        "duration",
        BitSlices.build(
            np.frombuffer(video_ids, np.uint32), np.frombuffer(durations, np.int64)
        ).to_bytes(),
    )
    for label_id in connection.execute(select(Label.id).order_by(Label.id)).scalars():
        rows = connection.execute(_LABEL_ROWS, {"label_id": label_id}).all()
        if not rows:
            continue
        flat = chain.from_iterable(rows)  # Row objects iterate as plain values
        table = np.fromiter(flat, dtype=np.int64, count=3 * len(rows)).reshape(-1, 3)
        media_ids = table[:, 0]
        yield f"label:{label_id}", to_bitmap(media_ids).serialize()
        yield f"conf:{label_id}", BitSlices.build(media_ids, table[:, 1]).to_bytes()
        yield f"dets:{label_id}", BitSlices.build(media_ids, table[:, 2]).to_bytes()


_WRITE_BATCH = 300  # bitmaps per INSERT
_CLAIM_STATE = text(
    "INSERT INTO bitmap_state (id, generation, built_at) VALUES (1, 0, :now) "
    "ON CONFLICT (id) DO NOTHING"
)


def rebuild_bitmaps(session: Session | Connection) -> IndexReport | None:
    """Build a new generation of the index from the tables, in the caller's transaction.

    The bitmaps are built from reads first and written in one short burst at the end, so other
    writers wait for seconds, not for the build. Changes recorded before the build started are
    folded in and forgotten; a write that lands while it runs keeps its change row, so readers
    still patch it in. When another rebuild commits while this one builds, this one gives way
    (returns None): the other's bitmaps and the change list are exact together. Bulk loads
    that bypass the write path (benchmarks.bulkload) call it on their connection.
    """
    connection = session if isinstance(session, Connection) else session.connection()
    state = select(BitmapState.generation).where(BitmapState.id == 1)
    started = connection.execute(state).scalar_one_or_none()
    seen = connection.execute(select(BitmapChange.media_id, BitmapChange.version)).all()
    items = list(_iter_items(connection))
    # Serialise the write phase: the state row is the lock (PostgreSQL: FOR UPDATE; SQLite:
    # the claim's INSERT takes the database's write lock).
    connection.execute(_CLAIM_STATE, {"now": utcnow()})
    current = connection.execute(state.with_for_update()).scalar_one()
    if current != (started or 0):
        return None
    generation = current + 1
    connection.execute(delete(MediaBitmap))
    for first in range(0, len(items), _WRITE_BATCH):
        connection.execute(
            insert(MediaBitmap),
            [
                {"name": name, "generation": generation, "data": data}
                for name, data in items[first : first + _WRITE_BATCH]
            ],
        )
    connection.execute(
        update(BitmapState)
        .where(BitmapState.id == 1)
        .values(generation=generation, built_at=utcnow())
    )
    if seen:
        connection.execute(
            delete(BitmapChange).where(
                BitmapChange.media_id == bindparam("m"), BitmapChange.version == bindparam("v")
            ),
            [{"m": media_id, "v": version} for media_id, version in seen],
        )
    return IndexReport(generation, len(items), sum(len(d) for _, d in items), len(seen))


def pending_changes(session: Session) -> int:
    """How many media items changed since the index was built."""
    return int(
        session.connection().execute(select(func.count()).select_from(BitmapChange)).scalar_one()
    )
