"""Privacy attack round 9 (session 29, attack-privacy9): round 8's leftovers and new shapes.

- encodings: base32 in mixed case, three levels of nesting, hex inside base64 and base64 inside hex, Ascii85 of
  short values (privacy/encoded.py);
- escapes: quoted-printable runs (`=6A=61...`), UTF-7 (`+AEA-`), keycaps, bullets between digits (privacy/textnorm.py);
- IPv4 as `dot` words, spaced dots, hex/octal parts, one number (privacy/ip_forms.py);
- cards and SSNs over `, ; " + /` (CSV rows, JSON arrays, string concatenation) and inside file names
  (privacy/layout.py);
- `jane.doe at example.com` (recognizers/contact.py); digit words in five more languages (privacy/digit_views.py).

Before: none found (main at 4f592890). Real HTTP, the official SDKs, recording upstream doubles, as in rounds 2-8."""

from __future__ import annotations

import base64
import json

import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.support import ask_remote, assert_none_sent, found

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def b32(s: str) -> str:
    return base64.b32encode(s.encode()).decode()


def mixed_case(s: str) -> str:
    return "".join(c.lower() if i % 2 else c for i, c in enumerate(s))


def qp(s: str) -> str:
    return "".join(f"={ord(c):02X}" for c in s)


def utf7(s: str) -> str:
    """Every character in UTF-7's base64 form (`+AGoAYQ...-`), as a mail client may write it."""
    return "+" + base64.b64encode(s.encode("utf-16-be")).decode().rstrip("=") + "-"


SHAPES = {
    # encodings
    "base32 in mixed case": ("decode " + mixed_case(b32(EMAIL)), "EMAIL_ADDRESS"),
    "base32 mixed case, unpadded": ("decode " + mixed_case(b32(EMAIL).rstrip("=")), "EMAIL_ADDRESS"),
    "base64 three times": ("decode " + b64(b64(b64(EMAIL))), "EMAIL_ADDRESS"),
    "base32 of base64 of base64": ("decode " + b32(b64(b64(EMAIL))), "EMAIL_ADDRESS"),
    "base64 of base32 of base64": ("decode " + b64(b32(b64(EMAIL))), "EMAIL_ADDRESS"),
    "hex of base64": ("decode " + b64(EMAIL).encode().hex(), "EMAIL_ADDRESS"),
    "base64 of hex": ("decode " + b64(EMAIL.encode().hex()), "EMAIL_ADDRESS"),
    "Ascii85 of a short IP": ("decode " + base64.a85encode(b"10.0.0.1").decode(), "IP_ADDRESS"),
    "Ascii85 of a 7-byte IP": ("ip " + base64.a85encode(b"8.8.4.4").decode(), "IP_ADDRESS"),
    "Ascii85 of a bare SSN after its word": ("ssn " + base64.a85encode(b"536228147").decode(), "US_SSN"),
    # escapes
    "quoted-printable address": ("mail " + qp(EMAIL), "EMAIL_ADDRESS"),
    "quoted-printable digits": ("card " + qp(CARD), "CREDIT_CARD"),
    "UTF-7 @": ("mail jane.doe+AEA-example.com", "EMAIL_ADDRESS"),
    "UTF-7 throughout": ("mail " + utf7(EMAIL), "EMAIL_ADDRESS"),
    "keycap digits": (
        "card 4\ufe0f\u20e31\ufe0f\u20e31\ufe0f\u20e31\ufe0f\u20e3 1111 1111 1111",
        "CREDIT_CARD",
    ),
    "bullets between groups": ("card 4111\u20221111\u20221111\u20221111", "CREDIT_CARD"),
    "middle dots between groups": ("card 4111\u00b71111\u00b71111\u00b71111", "CREDIT_CARD"),
    # IPv4 forms
    "IP in dot words": ("server 203 dot 0 dot 113 dot 45", "IP_ADDRESS"),
    "IP with spaced dots": ("server 203 . 0 . 113 . 45", "IP_ADDRESS"),
    "IP with (dot)": ("server 203(dot)0(dot)113(dot)45", "IP_ADDRESS"),
    "IP in hex parts": ("host 0xCB.0x00.0x71.0x2D", "IP_ADDRESS"),
    "IP in octal parts": ("host 0313.0.0161.055", "IP_ADDRESS"),
    "IP as hex after ip": ("ip 0xCB00712D", "IP_ADDRESS"),
    "IP as a URL host, decimal": ("open http://3405803821/admin", "IP_ADDRESS"),
    "IP as a URL host, hex": ("open http://0xcb00712d/admin", "IP_ADDRESS"),
    "IP as 9 digits after ip": (
        "client ip 167772161 blocked",
        "IP_ADDRESS",
    ),  # 10.0.0.1: too short for a phone
    # separators and names
    "card with commas": ("card 4111,1111,1111,1111", "CREDIT_CARD"),
    "card with semicolons": ("card 4111;1111;1111;1111", "CREDIT_CARD"),
    "card as a JSON array": ('card: ["4111", "1111", "1111", "1111"]', "CREDIT_CARD"),
    "card as numbers in a list": ("card = [4111, 1111, 1111, 1111]", "CREDIT_CARD"),
    "card in string concatenation": ('card = "4111" + "1111" + "1111" + "1111"', "CREDIT_CARD"),
    "SSN with slashes": ("ssn 536/22/8147", "US_SSN"),
    "card in a file name": ("attached receipt_4111111111111111.png", "CREDIT_CARD"),
    "SSN in a file name": ("uploaded tax_536_22_8147.pdf", "US_SSN"),
    # words
    "name at domain.com": ("write to jane.doe at example.com today", "EMAIL_ADDRESS"),
    "name99 at domain.co.uk": ("jdoe99 at example.co.uk", "EMAIL_ADDRESS"),
    "one word at domain.com after 'email'": (
        "You said your email is UtaKortig at jourrapide.com?",
        "EMAIL_ADDRESS",
    ),
    "card in French words": ("carte quatre " + "un " * 15, "CREDIT_CARD"),
    "card in Spanish words": ("tarjeta cuatro " + "uno " * 15, "CREDIT_CARD"),
    "card in German words": ("Karte vier " + "eins " * 15, "CREDIT_CARD"),
    "card in Swedish words": ("kort fyra " + "ett " * 15, "CREDIT_CARD"),
    "phone in Italian words": (
        "chiama quattro uno cinque cinque cinque cinque due sei sette uno",
        "PHONE_NUMBER",
    ),
}


@pytest.mark.parametrize("case", list(SHAPES))
def test_round_9_shapes_are_found(det, case):
    text, entity = SHAPES[case]
    assert entity in {e for e, _ in found(det, text)}, found(det, text)


NOT_VALUES = {
    "a version with leading zeros": "upgrade to version 1.02.03.04 today",
    "a numbered list with spaced dots": "steps 1 . 2 . 3 . 4 then done",
    "a bare long number": "order 3405803821 shipped, 1733500000 seconds",
    "a hex constant": "mask = 0xCB00712D & 0xFFFF0000",
    "work at a company": "I work at google.com and study at mit.edu",
    "a file at a site": "read index.html at docs.python.org today",
    "a version at a site": "Python 3.12 at python.org",
    "years with commas": "in 2019, 2020, 2021 and 2022 we grew",
    "a CSV row of numbers": "id,a,b,c,d\n17,4111,1111,1111,1111\n",
    "identifiers with digits": "x = foo_2019_2020_2021_2022 + img_20240115_123456.jpg",
    "JSON nulls": "[null, null, null, null, null, null, null, null, null, null, null, null]",
    "French prose": "Il y a un chat, deux chiens, trois oiseaux et un poisson dans la maison.",
    "Italian prose": "Sono due o tre persone, forse sei o sette, non nove.",
    "a bullet list": "\u2022 one\n\u2022 two\n\u2022 3\u2022 4",
    "QP-looking text": "a=B2=C3=D4 and x=12 y=34",
    "C++ and plus signs": "C++ and a+b, x+AB, +AAAA, call +14155552671",
    "short 85-alphabet tokens": "see x[i]=y; and f(a,b) or foo.bar() or a!b#c$d%",
}


@pytest.mark.parametrize("case", list(NOT_VALUES))
def test_round_9_views_invent_no_value(det, case):
    text = NOT_VALUES[case]
    assert [
        f for f in found(det, text) if f[0] not in {"SECRET", "DATE_TIME", "URL", "PERSON", "PHONE_NUMBER"}
    ] == []


def test_the_csv_row_and_the_phone_stay_as_before(det):
    """The guards above leave phones out (a 10-digit number is a phone to the phone recognizer, before and after);
    this one pins that a CSV row of card-like groups with no card word is no card."""
    assert "CREDIT_CARD" not in {e for e, _ in found(det, "id,a,b,c,d\n17,4111,1111,1111,1111\n")}


@pytest.mark.parametrize(
    "text",
    [
        "0x1." * 50_000,  # hex-part starts everywhere
        "1 dot " * 40_000,  # dot words everywhere (the spelled-address pattern: minutes on main)
        "a dot " * 40_000 + "at",  # a long local part before one bare at
        "ip 1234567 " * 20_000,  # cue words before short numbers
        "a_1" * 70_000,  # underscores beside digits
        "x_" + "1" * 200_000,  # one long digit run after an underscore
        "1,2;" * 50_000,  # list separators between digits
        "a.b at c.com " * 20_000,  # bare ats before domains
        "+A" + "A" * 200_000,  # one long UTF-7 run
        "=3D" * 70_000,  # one long quoted-printable run
        "un " * 70_000,  # French digit words
        ("a!b#c$d%e " * 20_000),  # short 85-alphabet tokens
        "\u2022".join(["1"] * 100_000),  # bullets between digits
    ],
)
def test_round_9_views_return_on_hostile_text(det, text):
    """Each new search is gated and bounded (no timing threshold: a hang fails the suite)."""
    assert isinstance(det.scan(text), list)


# ---------------------------------------------------------------- over HTTP


# text sent, what must not reach the remote
LEAKY = {
    "mixed-case base32": (f"what is {mixed_case(b32(EMAIL))}?", [mixed_case(b32(EMAIL))[:16]]),
    "base64 three times": (f"decode {b64(b64(b64(EMAIL)))}", [b64(b64(b64(EMAIL)))[:16]]),
    "quoted-printable": (f"mail {qp(EMAIL)} please", ["=6A=61=6E=65"]),
    "UTF-7": ("is jane.doe+AEA-example.com on file?", ["+AEA-example"]),
    "IP in dot words": ("the box is 203 dot 0 dot 113 dot 45", ["113 dot 45"]),
    "IP as a URL host": (
        "why is http://167772161/admin slow?",
        ["167772161"],
    ),  # 10.0.0.1 (9 digits: no phone)
    "card with semicolons": ("card 4111;1111;1111;1111 declined", ["1111;1111"]),
    "card in a file name": ("see receipt_4111111111111111.png", ["4111111111111111"]),
    "address with a bare at": ("mail jane.doe at example.com now", ["jane.doe at example"]),
    "card in French words": ("carte quatre " + "un " * 15, ["un un un un un un"]),
}


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
@pytest.mark.parametrize("case", list(LEAKY))
def test_round_9_shapes_do_not_leave(remote, case):
    g, up = remote
    text, parts = LEAKY[case]
    ask_remote(g, up, text)
    assert_none_sent(up, parts)


_ROUND9_PARTS = ("167772161", "+AEA-example", "1111;1111", "=6A=61=6E=65", "4111111111111111", "113 dot 45")


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_fields_and_stream_on_messages(remote):
    """A system prompt with a URL-host IP, a tool_use input with a UTF-7 address, a tool result with a card over
    semicolons, a text document with quoted-printable and its title a file name with a card, a dot-word IP in an
    image's neighbouring text; streamed."""
    g, up = remote
    with ant(g).messages.stream(
        model="fb",
        max_tokens=50,
        system="Admin panel: http://167772161/admin",
        tools=[{"name": "crm", "input_schema": {"type": "object"}}],
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "title": "receipt_4111111111111111.png",
                        "source": {"type": "text", "media_type": "text/plain", "data": "mail " + qp(EMAIL)},
                    },
                    {"type": "text", "text": "who is this? host 203 dot 0 dot 113 dot 45"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t1",
                        "name": "crm",
                        "input": {"q": "jane.doe+AEA-example.com"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "card 4111;1111;1111;1111"}
                ],
            },
        ],
    ) as s:
        assert s.get_final_text() is not None
    assert_none_sent(up, _ROUND9_PARTS)


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_fields_and_stream_on_chat(remote):
    """The same in Chat Completions: system, tool-call arguments (JSON with a `\\u` escape inside), a tool message,
    a user `name`, streamed."""
    g, up = remote
    stream = oai(g).chat.completions.create(
        model="fb",
        stream=True,
        messages=[
            {"role": "system", "content": "Admin panel: http://167772161/admin"},
            {"role": "user", "content": "mail " + qp(EMAIL) + "; host 203 dot 0 dot 113 dot 45"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {
                            "name": "crm",
                            "arguments": json.dumps(
                                {"q": "jane.doe+AEA-example.com", "f": "receipt_4111111111111111.png"}
                            ),
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "card 4111;1111;1111;1111"},
        ],
    )
    assert list(stream)
    assert_none_sent(up, _ROUND9_PARTS)


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_fields_on_responses(remote):
    """The Responses API: instructions, a function call's arguments and its output, streamed."""
    g, up = remote
    with oai(g).responses.stream(
        model="fb",
        instructions="Admin panel: http://167772161/admin",
        input=[
            {"role": "user", "content": "mail " + qp(EMAIL) + "; host 203 dot 0 dot 113 dot 45"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "crm",
                "arguments": json.dumps(
                    {"q": "jane.doe+AEA-example.com", "f": "receipt_4111111111111111.png"}
                ),
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "card 4111;1111;1111;1111"},
        ],
        tools=[{"type": "function", "name": "crm", "parameters": {"type": "object", "properties": {}}}],
    ) as s:
        assert s.get_final_response() is not None
    assert_none_sent(up, _ROUND9_PARTS)
