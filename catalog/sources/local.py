"""A local directory tree as a Source: a sorted walk, size/mtime listing, content hashes on demand.

The walk skips hidden and junk names, links leading outside the root and link loops, and lists
them with their reason; files are opened without blocking and read only when regular.

Keys are absolute POSIX paths, yielded in code-point order of the whole path (the order the
pipeline's page-by-page diff needs). Listing only stats files; the content hash that serves as
the ETag ("sha256:<hex>") is computed by `content_etag`, which the pipeline calls only for files
that are new or whose size or mtime differ from what the catalogue holds.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from catalog.errors import CatalogError, ObjectError, SkippedObjectError, UsageError
from catalog.sources import SourceObject

HASH_PREFIX = "sha256:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK = 1 << 20


def mtime_of(st: os.stat_result) -> datetime:
    """A file's mtime as an aware UTC datetime, exact to the microsecond (what databases keep)."""
    return _EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000)


# Folders and files that machines leave beside photos: never media, skipped like hidden names.
JUNK_NAMES = frozenset(
    {
        "@eaDir",  # Synology's thumbnails
        "#recycle",  # Synology's recycle bin
        "#snapshot",
        "Thumbs.db",
        "ehthumbs.db",
        "ehthumbs_vista.db",
        "desktop.ini",
        "$RECYCLE.BIN",
        "System Volume Information",
        "lost+found",
    }
)
SKIP_HIDDEN = "hidden (--include-hidden keeps it)"
SKIP_JUNK = "system file (--include-hidden keeps it)"
SKIP_OUTSIDE = "link outside the folder (--follow-outside-links follows it)"
SKIP_LOOP = "link loop"
SKIP_DANGLING = "broken link"
SKIP_NOT_FILE = "not a regular file"


def skip_reason_for_name(name: str) -> str | None:
    """Why a file or folder name is skipped by default: hidden, or well-known junk (else None)."""
    if name.startswith("."):
        return SKIP_HIDDEN  # also AppleDouble "._x.jpg", .DS_Store, .thumbnails/
    if name in JUNK_NAMES:
        return SKIP_JUNK
    return None


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class LocalSource:
    """Regular files under one directory.

    Hidden and junk names are skipped unless `include_hidden`; symbolic links (to files or to
    folders) are followed while their target stays inside the root, or anywhere with
    `follow_outside_links`; a link back into a folder being walked (a loop) is refused. Every
    entry not handed over is listed with its `skip_reason`, so the sync counts it.
    """

    scheme = "file"
    bucket = ""

    def __init__(
        self,
        root: str,
        page_size: int = 1000,
        *,
        include_hidden: bool = False,
        follow_outside_links: bool = False,
    ) -> None:
        # Keys are paths under the root as it really is, however the folder was named.
        self.root = os.path.realpath(root)
        # Keys under the root start with "<root>/": /photos never matches /photos2/x.jpg.
        self.prefix = self.root.rstrip("/") + "/"
        self.page_size = page_size
        self.include_hidden = include_hidden
        self.follow_outside_links = follow_outside_links
        self._real_root = os.path.realpath(self.root)

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
        """Every regular file, sorted by full path in code-point order, in pages.

        Entries that are skipped (see the class) are in the pages too, with their reason.
        """
        page: list[SourceObject] = []
        root_stat = os.stat(self.root)
        for obj in self._walk(self.root, frozenset({(root_stat.st_dev, root_stat.st_ino)})):
            page.append(obj)
            if len(page) >= self.page_size:
                yield page
                page = []
        if page:
            yield page

    def _walk(
        self, directory: str, ancestors: frozenset[tuple[int, int]]
    ) -> Iterator[SourceObject]:
        try:
            with os.scandir(directory) as scan:
                entries = list(scan)
        except OSError as exc:
            # Never carry on with a partial listing: the missing files would be marked deleted.
            raise CatalogError(
                f"cannot list {directory}: {exc.strerror or exc}; fix its permissions or "
                "sync a folder below it"
            ) from exc
        ordered: list[tuple[str, os.DirEntry[str], os.stat_result | None, str | None]] = []
        for entry in entries:
            if not _is_utf8(entry.name):
                continue  # the catalogue stores paths as text
            target, reason = self._target(entry)
            is_dir = target is not None and stat.S_ISDIR(target.st_mode) and reason is None
            # A directory sorts as "name/" so its files fall where their full paths sort.
            ordered.append((entry.name + "/" if is_dir else entry.name, entry, target, reason))
        ordered.sort(key=lambda item: item[0])
        for sort_key, entry, target, reason in ordered:
            if reason is not None:
                yield _skipped(entry.path + ("/" if sort_key.endswith("/") else ""), reason)
                continue
            assert target is not None
            if stat.S_ISDIR(target.st_mode):
                identity = (target.st_dev, target.st_ino)
                if identity in ancestors:
                    yield _skipped(entry.path + "/", SKIP_LOOP)
                    continue
                yield from self._walk(entry.path, ancestors | {identity})
                continue
            if not stat.S_ISREG(target.st_mode):
                yield _skipped(entry.path, SKIP_NOT_FILE)
                continue
            yield SourceObject(
                source="file",
                bucket="",
                key=entry.path,
                size_bytes=target.st_size,
                etag=None,
                last_modified_at=mtime_of(target),
            )

    def _target(self, entry: os.DirEntry[str]) -> tuple[os.stat_result | None, str | None]:
        """What an entry leads to (following links), or why it is skipped."""
        if not self.include_hidden:
            reason = skip_reason_for_name(entry.name)
            if reason is not None:
                return None, reason
        try:
            is_link = entry.is_symlink()
            target = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            return None, SKIP_DANGLING
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None, SKIP_LOOP
            return None, SKIP_DANGLING
        if (
            is_link
            and not self.follow_outside_links
            and not _is_within(os.path.realpath(entry.path), self._real_root)
        ):
            return None, SKIP_OUTSIDE
        return target, None

    def checked_path(self, obj: SourceObject) -> str:
        """The file's path once it is known to be a regular file this source may read.

        Raises SkippedObjectError for anything else (a FIFO or device swapped in, a link that
        now leads outside the root), ObjectError when it cannot be read.
        """
        handle = self._open(obj)
        os.close(handle)
        return obj.key

    def _open(self, obj: SourceObject) -> int:
        """A descriptor open on the file, checked to be a regular file (never blocks on a FIFO)."""
        if not self.follow_outside_links and not _is_within(
            os.path.realpath(obj.key), self._real_root
        ):
            raise SkippedObjectError("LinkOutside", SKIP_OUTSIDE)
        return open_regular_file(obj.key)

    def content_etag(self, obj: SourceObject) -> str:
        """The file's SHA-256 as "sha256:<hex>"; raises ObjectError when it cannot be read."""
        digest = hashlib.sha256()
        try:
            with os.fdopen(self._open(obj), "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        except OSError as exc:
            raise _object_error(exc) from exc
        return HASH_PREFIX + digest.hexdigest()

    def read_bytes(self, obj: SourceObject) -> bytes:
        """The file's content; raises ObjectError when it cannot be read."""
        try:
            with os.fdopen(self._open(obj), "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise _object_error(exc) from exc


def open_regular_file(path: str) -> int:
    """A blocking descriptor on `path`, once it is known to be a regular file.

    The open itself never blocks (a FIFO would wait for a writer forever); anything but a
    regular file raises SkippedObjectError, an unreadable one ObjectError.
    """
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise _object_error(exc) from exc
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            raise SkippedObjectError("NotARegularFile", SKIP_NOT_FILE)
        os.set_blocking(handle, True)
    except BaseException:
        os.close(handle)
        raise
    return handle


def read_regular_file(path: str) -> bytes:
    """The content of a regular file (see `open_regular_file`)."""
    try:
        with os.fdopen(open_regular_file(path), "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise _object_error(exc) from exc


def _skipped(key: str, reason: str) -> SourceObject:
    return SourceObject(
        source="file", bucket="", key=key, size_bytes=0, etag=None, skip_reason=reason
    )


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
