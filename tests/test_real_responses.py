"""Every captured Rekognition response, replayed verbatim through `catalog sync`, comes out intact.

The responses live in ../shared/reference/real-responses/ beside the repository (SOURCES.md there
says where each came from); CATALOG_SHARED_DIR points elsewhere. The double answers each object's
DetectLabels, or each GetLabelDetection of its video job, with one file's body as is. All files go
into ONE catalogue, so a taxonomy learnt from one response must not leak into another item:
`show` gives each item exactly the labels, confidences (hundredths), boxes, timestamps, parents
(in order), aliases and categories of its own response, and nothing else; `export` and `labels`
agree; searching by any name, alias, parent or category finds exactly the items the files say.
The catalogue is synced once per backend and the tests only read it; SQLite gets every file,
PostgreSQL one file of each shape (POSTGRES_SHAPES).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from catalog.store.units import fold, to_x100
from tests.conftest import BACKENDS, BUCKET, REGION, set_aws_environment
from tests.factories import car_jpeg, car_video

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CATALOG_SHARED_DIR") or REPO_ROOT.parent / "shared")
RESPONSES = SHARED / "reference" / "real-responses"

pytestmark = pytest.mark.skipif(
    not RESPONSES.is_dir(),
    reason=f"no captured Rekognition responses at {RESPONSES} "
    "(../shared/reference/real-responses beside the repository, or set CATALOG_SHARED_DIR)",
)

BUCKET_URI = "s3://media-library/"
# Every object holds the same picture: --no-reuse, or each would copy the first one's labels.
FAST = ("--no-progress", "--poll-interval", "0.01", "--min-confidence", "0", "--no-reuse")
TOPIC = ("--notification-topic-arn", "arn:aws:sns:us-east-1:123456789012:AmazonRekognitionJobs")
ROLE = ("--role-arn", "arn:aws:iam::123456789012:role/RekognitionSNS")


# -- what each file says -------------------------------------------------------------------------


@dataclass
class Expected:
    """One label of one item, as its response gave it."""

    confidence: float
    parents: list[str]
    aliases: list[str]
    categories: list[str]
    instances: list[dict[str, Any]] = field(default_factory=list)
    timestamps_ms: list[int] = field(default_factory=list)


def _hundredths(value: float) -> float:
    return to_x100(float(value)) / 100


def _names(items: Any) -> list[str]:
    return [item["Name"] for item in items or ()]


def expected_labels(body: dict[str, Any]) -> dict[str, Expected]:
    """label name -> what the file says of it; a video's taxonomy is its first moment's."""
    entries = body.get("Labels") or []
    is_video = any("Label" in entry for entry in entries)
    if is_video:
        entries = sorted(entries, key=lambda entry: entry.get("Timestamp", 0))
    found: dict[str, Expected] = {}
    for entry in entries:
        label = entry["Label"] if is_video else entry
        timestamp = entry.get("Timestamp", 0) if is_video else None
        item = found.get(label["Name"])
        if item is None:
            item = found[label["Name"]] = Expected(
                _hundredths(label["Confidence"]),
                _names(label.get("Parents")),
                _names(label.get("Aliases")),
                _names(label.get("Categories")),
            )
        item.confidence = max(item.confidence, _hundredths(label["Confidence"]))
        if timestamp is not None and timestamp not in item.timestamps_ms:
            item.timestamps_ms.append(timestamp)
        for instance in label.get("Instances") or ():
            box = instance["BoundingBox"]
            item.instances.append(
                {
                    "bounding_box": {
                        "left": float(box["Left"]),
                        "top": float(box["Top"]),
                        "width": float(box["Width"]),
                        "height": float(box["Height"]),
                    },
                    "confidence": _hundredths(instance["Confidence"]),
                    **({"timestamp_ms": timestamp} if timestamp is not None else {}),
                }
            )
    return found


@dataclass(frozen=True)
class Capture:
    """One file and the object it is replayed for."""

    path: Path
    body: dict[str, Any]

    @property
    def is_video(self) -> bool:
        return self.path.name.startswith("getlabeldetection-")

    @property
    def is_error(self) -> bool:
        return "__type" in self.body

    @property
    def is_running(self) -> bool:
        return self.body.get("JobStatus") == "IN_PROGRESS"

    @property
    def key(self) -> str:
        folder = "running" if self.is_running else "real"
        return f"{folder}/{self.path.stem}.{'mp4' if self.is_video else 'jpg'}"

    @property
    def uri(self) -> str:
        return BUCKET_URI + self.key


def captures() -> list[Capture]:
    """Every captured response file, in name order."""
    return [
        Capture(path, json.loads(path.read_bytes())) for path in sorted(RESPONSES.glob("*.json"))
    ]


# SQLite replays all the files. The storage code is the same on both backends, and it is the
# shapes that matter to it, so PostgreSQL replays one file of each shape:
POSTGRES_SHAPES = {
    "detectlabels-awsdocs-devguide-2018-1.json",  # before 2019: lowercase names, Name+Confidence
    "detectlabels-awscli-1.json",  # model 2.0: Instances (an integer Left: 0), Parents; Person
    "detectlabels-carbon-amazon-1.json",  # 3.0: everything, ImageProperties; Person alias Human
    "detectlabels-ccbda-upc-1.json",  # 3.0 with boto3's ResponseMetadata, 39 boxes
    "detectlabels-imahe-rekoginition-1.json",  # 3.0 with null fields, a label with 3 aliases
    "detectlabels-maua-selfie-rejected-1-cap-arena.json",  # 3.0 without Aliases/Categories
    "detectlabels-dogwalking-husky.json",  # 3.0 filtered: parents missing from the list
    "detectlabels-dogwalking-sweep.json",  # "Labels": []
    "error-awsdocs-devguide-invalids3object.json",  # an error body
    "getlabeldetection-pfeilbr-1.json",  # video, model 2.0: 270 entries, 27 timestamps, boxes
    "getlabeldetection-awsdocs-devguide-2017.json",  # video, old shape, NextToken, no JobStatus
    "getlabeldetection-awsdocs-devguide-segments-sample.json",  # video, AggregateBy SEGMENTS
    "getlabeldetection-pfeilbr-2-inprogress.json",  # a job still running
}


@cache
def _video() -> bytes:
    return car_video("mp4")


# One catalogue per backend for the whole module: the tests below only read it.
@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The replayed catalogue's URL: a SQLite file, or a database on the session's PostgreSQL."""
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        name = server.create_database()
        yield server.url(name)
        server.drop_database(name)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('replayed') / 'catalog.db'}"


@pytest.fixture(scope="module")
def replayed(
    db_url: str,
    moto_endpoint: str,
    rekognition_double: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    """A catalogue synced from the files: finished jobs and images polled, a running job not."""
    files = captures()
    if db_url.startswith("postgresql"):
        files = [capture for capture in files if capture.path.name in POSTGRES_SHAPES]
        assert len(files) == len(POSTGRES_SHAPES)
    from catalog.cli import app

    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, ["--db", db_url, *args], catch_exceptions=False)

    with pytest.MonkeyPatch.context() as monkeypatch:
        set_aws_environment(
            monkeypatch, moto_endpoint, rekognition_double, tmp_path_factory.mktemp("aws")
        )
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        for capture in files:
            body = _video() if capture.is_video else car_jpeg()
            s3.put_object(Bucket=BUCKET, Key=capture.key, Body=body)
            rekognition_double.verbatim[capture.key] = capture.path.read_bytes()
        try:
            result = invoke("sync", BUCKET_URI + "real/", *FAST)
            assert result.exit_code == 1, result.output  # the error body fails its one object
            # A job that is still running is left pending (polled by a later sync, a worker or
            # SNS).
            result = invoke("sync", BUCKET_URI + "running/", *FAST, *TOPIC, *ROLE)
            assert result.exit_code == 0, result.output
        finally:
            rekognition_double.reset()
    yield files


def show(invoke: Any, uri: str) -> dict[str, Any]:
    result = invoke("show", uri, "--format", "json", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# -- show, export, labels ------------------------------------------------------------------------


def test_show_gives_each_item_exactly_its_own_response(
    replayed: list[Capture], invoke: Any
) -> None:
    problems: list[str] = []
    for capture in replayed:
        shown = show(invoke, capture.uri)
        name = capture.path.name
        if capture.is_error:
            assert shown["status"] == "failed", name
            assert shown["error"] == {
                "code": capture.body["__type"],
                "message": capture.body["Message"],
            }, name
            assert shown["labels"] == [], name
            continue
        if capture.is_running:
            assert (shown["status"], shown["labels"]) == ("pending", []), name
            continue
        assert shown["status"] == "labelled", (name, shown["status"], shown["error"])
        assert shown["model_version"] == capture.body.get("LabelModelVersion"), name
        wanted = expected_labels(capture.body)
        got = {label["name"]: label for label in shown["labels"]}
        assert sorted(got) == sorted(wanted), name
        for label_name, expected in wanted.items():
            label = got[label_name]
            actual = {
                "confidence": label["confidence"],
                "parents": label["parents"],
                "aliases": label["aliases"],
                "categories": label["categories"],
                "instances": label["instances"],
            }
            want = {
                "confidence": expected.confidence,
                "parents": expected.parents,
                "aliases": expected.aliases,
                "categories": expected.categories,
                "instances": expected.instances,
            }
            if capture.is_video:
                actual["timestamps_ms"] = label["timestamps_ms"]
                want["timestamps_ms"] = sorted(expected.timestamps_ms)
            if actual != want:
                problems.append(f"{name} {label_name}: shown {actual}, response {want}")
        if capture.is_video:
            metadata = capture.body.get("VideoMetadata") or {}
            assert shown["video"]["codec"] == metadata.get("Codec"), name
            assert shown["video"]["format"] == metadata.get("Format"), name
            assert shown["video"]["duration_ms"] == metadata.get("DurationMillis"), name
            rate = metadata.get("FrameRate")  # the catalogue keeps 3 decimals
            assert shown["video"]["frame_rate"] == (round(rate, 3) if rate else None), name
    assert not problems, "\n".join(problems)


def test_export_rows_are_every_label_of_every_response(
    replayed: list[Capture], invoke: Any
) -> None:
    result = invoke("export", "--format", "jsonl", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    exported: dict[tuple[str, str], dict[str, Any]] = {}
    for line in result.stdout.splitlines():
        row = json.loads(line)
        assert (row["uri"], row["label"]) not in exported
        exported[(row["uri"], row["label"])] = row
    wanted: dict[tuple[str, str], Expected] = {
        (capture.uri, name): expected
        for capture in replayed
        if not capture.is_error and not capture.is_running
        for name, expected in expected_labels(capture.body).items()
    }
    # Items without labels (empty answers, failures, running jobs) are one row with no label.
    unlabelled = {
        (capture.uri, "")
        for capture in replayed
        if capture.is_error or capture.is_running or not expected_labels(capture.body)
    }
    assert sorted(exported) == sorted([*wanted, *unlabelled])
    for key in unlabelled:
        assert (exported[key]["confidence"], exported[key]["instances"]) == (None, []), key
    for key, expected in wanted.items():
        row = exported[key]
        assert row["confidence"] == expected.confidence, key
        boxes = [
            {**instance["bounding_box"], "confidence": instance["confidence"]}
            | ({"timestamp_ms": instance["timestamp_ms"]} if "timestamp_ms" in instance else {})
            for instance in expected.instances
        ]
        assert sorted(row["instances"], key=json.dumps) == sorted(boxes, key=json.dumps), key
    csv_result = invoke("export", "--format", "csv", catch_exceptions=False)
    assert len(list(csv.DictReader(io.StringIO(csv_result.stdout)))) == len(wanted) + len(
        unlabelled
    )


def test_labels_lists_every_name_with_every_alias_any_response_gave(
    replayed: list[Capture], invoke: Any
) -> None:
    result = invoke("labels", "--format", "json", "--limit", "0", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    listed = {row["label"]: row for row in json.loads(result.stdout)}
    media: dict[str, set[str]] = defaultdict(set)
    aliases: dict[str, set[str]] = defaultdict(set)
    for capture in replayed:
        if capture.is_error or capture.is_running:
            continue
        for name, expected in expected_labels(capture.body).items():
            media[name].add(capture.uri)
            aliases[name].update(expected.aliases)
    assert sorted(listed) == sorted(media)
    for name, uris in media.items():
        assert listed[name]["media_count"] == len(uris), name
        assert sorted(listed[name]["aliases"]) == sorted(aliases[name]), name
    # The defect this guards: a 2.0 response named Person first, a 3.0 one then gave Human.
    assert "Human" in listed["Person"]["aliases"]


# -- search --------------------------------------------------------------------------------------


def _items(replayed: list[Capture]) -> dict[str, dict[str, Expected]]:
    return {
        capture.uri: expected_labels(capture.body)
        for capture in replayed
        if not capture.is_error and not capture.is_running
    }


def _search(invoke: Any, query: str) -> set[str]:
    result = invoke("search", query, "--format", "json", catch_exceptions=False)
    assert result.exit_code == 0, (query, result.output)
    return {hit["uri"] for hit in json.loads(result.stdout)}


def _quoted(name: str) -> str:
    return '"' + name.replace('"', "") + '"'


def test_searching_a_name_finds_its_label_aliases_and_children_in_every_response(
    replayed: list[Capture], invoke: Any
) -> None:
    items = _items(replayed)
    # What every response taught about each label as spelled (the 2017 'person' is not 'Person'
    # for its aliases; names themselves compare case-insensitively): folded aliases and parents.
    aliases: dict[str, set[str]] = defaultdict(set)
    parents: dict[str, set[str]] = defaultdict(set)
    for labels in items.values():
        for name, expected in labels.items():
            aliases[name].update(fold(a) for a in expected.aliases)
            parents[name].update(fold(p) for p in expected.parents)
    names = {fold(n) for labels in items.values() for n in labels}
    queries = sorted(names | set().union(*aliases.values()) | set().union(*parents.values()))
    problems = []
    for query in queries:
        wanted = {
            uri
            for uri, labels in items.items()
            if any(fold(n) == query or query in aliases[n] or query in parents[n] for n in labels)
        }
        found = _search(invoke, _quoted(query))
        if found != wanted:
            problems.append(
                f"{query}: found {sorted(found - wanted)}, missed {sorted(wanted - found)}"
            )
    assert not problems, "\n".join(problems)
    # The two examples, by name.
    human = _search(invoke, "Human")
    assert BUCKET_URI + "real/detectlabels-carbon-amazon-1.jpg" in human
    animal = _search(invoke, "Animal")
    assert BUCKET_URI + "real/detectlabels-dogwalking-husky.jpg" in animal  # Dog's parent only


def test_searching_a_category_finds_labels_any_response_put_in_it(
    replayed: list[Capture], invoke: Any
) -> None:
    items = _items(replayed)
    categories: dict[str, set[str]] = defaultdict(set)
    for labels in items.values():
        for name, expected in labels.items():
            categories[name].update(fold(c) for c in expected.categories)
    problems = []
    for category in sorted(set().union(*categories.values())):
        wanted = {
            uri for uri, labels in items.items() if any(category in categories[n] for n in labels)
        }
        found = _search(invoke, f"category:{_quoted(category)}")
        if found != wanted:
            problems.append(f"{category}: found {sorted(found)}, wanted {sorted(wanted)}")
    assert not problems, "\n".join(problems)


def test_thresholds_at_a_responses_own_confidence_compare_at_hundredths(
    replayed: list[Capture], invoke: Any
) -> None:
    """`L >= c` finds the item whose L is exactly c; `L > c` does not, unless another label the
    name matches on that item is above c at 0.01."""
    items = _items(replayed)
    checked = 0
    for capture in replayed:
        if capture.uri not in items or capture.is_video:
            continue
        for entry in capture.body["Labels"][:3]:
            raw = str(entry["Confidence"])
            name = entry["Name"]
            assert capture.uri in _search(invoke, f"{_quoted(name)} >= {raw}"), (name, raw)
            above = _search(invoke, f"{_quoted(name)} > {raw}")
            others = [
                expected.confidence
                for label_name, expected in items[capture.uri].items()
                if label_name != name
                and (
                    fold(name) in {fold(p) for p in expected.parents}
                    or fold(name) in {fold(a) for a in expected.aliases}
                )
            ]
            own = to_x100(float(entry["Confidence"]))
            expected_above = any(to_x100(c) > own for c in others)
            assert (capture.uri in above) == expected_above, (name, raw)
            checked += 1
    images = [c for c in replayed if c.uri in items and not c.is_video]
    assert checked == sum(len(c.body["Labels"][:3]) for c in images)
    assert checked > (50 if len(replayed) == len(captures()) else 15)
