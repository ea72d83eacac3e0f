"""`catalog sync` of images: reference vs bytes, change detection, reuse, deletions, failures."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image
from sqlalchemy import func, select

from catalog.errors import NotFoundError
from catalog.ingest.sync import run_sync
from catalog.ingest.types import SyncOptions
from catalog.labelling import media as media_rules
from catalog.read.details import get_media_detail
from catalog.store.schema import Detection, LabelHistogram, LabelStat, Media, MediaTotal
from catalog.uris import parse_uri
from tests.factories import BLUE, GREEN, RED, YELLOW, car_jpeg, make_image

ROOT = "s3://media-library/"


def sync(clients, sessions, uri=ROOT, **options):
    return run_sync(
        parse_uri(uri), sessions=sessions, clients=clients, options=SyncOptions(**options), tps=None
    )


def labels_of(sessions, uri):
    with sessions() as session:
        detail = get_media_detail(session, uri)
    return {label.name: label.confidence for label in detail.labels}


def detect_calls(double):
    return [body for op, body in double.calls if op == "DetectLabels"]


def test_jpeg_and_png_go_by_s3_reference(clients, sessions, put, rekognition_double):
    put("a/car.jpg", car_jpeg())
    put("a/person.png", make_image(boxes=[(BLUE, (20, 20, 80, 120))], fmt="PNG"))
    report = sync(clients, sessions)
    assert (report.labelled, report.failed) == (2, 0)
    calls = detect_calls(rekognition_double)
    assert sorted(c["Image"]["S3Object"]["Name"] for c in calls) == ["a/car.jpg", "a/person.png"]
    assert all("Bytes" not in c["Image"] for c in calls)
    assert calls[0]["MinConfidence"] == 50.0
    assert "Car" in labels_of(sessions, "s3://media-library/a/car.jpg")
    assert "Person" in labels_of(sessions, "s3://media-library/a/person.png")


@pytest.mark.parametrize(
    "fmt,ext", [("WEBP", "webp"), ("GIF", "gif"), ("BMP", "bmp"), ("TIFF", "tif")]
)
def test_other_formats_are_converted_and_sent_as_bytes(
    clients, sessions, put, rekognition_double, fmt, ext
):
    put(f"b/dog.{ext}", make_image(boxes=[(GREEN, (10, 10, 100, 100))], fmt=fmt))
    report = sync(clients, sessions)
    assert (report.labelled, report.failed) == (1, 0)
    (call,) = detect_calls(rekognition_double)
    sent = Image.open(io.BytesIO(base64.b64decode(call["Image"]["Bytes"])))
    assert sent.format == "JPEG"
    assert "Dog" in labels_of(sessions, f"s3://media-library/b/dog.{ext}")


def test_exif_rotation_is_undone_before_sending(clients, sessions, put, rekognition_double):
    # Stored 200x100 with orientation 6 (rotate 90° clockwise to view): upright it is 100x200.
    data = make_image(200, 100, boxes=[(YELLOW, (0, 0, 50, 100))], fmt="WEBP")
    image = Image.open(io.BytesIO(data))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", exif=exif.tobytes())
    put("c/rotated.webp", buffer.getvalue())
    sync(clients, sessions)
    (call,) = detect_calls(rekognition_double)
    sent = Image.open(io.BytesIO(base64.b64decode(call["Image"]["Bytes"])))
    assert sent.size == (100, 200)


def test_jpeg_beyond_the_s3_object_limit_is_downscaled_and_sent_as_bytes(
    clients, sessions, put, rekognition_double, monkeypatch
):
    monkeypatch.setattr(media_rules, "S3OBJECT_MAX_BYTES", 20_000)
    big = make_image(800, 600, boxes=[(RED, (0, 0, 400, 600))], noise=True)
    assert len(big) > 20_000
    put("d/big.jpg", big)
    report = sync(clients, sessions)
    assert report.labelled == 1
    (call,) = detect_calls(rekognition_double)
    assert "Bytes" in call["Image"]


def test_other_files_are_skipped_and_a_broken_video_fails_with_a_reason(
    clients, sessions, put, rekognition_double
):
    put("e/clip.mp4", b"\x00\x00\x00\x18ftypmp42")
    put("e/notes.txt", b"hello")
    put("e/folder/", b"")
    report = sync(clients, sessions, poll_interval_s=0.01)
    assert report.skipped == {"not an image or video": 1}
    with sessions() as session:
        rows = session.execute(select(Media.key, Media.kind, Media.status)).all()
    assert rows == [("e/clip.mp4", "video", "failed")]
    assert report.failures[0].code
    assert detect_calls(rekognition_double) == []


def test_no_videos_skips_videos(clients, sessions, put, rekognition_double):
    put("e2/clip.mp4", b"\x00\x00\x00\x18ftypmp42")
    report = sync(clients, sessions, videos=False)
    assert report.skipped == {"videos not selected": 1}
    assert rekognition_double.calls == []


def test_archived_objects_are_skipped_not_failed(clients, sessions, put, rekognition_double):
    put("f/cold.jpg", car_jpeg(), StorageClass="GLACIER")
    put("f/deep.jpg", car_jpeg(), StorageClass="DEEP_ARCHIVE")
    report = sync(clients, sessions)
    assert report.failed == 0
    assert report.skipped == {"archived (GLACIER)": 1, "archived (DEEP_ARCHIVE)": 1}
    assert detect_calls(rekognition_double) == []


def test_resync_makes_no_rekognition_calls(clients, sessions, put, rekognition_double):
    for i in range(5):
        put(f"g/{i}.jpg", make_image(boxes=[(RED, (i, i, 100 + i, 100))]))
    assert sync(clients, sessions).labelled == 5
    rekognition_double.calls.clear()
    report = sync(clients, sessions)
    assert (report.labelled, report.unchanged, report.reused) == (0, 5, 0)
    assert rekognition_double.calls == []


def test_changed_image_labels_are_replaced(clients, sessions, put, rekognition_double):
    uri = put("h/thing.jpg", car_jpeg())
    sync(clients, sessions)
    assert "Car" in labels_of(sessions, uri)
    put("h/thing.jpg", make_image(boxes=[(BLUE, (10, 10, 90, 140))]))
    report = sync(clients, sessions)
    assert report.labelled == 1
    labels = labels_of(sessions, uri)
    assert "Person" in labels and "Car" not in labels
    with sessions() as session:
        assert _stat(session, "Car") == 0
        assert _stat(session, "Person") == 1


def _stat(session, name):
    from catalog.store.schema import Label

    value = session.execute(
        select(LabelStat.media_count)
        .join(Label, Label.id == LabelStat.label_id)
        .where(Label.name == name)
    ).scalar_one_or_none()
    return value or 0


def test_deleted_objects_are_marked_and_vanish(clients, sessions, put, s3, rekognition_double):
    keep = put("i/keep.jpg", car_jpeg())
    gone = put("i/gone.jpg", make_image(boxes=[(GREEN, (0, 0, 90, 90))]))
    put("j/other-prefix.jpg", car_jpeg())
    sync(clients, sessions, uri="s3://media-library/i/")
    s3.delete_object(Bucket="media-library", Key="i/gone.jpg")
    report = sync(clients, sessions, uri="s3://media-library/i/")
    assert report.deleted == 1
    with pytest.raises(NotFoundError), sessions() as session:
        get_media_detail(session, gone)
    assert "Car" in labels_of(sessions, keep)
    with sessions() as session:
        assert _stat(session, "Dog") == 0
        totals = dict(
            session.execute(
                select(MediaTotal.status, MediaTotal.media_count).where(MediaTotal.kind == "image")
            ).all()
        )
        assert totals["deleted"] == 1 and totals["labelled"] == 1
        hist = session.execute(select(func.sum(LabelHistogram.media_count))).scalar_one()
        assert hist == session.execute(select(func.count()).select_from(Detection)).scalar_one()


def test_deleting_everything_under_a_prefix(clients, sessions, put, s3):
    put("k/a.jpg", car_jpeg())
    put("k/b.jpg", car_jpeg(120, 100))
    sync(clients, sessions, uri="s3://media-library/k/")
    s3.delete_object(Bucket="media-library", Key="k/a.jpg")
    s3.delete_object(Bucket="media-library", Key="k/b.jpg")
    assert sync(clients, sessions, uri="s3://media-library/k/").deleted == 2


def test_copied_object_reuses_labels_without_a_call(clients, sessions, put, s3, rekognition_double):
    uri = put("l/original.jpg", car_jpeg())
    sync(clients, sessions)
    s3.copy_object(
        Bucket="media-library",
        Key="l/copy.jpg",
        CopySource={"Bucket": "media-library", "Key": "l/original.jpg"},
    )
    rekognition_double.calls.clear()
    report = sync(clients, sessions)
    assert (report.reused, report.labelled) == (1, 0)
    assert detect_calls(rekognition_double) == []
    assert labels_of(sessions, "s3://media-library/l/copy.jpg") == labels_of(sessions, uri)


def test_renamed_object_keeps_labels_and_old_key_is_deleted(
    clients, sessions, put, s3, rekognition_double
):
    put("m/old-name.jpg", car_jpeg())
    sync(clients, sessions)
    s3.copy_object(
        Bucket="media-library",
        Key="m/new-name.jpg",
        CopySource={"Bucket": "media-library", "Key": "m/old-name.jpg"},
    )
    s3.delete_object(Bucket="media-library", Key="m/old-name.jpg")
    rekognition_double.calls.clear()
    report = sync(clients, sessions)
    assert (report.reused, report.deleted, report.labelled) == (1, 1, 0)
    assert detect_calls(rekognition_double) == []


def test_identical_new_objects_in_one_run_are_labelled_once(
    clients, sessions, put, rekognition_double
):
    data = car_jpeg()
    for i in range(4):
        put(f"n/dup{i}.jpg", data)
    report = sync(clients, sessions, concurrency=4)
    assert report.labelled + report.reused == 4
    assert len(detect_calls(rekognition_double)) == 1


def _three_labels():
    return make_image(
        boxes=[(RED, (10, 10, 60, 60)), (BLUE, (80, 10, 140, 60)), (GREEN, (10, 80, 60, 140))]
    )


def test_a_capped_result_is_not_reused_for_an_uncapped_sync(
    clients, sessions, put, s3, rekognition_double
):
    put("q/original.jpg", _three_labels())
    sync(clients, sessions, max_labels=2)
    assert len(labels_of(sessions, "s3://media-library/q/original.jpg")) == 2
    s3.copy_object(
        Bucket="media-library",
        Key="q/copy.jpg",
        CopySource={"Bucket": "media-library", "Key": "q/original.jpg"},
    )
    rekognition_double.calls.clear()
    report = sync(clients, sessions, uri="s3://media-library/q/copy.jpg")
    assert (report.reused, report.labelled) == (0, 1)
    assert len(detect_calls(rekognition_double)) == 1
    assert len(labels_of(sessions, "s3://media-library/q/copy.jpg")) > 2  # uncapped: all of them


def test_an_uncapped_result_is_cut_down_for_a_capped_sync(
    clients, sessions, put, s3, rekognition_double
):
    uri = put("r/original.jpg", _three_labels())
    sync(clients, sessions)
    s3.copy_object(
        Bucket="media-library",
        Key="r/copy.jpg",
        CopySource={"Bucket": "media-library", "Key": "r/original.jpg"},
    )
    rekognition_double.calls.clear()
    report = sync(clients, sessions, uri="s3://media-library/r/copy.jpg", max_labels=2)
    assert (report.reused, report.labelled) == (1, 0)
    assert detect_calls(rekognition_double) == []
    full = sorted(labels_of(sessions, uri).items(), key=lambda item: -item[1])
    assert labels_of(sessions, "s3://media-library/r/copy.jpg") == dict(full[:2])


def test_no_reuse_calls_rekognition_again(clients, sessions, put, s3, rekognition_double):
    put("o/original.jpg", car_jpeg())
    sync(clients, sessions)
    s3.copy_object(
        Bucket="media-library",
        Key="o/copy.jpg",
        CopySource={"Bucket": "media-library", "Key": "o/original.jpg"},
    )
    rekognition_double.calls.clear()
    report = sync(clients, sessions, reuse=False)
    assert (report.reused, report.labelled) == (0, 1)


@pytest.mark.parametrize(
    "key,data,code",
    [
        (
            "p/corrupt.jpg",
            b"\xff\xd8\xff\xe0 this is not really a jpeg",
            "InvalidImageFormatException",
        ),
        ("p/empty.jpg", b"", "EmptyObject"),
        ("p/tiny.png", make_image(40, 40, fmt="PNG"), "InvalidParameterException"),
        ("p/tiny.webp", make_image(40, 40, fmt="WEBP"), "ImageTooSmall"),
        ("p/broken.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 garbage", "CorruptImage"),
    ],
)
def test_bad_images_are_recorded_as_failures_and_the_run_goes_on(
    clients, sessions, put, key, data, code
):
    put(key, data)
    put("p/good.jpg", car_jpeg())
    report = sync(clients, sessions)
    assert report.labelled == 1
    assert report.failed == 1
    assert report.failures[0].code == code
    with sessions() as session:
        row = session.execute(select(Media).where(Media.key == key)).scalar_one()
        assert (row.status, row.error_code) == ("failed", code)
        assert row.error_message


def test_failed_objects_are_not_retried_unless_asked(clients, sessions, put, rekognition_double):
    put("q/flaky.jpg", car_jpeg())
    rekognition_double.fail_keys["q/flaky.jpg"] = (
        "InvalidS3ObjectException",
        "Unable to get object metadata from S3.",
    )
    assert sync(clients, sessions).failed == 1
    rekognition_double.fail_keys.clear()
    assert sync(clients, sessions).failed == 0
    assert len(detect_calls(rekognition_double)) == 1
    report = sync(clients, sessions, retry_failed=True)
    assert (report.labelled, report.failed) == (1, 0)
    assert "Car" in labels_of(sessions, "s3://media-library/q/flaky.jpg")


def test_a_resync_says_how_many_still_failed_from_earlier_runs(invoke, put, rekognition_double):
    put("still/flaky.jpg", car_jpeg())
    put("still/fine.jpg", make_image(boxes=[(BLUE, (10, 10, 90, 90))]))
    rekognition_double.fail_keys["still/flaky.jpg"] = (
        "InvalidS3ObjectException",
        "Unable to get object metadata from S3.",
    )
    assert invoke("sync", "s3://media-library/still/", "--no-progress").exit_code == 1
    rekognition_double.fail_keys.clear()
    again = invoke("sync", "s3://media-library/still/", "--no-progress")
    assert again.exit_code == 0  # nothing new failed in this run
    assert "1 still failed from earlier runs (--retry-failed tries them again)" in again.stderr
    summary = json.loads(invoke("sync", "s3://media-library/still/", "--format", "json").stdout)
    assert (summary["failed"], summary["still_failed"]) == (0, 1)


def test_throttling_storm_ends_with_nothing_failed(clients, sessions, put, rekognition_double):
    for i in range(6):
        put(f"r/{i}.jpg", make_image(boxes=[(RED, (i, 0, 90, 90))]))
    rekognition_double.throttle_next = 6
    rekognition_double.throttle_code = "ProvisionedThroughputExceededException"
    report = sync(clients, sessions, concurrency=3)
    assert (report.labelled, report.failed) == (6, 0)
    assert rekognition_double.throttled == 6


def test_rate_capped_service_ends_with_nothing_failed(clients, sessions, put, rekognition_double):
    for i in range(20):
        put(f"s/{i}.jpg", make_image(boxes=[(BLUE, (i, 0, 90, 90))]))
    rekognition_double.rate_limit = 8
    report = sync(clients, sessions, concurrency=10)
    assert (report.labelled, report.failed) == (20, 0)
    assert rekognition_double.throttled > 0


def test_min_confidence_and_max_labels_reach_rekognition(
    clients, sessions, put, rekognition_double
):
    put("t/a.jpg", make_image(boxes=[(RED, (0, 0, 90, 90)), (BLUE, (100, 0, 190, 90))]))
    sync(clients, sessions, min_confidence=75, max_labels=2)
    (call,) = detect_calls(rekognition_double)
    assert (call["MinConfidence"], call["MaxLabels"]) == (75.0, 2)
    assert len(labels_of(sessions, "s3://media-library/t/a.jpg")) == 2


def test_dry_run_calls_nothing_and_stores_nothing(clients, sessions, put, rekognition_double):
    for i in range(3):
        put(f"u/{i}.jpg", make_image(boxes=[(RED, (i, 0, 90, 90))]))
    put("u/clip.mov", b"\x00" * 10)
    report = sync(clients, sessions, dry_run=True)
    assert (report.to_label_images, report.to_label_videos) == (3, 1)
    assert report.estimated_cost_usd == pytest.approx(0.003)
    assert rekognition_double.calls == []
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(Media)).scalar_one() == 0


def test_sync_json_summary_and_exit_code_one_on_failures(invoke, put):
    put("v/good.jpg", car_jpeg())
    put("v/bad.jpg", b"nope")
    result = invoke("sync", ROOT, "--format", "json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["labelled"] == 1 and summary["failed"] == 1
    assert summary["failures"][0]["uri"] == "s3://media-library/v/bad.jpg"
    failures = invoke("failures", "--format", "json")
    assert failures.exit_code == 0
    assert json.loads(failures.stdout) == [
        {
            "uri": "s3://media-library/v/bad.jpg",
            "kind": "image",
            "code": "InvalidImageFormatException",
            "message": "Request has invalid image format",
            "attempts": 1,
            "updated_at": json.loads(failures.stdout)[0]["updated_at"],
        }
    ]
