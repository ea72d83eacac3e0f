"""The offline labeller: cascades on the example photos, the ONNX path, video frames."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from catalog.errors import ObjectError, UsageError
from catalog.labelling import BoundingBox, ImageInput
from catalog.labelling.local import (
    LocalLabeller,
    calibrate,
    decode_yolo,
    load_class_names,
    rekognition_name,
)
from tests.factories import make_image
from tests.onnx_models import write_constant_detector, yolo_output

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


def test_cascade_confidences_are_calibrated_into_50_to_99(astronaut, chelsea):
    for result in (astronaut, chelsea):
        for label in result.labels:
            assert label.confidence == max(i.confidence for i in label.instances)
            assert all(50 < i.confidence < 99 for i in label.instances)


@pytest.mark.parametrize(
    ("weight", "expected"),
    [(-100.0, 50.0), (3.0, 74.5), (100.0, 99.0)],
)
def test_calibration_maps_the_midpoint_to_three_quarters(weight, expected):
    assert calibrate(weight, midpoint=3.0, spread=1.5) == pytest.approx(expected, abs=0.01)


def test_calibration_is_monotone():
    values = [calibrate(w / 10, 0.5, 0.5) for w in range(-30, 30)]
    assert values == sorted(values)


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
    decoded = decode_yolo(yolo_output(ROWS, 80, layout), 80, 0.5)
    assert [(cls, round(score, 2)) for _, cls, score in decoded] == [(0, 0.9), (0, 0.8), (2, 0.7)]
    assert decoded[0][0] == pytest.approx((220.0, 120.0, 200.0, 400.0))


def test_yolo_output_that_fits_no_class_count_is_an_object_error():
    with pytest.raises(ObjectError) as caught:
        decode_yolo(np.zeros((1, 7, 10), dtype=np.float32), 80, 0.5)
    assert caught.value.code == "ModelOutputError"


@pytest.mark.parametrize("layout", ["v8", "v5"])
def test_onnx_model_gives_rekognition_labels_with_boxes(tmp_path, layout):
    model = write_constant_detector(tmp_path / "tiny.onnx", ROWS, layout=layout)
    labeller = LocalLabeller(model_path=model)
    # 1280x640 letterboxes to 640x320 at the top of the square input: boxes scale by 2.
    result = labeller.label_image(ImageInput(data=make_image(1280, 640)))
    labels = by_name(result)
    assert sorted(labels) == ["Car", "Person"]
    person = labels["Person"]
    assert person.confidence == pytest.approx(90.0)
    assert len(person.instances) == 1
    assert person.instances[0].box == pytest.approx(BoundingBox(0.34375, 0.375, 0.3125, 0.625))
    car = labels["Car"]
    assert car.parents == ("Transportation", "Vehicle")
    assert car.aliases == ("Automobile",)
    assert car.instances[0].box == pytest.approx(BoundingBox(0.09375, 0.21875, 0.125, 0.1875))
    assert result.model_version == "onnx:tiny.onnx"


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
