"""OpenCV for the offline labeller: imported on first use, with a clear error when it is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catalog.errors import UsageError


def opencv() -> Any:
    """The cv2 module, or a UsageError saying which extra installs it."""
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - the 'local' extra is missing
        raise UsageError(
            "the local labeller needs OpenCV: pip install 'catalog[local]' "
            "(opencv-python-headless<5)"
        ) from exc
    return cv2


def cascade_dir(probe: str = "haarcascade_frontalface_default.xml") -> Path:
    """Where opencv-python-headless keeps its trained Haar cascades."""
    cv2 = opencv()
    directory = Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or "")
    if not (directory / probe).is_file():
        raise UsageError(
            "OpenCV's Haar cascades are missing (opencv 5 no longer ships them); "
            "install opencv-python-headless<5"
        )
    return directory
