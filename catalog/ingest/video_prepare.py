"""Getting a video ready for its Rekognition job: probe, limits and (with --transcode) a copy."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from catalog.aws.errors import is_credentials_error, object_error, translate_error
from catalog.errors import ObjectError
from catalog.ingest.types import SyncOptions
from catalog.labelling import LabelResult
from catalog.labelling import media as media_rules
from catalog.labelling.video import (
    ProbeResult,
    check_limits,
    probe_s3,
    transcode_to_mp4,
    transcoded_key,
    unsupported_reason,
)
from catalog.sources import SourceObject

_SOURCE_ETAG_METADATA = "catalog-source-etag"


def prepare_video(s3: Any, obj: SourceObject, options: SyncOptions) -> tuple[ProbeResult, str]:
    """Probe the video (ranged reads) and check its limits; returns the probe and the key to label.

    The key is the video's own, or with --transcode the H.264 MP4 copy of a video Rekognition
    cannot read. Raises ObjectError for a video that cannot be labelled.
    """
    check_limits(obj.size_bytes)
    probed = probe_s3(s3, obj.bucket, obj.key, obj.size_bytes, obj.version_id)
    check_limits(obj.size_bytes, probed)
    reason = unsupported_reason(probed)
    if reason is None:
        return probed, obj.key
    if not options.transcode:
        raise reason
    return probed, transcode(s3, obj, options.transcode_prefix)


def transcode(s3: Any, obj: SourceObject, prefix: str) -> str:
    """An H.264 MP4 copy under `prefix` (made once per content); returns its key."""
    target = transcoded_key(prefix, obj.key)
    try:
        head = s3.head_object(Bucket=obj.bucket, Key=target)
        if head.get("Metadata", {}).get(_SOURCE_ETAG_METADATA) == (obj.etag or ""):
            return target  # made by an earlier run from this very content
    except ClientError as exc:
        if is_credentials_error(exc):
            raise translate_error(exc, f"reading s3://{obj.bucket}/{target}") from exc
    with tempfile.TemporaryDirectory(prefix="catalog-transcode-") as folder:
        original = Path(folder) / ("original" + media_rules.extension(obj.key))
        copy = Path(folder) / "copy.mp4"
        try:
            extra = {"VersionId": obj.version_id} if obj.version_id else None
            s3.download_file(obj.bucket, obj.key, str(original), ExtraArgs=extra)
            transcode_to_mp4(original, copy)
            s3.upload_file(
                str(copy),
                obj.bucket,
                target,
                ExtraArgs={
                    "ContentType": "video/mp4",
                    "Metadata": {_SOURCE_ETAG_METADATA: obj.etag or ""},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            error = object_error(exc, f"transcoding {obj.uri}", default_code="S3Error")
            if isinstance(error, ObjectError):
                error = ObjectError(error.code, f"transcoding: {error.message}")
            raise error from exc
    return target


def describe_original(
    s3: Any, obj: SourceObject, probed: ProbeResult | None, result: LabelResult
) -> None:
    """Rekognition described the transcoded copy; make the result describe the original."""
    if probed is None:
        with contextlib.suppress(ObjectError):
            probed = probe_s3(s3, obj.bucket, obj.key, obj.size_bytes, obj.version_id)
    if probed is not None and result.video is not None:
        result.video.codec = probed.codec
        result.video.container_format = probed.container_format
