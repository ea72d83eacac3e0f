"""Pixel boxes of the offline labeller: overlap, suppression, agreement between looks, ratios."""

from __future__ import annotations

from collections.abc import Sequence

from catalog.labelling import BoundingBox

Box = tuple[float, float, float, float]  # x, y, width, height in pixels


def overlap(a: Box, b: Box) -> tuple[float, float]:
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
        if all(iou <= 0.3 and inside <= 0.7 for iou, inside in (overlap(box, k) for k, _ in kept)):
            kept.append((box, confidence))
    return kept


def agree(looks: Sequence[Sequence[Box]], min_iou: float = 0.5) -> list[tuple[Box, int]]:
    """Boxes several independent looks agree on, as (mean box, how many looks found it).

    Greedy: the box that the most looks confirm (each look counted once, by its best-matching
    box) becomes a cluster; its boxes are removed and the next cluster is chosen from the rest.
    """
    pool = [(look, box) for look, boxes in enumerate(looks) for box in boxes]
    clusters: list[tuple[Box, int]] = []
    while pool:
        best: list[tuple[int, Box]] = []
        for _, box in pool:
            members: dict[int, tuple[float, Box]] = {}
            for look, other in pool:
                iou = overlap(box, other)[0]
                if iou > min_iou and iou > members.get(look, (0.0, other))[0]:
                    members[look] = (iou, other)
            if len(members) > len(best):
                best = [(look, other) for look, (_, other) in members.items()]
        chosen = [other for _, other in best]
        mean = tuple(sum(b[i] for b in chosen) / len(chosen) for i in range(4))
        clusters.append((mean, len(chosen)))  # type: ignore[arg-type]
        pool = [(look, box) for look, box in pool if not any(box is c for c in chosen)]
    return clusters


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
