"""The offline labeller: cascades on the example photos, the ONNX path, video frames."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from catalog.errors import ObjectError, UsageError
from catalog.labelling import BoundingBox, ImageInput, Instance
from catalog.labelling.local import LocalLabeller
from catalog.labelling.local.boxes import agree
from catalog.labelling.local.cascades import confidence_for
from catalog.labelling.local.onnx import (
    declared_input_size,
    decode,
    load_class_names,
    read_layout,
)
from catalog.labelling.local.taxonomy import make_labels, rekognition_name
from tests.factories import make_image
from tests.onnx_models import YOLOX_NANO, write_constant_detector, yolo_output

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Where the subjects are, as ratios, read off the pictures by eye.
ASTRONAUT_FACE = BoundingBox(0.345, 0.13, 0.18, 0.18)  # Eileen Collins' face
CHELSEA_FACE = BoundingBox(0.11, 0.0, 0.82, 1.0)  # the cat's face (ears to chin, cut by the frame)


def iou(a: BoundingBox, b: BoundingBox) -> float:
    ix = max(0.0, min(a.left + a.width, b.left + b.width) - max(a.left, b.left))
    iy = max(0.0, min(a.top + a.height, b.top + b.height) - max(a.top, b.top))
    inter = ix * iy
    return inter / (a.width * a.height + b.width * b.height - inter)


@pytest.fixture(scope="module")
def labeller() -> LocalLabeller:
    return LocalLabeller()


@pytest.fixture(scope="module")
def astronaut(labeller: LocalLabeller):
    return labeller.label_image(ImageInput(data=(EXAMPLES / "astronaut.png").read_bytes()))


@pytest.fixture(scope="module")
def chelsea(labeller: LocalLabeller):
    return labeller.label_image(ImageInput(data=(EXAMPLES / "chelsea.png").read_bytes()))


def by_name(result):
    return {label.name: label for label in result.labels}


def test_face_is_found_on_the_astronaut_portrait(astronaut):
    face = by_name(astronaut)["Face"]
    assert len(face.instances) == 1
    assert iou(face.instances[0].box, ASTRONAUT_FACE) > 0.6


def test_cat_face_is_found_on_the_cat_photo(chelsea):
    cat = by_name(chelsea)["Cat"]
    assert len(cat.instances) == 1
    assert iou(cat.instances[0].box, CHELSEA_FACE) > 0.6


def test_the_portrait_has_no_cat_and_the_cat_no_human_face(astronaut, chelsea):
    assert "Cat" not in by_name(astronaut)
    assert "Face" not in by_name(chelsea)


def test_labels_carry_rekognition_taxonomy_and_provenance(astronaut, chelsea):
    face, cat = by_name(astronaut)["Face"], by_name(chelsea)["Cat"]
    assert face.parents == ("Head", "Person")
    assert cat.parents == ("Animal", "Mammal", "Pet")
    assert cat.categories == ("Animals and Pets",)
    assert astronaut.labeller == "local"
    assert astronaut.model_version.startswith("opencv-4.") and astronaut.model_version.endswith(
        "-haar"
    )
    assert (astronaut.width, astronaut.height) == (512, 512)
    assert astronaut.billed_images == 0


def test_a_face_gives_its_parents_as_labels_too(astronaut):
    labels = by_name(astronaut)
    assert sorted(labels) == ["Face", "Head", "Person"]
    face = labels["Face"]
    for parent in ("Head", "Person"):
        assert labels[parent].confidence == face.confidence
        assert labels[parent].instances == ()  # the face's box is not a box around a person
    assert labels["Head"].parents == ("Person",)
    assert labels["Person"].aliases == ("Human",)


def test_a_cat_gives_animal_mammal_and_pet(chelsea):
    assert sorted(by_name(chelsea)) == ["Animal", "Cat", "Mammal", "Pet"]
    assert by_name(chelsea)["Mammal"].parents == ("Animal",)


def test_a_parent_found_itself_keeps_its_boxes_and_best_confidence():
    box = BoundingBox(0.1, 0.1, 0.5, 0.8)
    face = Instance(BoundingBox(0.2, 0.1, 0.1, 0.1), 90.0)
    labels = {
        label.name: label
        for label in make_labels({"Face": [face], "Person": [Instance(box, 70.0)]})
    }
    assert labels["Person"].confidence == 90.0
    assert [i.box for i in labels["Person"].instances] == [box]
    assert [label.name for label in make_labels({"Face": [face]})] == ["Face", "Head", "Person"]


def test_cascade_confidences_stay_between_50_and_99(astronaut, chelsea):
    results = [result.labels for result in (astronaut, chelsea)]
    assert all(results), "both example photos must be labelled"
    for labels in results:
        for label in labels:
            assert 50 <= label.confidence < 99
            for instance in label.instances:
                assert 50 <= instance.confidence < 99
            if label.instances:
                assert label.confidence == max(i.confidence for i in label.instances)


@pytest.mark.parametrize(
    ("looks", "needed", "expected"),
    [(0, 3, 0.0), (1, 3, 16.67), (2, 3, 33.33), (3, 3, 60.0), (4, 3, 79.5), (6, 3, 94.12),
     (2, 2, 60.0), (1, 2, 25.0)],
)  # fmt: skip
def test_agreeing_looks_set_the_confidence(looks, needed, expected):
    assert confidence_for(looks, needed) == pytest.approx(expected, abs=0.01)


def test_confidence_grows_with_each_look_and_never_reaches_99():
    values = [confidence_for(n, 3) for n in range(12)]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert values[-1] < 99


def test_looks_agree_on_overlapping_boxes_only():
    face = (100.0, 100.0, 50.0, 50.0)
    nudged = (104.0, 102.0, 48.0, 50.0)
    elsewhere = (300.0, 20.0, 40.0, 40.0)
    clusters = agree([[face], [nudged, elsewhere], [], [(101.0, 99.0, 52.0, 52.0)]])
    assert [count for _, count in clusters] == [3, 1]
    assert clusters[0][0] == pytest.approx((101.67, 100.33, 50.0, 50.67), abs=0.01)
    assert clusters[1][0] == elsewhere


def test_min_confidence_drops_weaker_detections():
    strict = LocalLabeller(min_confidence=99.5)
    result = strict.label_image(ImageInput(data=(EXAMPLES / "astronaut.png").read_bytes()))
    assert result.labels == []
    assert result.min_confidence == 99.5


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"", "EmptyObject"), (b"not an image at all", "InvalidImageFormat")],
)
def test_unreadable_images_are_object_errors(labeller, data, code):
    with pytest.raises(ObjectError) as caught:
        labeller.label_image(ImageInput(data=data))
    assert caught.value.code == code


# -- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("coco", "rekognition"),
    [
        ("person", "Person"),
        ("car", "Car"),
        ("dog", "Dog"),
        ("cat", "Cat"),
        ("traffic light", "Traffic Light"),
        ("cell phone", "Mobile Phone"),
        ("sports ball", "Ball"),
        ("motorbike", "Motorcycle"),
        ("aeroplane", "Airplane"),
        ("tv", "TV"),
    ],
)
def test_coco_names_take_rekognition_spelling(coco, rekognition):
    assert rekognition_name(coco) == rekognition


def test_class_file_lines_are_class_names(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# my model\nhedgehog\n\nfire truck\n")
    assert load_class_names(path) == ("hedgehog", "fire truck")


# -- ONNX ----------------------------------------------------------------------------------------

ROWS = [
    (0, 320.0, 320.0, 200.0, 400.0, 0.90),  # person
    (0, 330.0, 320.0, 200.0, 400.0, 0.80),  # the same person again: NMS drops it
    (2, 100.0, 100.0, 80.0, 60.0, 0.70),  # car
    (16, 500.0, 500.0, 50.0, 50.0, 0.20),  # a dog below the threshold
]


@pytest.mark.parametrize("layout", ["v8", "v5"])
def test_yolo_outputs_decode_in_both_layouts(layout):
    output = yolo_output(ROWS, 80, layout)
    found = read_layout(output, 80, 640, 640)
    assert (found.kind, found.transposed, found.normalised) == (layout, layout == "v8", False)
    decoded = decode(output, found, 0.5)
    assert [(cls, round(score, 2)) for _, cls, score in decoded] == [(0, 0.9), (0, 0.8), (2, 0.7)]
    assert decoded[0][0] == pytest.approx((220.0, 120.0, 200.0, 400.0))


def test_raw_yolox_output_is_decoded_on_its_grids():
    output = yolo_output(ROWS[:1] + ROWS[2:], 80, "yolox", size=640)
    assert output.shape == (1, 8400, 85)
    found = read_layout(output, 80, 640, 640)
    assert (found.kind, found.bgr_0_255) == ("yolox", True)
    decoded = decode(output, found, 0.5)
    assert [(cls, round(score, 2)) for _, cls, score in decoded] == [(2, 0.7), (0, 0.9)]
    assert decoded[1][0] == pytest.approx((220.0, 120.0, 200.0, 400.0), abs=1e-3)


def test_decoded_yolox_output_is_read_like_yolov5():
    """Exports with decoding built in give pixel centres that follow the grid."""
    output = yolo_output([(0, 48.0, 32.0, 40.0, 60.0, 0.9)], 80, "yolox", size=128)
    grid_x = np.concatenate(
        [np.tile(np.arange(128 // s), 128 // s) * s + s / 2 for s in (8, 16, 32)]
    )
    output[0, :, 0] = grid_x
    assert read_layout(output, 80, 128, 128).kind == "v5"


@pytest.mark.parametrize(
    ("shape", "message"),
    [((1, 7, 10), r"\(1, 7, 10\) is no YOLO layout"), ((1, 10, 84, 2), "is no YOLO layout")],
)
def test_an_output_no_layout_fits_is_a_usage_error(shape, message):
    with pytest.raises(UsageError, match=message):
        read_layout(np.zeros(shape, dtype=np.float32), 80, 640, 640)


def test_a_model_whose_output_fits_no_layout_fails_before_labelling(tmp_path):
    rows = [(1, 320.0, 320.0, 100.0, 100.0, 0.95)]
    model = write_constant_detector(tmp_path / "odd.onnx", rows, class_count=3)  # 7 values a box
    with pytest.raises(UsageError, match=r"odd.onnx: .* no YOLO layout .* for 80 classes"):
        LocalLabeller(model_path=model)


@pytest.mark.parametrize("layout", ["v8", "v5"])
def test_onnx_model_gives_rekognition_labels_with_boxes(tmp_path, layout):
    model = write_constant_detector(tmp_path / "tiny.onnx", ROWS, layout=layout)
    labeller = LocalLabeller(model_path=model)
    # 1280x640 letterboxes to 640x320 at the top of the square input: boxes scale by 2.
    result = labeller.label_image(ImageInput(data=make_image(1280, 640)))
    labels = by_name(result)
    assert sorted(labels) == ["Car", "Person", "Transportation", "Vehicle"]
    person = labels["Person"]
    assert person.confidence == pytest.approx(90.0)
    assert len(person.instances) == 1
    assert person.instances[0].box == pytest.approx(BoundingBox(0.34375, 0.375, 0.3125, 0.625))
    car = labels["Car"]
    assert car.parents == ("Transportation", "Vehicle")
    assert car.aliases == ("Automobile",)
    assert car.instances[0].box == pytest.approx(BoundingBox(0.09375, 0.21875, 0.125, 0.1875))
    assert labels["Vehicle"].confidence == pytest.approx(70.0)
    assert result.model_version == "onnx:tiny.onnx"


def test_a_raw_yolox_model_at_its_declared_size_gives_boxes(tmp_path):
    rows = [(0, 48.0, 32.0, 40.0, 60.0, 0.9)]
    model = write_constant_detector(tmp_path / "x.onnx", rows, layout="yolox", size=128)
    labeller = LocalLabeller(model_path=model)
    assert labeller.onnx is not None
    assert (labeller.onnx.layout.kind, labeller.onnx.layout.input_width) == ("yolox", 128)
    # 256x128 letterboxes to 128x64: boxes scale by 2.
    result = labeller.label_image(ImageInput(data=make_image(256, 128)))
    person = by_name(result)["Person"]
    assert person.confidence == pytest.approx(90.0)
    box = person.instances[0].box
    assert (box.left, box.top, box.width, box.height) == pytest.approx(
        (0.21875, 0.03125, 0.3125, 0.9375), abs=1e-4
    )


@pytest.mark.parametrize("size", [128, 640])
def test_the_declared_input_size_is_read_from_the_model(tmp_path, size):
    import onnx

    model = write_constant_detector(tmp_path / "m.onnx", ROWS[:1], size=size)
    dims = onnx.load(str(model)).graph.input[0].type.tensor_type.shape.dim
    assert declared_input_size(model.read_bytes()) == (dims[2].dim_value, dims[3].dim_value)
    assert declared_input_size(model.read_bytes()) == (size, size)


def test_a_symbolic_or_unreadable_input_size_is_none():
    assert declared_input_size(b"definitely not protobuf") is None


@pytest.mark.skipif(not YOLOX_NANO.is_file(), reason=f"no pretrained model at {YOLOX_NANO}")
def test_yolox_nano_is_read_at_416_as_raw_yolox():
    labeller = LocalLabeller(model_path=YOLOX_NANO)
    assert labeller.onnx is not None
    layout = labeller.onnx.layout
    assert (layout.kind, layout.input_height, layout.input_width) == ("yolox", 416, 416)
    result = labeller.label_image(ImageInput(data=(EXAMPLES / "astronaut.png").read_bytes()))
    person = by_name(result)["Person"]
    assert person.confidence > 85
    # Eileen Collins fills the lower left of the frame, head to the bottom edge.
    assert iou(person.instances[0].box, BoundingBox(0.0, 0.05, 0.6, 0.95)) > 0.6


def test_onnx_classes_file_names_the_labels(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("hedgehog\nfire truck\n")
    rows = [(1, 320.0, 320.0, 100.0, 100.0, 0.95)]
    model = write_constant_detector(tmp_path / "two.onnx", rows, class_count=2)
    result = LocalLabeller(model_path=model, classes_path=classes).label_image(
        ImageInput(data=make_image(640, 640))
    )
    assert [label.name for label in result.labels] == ["Fire Truck"]


def test_a_file_that_is_not_onnx_is_a_usage_error(tmp_path):
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"definitely not protobuf")
    with pytest.raises(UsageError, match="cannot load"):
        LocalLabeller(model_path=bogus)


def test_classes_without_a_model_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="--model"):
        LocalLabeller(classes_path=tmp_path / "classes.txt")


# -- video ---------------------------------------------------------------------------------------


def make_pan_mp4(seconds: int = 2, fps: int = 5) -> bytes:
    """An H.264 clip panning across the astronaut portrait (her face in every frame)."""
    picture = np.asarray(Image.open(EXAMPLES / "astronaut.png").convert("RGB"))
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        frames = seconds * fps
        for index in range(frames):
            left = round(150 * index / (frames - 1))
            window = np.ascontiguousarray(picture[20:260, left : left + 320])
            for packet in stream.encode(av.VideoFrame.from_ndarray(window, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def test_video_frames_become_moments_with_timestamps(tmp_path, labeller):
    path = tmp_path / "pan.mp4"
    path.write_bytes(make_pan_mp4(seconds=2, fps=5))
    result = labeller.label_video(str(path))
    faces = [m for m in result.moments if m.label.name == "Face"]
    assert [m.timestamp_ms for m in faces] == [0, 1000]
    # The camera pans right, so the face moves left in the frame.
    assert faces[0].label.instances[0].box.left > faces[1].label.instances[0].box.left
    assert result.labels == []
    assert result.video is not None
    assert (result.video.codec, result.video.width, result.video.height) == ("h264", 320, 240)
    assert result.video.duration_ms == pytest.approx(2000, abs=250)
    assert result.video.frame_rate == pytest.approx(5.0)


def test_frame_interval_sets_the_sampling(tmp_path):
    path = tmp_path / "pan.mp4"
    path.write_bytes(make_pan_mp4(seconds=1, fps=5))
    fine = LocalLabeller(frame_interval_ms=400).label_video(str(path))
    assert sorted({m.timestamp_ms for m in fine.moments if m.label.name == "Face"}) == [0, 400, 800]


def test_a_broken_video_is_an_object_error(tmp_path, labeller):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(ObjectError) as caught:
        labeller.label_video(str(path))
    assert caught.value.code in {"InvalidVideoFormat", "CorruptVideo"}
