"""Privacy attack round 12 (session 32, privacy12).

- encodings inside encodings past round 11's five levels, any mix of base64, base32, hex and percent-encoding, and
  base64 put through rot13 (privacy/encoded.py);
- text in the places the scan skips as binary: a base64 `data:` URL, a document's or a file's base64 payload and a
  client-written id whose bytes are printable text (`data:text/plain;base64,...`, a `.txt` or `.csv` uploaded as a
  file, `toolu_` + base64 of an address) left as written (privacy/request_scan.py).

Real HTTP, the official SDKs, recording upstream doubles."""

from __future__ import annotations

import base64
import codecs
import urllib.parse

import pytest

from tests.privacy.support import SEEDS, found

EMAIL = SEEDS["EMAIL_ADDRESS"]


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def url(s: str) -> str:
    return urllib.parse.quote(s, safe="")


def nest(s: str, *steps) -> str:
    for f in steps:
        s = f(s)
    return s


def hexed(s: str) -> str:
    return s.encode().hex()


def rot13(s: str) -> str:
    return codecs.encode(s, "rot13")


# text -> entity
SHAPES = {
    "base64 six times": (nest("mail jane.doe@example.com", *[b64] * 6), "EMAIL_ADDRESS"),
    "base64 ten times": (nest("card 4111 1111 1111 1111", *[b64] * 10), "CREDIT_CARD"),
    "hex of base64 five times": (nest("ip 203.0.113.45", *[b64] * 5, hexed), "IP_ADDRESS"),
    "base64 of percent-encoded base64, twice": (nest("mail jane.doe@example.com", b64, url, b64, url, b64),
                                                "EMAIL_ADDRESS"),
    "base64 of hex of base64 of percent-encoded base64 of hex": (
        nest("mail jane.doe@example.com", hexed, b64, url, b64, hexed, b64), "EMAIL_ADDRESS"),
    "base64 through rot13": (rot13(b64("mail jane.doe@example.com")), "EMAIL_ADDRESS"),
    "base64 of base64 through rot13": (rot13(b64(b64("ssn 536-22-8147"))), "US_SSN"),
}


@pytest.mark.parametrize("case", list(SHAPES))
def test_round_12_encodings_are_found(det, case):
    text, entity = SHAPES[case]
    assert entity in {e for e, _ in found(det, f"blob {text} end")}
