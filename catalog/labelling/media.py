"""What kind of media an object is, and how Rekognition can be handed it (its limits)."""

from __future__ import annotations

from pathlib import PurePosixPath

# Rekognition image limits (aws-facts §1.3).
S3OBJECT_MAX_BYTES = 15_000_000  # "15 MB"; the smaller reading of it, to be safe
BYTES_MAX = 5_242_880  # Image.Bytes maximum in the service model
MIN_DIMENSION = 80
MAX_DIMENSION = 10_000

# Stored-video limits (aws-facts §2.4).
VIDEO_MAX_BYTES = 10 * 1024**3
VIDEO_MAX_DURATION_MS = 6 * 3600 * 1000

DIRECT_IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
CONVERTED_IMAGE_EXTENSIONS = frozenset({".webp", ".gif", ".bmp", ".tif", ".tiff"})
IMAGE_EXTENSIONS = DIRECT_IMAGE_EXTENSIONS | CONVERTED_IMAGE_EXTENSIONS
# Videos Rekognition takes as they are (H.264 in MP4/MOV), and ones that need transcoding.
DIRECT_VIDEO_EXTENSIONS = frozenset({".mp4", ".mov"})
VIDEO_EXTENSIONS = DIRECT_VIDEO_EXTENSIONS | frozenset(
    {
        ".m4v",
        ".avi",
        ".mkv",
        ".webm",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".flv",
        ".3gp",
        ".ts",
        ".mts",
        ".m2ts",
    }
)
ARCHIVE_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


def extension(key: str) -> str:
    """The lower-case extension of a key or path, with its dot."""
    return PurePosixPath(key).suffix.lower()


def kind_of(key: str) -> str | None:
    """'image', 'video', or None for anything the catalogue does not index."""
    ext = extension(key)
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def is_sendable_by_reference(key: str, size_bytes: int) -> bool:
    """True when Rekognition can read the image straight from S3 (no download)."""
    return extension(key) in DIRECT_IMAGE_EXTENSIONS and 0 < size_bytes <= S3OBJECT_MAX_BYTES


def is_archived(storage_class: str | None, restored: bool = False) -> bool:
    """True for objects in archive storage that have not been restored."""
    return (storage_class or "") in ARCHIVE_STORAGE_CLASSES and not restored
