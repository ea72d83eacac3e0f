"""MediaURI: the one place s3://bucket/key and file:// URIs are formatted and parsed.

`format_uri` writes a key as it is, except that '%' and the characters a terminal or a copy and
paste would lose or obey (controls, line breaks, bidi overrides) are percent-encoded as UTF-8;
`parse_uri` decodes them again, so every URI `search` prints is one `show` finds:
`parse_uri(format_uri("s3", b, key)).key == key` for every key (a hypothesis test holds it).
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, unquote

from catalog.errors import UsageError

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,253}[a-z0-9]$")
# Bidirectional embeddings, overrides, isolates and marks: they reorder what a terminal shows.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ESCAPE_RE = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


@dataclass(frozen=True)
class MediaURI:
    """A location of media: an S3 bucket and key (or prefix), or a local path."""

    scheme: str  # "s3" or "file"
    bucket: str  # "" for file URIs
    key: str  # S3 key or prefix; absolute POSIX path for file URIs

    def __str__(self) -> str:
        return format_uri(self.scheme, self.bucket, self.key)

    @property
    def is_s3(self) -> bool:
        """True for s3:// URIs."""
        return self.scheme == "s3"


def _needs_encoding(char: str) -> bool:
    if char == "%" or char in _BIDI:
        return True
    # Cc: C0, DEL, C1; Zl/Zp: line and paragraph separators; Cs: lone surrogates.
    return unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cs")


def _encode_key(key: str) -> str:
    if key.isprintable() and "%" not in key and not _BIDI.intersection(key):
        return key
    return "".join(
        quote(char, safe="", errors="surrogatepass") if _needs_encoding(char) else char
        for char in key
    )


def _decode_key(text: str) -> str:
    """Undo `_encode_key`: valid %XX runs are decoded; a lone '%' stays as it is."""
    return _ESCAPE_RE.sub(lambda match: unquote(match.group(0), errors="surrogateescape"), text)


def format_uri(scheme: str, bucket: str, key: str) -> str:
    """The canonical URI string of one object (what every output prints)."""
    if scheme == "file":
        return f"file://{_encode_key(key)}"
    return f"s3://{bucket}/{_encode_key(key)}"


def _check_text(text: str) -> None:
    if any("\udc80" <= char <= "\udcff" for char in text):
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise UsageError(f"'{shown}' is not valid UTF-8; give the URI as UTF-8 text")


def parse_uri(text: str, *, allow_local: bool = True, decode: bool = True) -> MediaURI:
    """Parse `s3://bucket[/prefix]`, `file:///path` or (when allowed) a plain local path.

    Percent-escapes in the key or path are decoded (see `format_uri`) unless `decode` is False
    (a key typed with a literal '%41'); local paths are made absolute and normalised, without
    resolving symbolic links (keys are the paths as walked).
    """
    _check_text(text)
    unescape = _decode_key if decode else str
    if text.startswith("s3://"):
        rest = text[len("s3://") :]
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise UsageError(f"'{text}' has no bucket name; expected s3://BUCKET[/PREFIX]")
        if not _BUCKET_RE.match(bucket):
            raise UsageError(f"'{bucket}' is not a valid S3 bucket name (in '{text}')")
        return MediaURI("s3", bucket, unescape(key))
    if text.startswith("file://"):
        host, _, path = text[len("file://") :].partition("/")
        if host not in ("", "localhost"):
            raise UsageError(
                f"'{text}' names a remote host; file URIs must be file:///absolute/path"
            )
        return MediaURI("file", "", _local_path("/" + unescape(path)))
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise UsageError(f"unsupported URI scheme '{scheme}://' in '{text}'; use s3:// or a path")
    if not allow_local:
        raise UsageError(f"'{text}' is not an s3:// URI; expected s3://BUCKET[/PREFIX]")
    if not text.strip():
        raise UsageError("empty URI; expected s3://BUCKET[/PREFIX] or a directory")
    return MediaURI("file", "", _local_path(os.path.expanduser(text)))


def _local_path(path: str) -> str:
    """An absolute, normalised POSIX path ('..' folded, symbolic links left as they are)."""
    normal = os.path.normpath(os.path.abspath(path))
    # POSIX keeps a leading "//" as it is; the catalogue's keys never start with one.
    return "/" + normal.lstrip("/")


def key_prefix(key: str, depth: int = 1) -> str:
    """The first `depth` path segments of a key ('2024/06/a.jpg' -> '2024/'); '' at the root."""
    parts = key.split("/")
    if len(parts) <= 1:
        return ""
    return "/".join(parts[: min(depth, len(parts) - 1)]) + "/"
