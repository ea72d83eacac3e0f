"""Where objects come from: the Source protocol and the SourceObject every source yields."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from catalog.uris import format_uri


@dataclass(frozen=True)
class SourceObject:
    """One listed object, as its source describes it."""

    source: str  # "s3" or "file"
    bucket: str
    key: str
    size_bytes: int
    etag: str | None
    last_modified_at: datetime | None = None
    storage_class: str | None = None
    version_id: str | None = None
    restored: bool = False
    # Set when the source lists an entry it will not hand over (a hidden file, a link leading
    # outside the root, a FIFO): the pipeline counts it as skipped with this reason.
    skip_reason: str | None = None

    @property
    def uri(self) -> str:
        """The canonical URI of the object."""
        return format_uri(self.source, self.bucket, self.key)

    @property
    def is_multipart_etag(self) -> bool:
        """True when the ETag is not a plain content MD5 (multipart uploads: '<hex>-<parts>')."""
        return self.etag is None or "-" in self.etag


class Source(Protocol):
    """A listable, readable collection of objects under one root."""

    scheme: str
    bucket: str
    prefix: str

    def check(self) -> None:
        """Fail early, with a CatalogError, when the root cannot be listed."""
        ...

    def iter_pages(self) -> Iterator[list[SourceObject]]:
        """Yield the objects under the root in pages, sorted by key (code point order)."""
        ...

    def read_bytes(self, obj: SourceObject) -> bytes:
        """The object's content; raises ObjectError when it cannot be read."""
        ...
