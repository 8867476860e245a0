"""Ledger text made inert for a terminal.

Ledger rows hold text from clients (feature tags, model names), upstreams (error messages) and
models (judge reasons). Printed as rich markup or raw, it could restyle or crash the output
(`[/]`), plant hyperlinks (`[link=…]`, OSC 8), clear the screen or move the cursor (ESC/CSI,
C1 controls), or reorder what is shown (bidi overrides). Every CLI that prints ledger text uses
`plain_console()` (markup, emoji and highlighting off) and passes the text through `inert()`,
which also removes the gateway's secrets from rows written before they were scrubbed.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from tierwise.secret_scrub import scrub

if TYPE_CHECKING:  # rich loads when a command prints, not when `--help` lists this module
    from rich.console import Console

# Unicode's format characters (category Cf: bidi embeddings/overrides/isolates and marks, zero-width characters, the
# soft hyphen, the BOM, the tag characters U+E0020..E007F that hide a second text no terminal shows: review28a),
# line and paragraph separators, as of Unicode 15 (tests/cli/test_terminal_text_chars.py checks the running Python's).
_FORMAT = ("\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e"
           "\u2060-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
           "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f")
# ... with C0 and C1 controls, DEL, and lone surrogates (which cannot even be encoded for output).
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_FORMAT}\ud800-\udfff]")
# What orjson leaves unescaped in JSON of that set (it escapes C0 itself).
_UNSAFE_JSON = re.compile(f"[\x7f-\x9f{_FORMAT}]")


def _visible(m: re.Match[str]) -> str:
    o = ord(m.group())
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def _json_escape(m: re.Match[str]) -> str:
    o = ord(m.group())
    if o < 0x10000:
        return f"\\u{o:04x}"
    o -= 0x10000  # JSON writes a character past the BMP as its UTF-16 surrogate pair
    return f"\\u{0xd800 + (o >> 10):04x}\\u{0xdc00 + (o & 0x3ff):04x}"


def has_unsafe(text: str) -> bool:
    """Whether `text` holds a character `inert` would escape (one a terminal or a YAML reader would act on)."""
    return _UNSAFE.search(text) is not None


def inert(value: Any) -> str:
    """`value` as text with secrets removed and every control character shown as an escape."""
    return _UNSAFE.sub(_visible, scrub(str(value)))


def inert_json(text: str) -> str:
    """JSON text with secrets removed and the characters a terminal would act on written as `\\uXXXX` escapes."""
    return _UNSAFE_JSON.sub(_json_escape, scrub(text))


# Outside a terminal (a pipe, a file, CI) rich assumes 80 columns and cuts tables to fit; there
# nothing wraps lines, so tables get the width they need (up to this), unless $COLUMNS says otherwise.
UNBOUNDED_WIDTH = 1000


def wide(console: Console) -> Console:
    """`console`, with no 80-column limit when it does not write to a terminal."""
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = UNBOUNDED_WIDTH
    return console


def plain_console() -> Console:
    """A console that prints strings as they are: no markup, no emoji codes, no highlighting."""
    from rich.console import Console

    return wide(Console(markup=False, emoji=False, highlight=False))
