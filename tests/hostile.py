"""The hostile library: names and files an attacker would plant in a synced folder.

`build_hostile_library(root, outside)` writes it; the tests sync it and render it through every
output. Each name is chosen to break something a careless renderer does: terminal escapes (OSC
title and clipboard writes), bidi overrides, rich markup, CSV formulas, bare CR/LF, and '%'.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

from tests.factories import RED, make_image

# (relative path, what it attacks). Every one is a real image the labeller labels.
HOSTILE_NAMES: tuple[str, ...] = (
    "a\x1b]0;PWNED\x1b\\b.jpg",  # OSC 0: sets the window title
    "c\x1b]52;c;ZWNobyBwd25lZA==\x1b\\d.jpg",  # OSC 52: writes the clipboard
    "clear\x1b[2J\x1b[H.jpg",  # CSI: clears the screen
    "rlo\u202egpj.exe.jpg",  # RLO: shows as "rlo" + reversed text
    "del\x7fc1\x9b31m.jpg",  # DEL and a C1 CSI
    "bell\x07.jpg",
    "evil/[/bad].jpg",  # a closing tag with nothing open: MarkupError
    "[link=https://evil.example]click[/link].jpg",  # a hidden link
    "[bold red]x[/]y.jpg",  # spoofed styling
    '=HYPERLINK("http://evil.example","x").jpg',
    "+1+2.jpg",
    "-3+4.jpg",
    "@SUM(1+1).jpg",
    "\tTAB.jpg",
    "cr\rinside.jpg",
    "lf\ninside.jpg",
    "50%25off.jpg",  # looks percent-encoded
    "100%.jpg",
    "trailing space .jpg",
)
# The label name the --classes file gives class 0: markup in label names too.
HOSTILE_LABEL = "[/x]Person"
# Files that must be skipped, with the reason the sync gives.
SKIPPED = {
    ".hidden.jpg": "hidden (--include-hidden keeps it)",
    "._appledouble.jpg": "hidden (--include-hidden keeps it)",
    ".DS_Store": "hidden (--include-hidden keeps it)",
    ".thumbnails/": "hidden (--include-hidden keeps it)",
    "@eaDir/": "system file (--include-hidden keeps it)",
    "Thumbs.db": "system file (--include-hidden keeps it)",
    "outside.jpg": "link outside the folder (--follow-outside-links follows it)",
    "outside-dir/": "link outside the folder (--follow-outside-links follows it)",
    "loop/": "link loop",
    "fifo.jpg": "not a regular file",
}
BOMB = "bomb.png"


def bomb_png(side: int = 20000) -> bytes:
    """A small PNG that declares side x side pixels (a 1-bit image compresses to almost nothing)."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def build_hostile_library(root: Path, outside: Path, bomb_side: int = 20000) -> list[Path]:
    """Write the library under `root` (and a target folder `outside` of it); returns the images."""
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    picture = make_image(background=RED)
    images = []
    for name in HOSTILE_NAMES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(picture)
        images.append(path)
    (root / BOMB).write_bytes(bomb_png(bomb_side))
    for hidden in (".hidden.jpg", "._appledouble.jpg", ".DS_Store", "Thumbs.db"):
        (root / hidden).write_bytes(picture)
    for folder in (".thumbnails", "@eaDir"):
        (root / folder).mkdir()
        (root / folder / "thumb.jpg").write_bytes(picture)
    (outside / "secret.jpg").write_bytes(picture)
    (root / "outside.jpg").symlink_to(outside / "secret.jpg")
    (root / "outside-dir").symlink_to(outside, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "inside-link.jpg").symlink_to(root / "+1+2.jpg")
    os.mkfifo(root / "fifo.jpg")
    return images
