"""MediaURI: parse and format s3://bucket/key and file:// URIs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from catalog.errors import UsageError

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,253}[a-z0-9]$")


@dataclass(frozen=True)
class MediaURI:
    """A location of media: an S3 bucket and key (or prefix), or a local path."""

    scheme: str  # "s3" or "file"
    bucket: str  # "" for file URIs
    key: str  # S3 key or prefix; absolute POSIX path for file URIs

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.key}"
        return f"s3://{self.bucket}/{self.key}"

    @property
    def is_s3(self) -> bool:
        """True for s3:// URIs."""
        return self.scheme == "s3"


def format_uri(scheme: str, bucket: str, key: str) -> str:
    """The canonical URI string of one object."""
    return str(MediaURI(scheme, bucket, key))


def parse_uri(text: str, *, allow_local: bool = True) -> MediaURI:
    """Parse `s3://bucket[/prefix]`, `file:///path` or (when allowed) a plain local path."""
    text = text.strip()
    if text.startswith("s3://"):
        rest = text[len("s3://") :]
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise UsageError(f"'{text}' has no bucket name; expected s3://BUCKET[/PREFIX]")
        if not _BUCKET_RE.match(bucket):
            raise UsageError(f"'{bucket}' is not a valid S3 bucket name (in '{text}')")
        return MediaURI("s3", bucket, key)
    if text.startswith("file://"):
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise UsageError(
                f"'{text}' names a remote host; file URIs must be file:///absolute/path"
            )
        return MediaURI("file", "", str(Path(unquote(parsed.path)).resolve()))
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise UsageError(f"unsupported URI scheme '{scheme}://' in '{text}'; use s3:// or a path")
    if not allow_local:
        raise UsageError(f"'{text}' is not an s3:// URI; expected s3://BUCKET[/PREFIX]")
    if not text:
        raise UsageError("empty URI; expected s3://BUCKET[/PREFIX] or a directory")
    return MediaURI("file", "", str(Path(text).expanduser().resolve()))


def key_prefix(key: str, depth: int = 1) -> str:
    """The first `depth` path segments of a key ('2024/06/a.jpg' -> '2024/'); '' at the root."""
    parts = key.split("/")
    if len(parts) <= 1:
        return ""
    return "/".join(parts[: min(depth, len(parts) - 1)]) + "/"
