"""Base64 that is text once decoded, in a place read as binary: a `.txt` or `.csv` uploaded as a file, a
`data:text/plain;base64,` URL, an Anthropic document whose base64 source is text, an image's base64 that is a note,
an id a client wrote as `toolu_` + base64. `read` gives the whole text (scanned as any text: every recognizer, NER
too); `write` puts a redacted text back as valid base64 in the same alphabet, after the same `data:` head or id
`word_`, so the upstream gets a valid file with placeholders and a tool call and its result keep one id.

Round 12 (privacy12) scanned such base64 through the encoded view (structured values only, no names) and redacted
the base64 characters that carried a value: the upstream got a broken file (review32d). A payload that is not UTF-8
as a whole (text at its start, binary later) is still read that way: redacted in place, a broken file, no leak.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import NamedTuple
from urllib.parse import unquote

from tierwise.privacy.charsets import decode, encode
from tierwise.privacy.encoded import holds_text
from tierwise.privacy.payload_bytes import b64_bytes

_B64_CHARS = re.compile(r"[A-Za-z0-9+/_=-]+")  # (percent-encoding and line breaks are dropped before)


class Payload(NamedTuple):
    head: str  # what stays as written before the base64: a `data:...;base64,` head, an id's `word_`, or nothing
    text: str  # the whole text the base64 holds
    urlsafe: bool  # written with `-_` (ids, URL-safe payloads)
    is_id: bool  # an id: written back without `=` padding unless it had it (Anthropic's ids allow `[A-Za-z0-9_-]`)
    padded: bool
    encoding: str = "utf-8"  # how the text was written (privacy/charsets.py: Latin-1, UTF-16, round 13); kept


def read(s: str, *, head: str = "", is_id: bool = False, charset: str | None = None) -> Payload | None:
    """The text base64 `s` holds as a whole (a `data:` URL's payload after its `head`; an id's after its `word_`),
    or None: binary, not base64, or not text throughout (UTF-8, UTF-16 or Latin-1 prose: privacy/charsets.py). `holds_text` (its first 4,096 characters) is asked first,
    so an image or a PDF costs no whole decode."""
    if charset is not None and (declared := _declared(s, charset)) is not None:
        return declared._replace(head=head)
    if not holds_text(s):
        return None
    body = "".join(unquote(s).split()) if ("%" in s or not s.isprintable() or " " in s) else s
    got = _decode(body)
    if got is None and is_id and "_" in body[:16]:
        i = body.index("_") + 1
        head, got = body[:i], _decode(body[i:])
        body = body[i:]
    if got is None:
        return None
    return Payload(head, got[0], "-" in body or "_" in body, is_id, body.endswith("="), got[1])


def write(p: Payload, text: str) -> str:
    """`text` (the payload's text, redacted) as base64 written the way the payload was."""
    raw = encode(text, p.encoding)
    out = base64.urlsafe_b64encode(raw) if p.urlsafe else base64.b64encode(raw)
    enc = out.decode("ascii")
    return p.head + (enc.rstrip("=") if p.is_id and not p.padded else enc)


def _decode(chars: str) -> tuple[str, str] | None:
    if len(chars) < 12 or not _B64_CHARS.fullmatch(chars):
        return None
    bare = chars.rstrip("=").replace("-", "+").replace("_", "/")
    if len(bare) % 4 == 1:
        return None
    try:
        raw = binascii.a2b_base64(bare + "=" * (-len(bare) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    return decode(raw)


def _declared(s: str, charset: str) -> Payload | None:
    """Base64 `s` as text in the charset its media type declares (round 14: `text/plain;charset=IBM037`, EBCDIC, or a
    Shift-JIS note under the 64 bytes `charsets` needs to tell it from random bytes were binary, left unread)."""
    body = "".join(unquote(s).split()) if ("%" in s or " " in s) else s
    raw = b64_bytes(body)
    if raw is None:
        return None
    try:
        text = raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return None
    if not text.replace("\n", " ").replace("\t", " ").replace("\r", " ").replace("\x85", " ").isprintable():
        return None
    return Payload("", text, "-" in body or "_" in body, False, body.endswith("="), charset)
