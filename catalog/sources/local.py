"""A local directory tree as a Source: a sorted walk, size/mtime listing, content hashes on demand.

Keys are absolute POSIX paths, yielded in code-point order of the whole path (the order the
pipeline's page-by-page diff needs). Listing only stats files; the content hash that serves as
the ETag ("sha256:<hex>") is computed by `content_etag`, which the pipeline calls only for files
that are new or whose size or mtime differ from what the catalogue holds.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from catalog.errors import CatalogError, ObjectError, UsageError
from catalog.sources import SourceObject

HASH_PREFIX = "sha256:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK = 1 << 20


def mtime_of(st: os.stat_result) -> datetime:
    """A file's mtime as an aware UTC datetime, exact to the microsecond (what databases keep)."""
    return _EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000)


class LocalSource:
    """Regular files under one directory, walked without following directory symlinks."""

    scheme = "file"
    bucket = ""

    def __init__(self, root: str, page_size: int = 1000) -> None:
        self.root = str(Path(root))
        # Keys under the root start with "<root>/": /photos never matches /photos2/x.jpg.
        self.prefix = self.root.rstrip("/") + "/"
        self.page_size = page_size

    def check(self) -> None:
        """The root must be an existing, readable directory."""
        path = Path(self.root)
        if not path.exists():
            raise UsageError(f"{self.root} does not exist; give a directory to index")
        if not path.is_dir():
            raise UsageError(f"{self.root} is not a directory; give the folder that holds it")
        if not os.access(path, os.R_OK | os.X_OK):
            raise UsageError(f"{self.root} cannot be read (permission denied)")

    def iter_pages(self) -> Iterator[list[SourceObject]]:
        """Every regular file, sorted by full path in code-point order, in pages."""
        page: list[SourceObject] = []
        for obj in self._walk(self.root):
            page.append(obj)
            if len(page) >= self.page_size:
                yield page
                page = []
        if page:
            yield page

    def _walk(self, directory: str) -> Iterator[SourceObject]:
        try:
            with os.scandir(directory) as scan:
                entries = list(scan)
        except OSError as exc:
            # Never carry on with a partial listing: the missing files would be marked deleted.
            raise CatalogError(
                f"cannot list {directory}: {exc.strerror or exc}; fix its permissions or "
                "sync a folder below it"
            ) from exc
        ordered: list[tuple[str, os.DirEntry[str], bool]] = []
        for entry in entries:
            if not _is_utf8(entry.name):
                continue  # the catalogue stores paths as text
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            # A directory sorts as "name/" so its files fall where their full paths sort.
            ordered.append((entry.name + "/" if is_dir else entry.name, entry, is_dir))
        ordered.sort(key=lambda item: item[0])
        for _, entry, is_dir in ordered:
            if is_dir:
                yield from self._walk(entry.path)
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError:
                continue  # a dangling symlink or a file removed while listing
            if not stat.S_ISREG(st.st_mode):
                continue
            yield SourceObject(
                source="file",
                bucket="",
                key=entry.path,
                size_bytes=st.st_size,
                etag=None,
                last_modified_at=mtime_of(st),
            )

    def content_etag(self, obj: SourceObject) -> str:
        """The file's SHA-256 as "sha256:<hex>"; raises ObjectError when it cannot be read."""
        digest = hashlib.sha256()
        try:
            with open(obj.key, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        except OSError as exc:
            raise _object_error(exc) from exc
        return HASH_PREFIX + digest.hexdigest()

    def read_bytes(self, obj: SourceObject) -> bytes:
        """The file's content; raises ObjectError when it cannot be read."""
        try:
            return Path(obj.key).read_bytes()
        except OSError as exc:
            raise _object_error(exc) from exc


def _object_error(exc: OSError) -> ObjectError:
    if isinstance(exc, FileNotFoundError):
        return ObjectError("NoSuchFile", "the file was removed while the sync ran")
    if isinstance(exc, PermissionError):
        return ObjectError("AccessDenied", "the file cannot be read (permission denied)")
    return ObjectError("ReadError", exc.strerror or str(exc))


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
