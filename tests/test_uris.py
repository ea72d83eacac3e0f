"""format_uri/parse_uri: every URI the catalogue prints parses back to the same object."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.errors import UsageError
from catalog.uris import format_uri, parse_uri

# Any text S3 accepts as a key (no lone surrogates: keys are UTF-8).
KEYS = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
# A path segment as a folder walk yields it: no '/', no NUL, never '.' or '..'.
SEGMENTS = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"), min_size=1, max_size=20
).filter(lambda s: s not in (".", ".."))
PATHS = st.lists(SEGMENTS, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))


@given(KEYS)
def test_s3_uris_round_trip(key: str) -> None:
    printed = format_uri("s3", "media-library", key)
    parsed = parse_uri(printed)
    assert (parsed.scheme, parsed.bucket, parsed.key) == ("s3", "media-library", key)


@given(PATHS)
def test_file_uris_round_trip(path: str) -> None:
    parsed = parse_uri(format_uri("file", "", path))
    assert (parsed.scheme, parsed.bucket, parsed.key) == ("file", "", path)


@given(KEYS)
def test_printed_uris_hold_no_control_or_bidi_characters(key: str) -> None:
    printed = format_uri("s3", "media-library", key)
    assert not [c for c in printed if unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs")]
    assert not set(printed) & set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@pytest.mark.parametrize(
    ("printed", "key"),
    [
        ("s3://b1b/a%0Ab.jpg", "a\nb.jpg"),
        ("s3://b1b/50%2525off.jpg", "50%25off.jpg"),
        ("s3://b1b/100%.jpg", "100%.jpg"),  # a lone % stays as typed
        ("s3://b1b/a b .jpg", "a b .jpg"),  # spaces, even trailing, are kept
        ("s3://b1b//lead", "/lead"),
        ("file://localhost/tmp/x%0Dy", "/tmp/x\ry"),
    ],
)
def test_known_forms(printed: str, key: str) -> None:
    assert parse_uri(printed).key == key


def test_file_uris_keep_symbolic_links_as_walked(tmp_path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    assert parse_uri(f"file://{tmp_path}/alias/a.jpg").key == f"{tmp_path}/alias/a.jpg"


@pytest.mark.parametrize("text", ["s3://b1b/a\udcff", "caf\udce9/", "file:///tmp/\udc80"])
def test_invalid_utf8_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="not valid UTF-8"):
        parse_uri(text)
