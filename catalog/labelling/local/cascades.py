"""OpenCV's Haar cascades as a labeller: independent looks that must agree before a label counts.

Each label has several looks at the picture: the cascades OpenCV trained for it, a close-up pass
(for a cat face that fills the frame: the photo and its mirror image shrunk to a few sizes and
padded with their own edge pixels), and for faces a check for eyes inside the face. A box's evidence is how many looks
agree on it (overlap > 50 %), and that count, not the cascade's own score, sets the confidence:

    looks >= needed:  confidence = 99 - 39 * 0.5 ** (looks - needed)   (60, 79.5, 89.3, 94.1 ...)
    looks <  needed:  confidence = 50 * looks / needed                 (below the default 50)

A cascade's own score does not separate right from wrong (on the evaluation set in
tests/data/local_eval.json the matplotlib logo scored higher as a face than Grace Hopper did),
but agreement does: a real face is found by three or four face cascades and has eyes; the
logo, coins and a moon crater were found by one. So a face needs at least two face cascades
and one eye to reach 50 % (a head on an enlarged coin was found by three face cascades but had
no eye; a patch of gravel had two "eyes" but only one face cascade). `needed` was chosen per label on that set so
that precision at the default --min-confidence (50) is at least 0.9 (benchmarks/local_eval.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from catalog.errors import UsageError
from catalog.labelling.local.boxes import Box, agree, suppress
from catalog.labelling.local.opencv import cascade_dir, opencv


@dataclass(frozen=True)
class LabelSpec:
    """The looks for one label and how many of them must agree to reach 50 %."""

    label: str
    cascades: tuple[str, ...]
    needed: int
    min_neighbors: int = 3
    min_size_ratio: float = 0.04  # smallest object, as a share of the shorter image side
    close_up: str | None = None  # a cascade that also looks for one object filling the frame
    eyes: bool = False  # eyes found inside the box are further looks (two at most), and needed
    min_cascades: int = 1  # below this many agreeing cascades a box stays under 50 %


LABEL_SPECS: tuple[LabelSpec, ...] = (
    LabelSpec(
        "Face",
        (
            "haarcascade_frontalface_default.xml",
            "haarcascade_frontalface_alt.xml",
            "haarcascade_frontalface_alt2.xml",
            "haarcascade_frontalface_alt_tree.xml",
        ),
        needed=3,
        eyes=True,
        min_cascades=2,
    ),
    LabelSpec(
        "Cat",
        ("haarcascade_frontalcatface.xml", "haarcascade_frontalcatface_extended.xml"),
        needed=3,
        min_neighbors=2,
        min_size_ratio=0.1,
        close_up="haarcascade_frontalcatface.xml",
    ),
    LabelSpec(
        "License Plate",
        ("haarcascade_russian_plate_number.xml", "haarcascade_license_plate_rus_16stages.xml"),
        needed=2,
        min_neighbors=4,
        min_size_ratio=0.03,
    ),
)
EYE_CASCADES = ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")
# Eyes are looked for in the top part of a face box, enlarged to at least this width so small
# faces count.
EYE_SEARCH_WIDTH = 120
# The close-up pass: (longer side in pixels, padding as a share of it) for each look.
CLOSE_UP_PASSES: tuple[tuple[int, float], ...] = (
    (120, 0.4),
    (140, 0.4),
    (160, 0.4),
    (160, 0.5),
    (180, 0.5),
)
# Step between window sizes; the close-up looks are small, so they step finely.
SCALE_FACTOR = 1.1
CLOSE_UP_SCALE_FACTOR = 1.05


def confidence_for(looks: int, needed: int) -> float:
    """The confidence (percent) of a box that `looks` independent looks agree on."""
    if looks >= needed:
        return 99.0 - 39.0 * 0.5 ** (looks - needed)
    return 50.0 * max(0, looks) / needed


class CascadeDetector:
    """Runs the cascades on a grey frame; one set of classifiers per thread (they are not shared)."""

    def __init__(self, specs: Sequence[LabelSpec] = LABEL_SPECS) -> None:
        self.specs = tuple(specs)
        self.directory = cascade_dir()
        self._local = threading.local()
        # Load once now so a broken installation fails before any file is touched.
        for name in EYE_CASCADES:
            self._classifier(name)
        for spec in self.specs:
            for name in spec.cascades:
                self._classifier(name)

    def _classifier(self, filename: str) -> Any:
        loaded: dict[str, Any] | None = getattr(self._local, "classifiers", None)
        if loaded is None:
            loaded = self._local.classifiers = {}
        if filename not in loaded:
            classifier = opencv().CascadeClassifier(str(self.directory / filename))
            if classifier.empty():
                raise UsageError(f"OpenCV could not load its cascade {filename}")
            loaded[filename] = classifier
        return loaded[filename]

    def detect(self, grey: Any) -> dict[str, list[tuple[Box, float]]]:
        """label -> [(pixel box, confidence percent)], duplicates suppressed.

        The main looks use the histogram-equalised frame (steadier under poor light); the
        close-up looks use the frame as it is, since equalising a frame-filling face flattens it.
        """
        found: dict[str, list[tuple[Box, float]]] = {}
        height, width = grey.shape[:2]
        equalised = opencv().equalizeHist(grey)
        for spec in self.specs:
            side = max(24, int(min(width, height) * spec.min_size_ratio))
            looks = [
                _run(self._classifier(name), equalised, spec.min_neighbors, SCALE_FACTOR, side)
                for name in spec.cascades
            ]
            if spec.close_up is not None:
                classifier = self._classifier(spec.close_up)
                looks += _close_up_looks(classifier, grey)
                # The cascade is not symmetric: look at the mirror image too.
                mirrored = _close_up_looks(classifier, opencv().flip(grey, 1))
                looks += [[(width - x - w, y, w, h) for x, y, w, h in look] for look in mirrored]
            scored = []
            for box, count in agree(looks):
                cascades = count
                eyes = min(2, self._count_eyes(equalised, box)) if spec.eyes else 0
                count += eyes
                if cascades < spec.min_cascades or (spec.eyes and not eyes):
                    # One cascade alone, or a "face" without an eye, never reaches 50 %.
                    count = min(count, spec.needed - 1)
                scored.append((box, confidence_for(count, spec.needed)))
            if scored:
                found[spec.label] = suppress(scored)
        return found

    def _count_eyes(self, grey: Any, box: Box) -> int:
        cv2 = opencv()
        x, y, w, h = (max(0, int(v)) for v in box)
        # Eyes sit in the upper part of a face; the mouth and nostrils below fool eye cascades.
        roi = grey[y : y + int(h * 0.6), x : x + w]
        if roi.size == 0 or min(roi.shape[:2]) < 8:
            return 0
        scale = max(1.0, EYE_SEARCH_WIDTH / roi.shape[1])
        roi = cv2.resize(roi, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        eyes = [
            eye
            for name in EYE_CASCADES
            for eye in _run(self._classifier(name), roi, 3, SCALE_FACTOR, roi.shape[1] // 8)
        ]
        # Two eyes side by side count as two; boxes on top of each other (found by both eye
        # cascades, or twice by one) as one.
        return len(agree([[eye] for eye in eyes], min_iou=0.2))


def _run(
    classifier: Any, grey: Any, min_neighbors: int, scale_factor: float, min_side: int
) -> list[Box]:
    boxes = classifier.detectMultiScale(
        grey, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_side, min_side)
    )
    return [(float(x), float(y), float(w), float(h)) for x, y, w, h in boxes]


def _close_up_looks(classifier: Any, grey: Any) -> list[list[Box]]:
    """One object filling the frame: several shrunk, edge-padded looks."""
    cv2 = opencv()
    height, width = grey.shape[:2]
    looks: list[list[Box]] = []
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
                ((x - pad) / scale, (y - pad) / scale, w / scale, h / scale)
                for x, y, w, h in _run(classifier, padded, 2, CLOSE_UP_SCALE_FACTOR, least)
            ]
        )
    return looks
