"""Rekognition cost estimates (first-tier US East list prices).

Sources: aws-facts §3.2 for DetectLabels ($0.001 per image) and stored-video analysis ($0.10 per
minute, each video API billed separately). DetectText is in the same "Group 2" of image APIs as
DetectLabels on the AWS pricing page, so it is priced the same per image; a text-detection job
is priced like any stored-video API per minute (not confirmed line by line on the AWS page).
"""

from __future__ import annotations

IMAGE_PRICE_USD = 0.001  # DetectLabels, per image
VIDEO_PRICE_PER_MINUTE_USD = 0.10  # stored-video label detection, per minute (prorated)
TEXT_IMAGE_PRICE_USD = 0.001  # DetectText (image API Group 2, like DetectLabels), per image
TEXT_VIDEO_PRICE_PER_MINUTE_USD = 0.10  # stored-video text detection, per minute (prorated)


def estimate_cost(*, images: int = 0, video_ms: int = 0) -> float:
    """Estimated Rekognition charge in US dollars for labelling this much media."""
    return images * IMAGE_PRICE_USD + (video_ms / 60_000) * VIDEO_PRICE_PER_MINUTE_USD


def estimate_text_cost(*, images: int = 0, video_ms: int = 0) -> float:
    """Estimated Rekognition charge in US dollars for reading the text in this much media."""
    return images * TEXT_IMAGE_PRICE_USD + (video_ms / 60_000) * TEXT_VIDEO_PRICE_PER_MINUTE_USD
