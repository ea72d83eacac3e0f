"""The write path: media rows, label replacement, failures, deletions and sync runs.

Every function takes the caller's session and does not commit: the caller frames one
transaction per object (`with sessions.begin() as session:`), so a labelling result, its
labels and the summary tables change together or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from catalog.labelling import Instance, LabelResult, TextResult
from catalog.sources import SourceObject
from catalog.store.alerts import forget_matches
from catalog.store.bitmap_build import note_changed
from catalog.store.reads import get_media
from catalog.store.runs import add_to_run
from catalog.store.schema import (
    STATUS_DELETED,
    STATUS_FAILED,
    STATUS_LABELLED,
    STATUS_PENDING,
    Detection,
    Media,
    VideoMoment,
    VideoSegment,
    utcnow,
)
from catalog.store.schema import Instance as InstanceRow
from catalog.store.schema import LabelResult as LabelResultRow
from catalog.store.summaries import SummaryChanges, _totals_key, _TotalsKey
from catalog.store.text import remove_text, store_text
from catalog.store.units import SEGMENT_GAP_MS, to_x100
from catalog.store.vocabulary import vocabulary


def _remove_labels(session: Session, media: Media, changes: SummaryChanges) -> None:
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
    changes.labels(media.kind, old, -1)
    for model in (Detection, InstanceRow, VideoMoment, VideoSegment):
        session.execute(delete(model).where(model.media_id == media.id))


def _forget_content(session: Session, media: Media, changes: SummaryChanges) -> None:
    """Remove what its old content gave the item: labels (and their summaries), matches, text."""
    _remove_labels(session, media, changes)
    forget_matches(session, media.id)
    remove_text(session, media.id)


def _settle(
    session: Session, media: Media, before: _TotalsKey | None, changes: SummaryChanges
) -> None:
    """Flush the changed row, move it between the totals and mark it changed for the bitmaps."""
    session.flush()
    changes.move(before, _totals_key(media))
    note_changed(session, media.id)


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
    changes = SummaryChanges()
    _settle(session, media, None, changes)
    changes.apply(session)
    return media


def record_pending(session: Session, obj: SourceObject, kind: str) -> Media:
    """Record (or update) an object that waits for labelling (a video before its job)."""
    media, before = upsert_media(session, obj, kind)
    changes = SummaryChanges()
    if before is not None and media.etag != obj.etag:
        _forget_content(session, media, changes)
        media.job_id = None
        media.text_job_id = None
        media.job_started_at = None
        media.job_key = None
    _apply_object(media, obj)
    media.kind = kind
    media.status = STATUS_PENDING
    media.error_code = None
    media.error_message = None
    _settle(session, media, before, changes)
    changes.apply(session)
    return media


def _label_rows(
    media_id: int, result: LabelResult, ids: dict[str, int], taxonomy_ids: dict[str, int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for detections, instances, moments and segments of one result.

    `taxonomy_ids`: label name -> the taxonomy of its first occurrence in the result.
    """
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
                "taxonomy_id": taxonomy_ids.get(label.name),
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
    names = {ids[moment.label.name]: moment.label.name for moment in result.moments}
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
                "taxonomy_id": taxonomy_ids.get(names[label_id]),
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


def write_labels(
    session: Session, media: Media, result: LabelResult, changes: SummaryChanges
) -> None:
    """Insert one result's labels for a media item whose old labels are already gone."""
    all_labels = list(result.labels) + [m.label for m in result.moments]
    ids = vocabulary.ids(session, all_labels)
    taxonomy_ids = vocabulary.taxonomy_ids(session, all_labels, result.model_version, ids)
    detections, instances, moments, segments = _label_rows(media.id, result, ids, taxonomy_ids)
    for model, rows in (
        (Detection, detections),
        (InstanceRow, instances),
        (VideoMoment, moments),
        (VideoSegment, segments),
    ):
        if rows:
            session.execute(model.__table__.insert(), rows)  # type: ignore[attr-defined]
    changes.labels(media.kind, detections, 1)


def store_result(
    session: Session,
    obj: SourceObject,
    kind: str,
    result: LabelResult,
    *,
    sync_run_id: int | None,
    reused_from_media_id: int | None = None,
    text: TextResult | None = None,
) -> Media:
    """Replace the object's labels with `result` (and its text with `text`), atomically.

    Without `text`, stored text stays when the content is the same and goes when it changed.
    """
    try:
        media, before = upsert_media(session, obj, kind)
        changes = SummaryChanges()
        content_changed = before is not None and media.etag != obj.etag
        if content_changed:
            forget_matches(session, media.id)  # new content: a new item for alerts
        _remove_labels(session, media, changes)
        if content_changed and text is None:
            remove_text(session, media.id)
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
        write_labels(session, media, result, changes)
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
        if text is not None:
            store_text(
                session,
                media,
                text,
                sync_run_id=sync_run_id,
                reused_from_media_id=reused_from_media_id,
            )
        _settle(session, media, before, changes)
        changes.apply(session)
        return media
    except BaseException:
        vocabulary.forget()
        raise


def store_failure(session: Session, obj: SourceObject, kind: str, code: str, message: str) -> Media:
    """Record a per-object failure (code and message); labels already stored stay as they were."""
    media, before = upsert_media(session, obj, kind)
    changes = SummaryChanges()
    if before is not None and before.status == STATUS_LABELLED and media.etag != obj.etag:
        # The content changed and the new content could not be labelled: the old labels are stale.
        _forget_content(session, media, changes)
    _apply_object(media, obj)
    media.kind = kind
    media.status = STATUS_FAILED
    media.error_code = code[:128]
    media.error_message = message[:4000]
    media.attempts = (media.attempts or 0) + 1
    media.claimed_by = None
    media.claim_expires_at = None
    _settle(session, media, before, changes)
    changes.apply(session)
    return media


def mark_deleted(session: Session, media_ids: Sequence[int]) -> int:
    """Mark media gone from their source: labels removed from every listing and statistic."""
    count = 0
    changes = SummaryChanges()  # applied once: one lock order however many items
    for media_id in media_ids:
        media = session.get(Media, media_id)
        if media is None or media.status == STATUS_DELETED:
            continue
        before = _totals_key(media)
        _forget_content(session, media, changes)
        media.status = STATUS_DELETED
        media.job_id = None
        media.text_job_id = None
        _settle(session, media, before, changes)
        count += 1
    changes.apply(session)
    return count


def add_billing(session: Session, run_id: int | None, images: int = 0, video_ms: int = 0) -> None:
    """Count what a run paid Rekognition for."""
    add_to_run(session, run_id, billed_images=images, billed_video_ms=video_ms)


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
