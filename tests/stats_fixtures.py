"""A small catalogue written through catalog.store, with its expected state kept beside it.

Tests compute statistics from `Library.expected` in plain Python and compare them with what
catalog.stats reads from the summary tables: the two are derived independently.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from catalog.labelling import BoundingBox, DetectedLabel, Instance, LabelResult, Moment, VideoInfo
from catalog.sources import SourceObject
from catalog.store.media import (
    add_billing,
    mark_deleted,
    record_pending,
    store_failure,
    store_result,
)
from catalog.store.reads import get_media
from catalog.store.runs import start_sync_run
from catalog.store.schema import STATUS_FAILED, STATUS_LABELLED, STATUS_PENDING, Media

BUCKET = "media-library"
VOCABULARY = ["Person", "Car", "Dog", "Cat", "Tree", "Outdoors", "Building", "Sky", "Beach"]
BOXED = {"Person", "Car", "Dog", "Cat"}


@dataclass
class Expected:
    """What one media item should look like in the catalogue."""

    key: str
    kind: str
    status: str
    modified: datetime
    size_bytes: int
    duration_ms: int = 0
    # label -> (best confidence x100, detection count)
    labels: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class Library:
    """The written catalogue's expected final state, keyed by S3 key."""

    expected: dict[str, Expected] = field(default_factory=dict)
    billed_images: int = 0
    billed_video_ms: int = 0

    def live(self) -> list[Expected]:
        """Media not deleted."""
        return [e for e in self.expected.values() if e.status != "deleted"]

    def labelled(self) -> list[Expected]:
        """Labelled media."""
        return [e for e in self.expected.values() if e.status == STATUS_LABELLED]


def _obj(key: str, etag: str, size: int, modified: datetime) -> SourceObject:
    return SourceObject("s3", BUCKET, key, size, etag, modified)


def _image_result(rng: random.Random) -> tuple[LabelResult, dict[str, tuple[int, int]]]:
    labels = []
    expected: dict[str, tuple[int, int]] = {}
    for name in rng.sample(VOCABULARY, rng.randint(1, 5)):
        conf_x100 = rng.randint(5000, 10000)
        boxes = rng.randint(0, 3) if name in BOXED else 0
        instances = tuple(
            Instance(BoundingBox(0.1 * i, 0.1, 0.2, 0.3), rng.randint(5000, conf_x100) / 100)
            for i in range(boxes)
        )
        labels.append(DetectedLabel(name, conf_x100 / 100, instances))
        expected[name] = (conf_x100, max(1, boxes))
    result = LabelResult("rekognition", "3.0", 50.0, labels=labels, width=640, height=480)
    return result, expected


def _video_result(
    rng: random.Random, duration_ms: int
) -> tuple[LabelResult, dict[str, tuple[int, int]]]:
    moments = []
    best: dict[str, int] = {}
    stamps: dict[str, set[int]] = {}
    for name in rng.sample(VOCABULARY, rng.randint(1, 4)):
        for ts in sorted(rng.sample(range(0, duration_ms, 500), rng.randint(1, 6))):
            conf_x100 = rng.randint(5000, 10000)
            boxes = (
                (Instance(BoundingBox(0.2, 0.2, 0.3, 0.3), conf_x100 / 100),)
                if name in BOXED
                else ()
            )
            moments.append(Moment(ts, DetectedLabel(name, conf_x100 / 100, boxes)))
            best[name] = max(best.get(name, 0), conf_x100)
            stamps.setdefault(name, set()).add(ts)
    moments.sort(key=lambda m: m.timestamp_ms)
    result = LabelResult(
        "rekognition-video",
        "3.0",
        50.0,
        moments=moments,
        video=VideoInfo("h264", "mp4", duration_ms, 25.0, 320, 240),
        width=320,
        height=240,
    )
    return result, {name: (best[name], len(stamps[name])) for name in best}


def build_library(sessions: sessionmaker[Session], seed: int = 7) -> Library:
    """Images, videos, re-labelling, failures, pending and deletions, through catalog.store."""
    rng = random.Random(seed)
    lib = Library()
    with sessions.begin() as session:
        run = start_sync_run(session, f"s3://{BUCKET}/", "rekognition")
        run_id = run.id
    prefixes = ["2023/", "2024/", "holiday/", ""]
    for i in range(60):
        key = f"{prefixes[i % 4]}{'clips' if i % 10 == 9 else 'img'}-{i:03d}"
        is_video = i % 10 == 9
        key += ".mp4" if is_video else ".jpg"
        modified = datetime(2023 + (i % 3), 1 + (i % 12), 1 + (i % 27), 12, tzinfo=UTC)
        size = 1000 + i
        with sessions.begin() as session:
            if is_video:
                duration = rng.choice([4000, 10_000, 61_000])
                result, labels = _video_result(rng, duration)
                store_result(
                    session, _obj(key, f"e{i}", size, modified), "video", result, sync_run_id=run_id
                )
                add_billing(session, run_id, video_ms=duration)
                lib.billed_video_ms += duration
                lib.expected[key] = Expected(
                    key, "video", STATUS_LABELLED, modified, size, duration, labels
                )
            else:
                result, labels = _image_result(rng)
                store_result(
                    session, _obj(key, f"e{i}", size, modified), "image", result, sync_run_id=run_id
                )
                add_billing(session, run_id, images=1)
                lib.billed_images += 1
                lib.expected[key] = Expected(
                    key, "image", STATUS_LABELLED, modified, size, 0, labels
                )
    keys = sorted(lib.expected)
    # Re-label some images with new content and new labels.
    for key in [k for k in keys if k.endswith(".jpg")][:12]:
        e = lib.expected[key]
        with sessions.begin() as session:
            result, labels = _image_result(rng)
            store_result(
                session,
                _obj(key, f"new-{key}", e.size_bytes + 5, e.modified),
                "image",
                result,
                sync_run_id=run_id,
            )
        e.size_bytes += 5
        e.labels = labels
    # Delete some (images and a video).
    gone = [k for k in keys if k.endswith(".jpg")][20:25] + [k for k in keys if k.endswith(".mp4")][
        :1
    ]
    with sessions.begin() as session:
        ids = [get_media(session, "s3", BUCKET, k).id for k in gone]  # type: ignore[union-attr]
        mark_deleted(session, ids)
    for key in gone:
        lib.expected[key].status = "deleted"
        lib.expected[key].labels = {}
    # A labelled image whose new content failed: its old labels are gone.
    key = [k for k in keys if k.endswith(".jpg")][30]
    e = lib.expected[key]
    with sessions.begin() as session:
        store_failure(
            session,
            _obj(key, "changed", e.size_bytes, e.modified),
            "image",
            "InvalidImageFormat",
            "bad",
        )
    e.status, e.labels = STATUS_FAILED, {}
    # New objects that failed or wait.
    for j, code in enumerate(["InvalidImageFormat", "ImageTooLarge", "InvalidImageFormat"]):
        key = f"broken/bad-{j}.jpg"
        modified = datetime(2024, 5, 1, tzinfo=UTC)
        with sessions.begin() as session:
            store_failure(session, _obj(key, f"b{j}", 10, modified), "image", code, "nope")
        lib.expected[key] = Expected(key, "image", STATUS_FAILED, modified, 10)
    for j in range(2):
        key = f"queue/clip-{j}.mp4"
        modified = datetime(2024, 6, 1, tzinfo=UTC)
        with sessions.begin() as session:
            record_pending(session, _obj(key, f"p{j}", 20, modified), "video")
        lib.expected[key] = Expected(key, "video", STATUS_PENDING, modified, 20)
    # Re-label a video (same key, new moments).
    key = next(k for k in keys if k.endswith(".mp4") and k not in gone)
    e = lib.expected[key]
    with sessions.begin() as session:
        result, labels = _video_result(rng, e.duration_ms)
        store_result(
            session, _obj(key, "v2", e.size_bytes, e.modified), "video", result, sync_run_id=run_id
        )
    e.labels = labels
    return lib


def media_ids(session: Session, keys: list[str]) -> list[int]:
    """Ids of media by key."""
    from sqlalchemy import select

    return list(session.execute(select(Media.id).where(Media.key.in_(keys))).scalars())
