"""The write path: media rows, label replacement, failures, deletions and summary upkeep.

Every function takes the caller's session and does not commit: the caller frames one
transaction per object (`with sessions.begin() as session:`), so a labelling result, its
labels and the summary tables change together or not at all.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, delete, func, select, text, update
from sqlalchemy.orm import Session

from catalog.labelling import (
    BoundingBox,
    DetectedLabel,
    Instance,
    LabelResult,
    Moment,
    VideoInfo,
)
from catalog.models import (
    KIND_VIDEO,
    STATUS_DELETED,
    STATUS_FAILED,
    STATUS_LABELLED,
    STATUS_PENDING,
    Detection,
    Label,
    LabelAlias,
    LabelCategory,
    LabelParent,
    Media,
    SyncRun,
    VideoMoment,
    VideoSegment,
    utcnow,
)
from catalog.models import Instance as InstanceRow
from catalog.models import LabelResult as LabelResultRow
from catalog.sources import SourceObject

# Moments of one label closer than this are one segment (Rekognition samples about every 0.5-1 s).
SEGMENT_GAP_MS = 1500


def to_x100(confidence: float) -> int:
    """Percent (0-100) as stored integer hundredths."""
    return max(0, min(10_000, round(confidence * 100)))


def histogram_bin(confidence_x100: int) -> int:
    """The 10-point bin (0..9) a stored confidence falls in; 100% goes in the top bin."""
    return min(9, confidence_x100 // 1000)


def fold(name: str) -> str:
    """Case-folded form of a label, alias or category name for case-insensitive lookups."""
    return " ".join(name.casefold().split())


def _insert(session: Session, table: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


# -- vocabulary ---------------------------------------------------------------------------------


class _Vocabulary:
    """name -> label id, cached per database (labels are never removed)."""

    def __init__(self) -> None:
        self._ids: dict[str, dict[str, int]] = defaultdict(dict)
        self._lock = threading.Lock()

    def ids(self, session: Session, labels: Iterable[DetectedLabel]) -> dict[str, int]:
        """Ids for every label (and every parent), creating the missing ones."""
        bind_key = str(session.get_bind().engine.url)
        wanted: dict[str, DetectedLabel | None] = {}
        for label in labels:
            wanted.setdefault(label.name, label)
            if wanted[label.name] is None:
                wanted[label.name] = label
            for parent in label.parents:
                wanted.setdefault(parent, None)
        with self._lock:
            cache = self._ids[bind_key]
            missing = [name for name in wanted if name not in cache]
        found: dict[str, int] = {}
        if missing:
            visible = {
                name
                for (name,) in session.execute(select(Label.name).where(Label.name.in_(missing)))
            }
            found = self._create(session, missing, wanted)
            with self._lock:
                # Cache only labels other transactions already committed: the ones this
                # transaction creates are invisible to other connections (threads, processes)
                # until it commits, and gone if it rolls back.
                cache.update({name: found[name] for name in visible if name in found})
        with self._lock:
            return {name: cache[name] if name in cache else found[name] for name in wanted}

    def _create(
        self, session: Session, names: list[str], details: dict[str, DetectedLabel | None]
    ) -> dict[str, int]:
        table: Table = Label.__table__  # type: ignore[assignment]
        stmt = _insert(session, table).on_conflict_do_nothing(index_elements=["name"])
        session.execute(stmt, [{"name": name, "name_folded": fold(name)} for name in names])
        rows = session.execute(select(Label.name, Label.id).where(Label.name.in_(names))).all()
        ids = {name: label_id for name, label_id in rows}
        parents_to_add = [n for n in names if details.get(n) and details[n].parents]  # type: ignore[union-attr]
        if parents_to_add:
            all_parents = {p for n in parents_to_add for p in details[n].parents}  # type: ignore[union-attr]
            parent_ids = self.ids_for_names(session, all_parents, ids)
            self._link(
                session,
                LabelParent.__table__,
                ["label_id", "parent_id"],
                [
                    {"label_id": ids[n], "parent_id": parent_ids[p]}
                    for n in parents_to_add
                    for p in dict.fromkeys(details[n].parents)  # type: ignore[union-attr]
                    if p != n
                ],
            )
        self._link(
            session,
            LabelAlias.__table__,
            ["label_id", "alias"],
            [
                {"label_id": ids[n], "alias": alias, "alias_folded": fold(alias)}
                for n in names
                if details.get(n)
                for alias in dict.fromkeys(details[n].aliases)  # type: ignore[union-attr]
            ],
        )
        self._link(
            session,
            LabelCategory.__table__,
            ["label_id", "category"],
            [
                {"label_id": ids[n], "category": category, "category_folded": fold(category)}
                for n in names
                if details.get(n)
                for category in dict.fromkeys(details[n].categories)  # type: ignore[union-attr]
            ],
        )
        return ids

    def ids_for_names(
        self, session: Session, names: Iterable[str], known: dict[str, int]
    ) -> dict[str, int]:
        """Ids for plain names (parents), creating the missing ones."""
        result = {n: known[n] for n in names if n in known}
        rest = [n for n in names if n not in known]
        if rest:
            table: Table = Label.__table__  # type: ignore[assignment]
            stmt = _insert(session, table).on_conflict_do_nothing(index_elements=["name"])
            session.execute(stmt, [{"name": name, "name_folded": fold(name)} for name in rest])
            rows = session.execute(select(Label.name, Label.id).where(Label.name.in_(rest))).all()
            result.update({name: label_id for name, label_id in rows})
        return result

    @staticmethod
    def _link(session: Session, table: Any, keys: list[str], rows: list[dict[str, Any]]) -> None:
        if rows:
            session.execute(
                _insert(session, table).on_conflict_do_nothing(index_elements=keys), rows
            )

    def forget(self) -> None:
        """Drop the cache (after a rolled-back transaction that may have created labels)."""
        with self._lock:
            self._ids.clear()


vocabulary = _Vocabulary()


# -- reading what is stored ------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredMedia:
    """The fields of a media row the sync diff needs."""

    id: int
    key: str
    etag: str | None
    size_bytes: int
    status: str
    kind: str
    attempts: int
    job_id: str | None
    last_modified_at: datetime | None = None
    error_code: str | None = None
    labeller: str | None = None  # who produced the current labels (None: never labelled)
    model_version: str | None = None


def load_key_range(
    session: Session,
    *,
    source: str,
    bucket: str,
    after: str | None,
    upto: str | None,
    prefix: str = "",
) -> list[StoredMedia]:
    """Media rows with after < key <= upto (open ends when None) whose key starts with prefix."""
    key_col: Any = Media.key
    if session.get_bind().dialect.name == "postgresql":
        key_col = Media.key.collate("C")  # S3's byte order, not the locale's
    conditions = [Media.source == source, Media.bucket == bucket]
    if after is not None:
        conditions.append(key_col > after)
    elif prefix:
        conditions.append(key_col >= prefix)
    if upto is not None:
        conditions.append(key_col <= upto)
    latest = (
        select(func.max(LabelResultRow.id))
        .where(LabelResultRow.media_id == Media.id)
        .correlate(Media)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Media.id,
            Media.key,
            Media.etag,
            Media.size_bytes,
            Media.status,
            Media.kind,
            Media.attempts,
            Media.job_id,
            Media.last_modified_at,
            Media.error_code,
            LabelResultRow.labeller,
            LabelResultRow.model_version,
        )
        .outerjoin(LabelResultRow, LabelResultRow.id == latest)
        .where(and_(*conditions))
    ).all()
    return [StoredMedia(*row) for row in rows if row.key.startswith(prefix)]


def touch_media(session: Session, media_id: int, last_modified_at: datetime | None) -> None:
    """Record a new modification time for unchanged content (a local file touched, not edited)."""
    session.execute(
        update(Media).where(Media.id == media_id).values(last_modified_at=last_modified_at)
    )


def stored_media(media: Media) -> StoredMedia:
    """The diff's view of one media row."""
    return StoredMedia(
        media.id,
        media.key,
        media.etag,
        int(media.size_bytes or 0),
        media.status,
        media.kind,
        int(media.attempts or 0),
        media.job_id,
        last_modified_at=media.last_modified_at,
        error_code=media.error_code,
    )


def get_media(
    session: Session, source: str, bucket: str, key: str, *, for_update: bool = False
) -> Media | None:
    """The media row for one object, if any (locked against other writers with for_update)."""
    query = select(Media).where(Media.source == source, Media.bucket == bucket, Media.key == key)
    if for_update:
        query = query.with_for_update()  # PostgreSQL row lock; SQLite locks the whole file anyway
    return session.execute(query).scalar_one_or_none()


def find_reusable(
    session: Session,
    *,
    etag: str,
    size_bytes: int,
    min_confidence: float,
    labeller: str,
    kind: str,
    exclude_media_id: int | None = None,
    model_version: str | None = None,
) -> int | None:
    """A labelled media item with the same content whose result can be copied, if any.

    With `model_version`, only a result from that model counts (labellers that know their model
    before they run, like the local one, must not copy another model's labels).
    """
    latest = (
        select(func.max(LabelResultRow.id))
        .where(LabelResultRow.media_id == Media.id)
        .correlate(Media)
        .scalar_subquery()
    )
    stmt = (
        select(Media.id)
        .join(LabelResultRow, LabelResultRow.id == latest)
        .where(
            Media.etag == etag,
            Media.size_bytes == size_bytes,
            Media.status == STATUS_LABELLED,
            Media.kind == kind,
            LabelResultRow.labeller == labeller,
            LabelResultRow.min_confidence <= min_confidence,
        )
        .limit(1)
    )
    if exclude_media_id is not None:
        stmt = stmt.where(Media.id != exclude_media_id)
    if model_version is not None:
        stmt = stmt.where(LabelResultRow.model_version == model_version)
    return session.execute(stmt).scalar_one_or_none()


def latest_result(session: Session, media_id: int) -> LabelResultRow | None:
    """The provenance row of the media's current labels."""
    return session.execute(
        select(LabelResultRow)
        .where(LabelResultRow.media_id == media_id)
        .order_by(LabelResultRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def load_result(session: Session, media_id: int, min_confidence: float = 0.0) -> LabelResult:
    """Rebuild the stored LabelResult of a media item (labels at or above min_confidence)."""
    provenance = latest_result(session, media_id)
    media = session.get(Media, media_id)
    threshold = to_x100(min_confidence)
    det_rows = session.execute(
        select(Detection.label_id, Label.name, Detection.confidence_x100)
        .join(Label, Label.id == Detection.label_id)
        .where(Detection.media_id == media_id, Detection.confidence_x100 >= threshold)
    ).all()
    label_ids = [row.label_id for row in det_rows]
    names = {row.label_id: row.name for row in det_rows}
    taxonomy = label_taxonomy(session, label_ids)
    boxes: dict[int, list[tuple[int | None, Instance]]] = defaultdict(list)
    for row in session.execute(
        select(InstanceRow).where(InstanceRow.media_id == media_id).order_by(InstanceRow.idx)
    ).scalars():
        boxes[row.label_id].append(
            (
                row.timestamp_ms,
                Instance(
                    BoundingBox(row.left, row.top, row.width, row.height), row.confidence_x100 / 100
                ),
            )
        )

    def make(label_id: int, confidence_x100: int, instances: tuple[Instance, ...]) -> DetectedLabel:
        parents, aliases, categories = taxonomy.get(label_id, ((), (), ()))
        return DetectedLabel(
            names[label_id], confidence_x100 / 100, instances, parents, aliases, categories
        )

    labels: list[DetectedLabel] = []
    moments: list[Moment] = []
    is_video = media is not None and media.kind == KIND_VIDEO
    if is_video:
        for moment_row in session.execute(
            select(VideoMoment)
            .where(VideoMoment.media_id == media_id, VideoMoment.confidence_x100 >= threshold)
            .order_by(VideoMoment.timestamp_ms)
        ).scalars():
            if moment_row.label_id not in names:
                continue
            at = tuple(
                inst
                for ts, inst in boxes.get(moment_row.label_id, ())
                if ts == moment_row.timestamp_ms
            )
            moments.append(
                Moment(
                    moment_row.timestamp_ms,
                    make(moment_row.label_id, moment_row.confidence_x100, at),
                )
            )
    else:
        for det_row in det_rows:
            labels.append(
                make(
                    det_row.label_id,
                    det_row.confidence_x100,
                    tuple(inst for _, inst in boxes.get(det_row.label_id, ())),
                )
            )
    video = None
    if is_video and media is not None:
        video = VideoInfo(
            media.codec,
            media.container_format,
            media.duration_ms,
            media.frame_rate,
            media.width,
            media.height,
        )
    return LabelResult(
        labeller=provenance.labeller if provenance else "unknown",
        model_version=provenance.model_version if provenance else None,
        min_confidence=max(min_confidence, provenance.min_confidence if provenance else 0.0),
        max_labels=provenance.max_labels if provenance else None,
        labels=labels,
        moments=moments,
        width=media.width if media else None,
        height=media.height if media else None,
        video=video,
    )


def label_taxonomy(
    session: Session, label_ids: Sequence[int]
) -> dict[int, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    """label id -> (parents, aliases, categories) names."""
    if not label_ids:
        return {}
    parents: dict[int, list[str]] = defaultdict(list)
    aliases: dict[int, list[str]] = defaultdict(list)
    categories: dict[int, list[str]] = defaultdict(list)
    for label_id, name in session.execute(
        select(LabelParent.label_id, Label.name)
        .join(Label, Label.id == LabelParent.parent_id)
        .where(LabelParent.label_id.in_(label_ids))
    ):
        parents[label_id].append(name)
    for label_id, alias in session.execute(
        select(LabelAlias.label_id, LabelAlias.alias).where(LabelAlias.label_id.in_(label_ids))
    ):
        aliases[label_id].append(alias)
    for label_id, category in session.execute(
        select(LabelCategory.label_id, LabelCategory.category).where(
            LabelCategory.label_id.in_(label_ids)
        )
    ):
        categories[label_id].append(category)
    return {
        label_id: (tuple(parents[label_id]), tuple(aliases[label_id]), tuple(categories[label_id]))
        for label_id in label_ids
    }


# -- summary upkeep ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TotalsKey:
    kind: str
    status: str
    size_bytes: int
    duration_ms: int


def _totals_key(media: Media) -> _TotalsKey:
    return _TotalsKey(
        media.kind, media.status, int(media.size_bytes or 0), int(media.duration_ms or 0)
    )


# Upserts of the summary tables. One SQL text serves SQLite and PostgreSQL alike (both speak
# INSERT .. ON CONFLICT .. DO UPDATE), and unlike the dialect insert() constructs it is compiled
# once and cached: these run several times for every object written.
_UPSERT_TOTALS = text(
    "INSERT INTO media_totals (kind, status, media_count, size_bytes, duration_ms) "
    "VALUES (:kind, :status, :media_count, :size_bytes, :duration_ms) "
    "ON CONFLICT (kind, status) DO UPDATE SET "
    "media_count = media_totals.media_count + excluded.media_count, "
    "size_bytes = media_totals.size_bytes + excluded.size_bytes, "
    "duration_ms = media_totals.duration_ms + excluded.duration_ms"
)
_UPSERT_LABEL_STATS = text(
    "INSERT INTO label_stats (label_id, media_count, image_count, video_count, detection_count, "
    "confidence_sum_x100) VALUES (:label_id, :media_count, :image_count, :video_count, "
    ":detection_count, :confidence_sum_x100) "
    "ON CONFLICT (label_id) DO UPDATE SET "
    "media_count = label_stats.media_count + excluded.media_count, "
    "image_count = label_stats.image_count + excluded.image_count, "
    "video_count = label_stats.video_count + excluded.video_count, "
    "detection_count = label_stats.detection_count + excluded.detection_count, "
    "confidence_sum_x100 = label_stats.confidence_sum_x100 + excluded.confidence_sum_x100"
)
_UPSERT_HISTOGRAM = text(
    "INSERT INTO label_histograms (label_id, bin, media_count) VALUES (:label_id, :bin, :media_count) "
    "ON CONFLICT (label_id, bin) DO UPDATE SET "
    "media_count = label_histograms.media_count + excluded.media_count"
)


def _move_totals(session: Session, before: _TotalsKey | None, after: _TotalsKey | None) -> None:
    if before == after:
        return
    changes: list[dict[str, Any]] = []
    if before is not None:
        changes.append(
            {
                "kind": before.kind,
                "status": before.status,
                "media_count": -1,
                "size_bytes": -before.size_bytes,
                "duration_ms": -before.duration_ms,
            }
        )
    if after is not None:
        changes.append(
            {
                "kind": after.kind,
                "status": after.status,
                "media_count": 1,
                "size_bytes": after.size_bytes,
                "duration_ms": after.duration_ms,
            }
        )
    # One lock order for concurrent writers (PostgreSQL would otherwise deadlock now and then).
    for change in sorted(changes, key=lambda c: (c["kind"], c["status"])):
        session.execute(_UPSERT_TOTALS, change)


def _apply_label_stats(
    session: Session, kind: str, rows: Sequence[dict[str, Any]], sign: int
) -> None:
    """Add (sign=1) or remove (sign=-1) one media item's detections from the label summaries."""
    if not rows:
        return
    ordered = sorted(rows, key=lambda r: r["label_id"])  # one lock order for concurrent writers
    is_video = kind == KIND_VIDEO
    session.execute(
        _UPSERT_LABEL_STATS,
        [
            {
                "label_id": r["label_id"],
                "media_count": sign,
                "image_count": 0 if is_video else sign,
                "video_count": sign if is_video else 0,
                "detection_count": sign * r["detection_count"],
                "confidence_sum_x100": sign * r["confidence_x100"],
            }
            for r in ordered
        ],
    )
    session.execute(
        _UPSERT_HISTOGRAM,
        [
            {
                "label_id": r["label_id"],
                "bin": histogram_bin(r["confidence_x100"]),
                "media_count": sign,
            }
            for r in ordered
        ],
    )


def _remove_labels(session: Session, media: Media) -> None:
    """Delete a media item's labels, moments and boxes, and take them out of the summaries."""
    old = [
        {"label_id": label_id, "confidence_x100": conf, "detection_count": count}
        for label_id, conf, count in session.execute(
            select(Detection.label_id, Detection.confidence_x100, Detection.detection_count).where(
                Detection.media_id == media.id
            )
        )
    ]
    if not old:
        return
    _apply_label_stats(session, media.kind, old, -1)
    for model in (Detection, InstanceRow, VideoMoment, VideoSegment):
        session.execute(delete(model).where(model.media_id == media.id))  # type: ignore[attr-defined]


# -- writing ---------------------------------------------------------------------------------------


def _apply_object(media: Media, obj: SourceObject) -> None:
    media.etag = obj.etag
    media.size_bytes = obj.size_bytes
    media.last_modified_at = obj.last_modified_at
    media.storage_class = obj.storage_class
    media.version_id = obj.version_id


def upsert_media(session: Session, obj: SourceObject, kind: str) -> tuple[Media, _TotalsKey | None]:
    """The media row for `obj` (created when new), and its totals key before any change."""
    media = get_media(session, obj.source, obj.bucket, obj.key, for_update=True)
    if media is None:
        return _add_media(session, obj, kind), None
    return media, _totals_key(media)


def _add_media(session: Session, obj: SourceObject, kind: str, **extra: Any) -> Media:
    """A new pending media row for `obj` (with `extra` columns), flushed."""
    media = Media(
        source=obj.source,
        bucket=obj.bucket,
        key=obj.key,
        kind=kind,
        status=STATUS_PENDING,
        attempts=0,
        size_bytes=obj.size_bytes,
        first_seen_at=utcnow(),
        **extra,
    )
    _apply_object(media, obj)
    session.add(media)
    session.flush()
    return media


def insert_pending(session: Session, obj: SourceObject, kind: str, **extra: Any) -> Media:
    """Insert a new pending row for `obj` (with `extra` columns, e.g. a claim).

    A plain INSERT: raises IntegrityError when the row exists, so of several processes racing
    to record the same new object exactly one succeeds.
    """
    media = _add_media(session, obj, kind, **extra)
    _move_totals(session, None, _totals_key(media))
    return media


def record_pending(session: Session, obj: SourceObject, kind: str) -> Media:
    """Record (or update) an object that waits for labelling (a video before its job)."""
    media, before = upsert_media(session, obj, kind)
    if before is not None and media.etag != obj.etag:
        _remove_labels(session, media)
        media.job_id = None
        media.job_started_at = None
        media.job_key = None
    _apply_object(media, obj)
    media.kind = kind
    media.status = STATUS_PENDING
    media.error_code = None
    media.error_message = None
    session.flush()
    _move_totals(session, before, _totals_key(media))
    return media


def _label_rows(
    media_id: int, result: LabelResult, ids: dict[str, int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for detections, instances, moments and segments of one result."""
    detections: dict[int, dict[str, Any]] = {}
    instances: list[dict[str, Any]] = []
    moments: dict[tuple[int, int], dict[str, Any]] = {}
    next_idx: dict[int, int] = defaultdict(int)

    def add_instances(label_id: int, items: Iterable[Instance], timestamp_ms: int | None) -> None:
        for inst in items:
            instances.append(
                {
                    "media_id": media_id,
                    "label_id": label_id,
                    "idx": next_idx[label_id],
                    "timestamp_ms": timestamp_ms,
                    "confidence_x100": to_x100(inst.confidence),
                    "left": inst.box.left,
                    "top": inst.box.top,
                    "width": inst.box.width,
                    "height": inst.box.height,
                }
            )
            next_idx[label_id] += 1

    for label in result.labels:
        label_id = ids[label.name]
        conf = to_x100(label.confidence)
        row = detections.get(label_id)
        if row is None:
            row = detections[label_id] = {
                "media_id": media_id,
                "label_id": label_id,
                "confidence_x100": conf,
                "instance_count": 0,
                "detection_count": 0,
            }
        row["confidence_x100"] = max(row["confidence_x100"], conf)
        row["instance_count"] += len(label.instances)
        row["detection_count"] = max(1, row["instance_count"])
        add_instances(label_id, label.instances, None)

    for moment in result.moments:
        label_id = ids[moment.label.name]
        conf = to_x100(moment.label.confidence)
        count = len(moment.label.instances)
        key = (label_id, moment.timestamp_ms)
        existing = moments.get(key)
        if existing is None:
            moments[key] = {
                "media_id": media_id,
                "label_id": label_id,
                "timestamp_ms": moment.timestamp_ms,
                "confidence_x100": conf,
                "instance_count": count,
            }
        else:
            existing["confidence_x100"] = max(existing["confidence_x100"], conf)
            existing["instance_count"] += count
        add_instances(label_id, moment.label.instances, moment.timestamp_ms)
    segments: list[dict[str, Any]] = []
    by_label: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in moments.values():
        by_label[row["label_id"]].append(row)
    for label_id, rows in by_label.items():
        rows.sort(key=lambda r: r["timestamp_ms"])
        det = detections.setdefault(
            label_id,
            {
                "media_id": media_id,
                "label_id": label_id,
                "confidence_x100": 0,
                "instance_count": 0,
                "detection_count": 0,
            },
        )
        det["confidence_x100"] = max(
            [det["confidence_x100"], *(r["confidence_x100"] for r in rows)]
        )
        det["instance_count"] = max([det["instance_count"], *(r["instance_count"] for r in rows)])
        det["detection_count"] = len(rows)
        for start, end, best in merge_segments(
            [(r["timestamp_ms"], r["confidence_x100"]) for r in rows]
        ):
            segments.append(
                {
                    "media_id": media_id,
                    "label_id": label_id,
                    "start_ms": start,
                    "end_ms": end,
                    "confidence_x100": best,
                }
            )
    return list(detections.values()), instances, list(moments.values()), segments


def merge_segments(
    points: Sequence[tuple[int, int]], max_gap_ms: int = SEGMENT_GAP_MS
) -> list[tuple[int, int, int]]:
    """Sorted (timestamp_ms, confidence) moments -> (start_ms, end_ms, best confidence) spans."""
    spans: list[tuple[int, int, int]] = []
    for ts, conf in points:
        if spans and ts - spans[-1][1] <= max_gap_ms:
            start, _, best = spans[-1]
            spans[-1] = (start, ts, max(best, conf))
        else:
            spans.append((ts, ts, conf))
    return spans


def write_labels(session: Session, media: Media, result: LabelResult) -> None:
    """Insert one result's labels for a media item whose old labels are already gone."""
    all_labels = list(result.labels) + [m.label for m in result.moments]
    ids = vocabulary.ids(session, all_labels)
    detections, instances, moments, segments = _label_rows(media.id, result, ids)
    for model, rows in (
        (Detection, detections),
        (InstanceRow, instances),
        (VideoMoment, moments),
        (VideoSegment, segments),
    ):
        if rows:
            session.execute(model.__table__.insert(), rows)  # type: ignore[attr-defined]
    _apply_label_stats(session, media.kind, detections, 1)


def store_result(
    session: Session,
    obj: SourceObject,
    kind: str,
    result: LabelResult,
    *,
    sync_run_id: int | None,
    reused_from_media_id: int | None = None,
) -> Media:
    """Replace the object's labels with `result` and mark it labelled, atomically."""
    try:
        media, before = upsert_media(session, obj, kind)
        _remove_labels(session, media)
        _apply_object(media, obj)
        media.kind = kind
        media.status = STATUS_LABELLED
        media.error_code = None
        media.error_message = None
        media.attempts = (media.attempts or 0) + 1
        media.labelled_at = utcnow()
        media.claimed_by = None
        media.claim_expires_at = None
        if result.width:
            media.width = result.width
            media.height = result.height
        if result.video is not None:
            info = result.video
            media.codec = info.codec
            media.container_format = info.container_format
            media.duration_ms = info.duration_ms
            media.frame_rate = info.frame_rate
            media.width = info.width or media.width
            media.height = info.height or media.height
        session.flush()
        write_labels(session, media, result)
        session.add(
            LabelResultRow(
                media_id=media.id,
                labeller=result.labeller,
                model_version=result.model_version,
                min_confidence=result.min_confidence,
                max_labels=result.max_labels,
                sync_run_id=sync_run_id,
                reused_from_media_id=reused_from_media_id,
                labelled_at=media.labelled_at,
            )
        )
        session.flush()
        _move_totals(session, before, _totals_key(media))
        return media
    except BaseException:
        vocabulary.forget()
        raise


def store_failure(session: Session, obj: SourceObject, kind: str, code: str, message: str) -> Media:
    """Record a per-object failure (code and message); labels already stored stay as they were."""
    media, before = upsert_media(session, obj, kind)
    if before is not None and before.status == STATUS_LABELLED and media.etag != obj.etag:
        # The content changed and the new content could not be labelled: the old labels are stale.
        _remove_labels(session, media)
    _apply_object(media, obj)
    media.kind = kind
    media.status = STATUS_FAILED
    media.error_code = code[:128]
    media.error_message = message[:4000]
    media.attempts = (media.attempts or 0) + 1
    media.claimed_by = None
    media.claim_expires_at = None
    session.flush()
    _move_totals(session, before, _totals_key(media))
    return media


def mark_deleted(session: Session, media_ids: Sequence[int]) -> int:
    """Mark media gone from their source: labels removed from every listing and statistic."""
    count = 0
    for media_id in media_ids:
        media = session.get(Media, media_id)
        if media is None or media.status == STATUS_DELETED:
            continue
        before = _totals_key(media)
        _remove_labels(session, media)
        media.status = STATUS_DELETED
        media.job_id = None
        session.flush()
        _move_totals(session, before, _totals_key(media))
        count += 1
    return count


def start_sync_run(session: Session, source: str, labeller: str) -> SyncRun:
    """A new sync run row."""
    run = SyncRun(source=source, labeller=labeller, started_at=utcnow(), status="running")
    session.add(run)
    session.flush()
    return run


def finish_sync_run(session: Session, run_id: int, status: str, counts: dict[str, int]) -> None:
    """Close a sync run with its final counts."""
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), **counts}
    session.execute(update(SyncRun).where(SyncRun.id == run_id).values(**values))


def add_billing(session: Session, run_id: int | None, images: int = 0, video_ms: int = 0) -> None:
    """Count what a run paid Rekognition for."""
    if run_id is None or not (images or video_ms):
        return
    session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id)
        .values(
            billed_images=SyncRun.billed_images + images,
            billed_video_ms=SyncRun.billed_video_ms + video_ms,
        )
    )


def is_stale_sequencer(stored: str | None, incoming: str | None) -> bool:
    """True when an S3 event's sequencer is older than the one already applied to the key.

    Sequencers are hex strings comparable for one key only: right-pad the shorter with zeros,
    then compare. Events without one (moto, some producers) are never stale.
    """
    if not stored or not incoming:
        return False
    width = max(len(stored), len(incoming))
    return incoming.upper().ljust(width, "0") < stored.upper().ljust(width, "0")


def record_sequencer(
    session: Session, source: str, bucket: str, key: str, sequencer: str | None
) -> None:
    """Remember the newest S3 event sequencer applied to an object's row."""
    if not sequencer:
        return
    media = get_media(session, source, bucket, key)
    if media is not None and not is_stale_sequencer(media.sequencer, sequencer):
        media.sequencer = sequencer[:64]
        session.flush()


def set_failed_pending(session: Session, media_id: int, code: str, message: str) -> None:
    """Mark an existing row failed by id (a video job that ended FAILED)."""
    media = session.get(Media, media_id)
    if media is None:
        return
    before = _totals_key(media)
    media.status = STATUS_FAILED
    media.error_code = code[:128]
    media.error_message = message[:4000]
    media.attempts = (media.attempts or 0) + 1
    session.flush()
    _move_totals(session, before, _totals_key(media))


__all__ = [
    "STATUS_DELETED",
    "STATUS_FAILED",
    "STATUS_LABELLED",
    "STATUS_PENDING",
    "StoredMedia",
    "add_billing",
    "find_reusable",
    "finish_sync_run",
    "get_media",
    "insert_pending",
    "load_key_range",
    "load_result",
    "mark_deleted",
    "merge_segments",
    "record_pending",
    "start_sync_run",
    "store_failure",
    "store_result",
    "stored_media",
    "touch_media",
]


# -- video jobs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoJob:
    """A video's asynchronous Rekognition job, as stored."""

    job_id: str | None
    job_key: str | None
    started_at: datetime | None


def get_video_job(session: Session, media_id: int) -> VideoJob:
    """The stored job of a video (all None when no job was started)."""
    row = session.execute(
        select(Media.job_id, Media.job_key, Media.job_started_at).where(Media.id == media_id)
    ).one_or_none()
    if row is None:
        return VideoJob(None, None, None)
    return VideoJob(row.job_id, row.job_key, row.job_started_at)


def set_video_job(
    session: Session,
    media_id: int,
    *,
    job_id: str | None,
    job_key: str | None,
    started_at: datetime | None,
) -> None:
    """Store (or clear, with None) the job a video is being labelled by; commit it at once."""
    session.execute(
        update(Media)
        .where(Media.id == media_id)
        .values(job_id=job_id, job_key=job_key, job_started_at=started_at)
    )
