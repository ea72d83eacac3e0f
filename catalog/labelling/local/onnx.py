"""YOLO-family ONNX detectors run through cv2.dnn: reading the model's input, its output layout
and decoding its boxes.

Understood output layouts (nc = the number of classes, COCO's 80 unless --classes says):

- YOLOv8 / YOLOv11 (ultralytics): (1, 4+nc, N), decoded boxes `cx, cy, w, h`, class scores.
- YOLOv5 / YOLOv7: (1, N, 5+nc), decoded boxes, objectness, class scores.
- YOLOX: (1, N, 5+nc) as exported by Megvii's tools, either decoded (like YOLOv5) or, by
  default, not yet decoded: one row per anchor point of the stride-8, -16 and -32 grids, with
  `cx, cy = (raw + grid) * stride` and `w, h = exp(raw) * stride`. YOLOX reads BGR pixels 0-255;
  the others read RGB scaled to 0-1.

The layout is settled once, when the model is loaded, by running it on a blank picture: an
output none of these fits is a UsageError then, never a run of empty results.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.errors import UsageError
from catalog.labelling.local.boxes import Box
from catalog.labelling.local.opencv import opencv
from catalog.labelling.local.taxonomy import COCO_CLASSES, rekognition_name

DEFAULT_INPUT_SIZE = 640  # when the model does not declare a fixed input size
NMS_IOU = 0.45
LETTERBOX_FILL = 114
STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class YoloLayout:
    """How one model's output reads: which family, and the input it was probed with."""

    kind: str  # "v8", "v5" or "yolox" (raw, to be decoded on the grids)
    class_count: int
    input_height: int
    input_width: int
    transposed: bool  # boxes along the columns (YOLOv8's (4+nc, N))
    normalised: bool  # box coordinates as 0-1 ratios of the input rather than pixels

    @property
    def bgr_0_255(self) -> bool:
        """Whether the model reads BGR pixel values 0-255 (YOLOX) rather than RGB 0-1."""
        return self.kind == "yolox"


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


# -- the model's declared input ------------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes, start: int, end: int) -> list[tuple[int, int | tuple[int, int]]]:
    """Protocol-buffer fields in data[start:end]: (number, varint value or (start, end) span)."""
    fields: list[tuple[int, int | tuple[int, int]]] = []
    pos = start
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            fields.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            fields.append((number, (pos, pos + length)))
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return fields


def _spans(fields: list[tuple[int, int | tuple[int, int]]], number: int) -> list[tuple[int, int]]:
    return [value for n, value in fields if n == number and isinstance(value, tuple)]


def declared_input_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) of an ONNX model's image input when fixed, from the model file's bytes.

    Reads ModelProto.graph.input[*].type.tensor_type.shape (skipping inputs that are
    initializers, as old exports list them); None when the size is symbolic or unreadable.
    """
    try:
        for graph in _spans(_fields(data, 0, len(data)), 7):
            graph_fields = _fields(data, *graph)
            weights = {
                bytes(data[s:e])
                for init in _spans(graph_fields, 5)
                for s, e in _spans(_fields(data, *init), 8)
            }
            for value_info in _spans(graph_fields, 11):
                info = _fields(data, *value_info)
                if any(bytes(data[s:e]) in weights for s, e in _spans(info, 1)):
                    continue
                dims: list[int | None] = []
                for type_span in _spans(info, 2):
                    for tensor in _spans(_fields(data, *type_span), 1):
                        for shape in _spans(_fields(data, *tensor), 2):
                            for dim in _spans(_fields(data, *shape), 1):
                                values = [v for n, v in _fields(data, *dim) if n == 1]
                                dims.append(int(values[0]) if values else None)  # type: ignore[arg-type]
                if len(dims) == 4 and dims[2] and dims[3]:
                    return int(dims[2]), int(dims[3])
                return None
    except (IndexError, ValueError):
        return None
    return None


# -- output layouts --------------------------------------------------------------------------------


def _rows(output: Any, layout: YoloLayout | None = None) -> Any:
    import numpy as np

    data = np.asarray(output, dtype=np.float32)
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    if layout is not None and layout.transposed:
        data = data.T
    return data


def _grid(height: int, width: int) -> Any:
    """(N, 3) array of grid x, grid y and stride for each anchor point, in YOLOX's order."""
    import numpy as np

    parts = []
    for stride in STRIDES:
        ys, xs = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
        parts.append(np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, stride)], axis=1))
    return np.concatenate(parts).astype(np.float32)


def read_layout(output: Any, class_count: int, input_height: int, input_width: int) -> YoloLayout:
    """Which YOLO layout a model's output (on a probe picture) has; UsageError when none fits."""
    import numpy as np

    data = _rows(output)
    shape = tuple(np.asarray(output).shape)
    widths = (4 + class_count, 5 + class_count)
    if data.ndim != 2 or not (data.shape[1] in widths or data.shape[0] in widths):
        raise UsageError(
            f"the model's output {shape} is no YOLO layout this labeller reads for {class_count} "
            f"classes: YOLOv8/v11 (1, {widths[0]}, N), YOLOv5/v7/YOLOX (1, N, {widths[1]}); "
            "check --classes"
        )
    transposed = data.shape[1] not in widths
    if transposed:
        data = data.T
    kind = "v8" if data.shape[1] == widths[0] else "v5"
    grid = _grid(input_height, input_width)
    if kind == "v5" and len(data) == len(grid):
        # One row per grid point: YOLOX. Decoded centres follow the grid; raw offsets do not.
        centres = (grid[:, 0] + 0.5) * grid[:, 2]
        with np.errstate(invalid="ignore", divide="ignore"):
            tracking = np.corrcoef(data[:, 0], centres)[0, 1]
        if not (tracking > 0.5):  # also when undefined (a constant column)
            kind = "yolox"
    normalised = kind != "yolox" and float(np.abs(data[:, :4]).max(initial=0.0)) <= 2.0
    return YoloLayout(kind, class_count, input_height, input_width, transposed, normalised)


def decode(output: Any, layout: YoloLayout, min_score: float) -> list[tuple[Box, int, float]]:
    """Model output -> [(box in input pixels (x, y, w, h), class index, score 0-1)] before NMS."""
    import numpy as np

    data = _rows(output, layout)
    if data.ndim != 2 or data.shape[1] != layout.class_count + (4 if layout.kind == "v8" else 5):
        raise UsageError(f"the model's output changed shape to {np.asarray(output).shape}")
    boxes = data[:, :4].copy()
    if layout.kind == "yolox":
        grid = _grid(layout.input_height, layout.input_width)
        boxes[:, :2] = (boxes[:, :2] + grid[:, :2]) * grid[:, 2:3]
        boxes[:, 2:] = np.exp(np.clip(boxes[:, 2:], -50.0, 50.0)) * grid[:, 2:3]
    elif layout.normalised:
        boxes *= np.array([layout.input_width, layout.input_height] * 2, dtype=np.float32)
    scores = data[:, 4:] if layout.kind == "v8" else data[:, 5:] * data[:, 4:5]
    best = scores.argmax(axis=1)
    best_score = scores[np.arange(len(scores)), best]
    keep = best_score >= min_score
    return [
        ((float(cx - w / 2), float(cy - h / 2), float(w), float(h)), int(cls), float(score))
        for (cx, cy, w, h), cls, score in zip(
            boxes[keep], best[keep], best_score[keep], strict=True
        )
    ]


# -- the detector ----------------------------------------------------------------------------------


class OnnxDetector:
    """A YOLO-family ONNX object detector run through cv2.dnn, letterboxed at the top left."""

    def __init__(self, model_path: str | Path, classes_path: str | Path | None = None) -> None:
        cv2 = opencv()
        path = Path(model_path)
        if not path.is_file():
            raise UsageError(f"the model file {model_path} does not exist")
        self.path = path
        self.class_names = load_class_names(classes_path)
        self.labels = tuple(rekognition_name(name) for name in self.class_names)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read the model {model_path}: {exc.strerror or exc}") from exc
        height, width = declared_input_size(data) or (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)
        try:
            net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as exc:
            raise UsageError(
                f"OpenCV cannot load {model_path} as an ONNX model: {_last_line(exc)}"
            ) from exc
        try:
            net.setInput(cv2.dnn.blobFromImage(_blank(height, width), 1 / 255.0))
            output = net.forward()
        except cv2.error as exc:
            raise UsageError(
                f"OpenCV cannot run {model_path} on a {width}x{height} picture: {_last_line(exc)}"
            ) from exc
        try:
            self.layout = read_layout(output, len(self.class_names), height, width)
        except UsageError as exc:
            raise UsageError(f"{model_path}: {exc}") from None
        self._local = threading.local()
        self._local.net = net

    def _net(self) -> Any:
        net = getattr(self._local, "net", None)
        if net is None:
            net = self._local.net = opencv().dnn.readNetFromONNX(str(self.path))
        return net

    def detect(self, rgb: Any, min_score: float) -> dict[str, list[tuple[Box, float]]]:
        """label -> [(pixel box, confidence percent)] after non-maximum suppression."""
        import numpy as np

        cv2 = opencv()
        layout = self.layout
        height, width = rgb.shape[:2]
        scale = min(layout.input_width / width, layout.input_height / height)
        resized = cv2.resize(
            rgb, (max(1, round(width * scale)), max(1, round(height * scale))), cv2.INTER_LINEAR
        )
        canvas = _blank(layout.input_height, layout.input_width)
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        if layout.bgr_0_255:
            blob = cv2.dnn.blobFromImage(canvas, 1.0, swapRB=True)
        else:
            blob = cv2.dnn.blobFromImage(canvas, 1 / 255.0)
        net = self._net()
        net.setInput(blob)
        raw = decode(net.forward(), layout, min_score)
        found: dict[str, list[tuple[Box, float]]] = {}
        for cls in sorted({c for _, c, _ in raw}):
            items = [(box, s) for box, c, s in raw if c == cls]
            keep = cv2.dnn.NMSBoxes(
                [list(box) for box, _ in items], [s for _, s in items], min_score, NMS_IOU
            )
            name = self.labels[cls] if cls < len(self.labels) else f"Class {cls}"
            for index in np.asarray(keep).ravel():
                box, score = items[int(index)]
                found.setdefault(name, []).append((tuple(v / scale for v in box), score * 100))
        return found

    @property
    def version(self) -> str:
        """The model file's name, as the model version recorded with each result."""
        return f"onnx:{self.path.name}"


def _last_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


def _blank(height: int, width: int) -> Any:
    import numpy as np

    return np.full((height, width, 3), LETTERBOX_FILL, dtype=np.uint8)


__all__ = ["OnnxDetector", "YoloLayout", "declared_input_size", "decode", "read_layout"]
