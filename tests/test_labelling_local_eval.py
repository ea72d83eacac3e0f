"""The offline labeller on real pictures: precision on the packaged evaluation set, parents that
search finds, and the pretrained YOLOX-Nano through `catalog sync --model` end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks.local_eval import TRUTH, evaluate, load_pictures
from catalog.labelling.local import LocalLabeller
from catalog.labelling.local.taxonomy import TAXONOMY
from tests.onnx_models import YOLOX_NANO, write_constant_detector

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
needs_yolox = pytest.mark.skipif(
    not YOLOX_NANO.is_file(),
    reason=f"the pretrained YOLOX-Nano is not at {YOLOX_NANO} (set CATALOG_TEST_MODELS)",
)


@pytest.fixture(scope="module")
def pictures():
    found, missing = load_pictures()
    assert missing == [], "the dev extra installs every package the evaluation set uses"
    return found


def test_the_truth_lists_every_parent_and_never_a_label_twice():
    for item in json.loads(TRUTH.read_text(encoding="utf-8"))["images"]:
        labels, maybe = set(item["labels"]), set(item["maybe"])
        assert not labels & maybe, item["file"]
        for label in labels:
            assert set(TAXONOMY.get(label, ((),))[0]) <= labels, (item["file"], label)


@pytest.fixture(scope="module")
def cascades(pictures):
    return evaluate(LocalLabeller(), pictures)


@pytest.mark.slow
def test_cascades_are_at_least_90_percent_precise_at_the_default_confidence(pictures, cascades):
    evaluation = cascades
    assert len(pictures) == 31
    # Something must be found, or precision would mean nothing: both portraits and the cat.
    assert (evaluation.right["Face"], evaluation.right["Cat"]) == (2, 1)
    assert evaluation.right["Person"] == 2  # through Face, its child
    overall = evaluation.precision()
    assert overall is not None and overall >= 0.9, evaluation.mistakes(pictures)
    for label in evaluation.wrong:
        precision = evaluation.precision(label)
        assert precision is not None and precision >= 0.9, (label, evaluation.mistakes(pictures))


@pytest.mark.slow
def test_the_logo_coins_and_moon_are_no_faces(cascades):
    for name in ("matplotlib:logo2.png", "skimage:coins.png", "skimage:moon.png"):
        assert cascades.given[name] == {}, name


def sync_and_search(invoke, folder: Path, *args: str) -> dict[str, set[str]]:
    result = invoke("sync", str(folder), *args, "--no-progress", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["failed"] == 0
    found: dict[str, set[str]] = {}
    for label in ("Person", "Face", "Cat", "Cup", "Animal"):
        search = invoke("search", label, "--format", "json", catch_exceptions=False)
        assert search.exit_code == 0, search.output
        found[label] = {Path(hit["uri"]).name for hit in json.loads(search.stdout)}
    return found


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    folder = tmp_path / "examples"
    shutil.copytree(EXAMPLES, folder)
    return folder


def test_searching_person_finds_the_portrait_labelled_by_its_face(invoke, examples):
    found = sync_and_search(invoke, examples)
    assert "astronaut.png" in found["Face"]
    assert {"astronaut.png", "astronaut-pan.mp4"} <= found["Person"]
    assert found["Cat"] == found["Animal"] == {"chelsea.png"}
    assert "chelsea.png" not in found["Person"]


@needs_yolox
def test_yolox_nano_labels_the_examples_end_to_end(invoke, examples):
    found = sync_and_search(invoke, examples, "--labeller", "local", "--model", str(YOLOX_NANO))
    assert found["Person"] == {"astronaut.png", "astronaut-pan.mp4"}
    assert found["Cat"] == found["Animal"] == {"chelsea.png"}
    assert found["Cup"] == {"coffee.png"}
    assert found["Face"] == set()  # a COCO detector has no faces
    shown = invoke("show", f"file://{examples}/coffee.png", "--format", "json")
    assert json.loads(shown.stdout)["model_version"] == "onnx:yolox_nano.onnx"


@needs_yolox
@pytest.mark.slow
def test_yolox_nano_finds_what_the_truth_says_on_the_evaluation_set(pictures):
    evaluation = evaluate(LocalLabeller(model_path=YOLOX_NANO), pictures)
    assert {label: evaluation.right[label] for label in ("Person", "Cat", "Cup", "Motorcycle")} == {
        "Person": 3,
        "Cat": 1,
        "Cup": 1,
        "Motorcycle": 2,
    }
    precision = evaluation.precision()
    assert precision is not None and precision >= 0.7  # measured 0.79; a general detector errs


def test_a_model_whose_output_fits_no_layout_is_one_line_and_exit_2(invoke, examples, tmp_path):
    rows = [(1, 320.0, 320.0, 100.0, 100.0, 0.95)]
    model = write_constant_detector(tmp_path / "seg.onnx", rows, class_count=3)
    result = invoke("sync", str(examples), "--model", str(model), "--no-progress")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ")
    assert "no YOLO layout" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
