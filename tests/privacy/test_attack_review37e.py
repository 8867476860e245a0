"""review37e: an attacker's review of privacy round 17 (session 37). Real HTTP, the official SDKs, recording upstream
doubles, `pii: redact` on a fallback route remote -> local (the `remote` fixture).

1. A PDF date (`D:20261207140009`) ran into the value after it: `D:20261207140009 212-736-5000`,
   `D:20261207140009-4111111111111111`, `D:20261207140009+46701234567`. The recognizers read one longer number (a card
   in the date's 14 digits, the value after it never tried). Before privacy17 the date was redacted as a card and the
   value after it went out as written; since privacy17 drops findings inside PDF dates, nothing was redacted at all.
"""

from __future__ import annotations

import pytest

from tests.privacy.file_parts import files_sent, send, sent
from tests.privacy.pdfs import make_pdf
from tests.privacy.support import ask_remote, leaked

# ---------------------------------------------------------------- 1. a value right after a PDF date

AFTER_A_DATE = {
    "D:20261207140009 212-736-5000": "212-736-5000",
    "D:20261207140009 (212) 736-5000": "212) 736-5000",
    "D:20261207140009Z 212-736-5000": "212-736-5000",
    "D:20261207140009+46701234567": "46701234567",
    "D:20261207140009-4111111111111111": "4111111111111111",
    "D:20261207140009 4111111111111111": "4111111111111111",
    "D:20261207140009+01'00' 212-736-5000": "212-736-5000",
}


@pytest.mark.parametrize("text", list(AFTER_A_DATE))
def test_a_value_right_after_a_pdf_date_is_found(det, text):
    value = AFTER_A_DATE[text]
    got = [text[f.start:f.end] for f in det.scan(text)]
    assert any(value in g for g in got), got


@pytest.mark.parametrize("text", ["D:20261207144111 1111 1111 1111", "D:4111111111111111", "card 20261207140009 x"])
def test_a_card_glued_into_a_date_like_prefix_is_still_found(det, text):
    assert "CREDIT_CARD" in {f.entity for f in det.scan(text)}, text


@pytest.mark.parametrize("text", ["/CreationDate (D:20261207140009+01'00') /ModDate (D:20261207140009Z)",
                                  "D:20240315093012+01'00' and D:19991231235959Z00'00'"])
def test_pdf_dates_alone_are_still_no_values(det, text):
    assert [f.entity for f in det.scan(text) if f.entity not in ("DATE_TIME", "DATE_OF_BIRTH")] == [], text


@pytest.mark.parametrize("text", list(AFTER_A_DATE))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_value_right_after_a_pdf_date_does_not_reach_the_remote_model(remote, text):
    g, up = remote
    ask_remote(g, up, f"Signed {text} - who is it?")
    assert up.requests and not [r for r in up.requests if leaked(r.raw, [AFTER_A_DATE[text]])], text


@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_pdf_whose_page_prints_a_date_then_a_phone_is_not_sent_as_is(remote, openai_up):
    g, up = remote
    data = make_pdf(["Signed D:20261207140009 212-736-5000 by the holder"])
    send(g, up, openai_up, data, "application/pdf")
    assert up.requests and data not in files_sent(up)
    assert "736-5000" not in sent(up) and "7365000" not in sent(up)
