"""An S3 prefix as a Source: ListObjectsV2 pages streamed, objects read on demand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from catalog.aws.errors import (
    error_code,
    object_error,
    translate_error,
)
from catalog.errors import ObjectError
from catalog.sources import SourceObject


def normalise_etag(etag: str | None) -> str | None:
    """ETags without the double quotes the API wraps them in."""
    return etag.strip('"') if etag else None


class S3Source:
    """Objects under s3://bucket/prefix."""

    scheme = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "", page_size: int = 1000) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.page_size = page_size

    def check(self) -> None:
        """HeadBucket, so a wrong bucket or missing permission fails before any work."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise translate_error(exc, f"opening s3://{self.bucket}") from exc

    def iter_pages(self) -> Iterator[list[SourceObject]]:
        """ListObjectsV2 pages, one list per page: memory stays flat for any prefix size."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self.prefix,
            PaginationConfig={"PageSize": self.page_size},
        )
        try:
            for page in pages:
                yield [
                    self._object(item)
                    for item in page.get("Contents") or ()
                    if not _is_folder(item)
                ]
        except (ClientError, BotoCoreError) as exc:
            raise translate_error(exc, f"listing s3://{self.bucket}/{self.prefix}") from exc

    def _object(self, item: dict[str, Any]) -> SourceObject:
        restore = item.get("RestoreStatus") or {}
        return SourceObject(
            source="s3",
            bucket=self.bucket,
            key=item["Key"],
            size_bytes=int(item.get("Size", 0)),
            etag=normalise_etag(item.get("ETag")),
            last_modified_at=item.get("LastModified"),
            storage_class=item.get("StorageClass") or "STANDARD",
            restored=bool(restore.get("RestoreExpiryDate"))
            and not restore.get("IsRestoreInProgress"),
        )

    def read_bytes(self, obj: SourceObject) -> bytes:
        """GetObject; a per-object failure (AccessDenied, NoSuchKey) becomes an ObjectError."""
        try:
            kwargs: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
            if obj.version_id:
                kwargs["VersionId"] = obj.version_id
            body = self.client.get_object(**kwargs)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise object_error(exc, f"reading {obj.uri}", default_code="S3Error") from exc

    def head(self, key: str) -> SourceObject | None:
        """HeadObject: the object as it is now, or None when it no longer exists.

        Raises ObjectError when this one object cannot be read (403), a CatalogError only for
        the credentials themselves.
        """
        try:
            item = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            error = object_error(exc, f"reading s3://{self.bucket}/{key}", default_code="S3Error")
            if isinstance(error, ObjectError) and error.code in ("403", "AccessDenied"):
                # This object's policy, not the run's: one event fails, the worker goes on.
                error = ObjectError("AccessDenied", "HeadObject was denied (403)")
            raise error from exc
        except BotoCoreError as exc:
            raise object_error(
                exc, f"reading s3://{self.bucket}/{key}", default_code="S3Error"
            ) from exc
        return SourceObject(
            source="s3",
            bucket=self.bucket,
            key=key,
            size_bytes=int(item.get("ContentLength", 0)),
            etag=normalise_etag(item.get("ETag")),
            last_modified_at=item.get("LastModified"),
            storage_class=item.get("StorageClass") or "STANDARD",
            restored='ongoing-request="false"' in str(item.get("Restore") or ""),
        )


def _is_folder(item: dict[str, Any]) -> bool:
    return str(item.get("Key", "")).endswith("/") and int(item.get("Size", 0)) == 0
