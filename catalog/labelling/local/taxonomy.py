"""Label names and Rekognition's taxonomy for what the offline labeller finds, parents included."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from catalog.labelling import DetectedLabel, Instance

# Rekognition's taxonomy for the labels we produce and their parents:
# name -> (parents, aliases, categories), as DetectLabels returns them.
TAXONOMY: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "Person": ((), ("Human",), ("Person Description",)),
    "Head": (("Person",), (), ("Person Description",)),
    "Face": (("Head", "Person"), (), ("Person Description",)),
    "Animal": ((), (), ("Animals and Pets",)),
    "Mammal": (("Animal",), (), ("Animals and Pets",)),
    "Pet": (("Animal",), (), ("Animals and Pets",)),
    "Canine": (("Animal", "Mammal"), (), ("Animals and Pets",)),
    "Wildlife": (("Animal",), (), ("Animals and Pets",)),
    "Cattle": (("Animal", "Mammal"), (), ("Animals and Pets",)),
    "Transportation": ((), (), ("Vehicles and Automotive",)),
    "Vehicle": (("Transportation",), (), ("Vehicles and Automotive",)),
    "Aircraft": (("Transportation", "Vehicle"), (), ("Vehicles and Automotive",)),
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
    "Cow": (("Animal", "Cattle", "Mammal"), (), ("Animals and Pets",)),
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


def _label(name: str, confidence: float, instances: Sequence[Instance]) -> DetectedLabel:
    parents, aliases, categories = TAXONOMY.get(name, ((), (), ()))
    return DetectedLabel(
        name=name,
        confidence=confidence,
        instances=tuple(sorted(instances, key=lambda i: -i.confidence)),
        parents=parents,
        aliases=aliases,
        categories=categories,
    )


def make_labels(found: Mapping[str, Sequence[Instance]]) -> list[DetectedLabel]:
    """Labels for the detected instances and, as Rekognition gives them, for all their parents.

    A Face is also a Head and a Person, a Cat an Animal, a Mammal and a Pet: each parent is a
    label of its own (so searching for it finds the picture) with the confidence of its most
    certain child and no boxes of its own unless a detector found it directly. Best first.
    """
    confidence = {name: max(i.confidence for i in items) for name, items in found.items() if items}
    for name, best in list(confidence.items()):
        for parent in TAXONOMY.get(name, ((), (), ()))[0]:
            confidence[parent] = max(confidence.get(parent, 0.0), best)
    labels = [_label(name, value, found.get(name, ())) for name, value in confidence.items()]
    labels.sort(key=lambda label: (-label.confidence, label.name))
    return labels
