"""Alerts: when rules fire (relabels, aliases, video moments, deletions) and what they send."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from catalog.alerts.dispatch import deliver_alerts
from catalog.alerts.rules import add_rule, list_rules
from catalog.ingest.sync import run_sync
from catalog.ingest.types import SyncOptions
from catalog.ingest.writer import ResultProvenance, ResultWriter
from catalog.labelling import DetectedLabel, LabelResult
from catalog.sources import SourceObject
from catalog.store.media import mark_deleted
from catalog.store.schema import AlertOutbox
from catalog.uris import parse_uri
from tests.factories import BLUE, car_jpeg, car_video, make_image

ROOT = "s3://media-library/"


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def add(sessions: Any, name: str, query: str, *targets: str, secret: str | None = None) -> None:
    with sessions.begin() as session:
        add_rule(session, name, query, list(targets), secret=secret)


def sync(clients: Any, sessions: Any, **options: Any) -> Any:
    return run_sync(
        parse_uri(ROOT),
        sessions=sessions,
        clients=clients,
        options=SyncOptions(**options),
        tps=None,
    )


# -- semantics through the writer every path uses -----------------------------------------------

OBJ = SourceObject("s3", "media-library", "a/thing.jpg", 100, "etag-1")
PROVENANCE = ResultProvenance("rekognition", "3.0", 50.0, None)


def result(*labels: tuple[str, float]) -> LabelResult:
    return LabelResult(
        "rekognition",
        "3.0",
        50.0,
        labels=[
            DetectedLabel(name, conf, aliases=("Automobile",) if name == "Car" else ())
            for name, conf in labels
        ],
    )


def test_relabel_fires_only_when_the_item_starts_matching(sessions: Any, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    add(sessions, "cars", "Car > 90", f"file:{out}")
    writer = ResultWriter(sessions, PROVENANCE)
    steps = [
        (("Car", 95.0),),  # starts matching: fires
        (("Car", 97.0),),  # relabel that keeps matching: no alert
        (("Dog", 99.0),),  # stops matching
        (("Car", 80.0),),  # still not (80 <= 90)
        (("Car", 92.0), ("Dog", 60.0)),  # matches again: fires again
    ]
    for labels in steps:
        writer.store(OBJ, "image", result(*labels))
        deliver_alerts(sessions, None, drain_s=0)
    sent = lines(out)
    assert [m["matches"][0]["confidence"] for m in sent] == [95.0, 92.0]
    assert len({m["event_id"] for m in sent}) == 2
    assert all(m["rule"] == "cars" and m["query"] == "Car > 90" for m in sent)


def test_evaluation_in_one_batch_after_several_results(sessions: Any, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    add(sessions, "cars", "Car", f"file:{out}")
    writer = ResultWriter(sessions, PROVENANCE)
    for n in range(30):
        obj = SourceObject("s3", "media-library", f"k/{n}.jpg", 100 + n, f"e{n}")
        writer.store(obj, "image", result(("Car" if n % 3 == 0 else "Dog", 90.0)))
    deliver_alerts(sessions, None, drain_s=0)
    assert sorted(m["uri"] for m in lines(out)) == sorted(
        f"s3://media-library/k/{n}.jpg" for n in range(0, 30, 3)
    )


def test_a_sparse_batch_of_relabels_is_evaluated(sessions: Any, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    add(sessions, "cars", "Car", f"file:{out}")
    writer = ResultWriter(sessions, PROVENANCE)
    objects = [
        SourceObject("s3", "media-library", f"k/{n}.jpg", 100 + n, f"e{n}") for n in range(30)
    ]
    for obj in objects:
        writer.store(obj, "image", result(("Dog", 90.0)))
    deliver_alerts(sessions, None, drain_s=0)
    for obj in (objects[0], objects[29]):  # ids far apart: evaluated by id list, not range
        writer.store(obj, "image", result(("Car", 90.0)))
    deliver_alerts(sessions, None, drain_s=0)
    assert sorted(m["uri"] for m in lines(out)) == [
        "s3://media-library/k/0.jpg",
        "s3://media-library/k/29.jpg",
    ]


def test_deleted_and_uploaded_again_fires_again(sessions: Any, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    add(sessions, "cars", "Car", f"file:{out}")
    writer = ResultWriter(sessions, PROVENANCE)
    media_id = writer.store(OBJ, "image", result(("Car", 95.0)))
    deliver_alerts(sessions, None, drain_s=0)
    with sessions.begin() as session:
        mark_deleted(session, [media_id])
    writer.store(OBJ, "image", result(("Car", 95.0)))
    deliver_alerts(sessions, None, drain_s=0)
    assert len(lines(out)) == 2
    assert len({m["event_id"] for m in lines(out)}) == 2


def test_media_matching_when_the_rule_is_added_do_not_fire(sessions: Any, tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    writer = ResultWriter(sessions, PROVENANCE)
    writer.store(OBJ, "image", result(("Car", 95.0)))
    add(sessions, "cars", "Car", f"file:{out}")
    writer.store(OBJ, "image", result(("Car", 96.0)))  # a relabel that keeps matching
    deliver_alerts(sessions, None, drain_s=0)
    assert lines(out) == []
    with sessions() as session:
        assert [r.members for r in list_rules(session)] == [1]


# -- end to end through sync --------------------------------------------------------------------


def test_sync_fires_through_an_alias_with_the_search_json_shape(
    clients: Any, sessions: Any, put: Any, tmp_path: Path, invoke: Any
) -> None:
    out = tmp_path / "alerts.jsonl"
    add(sessions, "automobiles", "Automobile", f"file:{out}")
    put("a/car.jpg", car_jpeg())
    put("a/person.jpg", make_image(boxes=[(BLUE, (20, 20, 80, 120))]))
    put("b/car-copy.jpg", car_jpeg())  # same content: its labels are reused, and it fires too
    report = sync(clients, sessions)
    assert (report.labelled, report.reused) == (2, 1)
    sent = lines(out)
    assert sorted(m["uri"] for m in sent) == [
        "s3://media-library/a/car.jpg",
        "s3://media-library/b/car-copy.jpg",
    ]
    searched = json.loads(invoke("search", "Automobile", "--format", "json").stdout)
    by_uri = {hit["uri"]: hit for hit in searched}
    for message in sent:
        item = {
            k: v
            for k, v in message.items()
            if k not in ("event_id", "rule", "query", "labelled_at")
        }
        assert item == by_uri[message["uri"]]
        assert message["labelled_at"]
    again = sync(clients, sessions)
    assert again.unchanged == 3
    assert len(lines(out)) == 2


def test_a_video_fires_through_its_moments(
    clients: Any, sessions: Any, put: Any, tmp_path: Path, rekognition_double: Any
) -> None:
    rekognition_double.video_polls = 0
    out = tmp_path / "alerts.jsonl"
    add(sessions, "cars", "Car > 60", f"file:{out}")
    put("clips/a.mp4", car_video("mp4"))
    report = sync(clients, sessions, poll_interval_s=0.01)
    assert report.failed == 0
    (message,) = lines(out)
    assert message["uri"] == "s3://media-library/clips/a.mp4"
    assert message["kind"] == "video"
    assert message["matches"][0]["label"] == "Car"
    assert message["matches"][0]["timestamps_ms"]


def test_notify_run_sends_the_run_summary(
    clients: Any, sessions: Any, put: Any, tmp_path: Path, invoke: Any
) -> None:
    out = tmp_path / "runs.jsonl"
    put("a/car.jpg", car_jpeg())
    result_ = invoke("sync", ROOT, "--no-progress", "--notify-run", f"file:{out}")
    assert result_.exit_code == 0, result_.output
    (summary,) = lines(out)
    assert summary["event"] == "sync_run"
    assert summary["counts"]["labelled"] == 1
    assert summary["spend"]["billed_images"] == 1
    assert summary["event_id"].startswith(f"run-{summary['run_id']}-")


# -- the command line ---------------------------------------------------------------------------


def test_cli_add_rejects_a_malformed_query(invoke: Any, tmp_path: Path) -> None:
    result_ = invoke("alerts", "add", "bad", "--when", "Car >", "--notify", f"file:{tmp_path}/x")
    assert result_.exit_code == 2
    assert result_.stderr.startswith("Error: ")
    assert len(result_.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("target", ["ftp://x", "sns:not-an-arn", "sqs:queue", "file:"])
def test_cli_add_rejects_a_bad_target(invoke: Any, target: str) -> None:
    result_ = invoke("alerts", "add", "bad", "--when", "Car", "--notify", target)
    assert result_.exit_code == 2
    assert "Error:" in result_.stderr


def test_cli_add_list_test_remove(
    invoke: Any, clients: Any, sessions: Any, put: Any, tmp_path: Path
) -> None:
    put("a/car.jpg", car_jpeg())
    sync(clients, sessions)
    out = tmp_path / "test.jsonl"
    added = invoke("alerts", "add", "cars", "--when", "Car", "--notify", f"file:{out}")
    assert added.exit_code == 0, added.output
    assert "1 media match it now" in added.stderr
    dup = invoke("alerts", "add", "cars", "--when", "Car", "--notify", f"file:{out}")
    assert dup.exit_code == 2
    listed = json.loads(invoke("alerts", "list", "--format", "json").stdout)
    assert [(r["name"], r["matching"], r["backlog"]) for r in listed] == [("cars", 1, 0)]
    shown = invoke("alerts", "test", "cars", "--format", "json", catch_exceptions=False)
    assert json.loads(shown.stdout) == json.loads(
        invoke("search", "Car", "--format", "json").stdout
    )
    assert not out.exists()  # nothing sent without --send
    sent = invoke("alerts", "test", "cars", "--format", "json", "--send", catch_exceptions=False)
    assert sent.exit_code == 0, sent.output
    (message,) = lines(out)
    assert message["event_id"].startswith("test-") and message["rule"] == "cars"
    removed = invoke("alerts", "remove", "cars")
    assert removed.exit_code == 0
    assert json.loads(invoke("alerts", "list", "--format", "json").stdout) == []
    assert invoke("alerts", "remove", "cars").exit_code == 2


def test_no_rules_queues_nothing(clients: Any, sessions: Any, put: Any) -> None:
    put("a/car.jpg", car_jpeg())
    sync(clients, sessions)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AlertOutbox)) == 0


def test_a_huge_video_alert_is_trimmed_to_fit_sns_and_sqs() -> None:
    from catalog.alerts.evaluation import alert_payload, message_body
    from catalog.aws.publish import MAX_BODY_BYTES
    from catalog.read.search import LabelMatch, SearchHit

    moments = tuple(range(0, 200_000_000, 500))  # a long video with Car in every moment
    hit = SearchHit(
        1, "s3://b/v.mp4", "video", "b", "v.mp4", 10, None, (LabelMatch("Car", 99.0, moments),)
    )
    short = SearchHit(
        1, "s3://b/v.mp4", "video", "b", "v.mp4", 10, None, (LabelMatch("Car", 99.0, moments[:10]),)
    )
    small = message_body(alert_payload("e", "r", "Car", None, short))
    assert "truncated" not in json.loads(small)
    body = message_body(alert_payload("e", "r", "Car", None, hit))
    data = json.loads(body)
    assert len(body.encode()) <= MAX_BODY_BYTES
    assert data["truncated"] is True
    assert data["matches"][0]["timestamps_ms"] == list(
        moments[: len(data["matches"][0]["timestamps_ms"])]
    )


def test_results_left_unevaluated_are_delivered_by_the_next_sync(
    clients: Any, sessions: Any, bucket: str, tmp_path: Path
) -> None:
    out = tmp_path / "alerts.jsonl"
    add(sessions, "cars", "Car", f"file:{out}")
    elsewhere = SourceObject("s3", "other-bucket", "a/thing.jpg", 100, "etag-1")
    ResultWriter(sessions, PROVENANCE).store(elsewhere, "image", result(("Car", 95.0)))
    assert lines(out) == []  # committed; its process stopped before evaluating (as if killed)
    report = sync(clients, sessions)  # another run, with nothing of its own to label
    assert report.labelled == 0
    assert [m["uri"] for m in lines(out)] == [elsewhere.uri]
