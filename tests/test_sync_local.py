"""`catalog sync DIRECTORY`: the local source through the whole pipeline and the CLI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from catalog.sources.local import LocalSource
from catalog.store.schema import Label as LabelRow
from catalog.store.schema import LabelResult, LabelStat, Media
from tests.factories import RED, make_image
from tests.onnx_models import write_constant_detector

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def sync(invoke, *args: str, code: int = 0) -> dict:
    result = invoke("sync", *args, "--no-progress", "--format", "json")
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def show(invoke, path: Path) -> dict:
    result = invoke("show", f"file://{path}", "--format", "json", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def label_names(detail: dict) -> set[str]:
    return {label["name"] for label in detail["labels"]}


def media_row(sessions, path: Path) -> Media:
    with sessions() as session:
        media = session.execute(select(Media).where(Media.key == str(path))).scalar_one()
        session.expunge(media)
        return media


def result_count(sessions, path: Path) -> int:
    with sessions() as session:
        return session.execute(
            select(func.count())
            .select_from(LabelResult)
            .join(Media, Media.id == LabelResult.media_id)
            .where(Media.key == str(path))
        ).scalar_one()


def media_count(sessions, label: str) -> int:
    with sessions() as session:
        count = session.execute(
            select(LabelStat.media_count)
            .join(LabelRow, LabelRow.id == LabelStat.label_id)
            .where(LabelRow.name == label)
        ).scalar_one_or_none()
        return count or 0


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "photos"
    path.mkdir()
    return path


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the local source hashed, in order."""
    seen: list[str] = []
    original = LocalSource.content_etag

    def counting(self, obj):
        seen.append(obj.key)
        return original(self, obj)

    monkeypatch.setattr(LocalSource, "content_etag", counting)
    return seen


# -- the quick start ---------------------------------------------------------------------------


def test_example_folder_is_labelled_offline(invoke, tmp_path):
    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES, examples)
    report = sync(invoke, str(examples))
    assert report["source"] == f"file://{examples}/"
    assert (report["listed"], report["labelled"], report["failed"]) == (7, 5, 0)
    assert report["skipped"] == 2  # LICENSE.md and the script that made the video
    portrait = show(invoke, examples / "astronaut.png")
    assert portrait["uri"] == f"file://{examples}/astronaut.png"
    assert portrait["labeller"] == "local"
    assert portrait["etag"].startswith("sha256:")
    assert "Face" in label_names(portrait)
    assert "Cat" in label_names(show(invoke, examples / "chelsea.png"))
    video = show(invoke, examples / "astronaut-pan.mp4")
    assert video["kind"] == "video"
    face = next(label for label in video["labels"] if label["name"] == "Face")
    assert face["timestamps_ms"] == [0, 1000, 2000]
    assert video["video"]["codec"] == "h264"


def test_a_relative_path_and_a_file_uri_name_the_same_folder(invoke, folder, monkeypatch):
    (folder / "a.png").write_bytes(make_image(fmt="PNG"))
    monkeypatch.chdir(folder.parent)
    first = sync(invoke, "photos")
    assert first["labelled"] == 1
    again = sync(invoke, f"file://{folder}")
    assert (again["unchanged"], again["labelled"], again["deleted"]) == (1, 0, 0)


# -- change detection ----------------------------------------------------------------------------


def test_a_touched_file_is_not_labelled_again(invoke, sessions, folder, hashes):
    image = folder / "a.jpg"
    image.write_bytes(make_image())
    sync(invoke, str(folder))
    assert hashes == [str(image)]
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    report = sync(invoke, str(folder))
    assert (report["unchanged"], report["labelled"]) == (1, 0)
    assert result_count(sessions, image) == 1
    assert hashes == [str(image), str(image)]  # the new mtime made it check the content
    sync(invoke, str(folder))
    assert hashes == [str(image), str(image)]  # ... and the new mtime was kept: no third hash


def test_unchanged_files_are_not_even_hashed(invoke, folder, hashes):
    (folder / "a.jpg").write_bytes(make_image())
    (folder / "b.jpg").write_bytes(make_image(background=RED))
    sync(invoke, str(folder))
    hashes.clear()
    report = sync(invoke, str(folder))
    assert report["unchanged"] == 2
    assert hashes == []


def test_a_changed_file_is_labelled_again(invoke, sessions, folder, tmp_path):
    model = write_constant_detector(tmp_path / "m.onnx", [(0, 320, 320, 100, 100, 0.9)])
    image = folder / "a.jpg"
    image.write_bytes(make_image())
    sync(invoke, str(folder), "--model", str(model))
    before = media_row(sessions, image)
    image.write_bytes(make_image(background=RED))
    report = sync(invoke, str(folder), "--model", str(model))
    assert (report["labelled"], report["unchanged"]) == (1, 0)
    after = media_row(sessions, image)
    assert after.etag != before.etag
    assert result_count(sessions, image) == 2
    assert media_count(sessions, "Person") == 1  # replaced, not counted twice


def test_a_removed_file_is_marked_deleted(invoke, sessions, folder):
    keep, gone = folder / "keep.jpg", folder / "sub" / "gone.jpg"
    gone.parent.mkdir()
    keep.write_bytes(make_image())
    gone.write_bytes(make_image(background=RED))
    sync(invoke, str(folder))
    gone.unlink()
    report = sync(invoke, str(folder))
    assert (report["deleted"], report["unchanged"]) == (1, 1)
    assert media_row(sessions, gone).status == "deleted"
    missing = invoke("show", f"file://{gone}")
    assert missing.exit_code == 2
    assert missing.stderr.startswith("Error: ")


def test_a_sibling_folder_with_a_longer_name_is_left_alone(invoke, sessions, tmp_path):
    photos, photos2 = tmp_path / "photos", tmp_path / "photos2"
    photos.mkdir()
    photos2.mkdir()
    (photos / "a.jpg").write_bytes(make_image())
    (photos2 / "b.jpg").write_bytes(make_image())
    sync(invoke, str(photos2))
    report = sync(invoke, str(photos))
    assert report["deleted"] == 0
    assert media_row(sessions, photos2 / "b.jpg").status == "labelled"


# -- failures ------------------------------------------------------------------------------------


def test_empty_and_corrupt_files_are_recorded_with_codes(invoke, folder):
    (folder / "empty.jpg").write_bytes(b"")
    whole = make_image(fmt="PNG", noise=True)
    (folder / "corrupt.png").write_bytes(whole[: len(whole) // 2])  # cut off half-way
    (folder / "text.jpg").write_bytes(b"just some text")
    (folder / "good.jpg").write_bytes(make_image())
    (folder / "notes.txt").write_text("not media")
    report = sync(invoke, str(folder), code=1)
    assert (report["labelled"], report["failed"], report["skipped"]) == (1, 3, 1)
    codes = {Path(f["uri"]).name: f["code"] for f in report["failures"]}
    assert codes == {
        "empty.jpg": "EmptyObject",
        "corrupt.png": "CorruptImage",
        "text.jpg": "InvalidImageFormat",
    }
    listed = invoke("failures", "--format", "json")
    assert {item["code"] for item in json.loads(listed.stdout)} == set(codes.values())


# -- labellers -----------------------------------------------------------------------------------


def test_switching_labeller_replaces_the_labels(
    invoke, sessions, folder, tmp_path, aws_env, rekognition_double
):
    image = folder / "car.jpg"
    image.write_bytes(make_image(boxes=[(RED, (10, 10, 100, 140))]))
    sync(invoke, str(folder), "--labeller", "rekognition")
    assert rekognition_double.count("DetectLabels") == 1
    detail = show(invoke, image)
    assert detail["labeller"] == "rekognition"
    assert {"Car", "Daylight"} <= label_names(detail)

    model = write_constant_detector(tmp_path / "tiny.onnx", [(0, 320, 320, 100, 100, 0.9)])
    report = sync(invoke, str(folder), "--model", str(model))
    assert report["labelled"] == 1
    detail = show(invoke, image)
    assert (detail["labeller"], detail["model_version"]) == ("local", "onnx:tiny.onnx")
    assert label_names(detail) == {"Person"}
    assert (media_count(sessions, "Car"), media_count(sessions, "Daylight")) == (0, 0)
    assert media_count(sessions, "Person") == 1

    again = sync(invoke, str(folder), "--model", str(model))
    assert (again["unchanged"], again["labelled"]) == (1, 0)
    assert rekognition_double.count("DetectLabels") == 1


def test_another_local_model_relabels(invoke, sessions, folder, tmp_path):
    image = folder / "a.jpg"
    image.write_bytes(make_image())
    first = write_constant_detector(tmp_path / "first.onnx", [(0, 320, 320, 100, 100, 0.9)])
    second = write_constant_detector(tmp_path / "second.onnx", [(16, 320, 320, 100, 100, 0.9)])
    sync(invoke, str(folder), "--model", str(first))
    report = sync(invoke, str(folder), "--model", str(second))
    assert report["labelled"] == 1
    assert label_names(show(invoke, image)) == {"Dog", "Animal", "Canine", "Mammal", "Pet"}
    assert media_count(sessions, "Person") == 0


def test_a_folder_with_rekognition_sends_bytes_and_fails_videos(
    invoke, folder, aws_env, rekognition_double
):
    (folder / "car.jpg").write_bytes(make_image(boxes=[(RED, (10, 10, 100, 140))]))
    shutil.copy(EXAMPLES / "astronaut-pan.mp4", folder / "clip.mp4")
    report = sync(invoke, str(folder), "--labeller", "rekognition", code=1)
    assert (report["labelled"], report["failed"]) == (1, 1)
    assert report["failures"][0]["code"] == "VideoNeedsS3"
    assert "--labeller local" in report["failures"][0]["message"]
    # The local labeller can do what Rekognition could not: the video is labelled now.
    report = sync(invoke, str(folder))
    assert report["failed"] == 0
    assert "Face" in label_names(show(invoke, folder / "clip.mp4"))


def test_dry_run_on_a_folder_costs_nothing_and_writes_nothing(invoke, sessions, folder):
    (folder / "a.jpg").write_bytes(make_image())
    result = invoke("sync", str(folder), "--dry-run", "--no-progress", "--format", "json")
    assert result.exit_code == 0, result.output
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(Media)).scalar_one() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "does not exist"),
        (["{file}"], "is not a directory"),
        (["{folder}", "--labeller", "rekognition", "--model", "{file}"], "--labeller local"),
        (["{folder}", "--classes", "{file}"], "--model"),
        (["{folder}", "--model", "{file}"], "cannot load"),
        (["{folder}", "--labeller", "amazon"], "amazon"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(invoke, folder, args, message):
    file = folder / "a.jpg"
    file.write_bytes(make_image())
    values = {"missing": str(folder / "nope"), "file": str(file), "folder": str(folder)}
    result = invoke("sync", *[arg.format(**values) for arg in args], "--no-progress")
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    if "amazon" not in args:
        assert result.stderr.startswith("Error: ")
        assert len(result.stderr.strip().splitlines()) == 1


# -- the walk ------------------------------------------------------------------------------------


def test_the_walk_yields_whole_paths_in_code_point_order_in_pages(tmp_path):
    names = ["a.jpg", "a/x.jpg", "a-b.jpg", "a/b/c.jpg", "B.jpg", "ä.jpg", "a0.jpg", "z/y.jpg"]
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (tmp_path / "fifo").mkdir()  # an empty directory yields nothing
    source = LocalSource(str(tmp_path), page_size=3)
    pages = list(source.iter_pages())
    keys = [obj.key for page in pages for obj in page]
    assert keys == sorted(str(tmp_path / name) for name in names)
    assert [len(page) for page in pages] == [3, 3, 2]
    assert all(obj.etag is None and obj.source == "file" for page in pages for obj in page)


def test_a_directory_link_inside_the_root_is_followed_and_a_loop_is_refused(tmp_path):
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.jpg").write_bytes(b"x")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    listed = [
        (obj.key, obj.skip_reason) for page in LocalSource(str(root)).iter_pages() for obj in page
    ]
    assert listed == [
        (str(root / "alias" / "a.jpg"), None),
        (f"{root / 'loop'}/", "link loop"),
        (str(root / "real" / "a.jpg"), None),
    ]


def test_a_copy_is_not_given_another_models_labels(invoke, folder, tmp_path):
    first = write_constant_detector(tmp_path / "first.onnx", [(0, 320, 320, 100, 100, 0.9)])
    second = write_constant_detector(tmp_path / "second.onnx", [(16, 320, 320, 100, 100, 0.9)])
    (folder / "old").mkdir()
    (folder / "new").mkdir()
    (folder / "old" / "a.jpg").write_bytes(make_image())
    sync(invoke, str(folder / "old"), "--model", str(first))
    (folder / "new" / "b.jpg").write_bytes(make_image())  # the same content as old/a.jpg
    report = sync(invoke, str(folder / "new"), "--model", str(second))
    assert (report["labelled"], report["reused"]) == (1, 0)
    assert label_names(show(invoke, folder / "new" / "b.jpg")) >= {"Dog", "Animal"}
    assert "Person" not in label_names(show(invoke, folder / "new" / "b.jpg"))
    same_model = sync(invoke, str(folder / "old"), "--model", str(second))
    assert (same_model["labelled"], same_model["reused"]) == (0, 1)  # now a copy can be reused


def test_an_s3_prefix_can_be_labelled_locally(invoke, put, tmp_path, rekognition_double):
    put("photos/a.jpg", make_image())
    model = write_constant_detector(tmp_path / "tiny.onnx", [(2, 320, 320, 100, 100, 0.9)])
    result = invoke(
        "sync", "s3://media-library/photos/", "--labeller", "local", "--model", str(model),
        "--no-progress", catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert rekognition_double.count("DetectLabels") == 0
    shown = json.loads(invoke("show", "s3://media-library/photos/a.jpg", "--format", "json").stdout)
    assert (shown["labeller"], label_names(shown)) == (
        "local",
        {"Car", "Transportation", "Vehicle"},
    )
