"""Privacy attack round 5 (session 25, attack-privacy5): round 4's known residuals, and the false positives a
user of coding tools meets.

- quoted-printable `=2E` between digits (`192=2E168=2E1=2E20`) and its soft line break (`=` + newline inside a
  value); escapes escaped again (`%2540`, `\\\\u0040`, `&amp;#64;`): `privacy/textnorm.py`;
- inline markup inside a value (`j<b></b>ane@ex<span>ample</span>.com`, `jane.doe@**example**.com`,
  `4111 **1111** 1111 1111`): `privacy/markup.py`;
- spaced single digits that are a grid's row (a sudoku, a numpy matrix, a row of bits) read as phone numbers and
  cards: `privacy/spaced.py`.

Real HTTP, the official SDKs, recording upstream doubles (`pii: redact`, `secrets: block`, a fallback route
remote -> local), as in rounds 2-4."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.privacy.support import ask_remote, found
from tests.privacy.test_attack_round2 import remote  # noqa: F401  (the fixture)

# ---------------------------------------------------------------- the detector

QP_AND_TWICE = {
    "IP with =2E": ("server 192=2E168=2E1=2E20 is down", "IP_ADDRESS", "192=2E168=2E1=2E20"),
    "phone with =2E": ("call 555=2E123=2E4567 today", "PHONE_NUMBER", "555=2E123=2E4567"),
    "address over a soft break": ("To: jane.doe@exam=\nple.com\nSubject: x", "EMAIL_ADDRESS", "jane.doe@exam=\nple.com"),
    "card over a soft break": ("card 4111 1111 11=\n11 1111 ok", "CREDIT_CARD", "4111 1111 11=\n11 1111"),
    "%2540": ("mail jane.doe%2540example.com now", "EMAIL_ADDRESS", "jane.doe%2540example.com"),
    "\\\\u0040": ("mail jane.doe\\\\u0040example.com now", "EMAIL_ADDRESS", "jane.doe\\\\u0040example.com"),
    "\\\\x40": ("mail jane.doe\\\\x40example.com now", "EMAIL_ADDRESS", "jane.doe\\\\x40example.com"),
    "&amp;#64;": ("mail jane.doe&amp;#64;example.com now", "EMAIL_ADDRESS", "jane.doe&amp;#64;example.com"),
    "&amp;commat;": ("mail jane.doe&amp;commat;example.com now", "EMAIL_ADDRESS", "jane.doe&amp;commat;example.com"),
    "regex in a Python string": ('rx = "jane\\\\.doe@example\\\\.com"', "EMAIL_ADDRESS", "jane\\\\.doe@example\\\\.com"),
    "SSN with %252D": ("ssn 536%252D22%252D8147 ok", "US_SSN", "536%252D22%252D8147"),
    "JSON in a string in JSON": (json.dumps({"result": json.dumps({"mail": "jane.doe\\u0040example.com"})}),
                                 "EMAIL_ADDRESS", "jane.doe\\\\\\\\u0040example.com"),
}


@pytest.mark.parametrize("case", list(QP_AND_TWICE))
def test_quoted_printable_and_escapes_escaped_again(det, case):
    text, entity, value = QP_AND_TWICE[case]
    assert (entity, value) in found(det, text)


DEFANGED = {
    "[@] and [.]": ("mail jane.doe[@]example[.]com", "EMAIL_ADDRESS", "jane.doe[@]example[.]com"),
    "an IP defanged": ("beacon to 192[.]168[.]1[.]20 seen", "IP_ADDRESS", "192[.]168[.]1[.]20"),
    "ideographic full stop": ("mail jane.doe@example\u3002com ok", "EMAIL_ADDRESS", "jane.doe@example\u3002com"),
    "halfwidth ideographic full stop": ("mail jane.doe@example\uff61com ok", "EMAIL_ADDRESS", "jane.doe@example\uff61com"),
    # every character full-width: NFKC folds `．` to `.` (a first version took it for a look-alike and lost it)
    "full-width address": ("mail \uff4a\uff41\uff4e\uff45\uff0e\uff44\uff4f\uff45\uff20\uff45\uff58\uff41\uff4d"
                           "\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d ok", "EMAIL_ADDRESS",
                           "\uff4a\uff41\uff4e\uff45\uff0e\uff44\uff4f\uff45\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c"
                           "\uff45\uff0e\uff43\uff4f\uff4d"),
}


@pytest.mark.parametrize("case", list(DEFANGED))
def test_defanged_values_and_idna_dots(det, case):
    """Security write-ups defang addresses (`[.]`, `[@]`); IDNA reads `。` and `｡` as a domain's dots."""
    text, entity, value = DEFANGED[case]
    assert (entity, value) in found(det, text)


def test_the_new_escapes_invent_nothing(det):
    """`=2E` only between digits or before a letter (`x=2E5` is a float); a soft break only inside a word; a
    second escape only of the characters values are made of (`\\\\x00`, `&amp;lt;` stay as written)."""
    assert found(det, "x=2E5 and y=40; a =\n b; FOO=\n  bar; s = '\\\\x00\\\\x1f'; &amp;lt;b&amp;gt;") == []
    assert found(det, "100%25 sure, 50%2520 off") == []
    assert found(det, 're.compile(r"v[.]2[.]0 (.) [@]")') == []
    assert found(det, "\u4e2d\u6587\u53e5\u5b50\u3002\u4e0b\u4e00\u53e5\u3002") == []


MARKUP = {
    "empty tags and a span": ("mail j<b></b>ane@ex<span>ample</span>.com today", "EMAIL_ADDRESS",
                              "j<b></b>ane@ex<span>ample</span>.com"),
    "the @ in bold tags": ("mail jane.doe<b>@</b>example.com", "EMAIL_ADDRESS", "jane.doe<b>@</b>example.com"),
    "a tag with attributes": ('mail jane.doe@<span class="x">example</span>.com', "EMAIL_ADDRESS",
                              'jane.doe@<span class="x">example</span>.com'),
    "a comment": ("mail jane<!-- x -->@example.com", "EMAIL_ADDRESS", "jane<!-- x -->@example.com"),
    "markdown bold": ("mail jane.doe@**example**.com", "EMAIL_ADDRESS", "jane.doe@**example**.com"),
    "markdown code span": ("mail jane.doe@`example`.com", "EMAIL_ADDRESS", "jane.doe@`example`.com"),
    "markdown strike": ("mail jane.doe@~~example~~.com", "EMAIL_ADDRESS", "jane.doe@~~example~~.com"),
    "card, a group in bold": ("card 4111 **1111** 1111 1111 ok", "CREDIT_CARD", "4111 **1111** 1111 1111"),
    "card, a group in tags": ("card 4111<b>1111</b>1111 1111 ok", "CREDIT_CARD", "4111<b>1111</b>1111 1111"),
    "SSN, a group in bold": ("ssn 536-**22**-8147 ok", "US_SSN", "536-**22**-8147"),
    "IBAN, a group in italics": ("iban DE89 3704 *0044* 0532 0130 00 ok", "IBAN_CODE", "DE89 3704 *0044* 0532 0130 00"),
    "IP in tags": ("host 203.0.<i>113</i>.45 ok", "IP_ADDRESS", "203.0.<i>113</i>.45"),
}


@pytest.mark.parametrize("case", list(MARKUP))
def test_markup_inside_a_value(det, case):
    text, entity, value = MARKUP[case]
    assert (entity, value) in found(det, text)


@pytest.mark.parametrize("text", [
    "x = 2**32 * 10**9 + 60*60*24*365",
    "she took home 30/100 *120 = <<30/100*120=36>>36 melons; 20000*.05=$<<20000*0.05=1000>>1000",
    "def f(*args, **kwargs): return g(*args, **kwargs)  # 1234567",
    "<b>Total</b>: <i>1,234,567</i> units, `ls -la` and **bold** 555 1234",
    "see `port 8080` and `127.0.0.1:8000`, `v1.2.3`",
    '<a href="https://example.org/x">link</a> <span title="t">12345678</span>',
])
def test_the_markup_view_leaves_arithmetic_and_code_alone(det, text, monkeypatch):
    """The markup view adds no finding to arithmetic (`2**32`, GSM8K's `30/100 *120`), code or plain markup."""
    import tierwise.privacy.detect as detect_mod

    with_view = found(det, text)
    monkeypatch.setattr(detect_mod, "markup_findings", lambda *a: [])
    assert with_view == found(det, text)


def test_a_value_in_an_attribute_is_still_found(det):
    """The markup view is a second reading: what the tags hold is scanned as written."""
    assert ("EMAIL_ADDRESS", "jane.doe@example.com") in found(det, '<span title="jane.doe@example.com">x</span>')


GRIDS = {
    "sudoku": "5 3 0 0 7 0 0 0 0\n6 0 0 1 9 5 0 0 0\n0 9 8 0 0 0 0 6 0\n8 0 0 0 6 0 0 0 3",
    "sudoku with bars": "| 5 3 4 6 7 8 9 1 2 |\n| 6 7 2 1 9 5 3 4 8 |\n| 1 9 8 3 4 2 5 6 7 |",
    "numpy matrix": "array:\n[[1 2 3 4 5 6 7 8 9]\n [4 5 6 7 8 9 1 2 3]\n [7 8 9 1 2 3 4 5 6]]",
    "numpy row": "x = np.arange(10)\nprint(x)  # [0 1 2 3 4 5 6 7 8 9]",
    "bits": "the register holds 0 1 1 0 1 0 0 1 1 0 1 1 0 1 0 1 after the shift",
}


@pytest.mark.parametrize("case", list(GRIDS))
def test_grid_rows_are_not_phone_numbers_or_cards(det, case):
    assert found(det, GRIDS[case]) == []


SPACED_VALUES = {
    "a phone after a cue": ("please call me at 0 4 9 4 9 2 8 2 3 2 tonight", "PHONE_NUMBER", "0 4 9 4 9 2 8 2 3 2"),
    "a card on its own line": ("my card:\n4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1\nthanks", "CREDIT_CARD",
                               "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"),
    "phones in an address block": ("4 1 6 6 0 0 3 9 office\n+ 4 6 ( 0 ) 8 9 2 8 5 7 1 3 8 fax", "PHONE_NUMBER",
                                   "+ 4 6 ( 0 ) 8 9 2 8 5 7 1 3 8"),
}


@pytest.mark.parametrize("case", list(SPACED_VALUES))
def test_spaced_values_outside_grids_are_still_found(det, case):
    text, entity, value = SPACED_VALUES[case]
    assert (entity, value) in found(det, text)


# ---------------------------------------------------------------- over HTTP

def _squeezed(raw: bytes) -> str:
    """Every string of a recorded body, letters and digits only: any form of a value (escaped, marked up,
    soft-broken) still spells it."""
    out: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, dict):
            for k, v in x.items():
                out.append(k)
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(json.loads(raw))
    text = re.sub(r"(?:\\+u00|%(?:25)*|&(?:amp;)*#|=)[0-9A-Fa-f]{2}", "", "\n".join(out))  # escapes of @ . -
    return re.sub(r"<[^<>]*>|[^0-9A-Za-z]", "", text)


VALUES = ("janedoe", "4111111111111111", "5362228147", "19216812")
LEAKY = {
    "%2540": "write to jane.doe%2540example.com please",
    "\\\\u0040": 'the tool said {"to": "jane.doe\\\\u0040example.com"}',
    "&amp;#64;": "mail jane.doe&amp;#64;example&amp;#46;com please",
    "quoted-printable": "To: jane.doe=40exam=\nple=2Ecom\nhost 192=2E168=2E1=2E20",
    "html tags": "mail j<b></b>ane.doe@ex<span>ample</span>.com please",
    "markdown": "mail jane.doe@**example**.com, card 4111 **1111** 1111 1111, ssn 536-**22**-8147",
    "defanged": "mail jane.doe[@]example[.]com, host 192[.]168[.]1[.]20",
}


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
@pytest.mark.parametrize("case", list(LEAKY))
def test_hidden_values_do_not_leave(remote, case):  # noqa: F811
    g, up = remote
    ask_remote(g, up, LEAKY[case])
    assert up.requests
    for rec in up.requests:
        s = _squeezed(rec.raw)
        assert not any(v in s for v in VALUES), rec.raw


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
def test_a_sudoku_reaches_the_remote_model_as_written(remote):  # noqa: F811
    """A user asking about a sudoku got `<PHONE_NUMBER_1>` rows in place of the puzzle (`pii: redact`)."""
    g, up = remote
    grid = GRIDS["sudoku"]
    ask_remote(g, up, f"Solve this sudoku:\n{grid}")
    body = up.requests[-1].raw.decode()
    assert "PHONE_NUMBER" not in body and json.dumps(grid)[1:-1] in body


def test_the_ledger_keeps_no_hidden_value(det):
    """What the ledger stores (prompts, answers, reasons) is cleaned by the same detector: the new forms go too."""
    from tierwise.privacy.text_cleaning import mark_findings

    for text in LEAKY.values():
        cleaned = mark_findings(text, det.scan(text))
        squeezed = re.sub(r"(?:\\+u00|%(?:25)*|&(?:amp;)*#|=)[0-9A-Fa-f]{2}", "", cleaned)
        squeezed = re.sub(r"<[^<>]*>|[^0-9A-Za-z]", "", squeezed)
        assert not any(v in squeezed for v in VALUES), cleaned
