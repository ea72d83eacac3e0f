"""Building the media-id bitmap index, and recording the changes readers patch in.

Every write path (store.media) calls `note_changed` in its own transaction; `rebuild_bitmaps`
writes a new generation from the tables and forgets the changes it has seen. Reading the index
is catalog.store.bitmaps.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

from pyroaring import BitMap
from sqlalchemy import Connection, bindparam, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from catalog.store.bitmaps import FORMAT_MARK, MEDIA_FACT_COLUMNS, media_names
from catalog.store.bitslices import BitSlices, to_bitmap
from catalog.store.schema import (
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

_NOTE_CHANGED = text(
    "INSERT INTO bitmap_changes (media_id, version) VALUES (:media_id, 1) "
    "ON CONFLICT (media_id) DO UPDATE SET version = bitmap_changes.version + 1"
)


def note_changed(session: Session, media_id: int) -> None:
    """Record, in the caller's transaction, that one media item's indexed facts changed."""
    session.execute(_NOTE_CHANGED, {"media_id": media_id})


_MEDIA_FACTS = tuple(getattr(Media, column) for column in MEDIA_FACT_COLUMNS)


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
        labelled = row.status == STATUS_LABELLED or bool(row.has_labels)
        names = media_names(row.status, row.kind, row.source, row.key, row.last_modified_at)
        for name in [*names, "labelled"] if labelled else names:
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
