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

from tests.privacy.support import (
    NOTE,
    SEEDS,
    assert_none_sent,
    attach_document,
    b64,
    call_tool_with_id,
    found,
    show_image,
    upload_text_file,
)

EMAIL = SEEDS["EMAIL_ADDRESS"]


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
    "a short run through rot13 after its word": ("ssn " + rot13(b64("536-22-8147")), "US_SSN"),  # 15 characters
}


@pytest.mark.parametrize("case", list(SHAPES))
def test_round_12_encodings_are_found(det, case):
    text, entity = SHAPES[case]
    assert entity in {e for e, _ in found(det, f"blob {text} end")}


# ---------------------------------------------------------------------------- text in the places read as binary

NOTE_B64 = b64(NOTE)
# what of the note's base64 must not leave: its groups that carry the address and the card
LEAKY_GROUPS = [NOTE_B64[16:60], NOTE_B64[60:100]]


def test_the_probe_of_a_payload_tells_text_from_binary():
    import os

    from tierwise.privacy.encoded import holds_text
    from tierwise.privacy.request_scan import opaque_shaped

    assert holds_text(NOTE_B64) and holds_text(f"toolu_{b64(EMAIL)}") and holds_text(url(NOTE_B64))
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + os.urandom(2000)).decode()
    assert not holds_text(png)
    for issued in ("toolu_01D7FLrfh4GYq7yT1ULFeyMV", "call_abc123XYZ789def", "fc_68a1b2c3d4e5f60718293a4b5c6d7e8f",
                   "srvtoolu_01ABCDefgh1234567890"):
        assert opaque_shaped(issued), issued


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_text_file_in_base64_does_not_leave_as_written(remote):
    """An OpenAI `file` part (a `.txt` upload): skipped as binary before."""
    g, up = remote
    upload_text_file(g, NOTE_B64)
    assert_none_sent(up, [EMAIL, *LEAKY_GROUPS])


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_text_as_an_image_s_base64_does_not_leave_as_written(remote):
    """An image part whose base64 is text: skipped as binary before; then, scanned but not redacted (an image's data
    was never rewritten, and the leak check looks for a value on word boundaries, not inside base64)."""
    g, up = remote
    show_image(g, NOTE_B64)
    assert_none_sent(up, [EMAIL, *LEAKY_GROUPS])


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_text_document_in_base64_does_not_leave_as_written(remote):
    """An Anthropic document whose base64 source is text: skipped as binary before."""
    g, up = remote
    attach_document(g, NOTE_B64)
    assert_none_sent(up, [EMAIL, *LEAKY_GROUPS])


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_an_id_holding_text_does_not_leave_as_written(remote):
    """A tool call id that is `toolu_` + an address's base64 (a client writes its history's ids): skipped as an
    upstream-issued id before."""
    g, up = remote
    call_tool_with_id(g, f"toolu_{b64(EMAIL).rstrip('=')}")
    assert_none_sent(up, [EMAIL, *LEAKY_GROUPS, b64(EMAIL).rstrip("=")[4:24]])


# ---------------------------------------------------------------------------- a route's rule: one scan

def test_a_nested_route_s_guard_reads_the_request_s_findings():
    """`RuledRoute.scoped` made a guard with a memo of its own per call: the request's texts were scanned again
    (bench/privacy_ruled_rescan.py: 0.95 of the request guard's scan, now 0.08). Its policy stays its own."""
    from types import SimpleNamespace

    from tierwise.canonical import Message, Request, TextBlock
    from tierwise.policies.base import Context
    from tierwise.privacy.boundary import Boundary, Guard
    from tierwise.privacy.detect import Detector
    from tierwise.privacy.detect_config import DetectionConfig
    from tierwise.privacy.policy_config import PrivacyConfig
    from tierwise.privacy.route_rule import RuledRoute
    from tierwise.trace import Trace

    real = Detector(DetectionConfig.model_validate({"classes": {"pii": {}}, "ner": {"enabled": False}}))
    scanned: list[str] = []

    def detector(text: str) -> list:
        scanned.append(text)
        return real.scan(text)

    cfg = PrivacyConfig.model_validate({"classes": {"pii": {}}, "policy": {"pii": "allow"},
                                        "routes": {"inner": {"pii": "local_only"}}})
    b = Boundary(cfg, routes={"main", "inner"}, detector=detector)
    req = Request(model="m", messages=[Message("user", [TextBlock(f"mail {EMAIL}")]),
                                       Message("assistant", [TextBlock("noted")]),
                                       Message("user", [TextBlock("and my card is 4111 1111 1111 1111")])])
    outer = Guard(b, "main")
    ctx = Context(trace=Trace("req_1", "main"), resolve=lambda n: None, privacy=outer)  # type: ignore[arg-type]
    assert outer.scan_request(req)["EMAIL_ADDRESS"] == 1
    before = len(scanned)
    nested = RuledRoute("inner", None, SimpleNamespace(privacy=b)).scoped(ctx).privacy  # type: ignore[arg-type]
    assert nested is not outer and nested.route == "inner"
    assert nested.scan_request(req)["EMAIL_ADDRESS"] == 1
    assert scanned[before:] == []
    assert nested.policies["pii"].action == "local_only" and outer.policies["pii"].action == "allow"


def test_prose_in_base64_is_no_secret_and_a_key_in_base64_still_is(det):
    """Scanned since round 12, a text file's base64 was a SECRET by its entropy: `secrets: block` refused every
    `.txt` upload. Prose in base64 (four spaces or more once decoded) is words; a key in base64 is still found."""
    plain = "Meeting notes, 3 March.\nAttendees: the team. Budget approved; next review in April.\n" * 3
    assert found(det, f"data:text/plain;base64,{b64(plain)}") == []
    key = "sk-ant-api03-Zx8Qw2Lp9Rt4Vb7Nm1Kc5Hj3Gf6Ds0Ae2Wq8Ty4Ui7Op"
    for text in (f"key {b64(key)}", f"DB_PASS {b64('xK9#mQ2!vL7@pR4z')}"):
        assert "SECRET" in {e for e, _ in found(det, text)}, text
