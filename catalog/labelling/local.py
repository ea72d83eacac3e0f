"""The offline labeller: OpenCV Haar cascades (and any YOLO-family ONNX detector) on images and
video frames, answering in Rekognition's shapes and spellings.

Cascades (shipped inside opencv-python-headless 4.x, nothing to download):

- Face: haarcascade_frontalface_default.
- Person: haarcascade_fullbody and haarcascade_upperbody.
- Cat: haarcascade_frontalcatface and _extended, plus a "close-up" pass for a cat face that fills
  the frame (the photo shrunk to a few sizes and padded with its own edge pixels, so the detection
  window can reach past the border; a face counts when at least two of those passes agree).
- License Plate: haarcascade_russian_plate_number and haarcascade_license_plate_rus_16stages.

Confidence. `detectMultiScale3(..., outputRejectLevels=True)` gives each box the summed weak
classifier output of the cascade's last stage (its `levelWeights`): larger means more certain,
but the scale differs per cascade. Each cascade has a (midpoint, spread) measured on sample
photos (true detections against false ones), and a score w becomes

    confidence = 50 + 49 / (1 + exp(-(w - midpoint) / spread))

so every cascade detection lands in 50-99 percent, the midpoint reads as about 75 percent, and
no cascade ever claims 100. An ONNX detector's class score (times objectness, for YOLOv5-style
outputs) is already a probability and is used as it is, times 100.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.errors import ObjectError, UsageError
from catalog.labelling import (
    BoundingBox,
    DetectedLabel,
    ImageInput,
    Instance,
    LabelResult,
    Moment,
    VideoInfo,
)

LABELLER_NAME = "local"
DEFAULT_FRAME_INTERVAL_MS = 1000
# Work on at most this many pixels along the longer side (cascades are scale-invariant enough).
MAX_SIDE = 800
ONNX_INPUT_SIZE = 640
ONNX_NMS_IOU = 0.45

# Rekognition's taxonomy for the labels we produce: name -> (parents, aliases, categories).
TAXONOMY: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "Person": ((), ("Human",), ("Person Description",)),
    "Face": (("Head", "Person"), (), ("Person Description",)),
    "Cat": (("Animal", "Mammal", "Pet"), ("Kitten",), ("Animals and Pets",)),
    "Dog": (("Animal", "Canine", "Mammal", "Pet"), ("Puppy",), ("Animals and Pets",)),
    "License Plate": (("Transportation", "Vehicle"), (), ("Vehicles and Automotive",)),
    "Car": (("Transportation", "Vehicle"), ("Automobile",), ("Vehicles and Automotive",)),
    "Truck": (("Transportation", "Vehicle"), (), ("Vehicles and Automotive",)),
    "Bus": (("Transportation", "Vehicle"), (), ("Vehicles and Automotive",)),
    "Motorcycle": (("Transportation", "Vehicle"), (), ("Vehicles and Automotive",)),
    "Bicycle": (("Transportation", "Vehicle"), (), ("Vehicles and Automotive",)),
    "Airplane": (("Aircraft", "Transportation", "Vehicle"), (), ("Vehicles and Automotive",)),
    "Train": (("Transportation", "Vehicle"), (), ("Vehicles and Automotive",)),
    "Boat": (("Transportation", "Vehicle"), (), ("Vehicles and Automotive",)),
    "Bird": (("Animal",), (), ("Animals and Pets",)),
    "Horse": (("Animal", "Mammal"), (), ("Animals and Pets",)),
    "Sheep": (("Animal", "Mammal"), (), ("Animals and Pets",)),
    "Cow": (("Animal", "Mammal", "Cattle"), (), ("Animals and Pets",)),
    "Elephant": (("Animal", "Mammal", "Wildlife"), (), ("Animals and Pets",)),
    "Bear": (("Animal", "Mammal", "Wildlife"), (), ("Animals and Pets",)),
    "Zebra": (("Animal", "Mammal", "Wildlife"), (), ("Animals and Pets",)),
    "Giraffe": (("Animal", "Mammal", "Wildlife"), (), ("Animals and Pets",)),
}

# The 80 COCO classes in the order YOLO models output them.
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# COCO (and Pascal VOC) names whose Rekognition spelling is not simply the title-cased name.
_REKOGNITION_NAMES = {
    "aeroplane": "Airplane",
    "motorbike": "Motorcycle",
    "sofa": "Couch",
    "tvmonitor": "TV",
    "tv": "TV",
    "diningtable": "Dining Table",
    "pottedplant": "Potted Plant",
    "sports ball": "Ball",
    "skis": "Ski",
    "wine glass": "Glass",
    "cell phone": "Mobile Phone",
    "remote": "Remote Control",
    "keyboard": "Computer Keyboard",
    "mouse": "Computer Mouse",
    "hair drier": "Hair Dryer",
    "donut": "Donut",
}


def rekognition_name(name: str) -> str:
    """The Rekognition spelling of a detector's class name (person -> Person, cell phone -> Mobile Phone)."""
    key = " ".join(name.strip().replace("_", " ").split())
    if key.casefold() in _REKOGNITION_NAMES:
        return _REKOGNITION_NAMES[key.casefold()]
    return " ".join(word[:1].upper() + word[1:] for word in key.split(" "))


def make_label(name: str, instances: Sequence[Instance]) -> DetectedLabel:
    """A DetectedLabel with Rekognition's parents, aliases and categories for the name."""
    parents, aliases, categories = TAXONOMY.get(name, ((), (), ()))
    return DetectedLabel(
        name=name,
        confidence=max(inst.confidence for inst in instances),
        instances=tuple(sorted(instances, key=lambda i: -i.confidence)),
        parents=parents,
        aliases=aliases,
        categories=categories,
    )


def calibrate(weight: float, midpoint: float, spread: float) -> float:
    """A cascade's last-stage score as a confidence in 50-99 percent (see the module docstring)."""
    z = max(-50.0, min(50.0, (weight - midpoint) / spread))
    return 50.0 + 49.0 / (1.0 + math.exp(-z))


# -- boxes --------------------------------------------------------------------------------------

Box = tuple[float, float, float, float]  # x, y, width, height in pixels


def _overlap(a: Box, b: Box) -> tuple[float, float]:
    """(intersection over union, intersection over the smaller box)."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a, area_b = a[2] * a[3], b[2] * b[3]
    union = area_a + area_b - inter
    smaller = min(area_a, area_b)
    return (inter / union if union else 0.0, inter / smaller if smaller else 0.0)


def suppress(found: Sequence[tuple[Box, float]]) -> list[tuple[Box, float]]:
    """Best-first: drop boxes that overlap, or mostly sit inside, a more confident one."""
    kept: list[tuple[Box, float]] = []
    for box, confidence in sorted(found, key=lambda item: -item[1]):
        if all(iou <= 0.3 and inside <= 0.7 for iou, inside in (_overlap(box, k) for k, _ in kept)):
            kept.append((box, confidence))
    return kept


def to_ratio_box(box: Box, width: int, height: int) -> BoundingBox:
    """A pixel box clipped to the frame, as Rekognition's ratios."""
    x0, y0 = max(0.0, box[0]), max(0.0, box[1])
    x1, y1 = min(float(width), box[0] + box[2]), min(float(height), box[1] + box[3])
    return BoundingBox(
        left=x0 / width,
        top=y0 / height,
        width=max(0.0, x1 - x0) / width,
        height=max(0.0, y1 - y0) / height,
    )


# -- cascades -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CascadeSpec:
    """One Haar cascade file and how its detections become a label."""

    label: str
    filename: str
    min_neighbors: int
    midpoint: float
    spread: float
    min_size_ratio: float = 0.04  # smallest object, as a share of the shorter image side
    close_up: bool = False  # also look for one object that fills (and overflows) the frame


CASCADES: tuple[CascadeSpec, ...] = (
    CascadeSpec("Face", "haarcascade_frontalface_default.xml", 4, 3.0, 1.5),
    CascadeSpec("Person", "haarcascade_fullbody.xml", 3, 0.5, 0.5, 0.08),
    CascadeSpec("Person", "haarcascade_upperbody.xml", 4, 0.5, 0.5, 0.1),
    CascadeSpec("Cat", "haarcascade_frontalcatface.xml", 2, 0.3, 0.4, 0.1, close_up=True),
    CascadeSpec("Cat", "haarcascade_frontalcatface_extended.xml", 2, 0.3, 0.4, 0.1),
    CascadeSpec("License Plate", "haarcascade_russian_plate_number.xml", 4, 1.0, 1.0, 0.03),
    CascadeSpec("License Plate", "haarcascade_license_plate_rus_16stages.xml", 4, 1.0, 1.0, 0.03),
)
# The close-up pass: (longer side in pixels, padding as a share of it) for each look.
CLOSE_UP_PASSES: tuple[tuple[int, float], ...] = (
    (120, 0.4),
    (140, 0.4),
    (160, 0.4),
    (160, 0.5),
    (180, 0.5),
)
CLOSE_UP_MIN_AGREEING = 2
# Step between window sizes: coarse is fast; the close-up looks are small, so they step finely.
SCALE_FACTOR = 1.2
CLOSE_UP_SCALE_FACTOR = 1.05


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - the 'local' extra is missing
        raise UsageError(
            "the local labeller needs OpenCV: pip install 'catalog[local]' "
            "(opencv-python-headless<5)"
        ) from exc
    return cv2


def cascade_dir() -> Path:
    """Where opencv-python-headless keeps its trained cascades."""
    cv2 = _cv2()
    directory = Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or "")
    if not (directory / CASCADES[0].filename).is_file():
        raise UsageError(
            "OpenCV's Haar cascades are missing (opencv 5 no longer ships them); "
            "install opencv-python-headless<5"
        )
    return directory


class CascadeDetector:
    """Runs the cascades on a grey frame; one set of classifiers per thread (they are not shared)."""

    def __init__(self, specs: Sequence[CascadeSpec] = CASCADES) -> None:
        self.specs = tuple(specs)
        self.directory = cascade_dir()
        self._local = threading.local()
        # Load once now so a broken installation fails before any file is touched.
        self._classifiers()

    def _classifiers(self) -> list[Any]:
        loaded: list[Any] | None = getattr(self._local, "classifiers", None)
        if loaded is None:
            cv2 = _cv2()
            loaded = []
            for spec in self.specs:
                classifier = cv2.CascadeClassifier(str(self.directory / spec.filename))
                if classifier.empty():
                    raise UsageError(f"OpenCV could not load its cascade {spec.filename}")
                loaded.append(classifier)
            self._local.classifiers = loaded
        return loaded

    def detect(self, grey: Any) -> dict[str, list[tuple[Box, float]]]:
        """label -> [(pixel box, confidence)] after suppression of duplicates.

        The main pass looks at the histogram-equalised frame (steadier under poor light); the
        close-up looks use the frame as it is, since equalising a frame-filling face flattens it.
        """
        found: dict[str, list[tuple[Box, float]]] = {}
        height, width = grey.shape[:2]
        equalised = _cv2().equalizeHist(grey)
        for spec, classifier in zip(self.specs, self._classifiers(), strict=True):
            side = max(24, int(min(width, height) * spec.min_size_ratio))
            boxes = _run(classifier, equalised, spec.min_neighbors, SCALE_FACTOR, (side, side))
            if spec.close_up:
                boxes += _close_up(classifier, grey)
            found.setdefault(spec.label, []).extend(
                (box, calibrate(weight, spec.midpoint, spec.spread)) for box, weight in boxes
            )
        return {label: suppress(items) for label, items in found.items() if items}


def _run(
    classifier: Any, grey: Any, min_neighbors: int, scale_factor: float, min_size: tuple[int, int]
) -> list[tuple[Box, float]]:
    boxes, _levels, weights = classifier.detectMultiScale3(
        grey,
        scaleFactor=scale_factor,
        minNeighbors=min_neighbors,
        minSize=min_size,
        outputRejectLevels=True,
    )
    flat = [float(w) for w in (weights.ravel() if hasattr(weights, "ravel") else weights)]
    return [
        ((float(x), float(y), float(w), float(h)), flat[i] if i < len(flat) else 0.0)
        for i, (x, y, w, h) in enumerate(boxes)
    ]


def _close_up(classifier: Any, grey: Any) -> list[tuple[Box, float]]:
    """One object filling the frame: several shrunk, edge-padded looks that must agree."""
    cv2 = _cv2()
    height, width = grey.shape[:2]
    looks: list[list[tuple[Box, float]]] = []
    for side, pad_share in CLOSE_UP_PASSES:
        scale = side / max(width, height)
        if scale >= 1:
            continue
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        pad = int(pad_share * side)
        padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        # Close-ups only (at least half the shorter side); smaller objects come from the main pass.
        least = max(24, int(0.5 * min(small.shape[:2])))
        looks.append(
            [
                (((x - pad) / scale, (y - pad) / scale, w / scale, h / scale), weight)
                for (x, y, w, h), weight in _run(
                    classifier, padded, 2, CLOSE_UP_SCALE_FACTOR, (least, least)
                )
            ]
        )
    agreed: list[tuple[Box, float]] = []
    candidates = [(i, box, weight) for i, look in enumerate(looks) for box, weight in look]
    for i, box, weight in candidates:
        support = {j for j, other, _ in candidates if j != i and _overlap(box, other)[0] > 0.5}
        if len(support) + 1 >= CLOSE_UP_MIN_AGREEING:
            agreed.append((box, weight))
    return agreed


# -- ONNX detector ------------------------------------------------------------------------------


def load_class_names(path: str | Path | None) -> tuple[str, ...]:
    """Class names, one per line (blank lines and '#' comments ignored); COCO when no file."""
    if path is None:
        return COCO_CLASSES
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read the classes file {path}: {exc.strerror or exc}") from exc
    names = tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))
    if not names:
        raise UsageError(f"the classes file {path} names no classes; put one class per line")
    return names


def decode_yolo(output: Any, class_count: int, min_score: float) -> list[tuple[Box, int, float]]:
    """YOLO output -> [(box in input pixels (x, y, w, h), class index, score 0-1)] before NMS.

    Accepts YOLOv8/v11's (1, 4+nc, N) and YOLOv5/v7's (1, N, 5+nc) (objectness in column 4).
    """
    import numpy as np

    data = np.asarray(output, dtype=np.float32)
    if data.ndim == 3:
        data = data[0]
    if data.ndim != 2:
        raise ObjectError("ModelOutputError", f"unexpected model output shape {output.shape}")
    widths = (4 + class_count, 5 + class_count)
    # Boxes along the rows: transpose YOLOv8's (4+nc, N) unless it is already (N, 4|5+nc).
    if data.shape[1] not in widths and (data.shape[0] in widths or data.shape[0] < data.shape[1]):
        data = data.T
    columns = data.shape[1]
    if columns == 5 + class_count:
        scores = data[:, 5:] * data[:, 4:5]
    elif columns == 4 + class_count:
        scores = data[:, 4:]
    else:
        raise ObjectError(
            "ModelOutputError",
            f"the model gives {columns} values per box; with {class_count} classes expected "
            f"{4 + class_count} (YOLOv8) or {5 + class_count} (YOLOv5); check --classes",
        )
    best = scores.argmax(axis=1)
    best_score = scores[np.arange(len(scores)), best]
    keep = best_score >= min_score
    result = []
    for (cx, cy, w, h), cls, score in zip(
        data[keep, :4], best[keep], best_score[keep], strict=True
    ):
        result.append(
            ((float(cx - w / 2), float(cy - h / 2), float(w), float(h)), int(cls), float(score))
        )
    return result


class OnnxDetector:
    """A YOLO-family ONNX object detector run through cv2.dnn, letterboxed to a square input."""

    def __init__(
        self,
        model_path: str | Path,
        classes_path: str | Path | None = None,
        input_size: int = ONNX_INPUT_SIZE,
    ) -> None:
        cv2 = _cv2()
        path = Path(model_path)
        if not path.is_file():
            raise UsageError(f"the model file {model_path} does not exist")
        self.path = path
        self.class_names = load_class_names(classes_path)
        self.labels = tuple(rekognition_name(name) for name in self.class_names)
        self.input_size = input_size
        try:
            self._probe = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as exc:
            raise UsageError(
                f"OpenCV cannot load {model_path} as an ONNX model: {str(exc).strip().splitlines()[-1]}"
            ) from exc
        self._local = threading.local()
        self._local.net = self._probe

    def _net(self) -> Any:
        net = getattr(self._local, "net", None)
        if net is None:
            net = self._local.net = _cv2().dnn.readNetFromONNX(str(self.path))
        return net

    def detect(self, rgb: Any, min_score: float) -> dict[str, list[tuple[Box, float]]]:
        """label -> [(pixel box, confidence percent)] after non-maximum suppression."""
        import numpy as np

        cv2 = _cv2()
        height, width = rgb.shape[:2]
        scale = self.input_size / max(width, height)
        resized = cv2.resize(
            rgb, (max(1, round(width * scale)), max(1, round(height * scale))), cv2.INTER_LINEAR
        )
        canvas = np.full((self.input_size, self.input_size, 3), 114, dtype=np.uint8)
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        blob = cv2.dnn.blobFromImage(canvas, 1 / 255.0, (self.input_size, self.input_size))
        net = self._net()
        net.setInput(blob)
        output = net.forward()
        raw = decode_yolo(output, len(self.class_names), min_score)
        if raw and max(max(abs(v) for v in box) for box, _, _ in raw) <= 2.0:
            # Normalised coordinates: bring them to input pixels.
            raw = [(tuple(v * self.input_size for v in box), c, s) for box, c, s in raw]  # type: ignore[misc]
        found: dict[str, list[tuple[Box, float]]] = {}
        for cls in sorted({c for _, c, _ in raw}):
            items = [(box, s) for box, c, s in raw if c == cls]
            keep = cv2.dnn.NMSBoxes(
                [list(box) for box, _ in items], [s for _, s in items], min_score, ONNX_NMS_IOU
            )
            name = self.labels[cls] if cls < len(self.labels) else f"Class {cls}"
            for index in np.asarray(keep).ravel():
                box, score = items[int(index)]
                found.setdefault(name, []).append(
                    ((box[0] / scale, box[1] / scale, box[2] / scale, box[3] / scale), score * 100)
                )
        return found

    @property
    def version(self) -> str:
        """The model file's name, as the model version recorded with each result."""
        return f"onnx:{self.path.name}"


# -- the labeller -------------------------------------------------------------------------------


class LocalLabeller:
    """Labels images and videos on this machine, with no network and nothing to download."""

    name = LABELLER_NAME
    # The pipeline hands this labeller the file's own bytes (no JPEG re-encoding, no S3 reference).
    reads_original_bytes = True
    labels_videos = True

    def __init__(
        self,
        *,
        min_confidence: float = 50.0,
        max_labels: int | None = None,
        model_path: str | Path | None = None,
        classes_path: str | Path | None = None,
        frame_interval_ms: int = DEFAULT_FRAME_INTERVAL_MS,
    ) -> None:
        if classes_path is not None and model_path is None:
            raise UsageError("--classes names the classes of an ONNX model; give --model too")
        self.min_confidence = min_confidence
        self.max_labels = max_labels
        self.frame_interval_ms = max(1, frame_interval_ms)
        self.onnx = OnnxDetector(model_path, classes_path) if model_path is not None else None
        self.cascades = CascadeDetector() if self.onnx is None else None
        cv2 = _cv2()
        self.model_version = (
            self.onnx.version if self.onnx is not None else f"opencv-{cv2.__version__}-haar"
        )[:64]

    # -- frames --

    def detect(self, rgb: Any) -> list[DetectedLabel]:
        """Labels for one RGB frame (a numpy array), best first."""
        cv2 = _cv2()
        height, width = rgb.shape[:2]
        scale = min(1.0, MAX_SIDE / max(width, height))
        if scale < 1.0:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if self.onnx is not None:
            found = self.onnx.detect(rgb, self.min_confidence / 100)
        else:
            assert self.cascades is not None
            found = self.cascades.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        small_h, small_w = rgb.shape[:2]
        labels = []
        for name, items in found.items():
            instances = [
                Instance(to_ratio_box(box, small_w, small_h), round(confidence, 3))
                for box, confidence in items
                if confidence >= self.min_confidence
            ]
            if instances:
                labels.append(make_label(name, instances))
        labels.sort(key=lambda label: (-label.confidence, label.name))
        if self.max_labels is not None:
            labels = labels[: self.max_labels]
        return labels

    # -- images --

    def label_image(self, image: ImageInput) -> LabelResult:
        """Label one image given as bytes (any format Pillow reads, EXIF orientation applied)."""
        import numpy as np

        from catalog.labelling.imaging import open_image

        if image.data is None:
            raise ObjectError("NoImageData", "the local labeller needs the image's bytes")
        picture = open_image(image.data)
        rgb = np.asarray(picture.convert("RGB"))
        return LabelResult(
            labeller=self.name,
            model_version=self.model_version,
            min_confidence=float(self.min_confidence),
            max_labels=self.max_labels,
            labels=self.detect(rgb),
            width=picture.width,
            height=picture.height,
        )

    # -- videos --

    def label_video(self, media: str | bytes) -> LabelResult:
        """Label a video (a file path or its bytes) by sampling a frame every interval."""
        import av

        source: Any = io.BytesIO(media) if isinstance(media, bytes) else media
        if isinstance(media, bytes) and not media:
            raise ObjectError("EmptyObject", "the object is empty (0 bytes)")
        try:
            container = av.open(source)
        except av.error.FFmpegError as exc:
            raise ObjectError("InvalidVideoFormat", f"not a readable video file: {exc}") from exc
        with container:
            if not container.streams.video:
                raise ObjectError("NoVideoStream", "the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            moments: list[Moment] = []
            next_ms = 0
            frames = 0
            try:
                for frame in container.decode(stream):
                    if frame.time is None:
                        continue
                    at_ms = round(frame.time * 1000)
                    if at_ms < next_ms:
                        continue
                    frames += 1
                    next_ms = (at_ms // self.frame_interval_ms + 1) * self.frame_interval_ms
                    for label in self.detect(frame.to_ndarray(format="rgb24")):
                        moments.append(Moment(at_ms, label))
            except av.error.FFmpegError as exc:
                raise ObjectError("CorruptVideo", f"the video cannot be decoded: {exc}") from exc
            if frames == 0:
                raise ObjectError("CorruptVideo", "no frame of the video could be decoded")
            info = VideoInfo(
                codec=stream.codec_context.name,
                container_format=container.format.name,
                duration_ms=_duration_ms(container, stream),
                frame_rate=float(stream.average_rate) if stream.average_rate else None,
                width=stream.codec_context.width or None,
                height=stream.codec_context.height or None,
            )
        return LabelResult(
            labeller=self.name,
            model_version=self.model_version,
            min_confidence=float(self.min_confidence),
            max_labels=self.max_labels,
            moments=moments,
            width=info.width,
            height=info.height,
            video=info,
        )


def _duration_ms(container: Any, stream: Any) -> int | None:
    if container.duration:
        return int(container.duration // 1000)  # microseconds (av.time_base)
    if stream.duration and stream.time_base:
        return int(stream.duration * stream.time_base * 1000)
    return None


__all__ = [
    "CASCADES",
    "COCO_CLASSES",
    "LABELLER_NAME",
    "CascadeDetector",
    "LocalLabeller",
    "OnnxDetector",
    "calibrate",
    "decode_yolo",
    "load_class_names",
    "rekognition_name",
]
