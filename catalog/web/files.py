"""Media bytes over HTTP, addressed only by catalogued media id: files, S3 redirects, thumbnails.

No route takes a path or key from the request: a local file is served only when its path is the
key of a catalogued, non-deleted media row, and an S3 object is reached through a presigned URL
that lives a few minutes (the credentials that signed it never leave the server).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from catalog.errors import NotFoundError
from catalog.store.schema import SOURCE_FILE
from catalog.web import PACKAGE_DIR
from catalog.web.thumbnails import ThumbnailSource
from catalog.web.views import find_media

THUMBNAIL_CACHE_CONTROL = "private, max-age=86400"
PLACEHOLDER = PACKAGE_DIR / "static" / "placeholder.svg"


def routes(gallery: Any) -> list[BaseRoute]:
    """The media file and thumbnail routes."""
    return [
        Route(
            "/media/{media_id:int}/file",
            lambda request: media_file(gallery, request),
            methods=["GET", "HEAD"],
        ),
        Route(
            "/media/{media_id:int}/thumbnail",
            lambda request: thumbnail(gallery, request),
            methods=["GET", "HEAD"],
        ),
    ]


def _source(gallery: Any, media_id: int) -> ThumbnailSource:
    with gallery.sessions() as session:
        media = find_media(session, media_id)
        return ThumbnailSource(
            media_id=media.id,
            uri=media.uri,
            kind=media.kind,
            bucket=media.bucket,
            key=media.key,
            etag=media.etag,
            size_bytes=media.size_bytes,
            version_id=media.version_id,
        )


def media_file(gallery: Any, request: Request) -> Response:
    """The item itself: the catalogued local file, or a redirect to a presigned S3 URL."""
    source = _source(gallery, int(request.path_params["media_id"]))
    if source.uri.startswith(f"{SOURCE_FILE}://"):
        path = Path(source.key)
        if not path.is_file():
            raise NotFoundError(f"{source.uri} no longer exists on disk")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type, headers={"cache-control": "private"})
    url = gallery.presign(source.bucket, source.key)
    return RedirectResponse(url, status_code=302, headers={"cache-control": "no-store"})


def thumbnail(gallery: Any, request: Request) -> Response:
    """A ~320 px JPEG, cached on disk and in the browser; a placeholder when it cannot be made."""
    source = _source(gallery, int(request.path_params["media_id"]))
    etag = f'"{source.file_name}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"etag": etag})
    path = gallery.thumbnails.get(source)
    if path is None:
        return FileResponse(
            PLACEHOLDER, media_type="image/svg+xml", headers={"cache-control": "no-store"}
        )
    return FileResponse(
        path,
        media_type="image/jpeg",
        headers={"etag": etag, "cache-control": THUMBNAIL_CACHE_CONTROL},
    )
