"""The `catalog serve` web gallery: search, media, statistics and failures over the read API."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent  # templates/ and static/ live here
