"""Review of attack-privacy6 (session 26, review26c): encodings its view did not read.

- base64 of UTF-16 text (Windows tools, PowerShell's `-EncodedCommand`): ASCII in UTF-16 has a zero byte beside every
  character, so the decoded bytes were unprintable UTF-8 and the address or card in them was never scanned;
- hex written a byte at a time with separators (`6a:61:6e`, `6a 61 6e`, `0x6a, 0x61`, `6a-61`), as `xxd`, Wireshark,
  C arrays and key fingerprints print it: only runs of sixteen digits without separators were read.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from tests.privacy.support import found

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


def _hex(s: str, sep: str, prefix: str = "") -> str:
    return sep.join(prefix + f"{b:02x}" for b in s.encode())


ENCODED = {
    "base64 of UTF-16LE": (f"run: {base64.b64encode(EMAIL.encode('utf-16-le')).decode()}", "EMAIL_ADDRESS", EMAIL),
    "base64 of UTF-16 with its BOM": (f"x {base64.b64encode(CARD.encode('utf-16')).decode()} y", "CREDIT_CARD", CARD),
    "base64 of UTF-16BE": (f"x {base64.b64encode(EMAIL.encode('utf-16-be')).decode()}", "EMAIL_ADDRESS", EMAIL),
    "hex with colons": (f"bytes {_hex(EMAIL, ':')} end", "EMAIL_ADDRESS", EMAIL),
    "hex with spaces": (f"payload: {_hex(CARD, ' ')}\n", "CREDIT_CARD", CARD),
    "hex as a C array": (f"char k[] = {{{_hex(EMAIL, ', ', '0x')}}};", "EMAIL_ADDRESS", EMAIL),
    "hex with dashes": (f"v={_hex(EMAIL, '-').upper()}", "EMAIL_ADDRESS", EMAIL),
}


def _decoded(text: str, start: int, end: int) -> str:
    """What the encoded characters text[start:end] decode to (hex with separators, or a base64 run)."""
    s = text[start:end]
    pairs = re.findall(r"(?:0x)?([0-9A-Fa-f]{2})(?![0-9A-Fa-f])", s)
    if re.fullmatch(r"(?:(?:0x)?[0-9A-Fa-f]{2}(?:[:\- ]|, ?)?)+", s):
        return bytes.fromhex("".join(pairs)).decode()
    raw = base64.b64decode(s + "=" * (-len(s) % 4))
    return raw.decode("utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else
                      "utf-16-le" if raw[1:2] == b"\x00" else "utf-16-be")


@pytest.mark.parametrize("case", list(ENCODED))
def test_values_in_utf16_and_separated_hex_are_found(det, case):
    text, entity, value = ENCODED[case]
    hits = [f for f in det.scan(text) if f.entity == entity]
    assert any(value in _decoded(text, f.start, f.end) for f in hits), found(det, text)


NOT_VALUES = {
    "a MAC address": "ether 00:1a:2b:3c:4d:5e brd ff:ff:ff:ff:ff:ff",
    "an SSH key fingerprint": "SHA1 Fingerprint=" + ":".join(f"{b:02X}" for b in hashlib.sha1(b"k").digest()),
    "an xxd line of text without values": "00000000: 4865 6c6c 6f20 776f 726c 640a  Hello world.\n"
                                         + _hex("Hello, world! Only words.", " "),
    "separated hex of dates and versions": _hex("build 2024-01-05 ok", ":") + " " + _hex("release 1.2.3 on 2024", ", "),
    "UTF-16 text without values": base64.b64encode("Only words here, nothing else".encode("utf-16-le")).decode(),
}


@pytest.mark.parametrize("case", list(NOT_VALUES))
def test_no_value_is_invented(det, case):
    assert [f for f in det.scan(NOT_VALUES[case]) if f.entity != "SECRET"] == [], found(det, NOT_VALUES[case])
