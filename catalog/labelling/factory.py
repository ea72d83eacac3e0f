"""The one place a labeller is built, for sync, the worker and the Lambda handler alike."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from catalog.aws.ratelimit import RateLimiter
from catalog.errors import UsageError
from catalog.labelling import ImageLabeller, TextReader
from catalog.labelling.rekognition_image import LABELLER_NAME as REKOGNITION
from catalog.labelling.rekognition_image import RekognitionImageLabeller

if TYPE_CHECKING:  # boto3 is heavy: only the Rekognition labeller needs the clients
    from catalog.aws.clients import AWSClients

LOCAL = "local"
LABELLERS = (REKOGNITION, LOCAL)
DEFAULT_TPS = 50.0  # Rekognition's default DetectLabels quota


def default_labeller(is_s3: bool) -> str:
    """Rekognition for S3 sources, the offline labeller for local folders."""
    return REKOGNITION if is_s3 else LOCAL


def build_labeller(
    choice: str,
    *,
    clients: AWSClients | None,
    min_confidence: float,
    max_labels: int | None = None,
    tps: float | None = DEFAULT_TPS,
    model_path: str | Path | None = None,
    classes_path: str | Path | None = None,
    dry_run: bool = False,
) -> ImageLabeller:
    """Build the named labeller; UsageError for an unknown name or options it does not take.

    For a dry run (which lists and prices but never labels) Rekognition needs no clients.
    """
    if choice not in LABELLERS:
        raise UsageError(f"unknown labeller '{choice}'; use one of: {', '.join(LABELLERS)}")
    if (model_path is not None or classes_path is not None) and choice != LOCAL:
        raise UsageError("--model and --classes belong to the local labeller; add --labeller local")
    if choice == REKOGNITION:
        if clients is None and dry_run:
            return RekognitionImageLabeller(
                None, min_confidence=min_confidence, max_labels=max_labels
            )
        if clients is None:
            raise UsageError("labelling with Rekognition needs AWS clients")
        return RekognitionImageLabeller(
            clients.rekognition,
            min_confidence=min_confidence,
            max_labels=max_labels,
            limiter=RateLimiter(tps),
        )
    from catalog.labelling.local import LocalLabeller  # OpenCV and numpy load only when used

    return LocalLabeller(
        min_confidence=min_confidence,
        max_labels=max_labels,
        model_path=model_path,
        classes_path=classes_path,
    )


def build_text_reader(
    choice: str, *, clients: AWSClients | None, tps: float | None = DEFAULT_TPS
) -> TextReader:
    """The text reader that goes with the named labeller: DetectText, or the offline OCR."""
    if choice not in LABELLERS:
        raise UsageError(f"unknown labeller '{choice}'; use one of: {', '.join(LABELLERS)}")
    if choice == REKOGNITION:
        if clients is None:
            raise UsageError("reading text with Rekognition needs AWS clients")
        from catalog.labelling.rekognition_text import RekognitionTextReader

        # Its own limiter: Rekognition quotas are per operation (DetectLabels has one, aws-facts
        # §3.1); a DetectText quota of its own is assumed, not confirmed there.
        return RekognitionTextReader(clients.rekognition, limiter=RateLimiter(tps))
    from catalog.labelling.ocr import LocalTextReader  # RapidOCR loads only when used

    return LocalTextReader()
