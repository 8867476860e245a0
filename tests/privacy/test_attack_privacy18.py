"""Privacy round 18 (session 38): values smuggled past the detector. Real HTTP, the official SDKs, recording upstream
doubles, `pii: redact` on a fallback route remote -> local (the `remote` fixture).

1. A dash or underscore between a PDF date and the value after it (`D:20261207140009-46701234567`, `...-536-22-8147`,
   `...-2127365000`): review37e reads the text again with the date's digits blanked to letters, and `x-46701234567`
   is no phone or SSN for their recognizers: nothing was found.
2. A compact card glued to letters on both sides: hex letters (`A4111111111111111B`, `ab4111111111111111cd`) were
   taken for a hash at any length (review37e's rule), letters of another script (`é4111111111111111é`, `ж...`, `ア...`)
   were refused by the number rules as word characters and not taken by the glued rule (ASCII letters only).
"""

from __future__ import annotations

import pytest

from tests.privacy.support import ask_remote_not_leaking

# ---------------------------------------------------------------- 1. a value glued after a PDF date by a dash

GLUED_TO_A_DATE = {
    "D:20261207140009-46701234567": "46701234567",
    "D:20261207140009Z-46701234567": "46701234567",
    "D:20261207140009-2127365000": "2127365000",
    "D:20261207140009-536-22-8147": "536-22-8147",
    "D:20261207140009_46701234567": "46701234567",
    "(D:20261207140009-(212)736-5000)": "(212)736-5000",
}


@pytest.mark.parametrize("text", list(GLUED_TO_A_DATE))
def test_a_value_glued_after_a_pdf_date_by_a_dash_is_found(det, text):
    value = GLUED_TO_A_DATE[text]
    got = [text[f.start:f.end] for f in det.scan(text)]
    assert any(value in g for g in got), got


DATED_HTTP = {"Created D:20261207140009-46701234567 by the scanner": "46701234567",
              "/CreationDate (D:20261207140009-536-22-8147)": "536-22-8147"}


@pytest.mark.parametrize("text", list(DATED_HTTP))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_value_glued_after_a_pdf_date_does_not_reach_the_remote_model(remote, text):
    ask_remote_not_leaking(*remote, text, DATED_HTTP[text])


@pytest.mark.parametrize("stamp", ["D:20261207140009-05'00'", "D:20261207140009Z", "D:20261207140009-"])
def test_a_pdf_date_with_a_dash_is_still_no_value(det, stamp):
    assert [(f.entity, stamp[f.start:f.end]) for f in det.scan(f"/ModDate ({stamp}) /Producer (x)")
            if f.entity not in ("DATE_TIME", "DATE_OF_BIRTH")] == []


# ---------------------------------------------------------------- 2. a compact card glued to letters on both sides

BOTH_SIDES = ["A4111111111111111B", "ab4111111111111111cd", "Card: ABC4111111111111111DEF ok", "é4111111111111111é",
              "ж4111111111111111ж", "ア4111111111111111ア", "ref é4111111111111111", "4111111111111111é ok"]


@pytest.mark.parametrize("text", BOTH_SIDES)
def test_a_compact_card_glued_to_letters_on_both_sides_is_found(det, text):
    assert "CREDIT_CARD" in {f.entity for f in det.scan(text)}, text


@pytest.mark.parametrize("text", ["Paid with A4111111111111111B yesterday", "Карта ж4111111111111111ж спасибо"])
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_compact_card_glued_to_letters_on_both_sides_does_not_reach_the_remote_model(remote, text):
    ask_remote_not_leaking(*remote, text, "4111111111111111")


@pytest.mark.parametrize("text", ["commit a4111111111111111b9c0d1e2f3a4b5c6d fixed it",
                                  "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                                  "été 2026, 14 jours", "build 20261207 ok"])
def test_a_digest_or_prose_with_digits_is_still_no_card(det, text):
    assert "CREDIT_CARD" not in {f.entity for f in det.scan(text)}, text
