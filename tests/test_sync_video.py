"""Video sync against moto S3 and the Rekognition double: jobs, moments, failures, transcoding."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from catalog.store.schema import Label, Media, VideoMoment, VideoSegment
from tests.factories import RED, car_video, make_video

ROOT = "s3://media-library/clips/"
FAST = ("--no-progress", "--poll-interval", "0.01")


def sync(invoke: Any, *extra: str, catch_exceptions: bool = False) -> Any:
    return invoke("sync", ROOT, *FAST, *extra, catch_exceptions=catch_exceptions)


def media_row(sessions: Any, key: str) -> Media:
    with sessions() as session:
        return session.execute(select(Media).where(Media.key == key)).scalar_one()


def moments_of(sessions: Any, key: str) -> dict[str, list[int]]:
    with sessions() as session:
        rows = session.execute(
            select(Label.name, VideoMoment.timestamp_ms)
            .join(VideoMoment, VideoMoment.label_id == Label.id)
            .join(Media, Media.id == VideoMoment.media_id)
            .where(Media.key == key)
            .order_by(Label.name, VideoMoment.timestamp_ms)
        ).all()
    found: dict[str, list[int]] = {}
    for name, ts in rows:
        found.setdefault(name, []).append(ts)
    return found


def segments_of(sessions: Any, key: str, label: str) -> list[tuple[int, int]]:
    with sessions() as session:
        return [
            (row.start_ms, row.end_ms)
            for row in session.execute(
                select(VideoSegment.start_ms, VideoSegment.end_ms)
                .join(Label, Label.id == VideoSegment.label_id)
                .join(Media, Media.id == VideoSegment.media_id)
                .where(Media.key == key, Label.name == label)
            )
        ]


@pytest.mark.parametrize(("kind", "key"), [("mp4", "clips/car.mp4"), ("mov", "clips/car.mov")])
def test_h264_video_is_labelled_with_moments_and_segments(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any, kind: str, key: str
) -> None:
    put(key, car_video(kind))
    result = sync(invoke)
    assert result.exit_code == 0, result.output
    moments = moments_of(sessions, key)
    assert moments["Car"] == [500, 1000]
    assert moments["Person"] == [0, 500, 1000, 1500]
    assert segments_of(sessions, key, "Car") == [(500, 1000)]
    row = media_row(sessions, key)
    assert (row.status, row.codec, row.duration_ms, row.width, row.height) == (
        "labelled",
        "h264",
        2000,
        160,
        120,
    )
    assert row.frame_rate == 10.0
    assert row.job_id is not None and row.job_key == key
    assert rekognition_double.count("StartLabelDetection") == 1


def test_video_moments_carry_boxes_at_their_timestamps(
    invoke: Any, put: Any, rekognition_double: Any
) -> None:
    put("clips/car.mp4", car_video())
    assert sync(invoke).exit_code == 0
    shown = invoke("show", "s3://media-library/clips/car.mp4", "--format", "json")
    data = json.loads(shown.stdout)
    car = next(label for label in data["labels"] if label["name"] == "Car")
    assert car["timestamps_ms"] == [500, 1000]
    assert [i["timestamp_ms"] for i in car["instances"]] == [500, 1000]
    assert car["segments"] == [{"start_ms": 500, "end_ms": 1000, "confidence": 99.5}]
    assert data["video"]["codec"] == "h264"


@pytest.mark.parametrize(
    ("kind", "key", "code", "message"),
    [
        (
            "mpeg4",
            "clips/old.mp4",
            "UnsupportedCodec",
            "unsupported codec mpeg4; rerun with --transcode",
        ),
        (
            "webm",
            "clips/web.webm",
            "UnsupportedCodec",
            "unsupported codec vp9; rerun with --transcode",
        ),
    ],
)
def test_unsupported_video_fails_before_any_job(
    invoke: Any,
    put: Any,
    sessions: Any,
    rekognition_double: Any,
    kind: str,
    key: str,
    code: str,
    message: str,
) -> None:
    put(key, make_video(kind, blocks=[(RED, (10, 10, 80, 70), 0.0, 2.0)]))
    result = sync(invoke)
    assert result.exit_code == 1
    row = media_row(sessions, key)
    assert (row.status, row.error_code, row.error_message) == ("failed", code, message)
    assert rekognition_double.count("StartLabelDetection") == 0


def test_h264_in_webm_fails_as_unsupported_container(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    import io

    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for index in range(10):
            frame = av.VideoFrame(160, 120, "yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    put("clips/h264.mkv", buffer.getvalue())
    assert sync(invoke).exit_code == 1
    row = media_row(sessions, "clips/h264.mkv")
    assert row.error_code == "UnsupportedContainer"
    assert row.error_message == "unsupported container Matroska / WebM; rerun with --transcode"


@pytest.mark.parametrize(("kind", "key"), [("mpeg4", "clips/old.mp4"), ("webm", "clips/web.webm")])
def test_transcode_labels_a_copy_and_records_on_the_original(
    invoke: Any, put: Any, s3: Any, sessions: Any, rekognition_double: Any, kind: str, key: str
) -> None:
    put(key, make_video(kind, blocks=[(RED, (10, 10, 80, 70), 0.5, 1.5)]))
    result = sync(invoke, "--transcode")
    assert result.exit_code == 0, result.output
    copy_key = f"catalog-transcoded/{key}.mp4"
    row = media_row(sessions, key)
    assert (row.status, row.job_key) == ("labelled", copy_key)
    assert row.codec == ("mpeg4" if kind == "mpeg4" else "vp9")  # the original's codec
    assert moments_of(sessions, key)["Car"] == [500, 1000]
    copy = s3.head_object(Bucket="media-library", Key=copy_key)
    assert copy["ContentType"] == "video/mp4"
    with sessions() as session:
        keys = session.execute(select(Media.key)).scalars().all()
    assert keys == [key]  # the copy itself is not catalogued


def test_transcoded_copies_are_skipped_when_listing(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    put("catalog-transcoded/clips/x.webm.mp4", car_video())
    result = invoke(
        "sync", "s3://media-library/", *FAST, "--format", "json", catch_exceptions=False
    )
    assert json.loads(result.stdout)["skipped_reasons"] == {"transcoded copy": 1}
    assert rekognition_double.count("StartLabelDetection") == 0


def test_empty_video_fails_with_a_reason(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    put("clips/empty.mp4", b"")
    assert sync(invoke).exit_code == 1
    row = media_row(sessions, "clips/empty.mp4")
    assert (row.status, row.error_code) == ("failed", "EmptyObject")
    assert rekognition_double.count("StartLabelDetection") == 0


def test_corrupt_video_fails_with_a_reason(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    put("clips/broken.mp4", car_video()[:700])
    assert sync(invoke).exit_code == 1
    row = media_row(sessions, "clips/broken.mp4")
    assert row.error_code == "CorruptVideo"
    assert row.error_message.startswith("the video cannot be read")


def test_a_failed_job_records_the_status_message(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    put("clips/car.mp4", car_video())
    put("clips/other.mp4", car_video("mov"))
    rekognition_double.fail_jobs["clips/car.mp4"] = "Unsupported codec/format."
    result = sync(invoke, "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["failures"] == [
        {
            "uri": "s3://media-library/clips/car.mp4",
            "kind": "video",
            "code": "VideoJobFailed",
            "message": "Unsupported codec/format.",
        }
    ]
    assert report["labelled"] == 1
    assert media_row(sessions, "clips/other.mp4").status == "labelled"


def test_results_are_read_over_every_page(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    rekognition_double.max_results_cap = 3
    put("clips/car.mp4", car_video())
    assert sync(invoke).exit_code == 0
    gets = [body for op, body in rekognition_double.calls if op == "GetLabelDetection"]
    assert sum(1 for body in gets if body.get("NextToken")) == 4  # 14 labels in pages of 3
    assert all(body.get("SortBy") == "TIMESTAMP" for body in gets)
    moments = moments_of(sessions, "clips/car.mp4")
    assert sum(len(v) for v in moments.values()) == 14


def test_jobs_beyond_the_quota_wait_for_a_free_slot(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    rekognition_double.max_concurrent_jobs = 1
    rekognition_double.video_polls = 2
    for name in ("a", "b", "c"):
        put(f"clips/{name}.mp4", car_video())
    result = sync(invoke, "--no-reuse")
    assert result.exit_code == 0, result.output
    assert rekognition_double.limit_exceeded > 0
    assert len(rekognition_double.jobs) == 3
    for name in ("a", "b", "c"):
        assert media_row(sessions, f"clips/{name}.mp4").status == "labelled"


def test_max_video_jobs_bounds_jobs_running_at_once(
    invoke: Any, put: Any, rekognition_double: Any, monkeypatch: Any
) -> None:
    rekognition_double.video_polls = 3
    seen: list[int] = []
    original = rekognition_double.op_StartLabelDetection

    def start(body: dict[str, Any]) -> dict[str, Any]:
        seen.append(rekognition_double.running_jobs())
        return original(body)

    monkeypatch.setattr(rekognition_double, "op_StartLabelDetection", start)
    for name in ("a", "b", "c", "d"):
        put(f"clips/{name}.mp4", car_video())
    assert sync(invoke, "--no-reuse", "--max-video-jobs", "2").exit_code == 0
    assert len(seen) == 4
    assert max(seen) <= 1  # a third job never started while two ran


def test_identical_video_content_is_reused_without_a_job(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    data = car_video()
    put("clips/a.mp4", data)
    assert sync(invoke).exit_code == 0
    put("clips/copy.mp4", data)
    assert sync(invoke).exit_code == 0
    assert rekognition_double.count("StartLabelDetection") == 1
    assert moments_of(sessions, "clips/copy.mp4")["Car"] == [500, 1000]


def test_resync_of_labelled_videos_calls_nothing(
    invoke: Any, put: Any, rekognition_double: Any
) -> None:
    put("clips/car.mp4", car_video())
    assert sync(invoke).exit_code == 0
    rekognition_double.calls.clear()
    assert sync(invoke).exit_code == 0
    assert rekognition_double.calls == []


def test_dry_run_estimates_video_minutes_and_cost(
    invoke: Any, put: Any, rekognition_double: Any
) -> None:
    put("clips/a.mp4", make_video(duration_s=3.0))
    put("clips/b.mov", make_video("mov", duration_s=3.0))
    result = sync(invoke, "--dry-run", "--format", "json")
    report = json.loads(result.stdout)
    assert report["would_label"] == {"images": 0, "videos": 2}
    assert report["video_minutes"] == 0.1
    assert report["estimated_cost_usd"] == 0.01
    assert rekognition_double.calls == []


def test_show_prints_a_video_timeline(invoke: Any, put: Any, rekognition_double: Any) -> None:
    put("clips/car.mp4", car_video())
    assert sync(invoke).exit_code == 0
    shown = invoke("show", "s3://media-library/clips/car.mp4", catch_exceptions=False)
    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    assert "video, labelled" in lines[1] and "2.0 s" in lines[1] and "h264" in lines[1]
    car = next(line for line in lines if line.startswith("│ Car "))
    assert "0.5–1.0s" in car and "█" in car
    person = next(line for line in lines if line.startswith("│ Person "))
    assert "0.0–1.5s" in person


def test_images_and_videos_sync_together(
    invoke: Any, put: Any, sessions: Any, rekognition_double: Any
) -> None:
    from catalog.store.schema import LabelStat
    from tests.factories import car_jpeg

    rekognition_double.video_polls = 3
    for index in range(4):
        put(f"clips/photo{index}.jpg", car_jpeg(200 + index))
    put("clips/a.mp4", car_video())
    put("clips/b.mov", car_video("mov"))
    result = sync(invoke, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["labelled"], report["pending"], report["failed"]) == (6, 0, 0)
    with sessions() as session:
        car = session.execute(
            select(LabelStat).join(Label, Label.id == LabelStat.label_id).where(Label.name == "Car")
        ).scalar_one()
    assert (car.image_count, car.video_count, car.media_count) == (4, 2, 6)
    assert car.detection_count == 4 + 2 * 2  # one box per image, two moments per video


def test_progress_events_count_running_jobs(
    put: Any, sessions: Any, clients: Any, rekognition_double: Any
) -> None:
    from catalog.ingest.sync import run_sync
    from catalog.ingest.types import SyncOptions
    from catalog.uris import parse_uri

    rekognition_double.video_polls = 4
    for name in ("a", "b", "c"):
        put(f"clips/{name}.mp4", car_video())
    events: list[Any] = []
    report = run_sync(
        parse_uri(ROOT),
        sessions=sessions,
        clients=clients,
        options=SyncOptions(max_video_jobs=2, poll_interval_s=0.01, reuse=False),
        on_event=events.append,
    )
    assert report.labelled == 3
    jobs = [event.count for event in events if event.kind == "jobs"]
    assert max(jobs) == 2 and jobs[-1] == 0
    pending = sum(event.count for event in events if event.kind == "pending")
    assert pending == 0  # every video that became pending left that state


def test_sync_help_lists_the_video_options(invoke: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich would shorten long option names
    result = invoke("sync", "--help", catch_exceptions=False)
    assert result.exit_code == 0
    for option in (
        "--max-video-jobs",
        "--transcode",
        "--transcode-prefix",
        "--notification-topic-arn",
        "--role-arn",
        "--poll-interval",
    ):
        assert option in result.stdout
