"""Review of privacy round 10 (session 30, review30f), as an attacker.

- The phone rule for sums (`recognizers/contact._not_a_phone`) took one operator beside a number for arithmetic: a
  list's bullet (`- 415-555-2671`, `* `, `+ `), bold (`**...**`), a name ending in x (`Alex 415-...`), a key
  (`home=415-...`), brackets (`Jane (415-555-2671)`) and two numbers side by side (`415-555-2671 / 415-555-2672`)
  hid real phone numbers with no phone word (a generated set: 443 of 630 found, base 623).
- The IBAN half-digits rule (`recognizers/ids.IbanRecognizer`) dropped valid IBANs whose format has free characters
  (Qatar, Kuwait, Malta, ...) and whose account part is letters mostly.
- `|` for 1 (`privacy/digit_views`) was not read at all when three bars stood apart (`4|11 1|11 11|1 1111`): the
  table-row guard took any such run for cells; now only bars between cells (one group, or a bar at a group's edge).

Real HTTP, the official SDKs, recording upstream doubles for the leak cases."""

from __future__ import annotations

import json

import pytest

from tests.privacy.support import ask_remote, found, pii_only_remote

PHONES = {
    "a dash bullet": "- 415-555-2671",
    "a star bullet": "* 415-555-2671",
    "a plus bullet": "+ 415-555-2671",
    "bold": "**415-555-2671**",
    "a name ending in x": "Alex 415-555-2671",
    "a surname ending in x": "Bob Cox 415-555-2671",
    "in brackets after a name": "John Smith (415-555-2671)",
    "two numbers and a slash": "415-555-2671 / 415-555-2672",
    "two numbers and a dash": "415-555-2671 - 415-555-2672",
    "two numbers and a plus": "212-555-2671 + 212-555-2672",
    "a key and an equals sign": "emergency=415-555-2671",
    "a name and an equals sign": "Jane=415-555-2671",
    "a star after it": "212-555-2671 * preferred",
    "a German number in a list": "- 089/1234567",
}
SUMS = {  # round 10's own false positives stay fixed, and GSM8K's shapes it left
    "a difference": "He earns 2000-1800 = 200 dollars more.",
    "a sum in brackets": "(2000-1800)*2 is the total.",
    "a calculation in GSM8K's marks": "He paid 2400-1100-700=<<2400-1100-700=600>>600 dollars",
    "a difference before marks": "I have 2000-1800 = <<2000-1800=200>>200 calories left",
    "a quotient before marks": "it can go 18000/900=<<18000/900=20>>20 days",
    "a number minus a difference": "150 - 1300-1100 is left",
}


@pytest.mark.parametrize("case", list(PHONES))
def test_phone_numbers_beside_an_operator_are_found(det, case):
    assert "PHONE_NUMBER" in {e for e, _ in found(det, PHONES[case])}, found(det, PHONES[case])


@pytest.mark.parametrize("case", list(SUMS))
def test_sums_are_still_no_phone_numbers(det, case):
    assert "PHONE_NUMBER" not in {e for e, _ in found(det, SUMS[case])}


IBANS = {  # valid by mod 97 and by their countries' formats (4!a21!c, 4!a22!c, 4!a5!n18!c)
    "Qatar, compact": "IBAN QA10QNBAACCTSAVINGSJANEDOE007",
    "Qatar, in fours": "IBAN QA10 QNBA ACCT SAVI NGSJ ANED OE00 7",
    "Malta, lower case": "iban mt24malt01100acctjanedoeprivate",
    "Kuwait, with dashes": "KW82-CBKU-JANE-DOES-AVIN-GS00-0001-00",
}


@pytest.mark.parametrize("case", list(IBANS))
def test_ibans_whose_account_part_is_letters_mostly_are_found(det, case):
    assert "IBAN_CODE" in {e for e, _ in found(det, IBANS[case])}, found(det, IBANS[case])


@pytest.mark.parametrize("text", ["do 40 year old Men get attracted to", "Do 40 YEAR Old men get attracted to"])
def test_prose_is_still_no_iban(det, text):
    assert "IBAN_CODE" not in {e for e, _ in found(det, text)}


BARS = {
    "a card with bars apart": ("card 4|11 1|11 11|1 1111", "CREDIT_CARD"),
    "a card with bars apart, dashes": ("card 4|11-1|11-11|1-1111", "CREDIT_CARD"),
}
TABLES = {
    "a table row": "|1|2|3|4|5|6|7|8|9|0|1|2|3|4|5|6|",
    "a spaced table row": "| 4 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 |",
    "a table of years": "| 2019 | 1234 | 5678 | 9012 |",
    "a tight table of years": "|2019|1234|5678|9012|",
    "a table without outer bars": "2019 | 1234 | 5678",
}


@pytest.mark.parametrize("case", list(BARS))
def test_bars_for_one_apart_are_read(det, case):
    text, entity = BARS[case]
    assert entity in {e for e, _ in found(det, text)}, found(det, text)


@pytest.mark.parametrize("case", list(TABLES))
def test_table_rows_are_still_no_numbers(det, case):
    assert [f for f in found(det, TABLES[case]) if f[0] not in {"DATE_TIME", "SECRET"}] == []


# ---------------------------------------------------------------- over HTTP


@pytest.fixture
def remote(request, gateway, openai_up, anthropic_up):
    return pii_only_remote(request.param, gateway, openai_up, anthropic_up)


LEAKY = {
    "a contact list": ("My contacts:\n- 415-555-2671\n- 212-555-2672\n* Alex 646-555-2673", ["555-267"]),
    "a Qatari IBAN": ("wire it to QA10 QNBA ACCT SAVI NGSJ ANED OE00 7", ["QNBA ACCT", "NGSJ ANED"]),
    "a card with bars apart": ("my card 4|11 1|11 11|1 1111, is it valid?", ["1|11 11|1"]),
}


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
@pytest.mark.parametrize("case", list(LEAKY))
def test_values_do_not_leave(remote, case):
    g, up = remote
    text, parts = LEAKY[case]
    ask_remote(g, up, text)
    assert up.requests
    for rec in up.requests:
        sent = json.dumps(json.loads(rec.raw))
        assert not [p for p in parts if p in sent], sent


@pytest.mark.timeout(120)  # a hang guard, not a timing threshold: quadratic, this took ~6 minutes; linear ~6 s
def test_bars_apart_in_a_megabyte_return(det):
    """`privacy/layout.py` looked for the gaps inside each finding through every gap of the run."""
    text = ("4|11 1|11 11|1 " * 70_000)[: 1 << 20]
    assert isinstance(det.scan(text), list)
