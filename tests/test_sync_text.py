"""`catalog sync --features labels,text`: DetectText per image, stored and searchable text,
adding text later without buying labels again, reuse, failures and throttling."""

from __future__ import annotations

import base64
import json

import botocore.session
import pytest
from botocore.stub import Stubber
from sqlalchemy import func, select

from catalog.ingest.sync import run_sync
from catalog.ingest.types import SyncOptions
from catalog.labelling.features import parse_features
from catalog.read.search import search
from catalog.store.schema import SyncRun, TextDetection, TextResult
from catalog.uris import parse_uri
from tests.factories import car_jpeg, make_image
from tests.rekognition_double import text_detections

ROOT = "s3://media-library/"
SIGN = [("EMERGENCY EXIT", (0.1, 0.1, 0.6, 0.2)), ("Café Olé", (0.1, 0.5, 0.4, 0.2))]


def sync(clients, sessions, features="labels,text", uri=ROOT, **options):
    return run_sync(
        parse_uri(uri),
        sessions=sessions,
        clients=clients,
        options=SyncOptions(features=parse_features(features), **options),
        tps=None,
    )


def calls(double, operation):
    return [body for op, body in double.calls if op == operation]


def hit_matches(sessions, query):
    with sessions() as session:
        return {hit.key: [m.to_dict() for m in hit.matches] for hit in search(session, query).hits}


def test_detect_text_answers_validate_against_the_service_model():
    # The double's shapes are the service's: botocore's Stubber refuses anything else.
    client = botocore.session.get_session().create_client(
        "rekognition", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "detect_text",
            {"TextDetections": text_detections(SIGN), "TextModelVersion": "3.0"},
            {"Image": {"Bytes": b"x"}},
        )
        response = client.detect_text(Image={"Bytes": b"x"})
    kinds = [(d["Type"], d["DetectedText"], d.get("ParentId")) for d in response["TextDetections"]]
    assert kinds == [
        ("LINE", "EMERGENCY EXIT", None),
        ("LINE", "Café Olé", None),
        ("WORD", "EMERGENCY", 0),
        ("WORD", "EXIT", 0),
        ("WORD", "Café", 1),
        ("WORD", "Olé", 1),
    ]


def test_text_is_read_stored_and_searchable(clients, sessions, put, rekognition_double):
    put("signs/exit.jpg", car_jpeg())
    put("signs/plain.jpg", car_jpeg(180, 120))
    rekognition_double.texts["signs/exit.jpg"] = SIGN
    report = sync(clients, sessions)
    assert (report.labelled, report.failed) == (2, 0)
    detect_text = calls(rekognition_double, "DetectText")
    assert sorted(c["Image"]["S3Object"]["Name"] for c in detect_text) == [
        "signs/exit.jpg",
        "signs/plain.jpg",
    ]
    with sessions() as session:
        rows = session.execute(
            select(TextDetection.kind, TextDetection.text, TextDetection.parent_idx).order_by(
                TextDetection.id
            )
        ).all()
        run = session.get(SyncRun, report.run_id)
    assert [tuple(r) for r in rows] == [
        ("LINE", "EMERGENCY EXIT", None),
        ("LINE", "Café Olé", None),
        ("WORD", "EMERGENCY", 0),
        ("WORD", "EXIT", 0),
        ("WORD", "Café", 1),
        ("WORD", "Olé", 1),
    ]
    assert (run.billed_images, run.billed_text_images) == (2, 2)
    assert hit_matches(sessions, "text:exit") == {
        "signs/exit.jpg": [{"text": "EMERGENCY EXIT", "confidence": 99.0}]
    }
    # Case and accents do not matter, in the query or in the picture.
    assert list(hit_matches(sessions, 'text:"CAFE OLE"')) == ["signs/exit.jpg"]
    assert list(hit_matches(sessions, "text:café")) == ["signs/exit.jpg"]
    assert hit_matches(sessions, 'text:"exit emergency"') == {}


def test_labels_only_sync_reads_no_text(clients, sessions, put, rekognition_double):
    put("a.jpg", car_jpeg())
    rekognition_double.texts["a.jpg"] = SIGN
    sync(clients, sessions, features="labels")
    assert calls(rekognition_double, "DetectText") == []
    assert hit_matches(sessions, "text:exit") == {}


def test_adding_text_later_reads_only_the_text(clients, sessions, put, rekognition_double):
    put("a.jpg", car_jpeg())
    put("b.jpg", car_jpeg(180, 120))
    rekognition_double.texts["a.jpg"] = SIGN
    sync(clients, sessions, features="labels")
    assert len(calls(rekognition_double, "DetectLabels")) == 2
    report = sync(clients, sessions)
    assert len(calls(rekognition_double, "DetectLabels")) == 2  # labels are not bought again
    assert len(calls(rekognition_double, "DetectText")) == 2
    assert report.labelled == 2
    assert list(hit_matches(sessions, "Car AND text:exit")) == ["a.jpg"]
    again = sync(clients, sessions)
    assert (again.unchanged, again.labelled) == (2, 0)
    assert len(calls(rekognition_double, "DetectText")) == 2


def test_dry_run_shows_the_extra_cost_of_text(clients, sessions, put, rekognition_double):
    for n in range(3):
        put(f"img{n}.jpg", car_jpeg(150 + n, 120))
    report = sync(clients, sessions, dry_run=True)
    assert (report.to_label_images, report.to_read_text_images) == (3, 3)
    assert report.estimated_text_cost_usd == pytest.approx(0.003)
    assert report.estimated_cost_usd == pytest.approx(0.006)
    sync(clients, sessions, features="labels")
    later = sync(clients, sessions, dry_run=True)
    assert (later.to_label_images, later.to_read_text_images) == (0, 3)
    assert later.estimated_cost_usd == pytest.approx(0.003)
    assert rekognition_double.count("DetectText") == 0


def test_cli_dry_run_json_prices_each_feature(invoke, put, aws_env):
    put("one.jpg", car_jpeg())
    result = invoke("sync", ROOT, "--features", "labels,text", "--dry-run", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["would_read_text"] == {"images": 1, "video_minutes": 0.0}
    assert data["estimated_cost_by_feature_usd"] == {"labels": 0.001, "text": 0.001}


@pytest.mark.parametrize("value", ["text", "labels,colour"])
def test_cli_rejects_bad_features(invoke, value):
    result = invoke("sync", "./nowhere", "--features", value)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_identical_content_reuses_text(clients, sessions, put, rekognition_double):
    data = car_jpeg()
    put("first/a.jpg", data)
    rekognition_double.texts["first/a.jpg"] = SIGN
    sync(clients, sessions)
    put("second/a-copy.jpg", data)
    report = sync(clients, sessions)
    assert report.reused == 1
    assert len(calls(rekognition_double, "DetectText")) == 1
    assert sorted(hit_matches(sessions, "text:exit")) == ["first/a.jpg", "second/a-copy.jpg"]


def test_text_failure_is_recorded_like_a_label_failure(clients, sessions, put, rekognition_double):
    put("bad.jpg", car_jpeg())
    put("good.jpg", car_jpeg(170, 120))
    sync(clients, sessions, features="labels")
    rekognition_double.fail_keys["bad.jpg"] = ("InvalidS3ObjectException", "Unable to get object")
    report = sync(clients, sessions)
    assert (report.labelled, report.failed) == (1, 1)
    assert report.failures[0].code == "InvalidS3ObjectException"
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(TextResult)) == 1


def test_throttled_detect_text_is_retried(clients, sessions, put, rekognition_double):
    put("a.jpg", car_jpeg())
    rekognition_double.texts["a.jpg"] = SIGN
    sync(clients, sessions, features="labels")
    rekognition_double.throttle_next = 3
    report = sync(clients, sessions)
    assert (report.labelled, report.failed) == (1, 0)
    assert list(hit_matches(sessions, "text:exit")) == ["a.jpg"]


def test_images_sent_as_bytes_are_read_too(clients, sessions, put, rekognition_double):
    import hashlib
    import io

    from PIL import Image

    put("c/sign.webp", make_image(fmt="WEBP"))
    sync(clients, sessions, features="labels")
    (label_call,) = calls(rekognition_double, "DetectLabels")
    sent = base64.b64decode(label_call["Image"]["Bytes"])
    assert Image.open(io.BytesIO(sent)).format == "JPEG"
    rekognition_double.texts[hashlib.sha256(sent).hexdigest()] = [("OPEN", (0.1, 0.1, 0.3, 0.1))]
    sync(clients, sessions)
    (text_call,) = calls(rekognition_double, "DetectText")
    assert "Bytes" in text_call["Image"]
    assert list(hit_matches(sessions, "text:open")) == ["c/sign.webp"]


def test_changed_content_drops_old_text(clients, sessions, put, rekognition_double):
    put("a.jpg", car_jpeg())
    rekognition_double.texts["a.jpg"] = SIGN
    sync(clients, sessions)
    rekognition_double.texts["a.jpg"] = [("CLOSED", (0.1, 0.1, 0.3, 0.1))]
    put("a.jpg", car_jpeg(190, 130))
    sync(clients, sessions)
    assert hit_matches(sessions, "text:exit") == {}
    assert list(hit_matches(sessions, "text:closed")) == ["a.jpg"]


def test_lambda_reads_text_with_catalog_features(
    aws_env, put, bucket, rekognition_double, tmp_path, monkeypatch
):
    from catalog.ingest import aws_lambda
    from catalog.store.engine import open_catalogue

    url = f"sqlite:///{tmp_path / 'lambda.db'}"
    monkeypatch.setenv("CATALOG_DATABASE_URL", url)
    monkeypatch.setenv("CATALOG_FEATURES", "labels,text")
    aws_lambda.reset()
    try:
        put("in/sign.jpg", car_jpeg())
        rekognition_double.texts["in/sign.jpg"] = SIGN
        record = {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": "in/sign.jpg", "size": 1}},
        }
        assert aws_lambda.handler({"Records": [record]}, None) == {"processed": 1}
    finally:
        aws_lambda.reset()
    assert rekognition_double.count("DetectText") == 1
    assert list(hit_matches(open_catalogue(url)[1], "Car AND text:exit")) == ["in/sign.jpg"]


def test_worker_builds_a_text_reader_for_text_features(clients, sessions, aws_env):
    from catalog.ingest.worker import Worker, WorkerOptions

    options = WorkerOptions("https://sqs.us-east-1.amazonaws.com/123456789012/q", 1, 1, 30)
    with_text = Worker(
        clients, sessions, options, SyncOptions(features=parse_features("labels,text"))
    )
    without = Worker(clients, sessions, options, SyncOptions())
    assert with_text.text_reader is not None and with_text.text_reader.name == "rekognition"
    assert without.text_reader is None
