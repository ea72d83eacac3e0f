"""Getting a video ready for its Rekognition job: probe, limits and (with --transcode) a copy."""

from __future__ import annotations

import contextlib
from typing import Any

from catalog.errors import ObjectError
from catalog.ingest.types import SyncOptions
from catalog.labelling import LabelResult
from catalog.labelling.video import (
    ProbeResult,
    check_limits,
    probe_s3,
    transcode_s3_copy,
    unsupported_reason,
)
from catalog.sources import SourceObject


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
    key = transcode_s3_copy(
        s3,
        obj.bucket,
        obj.key,
        etag=obj.etag,
        version_id=obj.version_id,
        prefix=options.transcode_prefix,
    )
    return probed, key


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
