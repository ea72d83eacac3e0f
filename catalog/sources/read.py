"""Reading any catalogued object's bytes by its URI (s3:// or file://), for pictures and reports."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from catalog.errors import CatalogError, NotFoundError, ObjectError
from catalog.uris import parse_uri


class MediaReader:
    """Reads objects by URI; the S3 client is built on the first s3:// read and then reused.

    Callable: `reader(uri) -> bytes`. Thread-safe (boto3 clients are; the build is locked).
    """

    def __init__(self, make_s3_client: Callable[[], Any] | None = None) -> None:
        self._make_s3_client = make_s3_client
        self._s3: Any = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        with self._lock:
            if self._s3 is None:
                if self._make_s3_client is None:
                    raise CatalogError("reading from S3 needs AWS clients")
                self._s3 = self._make_s3_client()
            return self._s3

    def __call__(self, uri: str) -> bytes:
        """The object's bytes: GetObject for s3:// URIs, else the local file."""
        parsed = parse_uri(uri)
        if parsed.scheme == "file":
            from catalog.sources.local import read_regular_file

            try:
                return read_regular_file(parsed.key)
            except ObjectError as exc:
                if exc.code == "NoSuchFile":
                    raise NotFoundError(f"{uri} no longer exists on disk") from exc
                raise CatalogError(f"cannot read {uri}: {exc.message}") from exc
        from botocore.exceptions import BotoCoreError, ClientError

        from catalog.aws.errors import error_code, translate_error

        try:
            body = self._client().get_object(Bucket=parsed.bucket, Key=parsed.key)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                raise NotFoundError(
                    f"{uri} is no longer in S3 (run 'catalog sync' on its prefix)"
                ) from exc
            raise translate_error(exc, f"reading {uri}") from exc
        except BotoCoreError as exc:
            raise translate_error(exc, f"reading {uri}") from exc
