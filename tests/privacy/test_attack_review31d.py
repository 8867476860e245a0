"""Attack review of privacy round 11 (session 31, review31d).

- Round 11 read any number right after a currency sign as an amount (`$350 000 x 5`): a phone number written after
  one (`$415-555-2671`, `€(415) 555-2671`, `$+1 415 555 2671`) was no longer found. Only a number shaped like an
  amount is one now: a `+`, a bracket, a dash between digits or a last group of four after a separator is a phone's.

Real HTTP, the official SDKs, recording upstream doubles."""

from __future__ import annotations

import pytest

from tests.privacy.support import ask_remote, assert_none_sent, found

PHONES_AFTER_A_CURRENCY_SIGN = {
    "dashed": "ok $415-555-2671 thanks",
    "in brackets": "Jane €(415) 555-2671",
    "international": "reach $+1 415 555 2671",
    "international, compact": "reach £+14155552671 today",
    "dotted": "Jane Doe $415.555.2671",
    "spaced": "Jane Doe $415 555 2671",
}


@pytest.mark.parametrize("case", list(PHONES_AFTER_A_CURRENCY_SIGN))
def test_a_phone_after_a_currency_sign_is_found(det, case):
    text = PHONES_AFTER_A_CURRENCY_SIGN[case]
    assert "PHONE_NUMBER" in {e for e, _ in found(det, text)}, found(det, text)


AMOUNTS = {
    "grouped by three with an extension-like x": "The brokerage fee is $350 000 x 5/100 = $17500",
    "grouped by commas": "a house for $1,250,000 and a car",
    "grouped by dots": "kostet €1.250.000 insgesamt",
    "a plain amount": "she paid $4155552 for it",
    "a round range": "budget $8000-10000 per month",
}


@pytest.mark.parametrize("case", list(AMOUNTS))
def test_amounts_after_a_currency_sign_stay_no_phones(det, case):
    assert [f for f in found(det, AMOUNTS[case]) if f[0] == "PHONE_NUMBER"] == []


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
def test_a_phone_after_a_currency_sign_does_not_leave(remote):
    g, up = remote
    ask_remote(g, up, "Jane Doe, $415-555-2671, 12 Main St")
    assert_none_sent(up, ["415-555-2671", "5552671"])
