"""Revision 0003 upgrades a catalogue made before it: its media and labels stay, and text can
then be stored and searched through the new full-text index."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from catalog.labelling import BoundingBox, DetectedText, TextResult
from catalog.read.search import search
from catalog.sources import SourceObject
from catalog.store.engine import alembic_config, make_engine, make_sessionmaker, upgrade_to_head
from catalog.store.media import store_result
from catalog.store.reads import load_result


def test_upgrade_from_0001_keeps_data_and_indexes_new_text(db_url):
    engine = make_engine(db_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(engine, connection), "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO media (id, source, bucket, key, etag, size_bytes, kind, status, "
                "attempts, first_seen_at, updated_at) VALUES (1, 's3', 'lib', 'old/car.jpg', "
                "'e1', 10, 'image', 'labelled', 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text("INSERT INTO labels (id, name, name_folded) VALUES (7, 'Car', 'car')")
        )
        connection.execute(
            text(
                "INSERT INTO detections (label_id, media_id, confidence_x100, instance_count, "
                "detection_count) VALUES (7, 1, 9100, 0, 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO sync_runs (id, source, started_at, status, labeller, listed, "
                "labelled, reused, unchanged, skipped, failed, deleted, pending, billed_images, "
                "billed_video_ms) VALUES (1, 's3://lib/', '2026-01-01 00:00:00', 'finished', "
                "'rekognition', 1, 1, 0, 0, 0, 0, 0, 0, 1, 0)"
            )
        )
    before, after = upgrade_to_head(engine)
    assert before == "0001" and after is not None and after != "0001"
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        assert [h.key for h in search(session, "Car > 90").hits] == ["old/car.jpg"]
        assert [label.name for label in load_result(session, 1).labels] == ["Car"]
        billed = session.execute(text("SELECT billed_text_images FROM sync_runs")).scalar()
        assert billed == 0
    obj = SourceObject("s3", "lib", "old/car.jpg", 10, "e1")
    line = DetectedText("Taxi Rank", "LINE", 97.0, BoundingBox(0.1, 0.1, 0.3, 0.1))
    with sessions.begin() as session:
        result = load_result(session, 1)
        store_result(
            session,
            obj,
            "image",
            result,
            sync_run_id=None,
            text=TextResult("rekognition", "3.0", [line]),
        )
    with sessions() as session:
        assert [h.key for h in search(session, "Car AND text:rank").hits] == ["old/car.jpg"]
