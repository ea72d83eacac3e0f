"""Tiny ONNX detectors built in the tests: whatever the picture, they output fixed YOLO rows."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Pretrained models for tests live beside the repository in ../shared/models (never copied into
# it); CATALOG_TEST_MODELS points elsewhere. Tests that need one skip when it is absent.
PRETRAINED = Path(
    os.environ.get("CATALOG_TEST_MODELS")
    or Path(__file__).resolve().parent.parent.parent / "shared" / "models"
)
YOLOX_NANO = PRETRAINED / "yolox_nano.onnx"

# A detection: (class index, centre x, centre y, width, height in input pixels, score 0-1).
Row = tuple[int, float, float, float, float, float]


def yolo_output(rows: Sequence[Row], class_count: int, layout: str, size: int = 640) -> np.ndarray:
    """The output tensor a YOLO model gives for `rows`: 'v8' (1, 4+nc, N), 'v5' (1, N, 5+nc),
    or 'yolox': (1, N, 5+nc) not yet decoded, one row per point of the stride 8, 16 and 32 grids
    of a `size` input (each row here sits on the stride-32 grid)."""
    if layout == "yolox":
        return _yolox_output(rows, class_count, size)
    if layout == "v8":
        out = np.zeros((1, 4 + class_count, len(rows)), dtype=np.float32)
        for i, (cls, cx, cy, w, h, score) in enumerate(rows):
            out[0, :4, i] = (cx, cy, w, h)
            out[0, 4 + cls, i] = score
        return out
    out = np.zeros((1, len(rows), 5 + class_count), dtype=np.float32)
    for i, (cls, cx, cy, w, h, score) in enumerate(rows):
        out[0, i, :5] = (cx, cy, w, h, 1.0)
        out[0, i, 5 + cls] = score
    return out


def _yolox_output(rows: Sequence[Row], class_count: int, size: int) -> np.ndarray:
    first = (size // 8) ** 2 + (size // 16) ** 2  # where the stride-32 grid starts
    out = np.zeros((1, first + (size // 32) ** 2, 5 + class_count), dtype=np.float32)
    for cls, cx, cy, w, h, score in rows:
        gx, gy = int(cx // 32), int(cy // 32)
        index = first + gy * (size // 32) + gx
        out[0, index, :4] = (cx / 32 - gx, cy / 32 - gy, np.log(w / 32), np.log(h / 32))
        out[0, index, 4] = 1.0
        out[0, index, 5 + cls] = score
    return out


def write_constant_detector(
    path: Path, rows: Sequence[Row], class_count: int = 80, layout: str = "v8", size: int = 640
) -> Path:
    """An ONNX graph images(1,3,size,size) -> a constant YOLO output (through real ops)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    constant = yolo_output(rows, class_count, layout, size)
    flat = int(constant.size)
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "zeros"], ["nothing"]),  # (1, flat) of zeros
        helper.make_node("Add", ["nothing", "values"], ["sum"]),
        helper.make_node("Reshape", ["sum", "shape"], ["output0"]),
    ]
    initializers = [
        numpy_helper.from_array(np.zeros((3, flat), dtype=np.float32), "zeros"),
        numpy_helper.from_array(constant.reshape(1, flat), "values"),
        numpy_helper.from_array(np.array(constant.shape, dtype=np.int64), "shape"),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(constant.shape))],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
