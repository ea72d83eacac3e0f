"""Rekognition cost estimates (first-tier US East list prices, aws-facts §3.2)."""

from __future__ import annotations

IMAGE_PRICE_USD = 0.001  # DetectLabels, per image
VIDEO_PRICE_PER_MINUTE_USD = 0.10  # stored-video label detection, per minute (prorated)


def estimate_cost(*, images: int = 0, video_ms: int = 0) -> float:
    """Estimated Rekognition charge in US dollars for labelling this much media."""
    return images * IMAGE_PRICE_USD + (video_ms / 60_000) * VIDEO_PRICE_PER_MINUTE_USD
