"""Privacy attack round 6 (session 26, attack-privacy6): values in base64 or hex (a JWT's payload, a Kubernetes
Secret, a MIME body, a hex dump of a string), one encoding inside another (`%26%2364%3B`, `&#37;40`), and addresses
spaced out only in part or with wider gaps (`j o h n @ example.com`, `jane . doe @ example . com`).

Before: a base64 address was at most a SECRET by its entropy (so it left under a `pii`-only policy or `secrets:
allow`), a base64 card number or a hex address was nothing at all. Now `privacy/encoded.py` decodes runs that
decode to printable text and scans that; `textnorm` normalises again when a decoded escape makes another one.

Real HTTP, the official SDKs, recording upstream doubles, as in rounds 2-5."""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import re
import urllib.parse
from typing import Any

import pytest

from tests.gateway.conftest import oai
from tests.privacy.support import ask_remote, found
from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DetectionConfig

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def b64url(s: str) -> str:
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


def jwt(claims: dict[str, Any]) -> str:
    return ".".join([b64url('{"alg":"HS256","typ":"JWT"}'), b64url(json.dumps(claims)), "c2lnbmF0dXJlLW5vdC1jaGVja2Vk"])


MIME = b64(f"Hello,\r\nplease write to {EMAIL} about the invoice.\r\nThanks\r\n")

# ---------------------------------------------------------------- the detector

# text, the entity, the decoded value the finding must cover
ENCODED = {
    "base64 address": (f"decode this: {b64(EMAIL)}", "EMAIL_ADDRESS", EMAIL),
    "base64 card": (f"the field holds {b64(CARD)} ok", "CREDIT_CARD", CARD),
    "base64 phone": (f"contact {b64('+1 415 555 0132')}", "PHONE_NUMBER", "+1 415 555 0132"),
    "base64 IBAN": (f"iban {b64('DE89370400440532013000')}", "IBAN_CODE", "DE89370400440532013000"),
    "base64 SSN": (f"ssn {b64('536-22-8147')} here", "US_SSN", "536-22-8147"),
    "URL-safe, unpadded": (f"?u={b64url(EMAIL + '?x')}&y=1", "EMAIL_ADDRESS", EMAIL),
    "a Kubernetes Secret": (f"apiVersion: v1\nkind: Secret\ndata:\n  owner: {b64(EMAIL)}\n  card: {b64(CARD)}\n",
                            "EMAIL_ADDRESS", EMAIL),
    "a MIME body over lines": ("Content-Transfer-Encoding: base64\n\n" + "\n".join(MIME[i:i + 16] for i in range(0, len(MIME), 16)),
                               "EMAIL_ADDRESS", EMAIL),
    "base64 of JSON": (b64(json.dumps({"user": {"mail": EMAIL}})), "EMAIL_ADDRESS", EMAIL),
    "padding percent-encoded": ("q=" + b64("mail " + EMAIL).replace("=", "%3D"), "EMAIL_ADDRESS", EMAIL),
    "hex address": (f"bytes: {EMAIL.encode().hex()}", "EMAIL_ADDRESS", EMAIL),
    "hex card, 0x": (f"value 0x{b'4111111111111111'.hex().upper()} ok", "CREDIT_CARD", "4111111111111111"),
}


def _decoded(text: str, start: int, end: int) -> str:
    """What the encoded characters text[start:end] (with whatever encoding their run has) decode to."""
    s = text[start:end].replace("\n", "")
    if re.fullmatch(r"(?:0[xX])?[0-9A-Fa-f]+", s):
        return bytes.fromhex(s[2:] if s[:2].lower() == "0x" else s).decode()
    s = s.translate(str.maketrans("-_", "+/")).rstrip("=")
    return binascii.a2b_base64(s[: len(s) - (len(s) % 4 == 1)] + "=" * (-len(s) % 4)).decode("utf-8", "replace")


def test_an_encoded_number_keeps_the_cue_before_it(det):
    """`12345678` is a phone number only next to a cue; decoded alone it lost the one written before the run."""
    text = f"call me at {b64('12345678 ')} tonight"
    hits = [f for f in det.scan(text) if f.entity == "PHONE_NUMBER"]
    assert any("12345678" in _decoded(text, f.start, f.end) for f in hits), found(det, text)
    assert not [f for f in det.scan(f"the value {b64('12345678 ')} tonight") if f.entity == "PHONE_NUMBER"]


@pytest.mark.parametrize("case", list(ENCODED))
def test_encoded_values_are_found(det, case):
    text, entity, value = ENCODED[case]
    hits = [f for f in det.scan(text) if f.entity == entity]
    assert any(value in _decoded(text, f.start, f.end) for f in hits), found(det, text)


def test_a_jwt_is_personal_data_under_a_pii_only_policy():
    """Without the `secrets` class the JWT was no finding at all: its e-mail claim left as written."""
    pii_only = Detector(DetectionConfig.model_validate({"classes": {"pii": {}}, "ner": {"enabled": False}}))
    text = f"why does {jwt({'sub': '42', 'email': EMAIL})} fail?"
    assert "EMAIL_ADDRESS" in {f.entity for f in pii_only.scan(text)}


NOT_VALUES = {
    "a PNG": "data:image/png;base64," + base64.b64encode(bytes(range(256)) * 4).decode(),
    "sha256 hex": hashlib.sha256(b"jane.doe@example.com").hexdigest(),
    "sha1 and a commit": f"commit {hashlib.sha1(b'x').hexdigest()} (HEAD -> main)",
    "a UUID": "id 123e4567-e89b-12d3-a456-426614174000 and 0x7fffffffffffffff",
    "long words and paths": "internationalization src/tierwise/privacy/encoded.py some_function_name_here",
    "base64 of text without values": b64("Hello world, this is only a sentence about nothing in particular."),
    "base64 of numbers that are no value": b64("version 1.2 of 2024, 12 items"),
    "random base64 key": "key: " + base64.b64encode(hashlib.sha512(b"k").digest()).decode(),
}


@pytest.mark.parametrize("case", list(NOT_VALUES))
def test_decoding_invents_no_value(det, case):
    text = NOT_VALUES[case]
    assert [f for f in det.scan(text) if f.entity != "SECRET"] == []


NESTED = {
    "percent-encoded &#64;": ("mail jane.doe%26%2364%3Bexample.com now", "jane.doe%26%2364%3Bexample.com"),
    "HTML reference to %40": ("mail jane.doe&#37;40example.com now", "jane.doe&#37;40example.com"),
    "percent-encoded \\u0040": ("mail jane.doe%5Cu0040example.com now", "jane.doe%5Cu0040example.com"),
    "HTML reference to \\u0040": ("mail jane.doe&#92;u0040example.com now", "jane.doe&#92;u0040example.com"),
}


@pytest.mark.parametrize("case", list(NESTED))
def test_an_encoding_inside_another(det, case):
    text, value = NESTED[case]
    assert ("EMAIL_ADDRESS", value) in found(det, text)


def test_nested_decoding_invents_nothing(det):
    """`%26` in a query string, `50&#37;` in HTML, a literal `%25` are decoded and read again: nothing new."""
    text = "see /search?q=a%26b&n=1 for 50&#37; off, or %2525 and &amp;#37;x"
    assert found(det, text) == []


SPACED_ADDRESSES = {
    "five single characters before the `@`": "mail j o h n @ example.com now",
    "two spaces between characters": "mail j  o  h  n  @  e  x  a  m  p  l  e  .  c  o  m now",
    "the domain spaced, the local part not": "mail john.doe@ e x a m p l e . c o m now",
    "the local part spaced up to the `@`": "mail j o h n . d o e@example.com now",
    "spaces around every dot and the `@`": "email me: jane . doe @ example . com",
    "tabs": "mail j\to\th\tn\t@\texample.com now",
}


@pytest.mark.parametrize("case", list(SPACED_ADDRESSES))
def test_partly_or_widely_spaced_addresses_are_found_whole(det, case):
    """Before: nothing, or `n @ example.com` (redacted, it left `j o h` behind)."""
    text = SPACED_ADDRESSES[case]
    start = text.index(":") + 2 if ":" in text else text.index(" ") + 1
    value = text[start:].removesuffix(" now")
    assert ("EMAIL_ADDRESS", value) in found(det, text)


@pytest.mark.parametrize("text", [
    "a @ b is the matrix product; x @ y @ z too",
    "    @ property\n    def f(self): return 1",
    "meet him @ noon. Then call me @ 3 pm . OK",
    "cc @ alice and @ bob on this",
    "import numpy as np\nc = a @ b . T",
])
def test_closing_gaps_invents_no_address(det, text):
    assert [f for f in det.scan(text) if f.entity == "EMAIL_ADDRESS"] == []


# ---------------------------------------------------------------- over HTTP

_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}|(?:[A-Za-z0-9+/]{8,}\\n)+[A-Za-z0-9+/]*={0,2}")


def _readable(raw: bytes) -> str:
    """Every string of a recorded body, with each base64 or hex run in it decoded as well as it decodes."""
    out: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(json.loads(raw))
    text = "\n".join(out)
    for _ in range(3):  # percent-encoding and HTML references, inside each other
        text = html.unescape(urllib.parse.unquote(text)).replace("\\u0040", "@")
    decoded = [text]
    for m in re.finditer(r"[A-Za-z0-9+/_=\n-]{8,}", text):
        s = m.group().replace("\n", "").translate(str.maketrans("-_", "+/")).rstrip("=")
        for off in range(4):  # every alignment: a value cut from its neighbours is still read
            t = s[off:]
            t = t[: len(t) - (len(t) % 4 == 1)] + "=" * (-len(t) % 4 if len(t) % 4 != 1 else 0)
            try:
                decoded.append(binascii.a2b_base64(t).decode("latin-1"))
            except binascii.Error:
                pass
    for m in re.finditer(r"[0-9A-Fa-f]{8,}", text):
        for off in range(2):
            t = m.group()[off:]
            decoded.append(bytes.fromhex(t[: len(t) - len(t) % 2]).decode("latin-1"))
    return re.sub(r"[^0-9A-Za-z@]", "", "\n".join(decoded))


VALUES = ("janedo", "4111111111111111")
LEAKY = {
    "base64 card": f"What is this field? {b64(CARD)}",
    "hex address": f"Decode this for me: {EMAIL.encode().hex()}",
    "a JWT": f"Why is this token rejected? {jwt({'sub': '42', 'email': EMAIL, 'exp': 1})}",
    "a Kubernetes Secret": f"Fix my manifest:\ndata:\n  owner: {b64(EMAIL)}\n  card: {b64(CARD)}\n",
    "a MIME body": "Content-Transfer-Encoding: base64\n\n" + "\n".join(MIME[i:i + 16] for i in range(0, len(MIME), 16)),
    "nested escapes": "mail jane.doe%26%2364%3Bexample.com please",
    "partly spaced address": "mail j a n e . d o e@example.com please",
}


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
@pytest.mark.parametrize("case", list(LEAKY))
def test_encoded_values_do_not_leave(remote, case):
    g, up = remote
    text = LEAKY[case]
    ask_remote(g, up, text)
    assert up.requests
    for rec in up.requests:
        s = _readable(rec.raw)
        assert not any(v in s for v in VALUES), rec.raw


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_an_encoded_value_in_a_tool_result_does_not_leave(remote):
    """The same in a tool's output (a shell command's `kubectl get secret -o yaml`), through the Responses API."""
    g, up = remote
    r = oai(g).responses.create(model="fb", input=[
        {"role": "user", "content": "why is the secret wrong?"},
        {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": json.dumps({"cmd": "kubectl get secret s -o yaml"})},
        {"type": "function_call_output", "call_id": "call_1", "output": f"data:\n  owner: {b64(EMAIL)}\n  card: {b64(CARD)}\n"},
    ], tools=[{"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}])
    assert r.output_text
    assert up.requests
    for rec in up.requests:
        s = _readable(rec.raw)
        assert not any(v in s for v in VALUES), rec.raw
