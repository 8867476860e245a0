"""Privacy attack round 8 (session 28, attack-privacy8): round 7's leftovers.

- escapes: JavaScript's `%u0040`, CSS `\\40 ` / `\\000040`, C/Python octal `\\100`, Python's `\\N{COMMERCIAL AT}`
  (privacy/textnorm.py);
- encodings: base32, base64 of base64, Ascii85 (`<~...~>` and bare), base85 (privacy/encoded.py);
- phone numbers and IPv4 addresses over tabs, table cells and line breaks, after a word for one
  (privacy/layout_contact.py);
- digits spelled as words (`four one one one ...`) or written as look-alike letters (`4lll`, `2O3`, `8l47`)
  (privacy/digit_views.py).

Before: none found (main at 9a87b24). Real HTTP, the official SDKs, recording upstream doubles, as in rounds 2-7."""

from __future__ import annotations

import base64
import json

import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.support import ask_remote, assert_none_sent, found

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
W = dict(zip("0123456789", "zero one two three four five six seven eight nine".split(), strict=True))


def words(s: str) -> str:
    return " ".join(W[c] for c in s if c.isdigit())


def b32(s: str) -> str:
    return base64.b32encode(s.encode()).decode()


def a85(s: str) -> str:
    return base64.a85encode(s.encode()).decode()


SHAPES = {
    # escapes
    "%u0040": ("mail jane.doe%u0040example.com", "EMAIL_ADDRESS"),
    "%u every character": ("%u006a%u0061%u006e%u0065%u0040example%u002ecom", "EMAIL_ADDRESS"),
    "CSS \\40 and a space": ("mail jane.doe\\40 example.com", "EMAIL_ADDRESS"),
    "CSS \\000040": ("mail jane.doe\\000040example.com", "EMAIL_ADDRESS"),
    "octal \\100": ("mail jane.doe\\100example.com", "EMAIL_ADDRESS"),
    "octal digits": ("card \\064\\061\\061\\061 1111 1111 1111", "CREDIT_CARD"),
    "CSS digits": ("card \\34 \\31 \\31 \\31 1111 1111 1111", "CREDIT_CARD"),
    "octal dashes before digits": ("SSN 536\\05522\\0558147", "US_SSN"),           # `\055` then `22`
    "octal before a hex letter": ("mail jane.doe\\100example.com", "EMAIL_ADDRESS"),
    "\\N{COMMERCIAL AT}": ("jane.doe\\N{COMMERCIAL AT}example.com", "EMAIL_ADDRESS"),
    # encodings
    "base32": ("decode " + b32(EMAIL), "EMAIL_ADDRESS"),
    "base32 unpadded, lower case": ("decode " + b32(EMAIL).rstrip("=").lower(), "EMAIL_ADDRESS"),
    "base32 card": ("decode " + b32("card " + CARD), "CREDIT_CARD"),
    "base64 of base64": ("decode " + base64.b64encode(base64.b64encode(EMAIL.encode())).decode(), "EMAIL_ADDRESS"),
    "Ascii85": ("decode " + a85(EMAIL), "EMAIL_ADDRESS"),
    "Ascii85 framed": ("decode <~" + a85(EMAIL) + "~>", "EMAIL_ADDRESS"),
    "Ascii85 card": ("decode " + a85("card " + CARD), "CREDIT_CARD"),
    "Ascii85 before a full stop": ("my address is " + a85(EMAIL) + ".", "EMAIL_ADDRESS"),
    "Ascii85 of an SSN (14 characters)": ("ssn " + a85("536-22-8147"), "US_SSN"),
    "base85": ("decode " + base64.b85encode(EMAIL.encode()).decode(), "EMAIL_ADDRESS"),
    # phones and IPs over layout
    "phone over tabs": ("phone\t+1\t415\t555\t2671", "PHONE_NUMBER"),
    "phone over cells": ("| phone | 415 | 555 | 2671 |", "PHONE_NUMBER"),
    "phone over lines": ("call me:\n(415)\n555-\n2671", "PHONE_NUMBER"),
    "phone over cells, +46": ("| tel | +46 | 70 | 123 | 45 | 67 |", "PHONE_NUMBER"),
    "IP over cells": ("| ip | 203 | 0 | 113 | 45 |", "IP_ADDRESS"),
    "IP over tabs, dots kept": ("ip\t203.\t0.\t113.\t45", "IP_ADDRESS"),
    "IP over lines": ("server:\n203.0.\n113.45", "IP_ADDRESS"),
    "IP over HTML cells": ("<tr><td>host</td><td>203</td><td>0</td><td>113</td><td>45</td></tr>", "IP_ADDRESS"),
    # digits as words or look-alike letters
    "card in words": ("card " + words(CARD), "CREDIT_CARD"),
    "phone in words": ("call " + words("4155552671"), "PHONE_NUMBER"),
    "phone in words and digits": ("call four one five 555 2671", "PHONE_NUMBER"),
    "SSN in words with dashes": ("ssn five three six - two two - eight one four seven", "US_SSN"),
    "card with l for 1": ("card 4lll llll llll llll", "CREDIT_CARD"),
    "SSN with l for 1": ("SSN 536-22-8l47", "US_SSN"),
    "IP with O for 0": ("ip 2O3.O.ll3.45", "IP_ADDRESS"),
    "phone with l for 1": ("call +1 4l5 555 267l", "PHONE_NUMBER"),
}


@pytest.mark.parametrize("case", list(SHAPES))
def test_round_8_shapes_are_found(det, case):
    text, entity = SHAPES[case]
    assert entity in {e for e, _ in found(det, text)}, found(det, text)


NOT_VALUES = {
    "regex escapes": r"pattern \d{3}-\d{2}-\d{4} or \b\w+\b and \1 \2 \s*",
    "Windows paths": r"C:\Users\bob\2024\reports\41 and \\server\share\100",
    "LaTeX": r"$\frac{1}{2} \cdot \alpha_1 + \beta_2$ and \section{Intro}",
    "a numeric table": "| id | phone_calls | n |\n|---|---|---|\n| 4155 | 552 | 671 |",
    "counts in prose": "one two three four five six seven, and then eight nine ten",
    "a numbered list in words": "Step one: two eggs, three cups, four spoons, five minutes, six people.",
    "look-alike words": "lol I will call Ollie at 10 or 11, OK? lol lol 2024",
    "version tables after 'server'": "server\tversion\n nginx\t1.24.0\n redis\t7.2.4",
    "upper-case words": "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG AGAIN",
    "Python code": "def f(self, x):\n    return self._cache[x].get('k', None) or {}  # noqa: E501",
    "a URL": "see https://docs.python.org/3/library/base64.html#base64.a85encode for more",
    "a hash": "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
}


@pytest.mark.parametrize("case", list(NOT_VALUES))
def test_round_8_views_invent_no_value(det, case):
    text = NOT_VALUES[case]
    assert [f for f in found(det, text) if f[0] not in {"SECRET", "DATE_TIME", "URL", "PERSON"}] == []


@pytest.mark.parametrize("text", [
    "four " * 50_000,                                  # digit words, one long run
    "4l" * 50_000,                                     # look-alike anchors everywhere
    "phone\t" + "1\t" * 50_000,                        # a cue and a long layout run
    "ip | " * 30_000,                                  # cue words everywhere
    "!" * 200_000,                                     # one long Ascii85-alphabet token
    ("a!b#" * 5 + " ") * 20_000,                       # many short 85 tokens
    "\\4" * 100_000,                                   # CSS-escape starts everywhere
    "<~ \n ~> <~~> <~" + " " * 20 + "~>",                # empty Ascii85 frames
])
def test_round_8_views_return_on_hostile_text(det, text):
    """Each view is searched in windows around anchors (merged) or once per token: the scan returns (a quadratic
    one did not, for 200,000 characters, in earlier rounds). No timing threshold: a hang fails the suite."""
    assert isinstance(det.scan(text), list)


# ---------------------------------------------------------------- over HTTP


# text sent, what must not reach the remote (as written, and the digits)
LEAKY = {
    "%u escapes": ("is jane.doe%u0040example.com on the list?", ["%u0040example", "jane.doe%u0040"]),
    "CSS escape": ("mail jane.doe\\40 example.com please", ["jane.doe\\40 example"]),
    "base32": (f"what is {b32(EMAIL)}?", [b32(EMAIL).rstrip("=")[:16]]),
    "Ascii85": (f"decode {a85(EMAIL)} for me", [a85(EMAIL)[:12]]),
    "phone over cells": ("from the CRM:\n| phone | 415 | 555 | 2671 |", ["2671"]),
    "IP over tabs": ("host\t203\t0\t113\t45", ["113\t45"]),
    "card in words": ("card " + words(CARD) + " expires soon", ["one one one one one one one one one one one"]),
    "card with l for 1": ("card 4lll llll llll llll", ["4lll"]),
}


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
@pytest.mark.parametrize("case", list(LEAKY))
def test_round_8_shapes_do_not_leave(remote, case):
    g, up = remote
    text, parts = LEAKY[case]
    ask_remote(g, up, text)
    assert_none_sent(up, parts)


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_fields_and_stream_on_messages(remote):
    """A system prompt with a spelled card, a tool_use input with a `%u` address, a tool result with a phone over
    cells, a document block with base32; streamed."""
    g, up = remote
    with ant(g).messages.stream(
            model="fb", max_tokens=50, system="Customer card: " + words(CARD),
            tools=[{"name": "crm", "input_schema": {"type": "object"}}],
            messages=[{"role": "user", "content": [
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "decode " + b32(EMAIL)}},
                {"type": "text", "text": "who is this?"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "crm",
                                                   "input": {"q": "jane.doe%u0040example.com"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                              "content": "| phone | 415 | 555 | 2671 |"}]}]) as s:
        assert s.get_final_text() is not None
    _no_round_8_values(up)


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_fields_and_stream_on_chat(remote):
    """The same in Chat Completions: system, tool-call arguments, a tool message, streamed."""
    g, up = remote
    stream = oai(g).chat.completions.create(model="fb", stream=True, messages=[
        {"role": "system", "content": "Customer card: " + words(CARD)},
        {"role": "user", "content": "decode " + b32(EMAIL)},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "crm", "arguments": json.dumps({"q": "jane.doe%u0040example.com"})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "| phone | 415 | 555 | 2671 |"}])
    assert list(stream)
    _no_round_8_values(up)


def _no_round_8_values(up) -> None:
    assert_none_sent(up, ("one one one one one one one one", b32(EMAIL)[:16], "%u0040", "2671"))


@pytest.mark.parametrize("texts", [
    ["card four one one one one one one one", " one one one one one one one one"],
    ["card 4lll llll", " llll llll"],
])
def test_a_spelled_or_look_alike_number_cut_between_two_messages_is_found(det, texts):
    """The junction scan ran only where the word at the cut held a digit or `@`: a number in digit words or in
    look-alike letters has none there, and each half alone is no card."""
    from tierwise.privacy.split_values import split_findings

    got = split_findings(texts, det.scan, det.scan)
    assert {f.entity for fs in got.values() for f in fs} == {"CREDIT_CARD"}, got


def test_a_backslash_before_one_hex_digit_stays_as_written():
    """`\\d`, `\\f`, `\\1` (regexes, LaTeX, back-references) are no CSS escape of a letter or digit: a first version
    of the CSS escape decoded them to `d`, `f`, `1` (found by the plain-text check on QQP and the standard library)."""
    from tierwise.privacy.textnorm import normalise

    text = r"\d{3}-\d{4} \frac{1}{2} \1\2\3 \c \e"
    assert normalise(text)[0] == text
