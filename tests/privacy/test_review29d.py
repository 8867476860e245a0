"""Review of privacy round 9 (session 29, review29d): bypasses one step further, false positives, cost.

- a quoted-printable or UTF-7 run holding one character outside ` @.+-_:`, letters and digits (`!`, a line break,
  `=`) was left unread whole, the address in it too; a QP run of UTF-8 (`Ren=C3=A9=40...`) as well;
- `IMG_20230515_123456789.jpg`, `log_1700000000_123456.txt`: a date and a time or a timestamp and a counter, joined
  across the `_` as one card, passed Luhn (one time in ten);
- `co-founder at stripe.com`, `ASP.NET at microsoft.com`: prose read as an address; `jane.doe  at  example.com`
  (two spaces, a tab, a line break) not read; quoted-printable in lower-case hex not read;
- the digit words are looked for only when the text holds them (the same anchors, ~330 -> ~150 µs per 8,000
  characters).
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.privacy.support import ask_remote, found
from tierwise.privacy import digit_views


def qp(s: str) -> str:
    return "".join(f"={b:02X}" for b in s.encode())


def utf7(s: str) -> str:
    return "+" + base64.b64encode(s.encode("utf-16-be")).decode().rstrip("=") + "-"


EMAIL = "jane.doe@example.com"

HIDDEN = {
    "QP run with a `!` first": ("mail " + qp("!" + EMAIL), "EMAIL_ADDRESS"),
    "QP run with a line break": ("mail " + qp(EMAIL + "\n"), "EMAIL_ADDRESS"),
    "QP run of `=` before a lone `=40`": ("x jane=3D=3D=40example.com", "EMAIL_ADDRESS"),
    "QP run of UTF-8": ("Ren=C3=A9=40example.com", "EMAIL_ADDRESS"),
    "QP card with a `;` after it": ("card " + qp("4111 1111 1111 1111;"), "CREDIT_CARD"),
    "UTF-7 run with a `!` first": ("write to " + utf7("!" + EMAIL), "EMAIL_ADDRESS"),
    "UTF-7 run with a comma after": ("to " + utf7(EMAIL + ", thanks"), "EMAIL_ADDRESS"),
    "QP run in lower-case hex": ("mail " + qp(EMAIL).lower(), "EMAIL_ADDRESS"),
    "bare at between two spaces": ("jane.doe  at  example.com", "EMAIL_ADDRESS"),
    "bare at between tabs": ("jane.doe\tat\texample.com", "EMAIL_ADDRESS"),
    "bare at before a line break": ("write to jane.doe at\nexample.com", "EMAIL_ADDRESS"),
    "an address in capitals": ("JANE.DOE AT EXAMPLE.COM", "EMAIL_ADDRESS"),
    "QP run of a percent escape": ("mail " + qp("jane.doe%40example.com"), "EMAIL_ADDRESS"),
    "UTF-7 run of an HTML reference": ("mail " + utf7("jane.doe&#64;example.com"), "EMAIL_ADDRESS"),
    "IP with a spaced dot among dot words": ("host 203 dot 0 dot 113 . 45", "IP_ADDRESS"),
    "IP with (dot) and dot words": ("host 203(dot)0 dot 113 dot 45", "IP_ADDRESS"),
}


@pytest.mark.parametrize("case", list(HIDDEN))
def test_one_step_further_is_read(det, case):
    text, entity = HIDDEN[case]
    assert entity in {e for e, _ in found(det, text)}, found(det, text)


NOT_VALUES = {
    "camera file name": "IMG_20230515_123456789.jpg",
    "log file name": "log_1700000000_123456.txt",
    "hyphenated words at a site": "She is a co-founder at stripe.com; free sign-up at github.com",
    "more hyphenated words": "our e-commerce at amazon.com, a follow-up at example.com, the check-in at booking.com",
    "a name in capitals at a site": "We run ASP.NET at microsoft.com and track COVID19 at who.int",
    "a list with mixed spaced dots": "steps 1 . 2 . 3 dot 4",
    "decimals around a dot product": "1.5 dot 2.5 and 0.5 dot 1.5",
    "UTF-7-looking base64 in a data URL": "data:image/png;base64,iVBORw0KGgo+AAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ+AGEAYQBhAGEAYQ",
}


@pytest.mark.parametrize("case", list(NOT_VALUES))
def test_ordinary_text_is_no_value(det, case):
    got = [
        f
        for f in found(det, NOT_VALUES[case])
        if f[0] in {"CREDIT_CARD", "EMAIL_ADDRESS", "US_SSN", "IP_ADDRESS"}
    ]
    assert got == []


@pytest.mark.parametrize(
    "text",
    [
        "photo_4111_1111_1111_1111.png",
        "receipt_4111111111111111.png",
        "tax_536_22_8147.pdf",
        "mail jean-luc at example.com",
        "jean.luc at example.com",
        "jdoe99 at example.com",
    ],
)
def test_round_9_findings_kept(det, text):
    assert found(det, text)


def _anchors_by_find(text: str) -> list[tuple[int, int]]:
    """Round 9's search: every digit word, `str.find` over the whole text."""
    low = text.lower()
    out = []
    for w in digit_views._DIGIT_OF:
        i = low.find(w)
        while i >= 0:
            j = i + len(w)
            if (i == 0 or not low[i - 1].isalpha()) and (j == len(low) or not low[j].isalpha()):
                out.append((i, j))
            i = low.find(w, j)
    return sorted(out)


@pytest.mark.parametrize(
    "text",
    [
        "quatre un un un, fünf—drei·zwei",
        "UN²DEUX TRÖIS tre\u00a0sei_due 4uno5 åtta ÅTTA tva två",
        "",
        "plain prose with one and two",
        "x\ud800un deux",
        "ǅun Ⅻtrois ßsex sexß İone",
    ],
)
def test_digit_word_anchors_are_round_9s(text):
    assert [(m.a, m.b) for m in digit_views._word_anchors(text)] == _anchors_by_find(text)


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
def test_runs_with_one_other_character_do_not_leave(remote):
    g, up = remote
    ask_remote(g, up, f"mail {qp('!' + EMAIL)} or {utf7('!' + EMAIL)} please")
    assert up.requests
    for rec in up.requests:
        sent = json.dumps(json.loads(rec.raw))
        assert "=6A=61=6E=65" not in sent and "AGoAYQBu" not in sent, sent
