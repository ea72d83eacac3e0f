"""PyAV probe and transcode: what a video is (reading only what that needs) and H.264 MP4 copies."""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from catalog.aws.errors import is_credentials_error, object_error, translate_error
from catalog.errors import ObjectError
from catalog.labelling.media import VIDEO_MAX_BYTES, VIDEO_MAX_DURATION_MS

log = logging.getLogger(__name__)

# The demuxer that reads MP4 and QuickTime MOV (and M4V, 3GP, which are the same ISO format).
MOV_MP4_DEMUXER = "mov,mp4,m4a,3gp,3g2,mj2"
SUPPORTED_CODECS = frozenset({"h264"})
RANGE_BLOCK_BYTES = 256 * 1024
RANGE_CACHE_BLOCKS = 16


@dataclass(frozen=True)
class ProbeResult:
    """What the probe found: container, codec, duration, frame rate and frame size."""

    demuxer: str  # FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm"
    container_format: str  # "MP4", "MOV", or the demuxer's long name
    codec: str | None  # FFmpeg's codec name: h264, mpeg4, vp9, ...
    duration_ms: int | None
    frame_rate: float | None
    width: int | None
    height: int | None

    @property
    def is_supported_container(self) -> bool:
        """True for MP4 and MOV, the containers Rekognition Video reads."""
        return self.demuxer == MOV_MP4_DEMUXER

    @property
    def is_supported_codec(self) -> bool:
        """True for H.264, the one codec Rekognition Video decodes."""
        return self.codec in SUPPORTED_CODECS

    @property
    def is_supported(self) -> bool:
        """True when Rekognition Video takes the file as it is."""
        return self.is_supported_container and self.is_supported_codec


def unsupported_reason(probe: ProbeResult) -> ObjectError | None:
    """The per-object error for a video Rekognition cannot read as it is (None when it can)."""
    if not probe.is_supported_codec:
        return ObjectError(
            "UnsupportedCodec",
            f"unsupported codec {probe.codec or 'unknown'}; rerun with --transcode",
        )
    if not probe.is_supported_container:
        return ObjectError(
            "UnsupportedContainer",
            f"unsupported container {probe.container_format}; rerun with --transcode",
        )
    return None


def check_limits(size_bytes: int, probe: ProbeResult | None = None) -> None:
    """Raise ObjectError for videos Rekognition refuses: empty, over 10 GB, over 6 hours."""
    if size_bytes == 0:
        raise ObjectError("EmptyObject", "the object is empty (0 bytes)")
    if size_bytes > VIDEO_MAX_BYTES:
        raise ObjectError("VideoTooLarge", "the video is over Rekognition's 10 GB limit")
    if probe is not None and (probe.duration_ms or 0) > VIDEO_MAX_DURATION_MS:
        raise ObjectError("VideoTooLong", "the video is over Rekognition's 6 hour limit")


# -- reading S3 objects in ranges --------------------------------------------------------------


class S3RangeReader(io.RawIOBase):
    """A seekable, read-only file over one S3 object, fetched in cached ranged GETs.

    PyAV reads a container's header and index through it, so probing a large MP4 costs a few
    small GETs instead of a download. `bytes_fetched` counts what was transferred.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        size_bytes: int,
        version_id: str | None = None,
        block_bytes: int = RANGE_BLOCK_BYTES,
    ) -> None:
        super().__init__()
        self.client = client
        self.bucket = bucket
        self.key = key
        self.size_bytes = size_bytes
        self.version_id = version_id
        self.block_bytes = block_bytes
        self.bytes_fetched = 0
        self.requests = 0
        self._pos = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self.size_bytes + offset
        else:
            raise ValueError(f"bad whence {whence}")
        self._pos = max(0, target)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self.size_bytes - self._pos)
        if wanted <= 0:
            return 0
        written = 0
        while written < wanted:
            index, offset = divmod(self._pos, self.block_bytes)
            block = self._block(index)
            chunk = block[offset : offset + (wanted - written)]
            if not chunk:
                break
            view[written : written + len(chunk)] = chunk
            written += len(chunk)
            self._pos += len(chunk)
        return written

    def _block(self, index: int) -> bytes:
        with self._lock:
            if index in self._blocks:
                self._blocks.move_to_end(index)
                return self._blocks[index]
        start = index * self.block_bytes
        end = min(self.size_bytes, start + self.block_bytes) - 1
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "Range": f"bytes={start}-{end}",
        }
        if self.version_id:
            kwargs["VersionId"] = self.version_id
        body = self.client.get_object(**kwargs)["Body"]
        try:
            data = bytes(body.read())
        finally:
            body.close()
        with self._lock:
            self.requests += 1
            self.bytes_fetched += len(data)
            self._blocks[index] = data
            while len(self._blocks) > RANGE_CACHE_BLOCKS:
                self._blocks.popitem(last=False)
        return data


# -- probing ---------------------------------------------------------------------------------


def probe(source: str | Path | BinaryIO | io.RawIOBase) -> ProbeResult:
    """Open a video (path or seekable file) and describe it; ObjectError when it is unreadable."""
    import av

    try:
        with av.open(source, mode="r") as container:
            if not container.streams.video:
                raise ObjectError("NoVideoStream", "the file has no video stream")
            stream = container.streams.video[0]
            # Decode one frame: a file whose header parses but whose data does not is corrupt.
            decoded = False
            for _frame in container.decode(stream):
                decoded = True
                break
            if not decoded:
                raise ObjectError("CorruptVideo", "no video frame could be decoded")
            return _describe(container, stream)
    except ObjectError:
        raise
    except (ClientError, BotoCoreError):
        raise
    except Exception as exc:  # FFmpeg's errors: InvalidDataError, EOFError, ...
        log.debug("probe failed", exc_info=True)
        raise ObjectError("CorruptVideo", f"the video cannot be read ({_reason(exc)})") from exc


def _reason(exc: Exception) -> str:
    """FFmpeg's own words for an error, without the errno and file name decoration."""
    return str(getattr(exc, "strerror", None) or exc or type(exc).__name__)


def _describe(container: Any, stream: Any) -> ProbeResult:
    demuxer = str(container.format.name)
    if demuxer == MOV_MP4_DEMUXER:
        brand = str(container.metadata.get("major_brand", "")).strip()
        container_format = "MOV" if brand == "qt" else "MP4"
    else:
        container_format = str(container.format.long_name or demuxer)
    duration_ms: int | None = None
    if container.duration:
        duration_ms = int(container.duration // 1000)  # AV_TIME_BASE is microseconds
    elif stream.duration and stream.time_base:
        duration_ms = int(stream.duration * stream.time_base * 1000)
    rate = stream.average_rate or stream.guessed_rate
    return ProbeResult(
        demuxer=demuxer,
        container_format=container_format,
        codec=stream.codec_context.name,
        duration_ms=duration_ms,
        frame_rate=round(float(rate), 3) if rate else None,
        width=stream.codec_context.width or None,
        height=stream.codec_context.height or None,
    )


def probe_s3(
    client: Any, bucket: str, key: str, size_bytes: int, version_id: str | None = None
) -> ProbeResult:
    """Probe an S3 object through ranged GETs (no download); ObjectError when unreadable."""
    check_limits(size_bytes)
    reader = S3RangeReader(client, bucket, key, size_bytes, version_id)
    try:
        return probe(reader)
    except (ClientError, BotoCoreError) as exc:
        raise object_error(exc, f"reading s3://{bucket}/{key}", default_code="S3Error") from exc
    finally:
        log.debug(
            "probed s3://%s/%s with %d GETs, %d bytes", bucket, key, reader.requests,
            reader.bytes_fetched,
        )  # fmt: skip


# -- transcoding -----------------------------------------------------------------------------


def transcode_to_mp4(source: str | Path | BinaryIO, target: str | Path) -> ProbeResult:
    """Re-encode the first video stream as H.264 (yuv420p) in MP4; returns the target's probe.

    Audio is dropped: label detection looks at pictures only. Frame times are kept, so
    timestamps Rekognition reports for the copy are the original's.
    """
    import av

    try:
        with av.open(source, mode="r") as src, av.open(str(target), mode="w", format="mp4") as dst:
            if not src.streams.video:
                raise ObjectError("NoVideoStream", "the file has no video stream")
            in_stream = src.streams.video[0]
            in_stream.thread_type = "AUTO"
            rate = in_stream.average_rate or in_stream.guessed_rate or Fraction(25)
            rate = Fraction(rate).limit_denominator(1001)
            width = max(2, (in_stream.codec_context.width or 2) // 2 * 2)
            height = max(2, (in_stream.codec_context.height or 2) // 2 * 2)
            out = dst.add_stream("libx264", rate=rate)
            out.width, out.height, out.pix_fmt = width, height, "yuv420p"
            out.options = {"preset": "veryfast", "crf": "23"}
            last_pts = -1
            for frame in src.decode(in_stream):
                when = frame.time if frame.time is not None else (last_pts + 1) / rate
                pts = max(last_pts + 1, round(when * rate))
                last_pts = pts
                picture = frame.reformat(width=width, height=height, format="yuv420p")
                picture.pts = pts
                picture.time_base = 1 / rate
                for packet in out.encode(picture):
                    dst.mux(packet)
            for packet in out.encode():
                dst.mux(packet)
            if last_pts < 0:
                raise ObjectError("CorruptVideo", "no video frame could be decoded")
    except ObjectError:
        raise
    except (ClientError, BotoCoreError):
        raise
    except Exception as exc:
        log.debug("transcode failed", exc_info=True)
        raise ObjectError(
            "TranscodeFailed", f"the video could not be transcoded ({_reason(exc)})"
        ) from exc
    return probe(target)


def transcoded_key(prefix: str, key: str) -> str:
    """Where the H.264 MP4 copy of `key` goes: PREFIX + key + '.mp4' (never collides)."""
    return f"{prefix}{key}.mp4"


__all__ = [
    "ProbeResult",
    "S3RangeReader",
    "check_limits",
    "probe",
    "probe_s3",
    "transcode_to_mp4",
    "transcoded_key",
    "unsupported_reason",
]


SOURCE_ETAG_METADATA = "catalog-source-etag"


def transcode_s3_copy(
    s3: Any, bucket: str, key: str, *, etag: str | None, version_id: str | None, prefix: str
) -> str:
    """An H.264 MP4 copy of an S3 video under `prefix` (made once per content); returns its key."""
    import tempfile

    from catalog.labelling.media import extension

    target = transcoded_key(prefix, key)
    try:
        head = s3.head_object(Bucket=bucket, Key=target)
        if head.get("Metadata", {}).get(SOURCE_ETAG_METADATA) == (etag or ""):
            return target  # made by an earlier run from this very content
    except ClientError as exc:
        if is_credentials_error(exc):
            raise translate_error(exc, f"reading s3://{bucket}/{target}") from exc
    with tempfile.TemporaryDirectory(prefix="catalog-transcode-") as folder:
        original = Path(folder) / ("original" + extension(key))
        copy = Path(folder) / "copy.mp4"
        try:
            extra = {"VersionId": version_id} if version_id else None
            s3.download_file(bucket, key, str(original), ExtraArgs=extra)
            transcode_to_mp4(original, copy)
            s3.upload_file(
                str(copy),
                bucket,
                target,
                ExtraArgs={
                    "ContentType": "video/mp4",
                    "Metadata": {SOURCE_ETAG_METADATA: etag or ""},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            error = object_error(exc, f"transcoding s3://{bucket}/{key}", default_code="S3Error")
            if isinstance(error, ObjectError):
                error = ObjectError(error.code, f"transcoding: {error.message}")
            raise error from exc
    return target
