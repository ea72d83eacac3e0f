"""Precision and recall of the offline labeller on real pictures that ship inside packages.

    python benchmarks/local_eval.py                          # the Haar cascades
    python benchmarks/local_eval.py --model ../shared/models/yolox_nano.onnx
    python benchmarks/local_eval.py --min-confidence 70 --details
    python benchmarks/local_eval.py --variants     # each picture also scaled and mirrored

The pictures are scikit-image's data images, scikit-learn's sample images and matplotlib's
sample_data (all in the `dev` extra); what is truly in each, checked by eye, is in
tests/data/local_eval.json. A label the labeller gives counts as right when the picture has it,
wrong when it has not (unless the truth calls it arguable: then it counts neither way), and a
true label not given is missed. Parents count like any label: a Face also gives Head and Person.
The target (issue 18) is precision >= 0.9 for the cascades at the default --min-confidence (50).
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catalog.labelling import ImageInput
from catalog.labelling.local import LocalLabeller

TRUTH = Path(__file__).resolve().parent.parent / "tests" / "data" / "local_eval.json"
# Where each package keeps its pictures, relative to the package's own folder.
PICTURE_FOLDERS = {
    "skimage": ("skimage", "data"),
    "sklearn": ("sklearn", "datasets/images"),
    "matplotlib": ("matplotlib", "mpl-data/sample_data"),
}


@dataclass(frozen=True)
class Picture:
    """One picture of the evaluation set and what is in it."""

    name: str  # package:file
    path: Path
    labels: frozenset[str]
    maybe: frozenset[str]


@dataclass
class Evaluation:
    """Counts per label over the set, and the labels given to each picture."""

    right: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)
    given: dict[str, dict[str, float]] = field(default_factory=dict)

    def precision(self, label: str | None = None) -> float | None:
        """Right / given, for one label or all; None when nothing was given."""
        right = self.right[label] if label else sum(self.right.values())
        wrong = self.wrong[label] if label else sum(self.wrong.values())
        return right / (right + wrong) if right + wrong else None

    def recall(self, label: str | None = None) -> float | None:
        """Right / present, for one label or all; None when the set never has it."""
        right = self.right[label] if label else sum(self.right.values())
        missed = self.missed[label] if label else sum(self.missed.values())
        return right / (right + missed) if right + missed else None

    def mistakes(self, pictures: list[Picture]) -> list[tuple[str, str, float]]:
        """(picture, label, confidence) for every wrong label, most confident first."""
        found = [
            (name, label, confidence)
            for picture in pictures
            for name, given in self.given.items()
            if name == picture.name or name.startswith(f"{picture.name} ")
            for label, confidence in given.items()
            if label not in picture.labels and label not in picture.maybe
        ]
        return sorted(found, key=lambda item: -item[2])


def load_pictures(truth: Path = TRUTH) -> tuple[list[Picture], list[str]]:
    """The evaluation set's pictures that are installed, and notes on those that are not."""
    data = json.loads(truth.read_text(encoding="utf-8"))
    pictures: list[Picture] = []
    missing: list[str] = []
    for item in data["images"]:
        module_name, folder = PICTURE_FOLDERS[item["package"]]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(f"{item['package']}:{item['file']} ({module_name} is not installed)")
            continue
        path = Path(module.__file__ or "").parent / folder / item["file"]
        if not path.is_file():
            missing.append(f"{item['package']}:{item['file']} (not in this version of it)")
            continue
        pictures.append(
            Picture(
                f"{item['package']}:{item['file']}",
                path,
                frozenset(item["labels"]),
                frozenset(item["maybe"]),
            )
        )
    return pictures, missing


# Copies that --variants adds: (scale, mirrored). A label that depends on the exact pixels of
# one picture is not a label the labeller can be trusted with.
VARIANTS: tuple[tuple[float, bool], ...] = (
    (0.4, False),
    (0.6, False),
    (0.8, True),
    (1.0, True),
    (1.2, True),
    (1.5, False),
)


def _variant(path: Path, scale: float, mirrored: bool) -> bytes:
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    picture = picture.resize(size, Image.Resampling.LANCZOS)
    if mirrored:
        picture = ImageOps.mirror(picture)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def evaluate(
    labeller: LocalLabeller, pictures: list[Picture], variants: bool = False
) -> Evaluation:
    """Label every picture (and, with variants, its scaled and mirrored copies) and count right,
    wrong and missed labels."""
    result = Evaluation()
    for picture in pictures:
        looks = [(picture.name, picture.path.read_bytes())]
        if variants:
            looks += [
                (
                    f"{picture.name} x{scale:g}{' mirrored' if mirrored else ''}",
                    _variant(picture.path, scale, mirrored),
                )
                for scale, mirrored in VARIANTS
            ]
        for name, data in looks:
            labels = labeller.label_image(ImageInput(data=data)).labels
            given = {label.name: label.confidence for label in labels}
            result.given[name] = given
            for label in given:
                if label in picture.labels:
                    result.right[label] += 1
                elif label not in picture.maybe:
                    result.wrong[label] += 1
            for label in picture.labels - given.keys():
                result.missed[label] += 1
    return result


def _ratio(value: float | None) -> str:
    return "   -" if value is None else f"{value:.2f}"


def print_report(title: str, evaluation: Evaluation, pictures: list[Picture]) -> None:
    """Per-label precision/recall, the overall figures and the wrong labels."""
    print(f"\n{title}")
    print(f"  {'label':<16} {'right':>5} {'wrong':>5} {'missed':>6} {'precision':>9} {'recall':>6}")
    labels = sorted(set(evaluation.right) | set(evaluation.wrong) | set(evaluation.missed))
    for label in labels:
        print(
            f"  {label:<16} {evaluation.right[label]:>5} {evaluation.wrong[label]:>5} "
            f"{evaluation.missed[label]:>6} {_ratio(evaluation.precision(label)):>9} "
            f"{_ratio(evaluation.recall(label)):>6}"
        )
    print(
        f"  {'all labels':<16} {sum(evaluation.right.values()):>5} "
        f"{sum(evaluation.wrong.values()):>5} {sum(evaluation.missed.values()):>6} "
        f"{_ratio(evaluation.precision()):>9} {_ratio(evaluation.recall()):>6}"
    )
    for name, label, confidence in evaluation.mistakes(pictures):
        print(f"  wrong: {name} -> {label} {confidence:.1f}")


def main() -> None:
    """Evaluate the cascades (or --model) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a YOLO-family ONNX model to evaluate too")
    parser.add_argument("--min-confidence", type=float, default=50.0)
    parser.add_argument("--details", action="store_true", help="print each picture's labels")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also label each picture scaled (0.4x-1.5x) and mirrored: 7 looks at each",
    )
    args = parser.parse_args()
    pictures, missing = load_pictures()
    for note in missing:
        print(f"skipped {note}", file=sys.stderr)
    copies = f" and {len(VARIANTS)} copies of each" if args.variants else ""
    print(f"{len(pictures)} pictures{copies}, --min-confidence {args.min_confidence:g}")
    runs = [("Haar cascades", LocalLabeller(min_confidence=args.min_confidence))]
    if args.model is not None:
        runs.append(
            (
                f"--model {args.model.name}",
                LocalLabeller(min_confidence=args.min_confidence, model_path=args.model),
            )
        )
    for title, labeller in runs:
        evaluation = evaluate(labeller, pictures, variants=args.variants)
        print_report(title, evaluation, pictures)
        if args.details:
            for name, given in evaluation.given.items():
                shown = ", ".join(f"{label} {value:.0f}" for label, value in given.items())
                print(f"    {name}: {shown or '-'}")


if __name__ == "__main__":
    main()
