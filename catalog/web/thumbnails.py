"""Thumbnails for the gallery: made once with Pillow (videos: a PyAV poster frame), cached on disk.

A thumbnail's file name holds the media id and a digest of its ETag and size, so a changed
object gets a new thumbnail while the old file is never served for it again. Generation runs in
a bounded thread pool, one job per thumbnail however many requests wait for it; an object that
is gone or unreadable gets no file, and the caller shows a placeholder.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from catalog.errors import CatalogError, ObjectError

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 320
BACKGROUND = (243, 244, 246)  # transparent pixels land on a light grey
POSTER_AT_S = 1.0  # a video's poster: the frame at 1 s (or at a tenth of a shorter video)
FAILURE_TTL_S = 60.0  # how long a failed object is not tried again
WAIT_S = 60.0


@dataclass(frozen=True)
class ThumbnailSource:
    """What a thumbnail is made from: the catalogued object and its version."""

    media_id: int
    uri: str
    kind: str
    bucket: str
    key: str
    etag: str | None
    size_bytes: int
    version_id: str | None = None

    @property
    def version(self) -> str:
        """A short digest of the object's version (ETag and size)."""
        text = f"{self.etag or ''}:{self.size_bytes}:{self.version_id or ''}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def file_name(self) -> str:
        """The cache file: media id and version."""
        return f"{self.media_id}-{self.version}.jpg"


def default_cache_dir(database_url: str) -> Path:
    """Beside a SQLite catalogue ('catalog.store.engine' -> 'catalog.thumbnails/'), else the user's cache."""
    if database_url.startswith("sqlite") and "///" in database_url:
        db_path = database_url.split("///", 1)[1]
        if db_path and db_path != ":memory:":
            path = Path(db_path)
            return path.with_name(path.stem + ".thumbnails")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    digest = hashlib.sha256(_without_password(database_url).encode()).hexdigest()[:12]
    return Path(base) / "catalog" / f"thumbnails-{digest}"


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL still gets a stable folder
        return url


def make_thumbnail(image: Image.Image, side: int = THUMBNAIL_SIDE) -> bytes:
    """JPEG bytes of a picture scaled to fit `side` pixels, transparency on a light background."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.split()[-1])
        image = flat
    else:
        image = image.convert("RGB")
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80, optimize=True)
    return buffer.getvalue()


def poster_frame(source: Any) -> Image.Image:
    """The frame at POSTER_AT_S (a tenth in for shorter videos) of a path or seekable file."""
    import av

    try:
        with av.open(source, mode="r") as container:
            if not container.streams.video:
                raise ObjectError("NoVideoStream", "the file has no video stream")
            stream = container.streams.video[0]
            duration_s = float(container.duration or 0) / 1_000_000
            target = min(POSTER_AT_S, duration_s / 10) if duration_s else 0.0
            if target > 0 and stream.time_base:
                container.seek(int(target / float(stream.time_base)), stream=stream)
            chosen = None
            for frame in container.decode(stream):
                chosen = frame
                if frame.time is None or frame.time >= target - 1e-6:
                    break
            if chosen is None:
                raise ObjectError("EmptyVideo", "the video has no frames")
            image: Image.Image = chosen.to_image()
            return image
    except av.FFmpegError as exc:
        raise ObjectError("CorruptVideo", f"cannot decode the video: {exc}") from exc


class ThumbnailCache:
    """Thumbnails on disk under `directory`, made on first request in a bounded pool."""

    def __init__(
        self,
        directory: Path,
        s3_client: Callable[[], Any],
        *,
        workers: int = 4,
        side: int = THUMBNAIL_SIDE,
    ) -> None:
        self.directory = directory
        self.side = side
        self._s3_client = s3_client
        self._reader: Any = None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="thumbnail")
        self._lock = threading.Lock()
        self._running: dict[str, Future[Path | None]] = {}
        self._failed: dict[str, float] = {}

    def cached(self, source: ThumbnailSource) -> Path | None:
        """The thumbnail file when it is already on disk."""
        path = self.directory / source.file_name
        return path if path.is_file() else None

    def get(self, source: ThumbnailSource) -> Path | None:
        """The thumbnail file, made now if needed; None when the object cannot be read."""
        path = self.cached(source)
        if path is not None:
            return path
        name = source.file_name
        with self._lock:
            failed_at = self._failed.get(name)
            if failed_at is not None and time.monotonic() - failed_at < FAILURE_TTL_S:
                return None
            future = self._running.get(name)
            if future is None:
                future = self._pool.submit(self._make, source)
                self._running[name] = future
                future.add_done_callback(lambda _f: self._forget(name))
        try:
            return future.result(timeout=WAIT_S)
        except TimeoutError:
            return None

    def close(self) -> None:
        """Stop the pool (jobs already running finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _forget(self, name: str) -> None:
        with self._lock:
            self._running.pop(name, None)

    def _make(self, source: ThumbnailSource) -> Path | None:
        try:
            data = self._render(source)
        except (CatalogError, ObjectError, OSError) as exc:
            log.info("no thumbnail for %s: %s", source.uri, exc)
            with self._lock:
                self._failed[source.file_name] = time.monotonic()
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        target = self.directory / source.file_name
        os.replace(tmp, target)
        return target

    def _render(self, source: ThumbnailSource) -> bytes:
        if source.kind == "video":
            return make_thumbnail(poster_frame(self._video_file(source)), self.side)
        from catalog.labelling.imaging import open_image
        from catalog.sources.read import MediaReader

        if self._reader is None:
            self._reader = MediaReader(self._s3_client)  # one S3 client for every thumbnail
        return make_thumbnail(open_image(self._reader(source.uri)), self.side)

    def _video_file(self, source: ThumbnailSource) -> Any:
        if source.uri.startswith("file://"):
            if not Path(source.key).is_file():
                raise ObjectError("NotFound", f"{source.uri} no longer exists on disk")
            return source.key
        from botocore.exceptions import BotoCoreError, ClientError

        from catalog.labelling.video import S3RangeReader

        reader = S3RangeReader(
            self._s3_client(), source.bucket, source.key, source.size_bytes, source.version_id
        )
        try:
            reader.read(1)
            reader.seek(0)
        except (ClientError, BotoCoreError) as exc:
            raise ObjectError("NotFound", f"{source.uri} cannot be read from S3: {exc}") from exc
        return reader
