"""Text in stored videos: a StartTextDetection job beside the label job, its JobId stored and
resumed, every GetTextDetection page read, failures and expiry handled as for label jobs."""

from __future__ import annotations

import _thread
import json
from typing import Any

import botocore.session
from botocore.stub import Stubber
from sqlalchemy import select

from catalog.read.search import search
from catalog.store.schema import Media, TextDetection
from tests.factories import car_video

ROOT = "s3://media-library/clips/"
FAST = ("--no-progress", "--poll-interval", "0.01")
TEXT = ("--features", "labels,text")
SHOWN = [
    (0, "DEPARTURES", (0.1, 0.1, 0.5, 0.1)),
    (500, "DEPARTURES", (0.1, 0.1, 0.5, 0.1)),
    (1000, "GATE 12 BOARDING", (0.1, 0.3, 0.6, 0.1)),
]


def rows(sessions: Any) -> dict[str, Media]:
    with sessions() as session:
        return {m.key: m for m in session.execute(select(Media)).scalars()}


def keys(sessions: Any, query: str) -> dict[str, list[dict[str, Any]]]:
    with sessions() as session:
        return {h.key: [m.to_dict() for m in h.matches] for h in search(session, query).hits}


def test_get_text_detection_pages_validate_against_the_service_model(rekognition_double):
    from tests.rekognition_double import text_detections

    client = botocore.session.get_session().create_client(
        "rekognition", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    (item,) = text_detections([("EXIT", (0.1, 0.1, 0.2, 0.1))])[:1]
    page = {
        "JobStatus": "SUCCEEDED",
        "TextDetections": [{"Timestamp": 500, "TextDetection": item}],
        "VideoMetadata": {"Codec": "h264", "DurationMillis": 2000, "Format": "QuickTime / MOV"},
        "NextToken": "abc",
        "TextModelVersion": "3.0",
    }
    with Stubber(client) as stub:
        stub.add_response("get_text_detection", page, {"JobId": "job-1"})
        assert client.get_text_detection(JobId="job-1")["NextToken"] == "abc"


def test_a_video_gets_a_text_job_beside_its_label_job(invoke, put, sessions, rekognition_double):
    put("clips/a.mp4", car_video("mp4"))
    rekognition_double.video_texts["clips/a.mp4"] = SHOWN
    rekognition_double.max_results_cap = 2  # several GetTextDetection pages
    result = invoke("sync", ROOT, *FAST, *TEXT, "--format", "json", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["video_jobs"]["started"] == 2
    assert rekognition_double.count("StartLabelDetection") == 1
    assert rekognition_double.count("StartTextDetection") == 1
    pages = [b for op, b in rekognition_double.calls if op == "GetTextDetection"]
    assert sum(1 for b in pages if b.get("NextToken")) >= 2  # every page was read
    stored = rows(sessions)["clips/a.mp4"]
    assert stored.status == "labelled" and stored.text_job_id is not None
    assert keys(sessions, "text:departures") == {
        "clips/a.mp4": [{"text": "DEPARTURES", "confidence": 99.0, "timestamps_ms": [0, 500]}]
    }
    assert list(keys(sessions, 'Car AND text:"gate 12"')) == ["clips/a.mp4"]
    with sessions() as session:
        words = session.scalars(
            select(TextDetection.text).where(TextDetection.kind == "WORD").order_by("id")
        ).all()
    assert words == ["DEPARTURES", "DEPARTURES", "GATE", "12", "BOARDING"]


def test_adding_text_later_starts_only_a_text_job(invoke, put, sessions, rekognition_double):
    put("clips/a.mp4", car_video("mp4"))
    rekognition_double.video_texts["clips/a.mp4"] = SHOWN
    assert invoke("sync", ROOT, *FAST, catch_exceptions=False).exit_code == 0
    assert rekognition_double.count("StartLabelDetection") == 1
    second = invoke("sync", ROOT, *FAST, *TEXT, catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert rekognition_double.count("StartLabelDetection") == 1
    assert rekognition_double.count("StartTextDetection") == 1
    assert list(keys(sessions, "Car AND text:boarding")) == ["clips/a.mp4"]
    third = invoke("sync", ROOT, *FAST, *TEXT, catch_exceptions=False)
    assert third.exit_code == 0
    assert rekognition_double.count("StartTextDetection") == 1


def test_interrupted_text_job_is_resumed_not_started_again(
    invoke, put, sessions, rekognition_double, monkeypatch
):
    put("clips/a.mp4", car_video("mp4"))
    rekognition_double.video_texts["clips/a.mp4"] = SHOWN
    rekognition_double.video_polls = 10**6
    original = rekognition_double.op_GetTextDetection
    interrupted: list[bool] = []

    def get(body: dict[str, Any]) -> dict[str, Any]:
        if not interrupted:
            interrupted.append(True)
            _thread.interrupt_main()  # Ctrl-C while the sync waits for its jobs
        return original(body)

    monkeypatch.setattr(rekognition_double, "op_GetTextDetection", get)
    first = invoke("sync", ROOT, *FAST, *TEXT)
    assert first.exit_code == 130
    stored = rows(sessions)["clips/a.mp4"]
    assert stored.status == "pending" and stored.job_id and stored.text_job_id
    rekognition_double.video_polls = 0
    for job in rekognition_double.jobs.values():
        job["polls_left"] = 0
    second = invoke("sync", ROOT, *FAST, *TEXT, "--format", "json", catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["video_jobs"] == {"started": 0, "resumed": 1}
    assert rekognition_double.count("StartTextDetection") == 1
    assert list(keys(sessions, "text:departures")) == ["clips/a.mp4"]


def test_a_failed_text_job_fails_the_video(invoke, put, sessions, rekognition_double):
    put("clips/a.mp4", car_video("mp4"))
    original = rekognition_double._finish_job

    def finish(job: dict[str, Any]) -> None:
        original(job)
        if job["type"] == "text":
            job.update(status="FAILED", message="Internal error.")

    rekognition_double._finish_job = finish  # type: ignore[method-assign]
    try:
        result = invoke("sync", ROOT, *FAST, *TEXT)
    finally:
        rekognition_double._finish_job = original  # type: ignore[method-assign]
    assert result.exit_code == 1
    stored = rows(sessions)["clips/a.mp4"]
    assert (stored.status, stored.error_code) == ("failed", "VideoJobFailed")


def test_unknown_text_job_is_resource_not_found(rekognition_double):
    status, body = rekognition_double.handle("GetTextDetection", {"JobId": "nope"})
    assert (status, body["__type"]) == (400, "ResourceNotFoundException")
