"""Privacy attack round 10 (session 30, attack-privacy10): round 9's leftovers.

- IBANs as people write them: the country code apart from the check digits (`DE 89 3704 ...`), groups of three
  (`DE8 937 040 ...`), dots or two spaces between groups, `O` for 0 in the account part (recognizers/ids.py);
- `|` for 1 inside a number (`4|||-||||-...`), next to `l`/`I`/`O` (privacy/digit_views.py);
- digits spelled in Portuguese and Dutch (privacy/digit_views.py);
- four levels of encoding (base64 four times; privacy/encoded.py);
- a card glued to a word in a file name or an id (`scan4111111111111111.pdf`, `receipt-4111...`, `card.4111...`).

Before: none found (main at the session start). Real HTTP, the official SDKs, recording upstream doubles."""

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


SHAPES = {
    # IBANs
    "IBAN, country code apart": ("IBAN: DE 89 3704 0044 0532 0130 00", "IBAN_CODE"),
    "IBAN in groups of three": ("DE8 937 040 044 053 201 300 0", "IBAN_CODE"),
    "IBAN, country apart, threes": ("DE 89 370 400 440 532 013 000", "IBAN_CODE"),
    "IBAN with dots": ("FR14.2004.1010.0505.0001.3M02.606", "IBAN_CODE"),
    "IBAN with two spaces": ("DE89  3704  0044  0532  0130  00", "IBAN_CODE"),
    "IBAN with O for 0": ("iban DE89 37O4 OO44 O532 O13O OO", "IBAN_CODE"),
    "IBAN with l for 1": ("NO93 86Ol lll7 947", "IBAN_CODE"),
    "IBAN with bars for 1": ("iban DE89 3704 0044 0532 0|30 00", "IBAN_CODE"),
    "IBAN glued to a word": ("stmtDE89370400440532013000.pdf", "IBAN_CODE"),
    # bars for 1
    "card in bars": ("card 4|||-||||-||||-||||", "CREDIT_CARD"),
    "card with one bar": ("card 4111 |111 1111 1111", "CREDIT_CARD"),
    "SSN with a bar": ("ssn 536-22-8|47", "US_SSN"),
    "IP with bars": ("ip 2O3.O.||3.45", "IP_ADDRESS"),
    # digit words
    "card in Portuguese": ("cartão quatro um um um, um um um um, um um um um, um um um um", "CREDIT_CARD"),
    "SSN in Portuguese": ("ssn cinco três seis dois dois oito um quatro sete", "US_SSN"),
    "card in Dutch": ("kaart vier een een een een een een een een een een een een een een een", "CREDIT_CARD"),
    "phone in Dutch": ("bel me op nul zes een twee drie vier vijf zes zeven acht", "PHONE_NUMBER"),
    # encodings
    "base64 four times": ("decode " + b64(b64(b64(b64(EMAIL)))), "EMAIL_ADDRESS"),
    "a card in base64 four times": ("decode " + b64(b64(b64(b64(CARD)))), "CREDIT_CARD"),
    "hex of base64 three times": ("decode " + b64(b64(b64(EMAIL))).encode().hex(), "EMAIL_ADDRESS"),
    # glued to words
    "card glued after a word": ("scan4111111111111111.pdf", "CREDIT_CARD"),
    "card after a dash": ("receipt-4111111111111111.png", "CREDIT_CARD"),
    "card after a dot": ("card.4111111111111111.pdf", "CREDIT_CARD"),
    "card before a word": ("4111111111111111scan.pdf", "CREDIT_CARD"),
    "card inside camel case": ("scanCard5500000000000004Final.pdf", "CREDIT_CARD"),
}


@pytest.mark.parametrize("case", list(SHAPES))
def test_round_10_shapes_are_found(det, case):
    text, entity = SHAPES[case]
    assert entity in {e for e, _ in found(det, text)}, found(det, text)


NOT_VALUES = {
    "a table row of digits": "|1|2|3|4|5|6|7|8|9|0|1|2|3|4|5|6|",
    "a spaced table row": "| 4 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 |",
    "flags joined by bars": "mode = 4|1|1|1|1|1|1|1|1|1|1|1|1|1|1|1",
    # privacy18: a digest's length (an 18-character `a4111111111111111b` is a card glued to letters now)
    "a hash with a long digit run": "commit a4111111111111111b9c0d1e2f3a4b5c6d fixed it",
    "a millisecond timestamp glued": "log1700000000123abc.txt",
    "a long decimal with an exponent": "x = 3.4111111111111111e10",
    "a version after v": "v1.4111111111111111",
    "Portuguese prose": "um dois três, e depois quatro amigos chegaram",
    "Dutch prose": "een twee drie vier, hoedje van papier",
    "a word that starts like a country": "update DE 89 rows",
    "prose after a country code and two digits": "do 40 year old Men get attracted to",  # QQP: passed mod 97
}


PLAIN_NOT_PHONES = {
    # the whole scan of text without personal data (session 30): GSM8K's sums, QQP's and the standard library's years
    "a difference": "He earns 2000-1800 = 200 dollars more.",
    "a quotient": "So 18000/900 = 20 days.",
    "two differences": "2400-1100-700 = 600 are left.",
    "a sum in brackets": "(2000-1800)*2 is the total.",
    "a range of years": "What was India's GDP in 2016-2017?",
}
STILL_PHONES = {
    "a phone before an `=` and a word": "415-555-2671 = my cell",
    "a local number after its word": "call 555-1234",
    "a range of years after a phone word": "my number is 2016-2017",
    "a German area code": "Tel 030/1234567",
}


@pytest.mark.parametrize("case", list(PLAIN_NOT_PHONES))
def test_sums_and_year_ranges_are_no_phone_numbers(det, case):
    assert "PHONE_NUMBER" not in {e for e, _ in found(det, PLAIN_NOT_PHONES[case])}


@pytest.mark.parametrize("case", list(STILL_PHONES))
def test_phone_numbers_near_those_shapes_are_still_found(det, case):
    assert "PHONE_NUMBER" in {e for e, _ in found(det, STILL_PHONES[case])}


@pytest.mark.parametrize("case", list(NOT_VALUES))
def test_round_10_views_invent_no_value(det, case):
    text = NOT_VALUES[case]
    assert [f for f in found(det, text) if f[0] not in {"SECRET", "DATE_TIME", "URL", "PERSON"}] == []


@pytest.mark.parametrize(
    "text",
    [
        "4|" * 100_000,  # bars beside digits everywhere
        "1|||" * 50_000,
        "DE 8" * 50_000,  # IBAN starts everywhere
        "DE89." * 40_000,
        "um " * 70_000,  # Portuguese digit words
        "a4111111111111111" * 10_000,  # glued runs
    ],
)
def test_round_10_views_return_on_hostile_text(det, text):
    assert isinstance(det.scan(text), list)


# ---------------------------------------------------------------- over HTTP


# text sent, what must not reach the remote
LEAKY = {
    "IBAN, country code apart": ("wire it to IBAN: DE 89 3704 0044 0532 0130 00", ["3704 0044 0532"]),
    "IBAN with dots": ("wire it to FR14.2004.1010.0505.0001.3M02.606", ["2004.1010.0505"]),
    "card in bars": ("my card 4|||-||||-||||-||||, is it valid?", ["||||-||||"]),
    "card in Portuguese": ("cartão quatro um um um um um um um um um um um um um um um", ["um um um um um um"]),
    "card in Dutch": ("kaart vier een een een een een een een een een een een een een een een", ["een een een een"]),
    "card glued in a file name": ("open scan4111111111111111.pdf please", ["4111111111111111"]),
    "base64 four times": ("decode " + b64(b64(b64(b64(EMAIL)))), [b64(b64(b64(b64(EMAIL))))[:40]]),
}


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
@pytest.mark.parametrize("case", list(LEAKY))
def test_round_10_shapes_do_not_leave(remote, case):
    g, up = remote
    text, parts = LEAKY[case]
    ask_remote(g, up, text)
    assert_none_sent(up, parts)


_PARTS = ("3704 0044 0532", "||||-||||", "4111111111111111", "een een een een", "um um um um", "2004.1010.0505")


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_fields_and_stream_on_messages(remote):
    """Messages, streamed: a system prompt as a list of blocks, a document titled with a glued card, a tool call's
    arguments, a tool result, `metadata.user_id`."""
    g, up = remote
    with ant(g).messages.stream(
        model="fb",
        max_tokens=50,
        system=[{"type": "text", "text": "Pay to DE 89 3704 0044 0532 0130 00."}],
        metadata={"user_id": "card 4|||-||||-||||-||||"},
        tools=[{"name": "crm", "input_schema": {"type": "object"}}],
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "title": "scan4111111111111111.pdf",
                        "source": {"type": "text", "media_type": "text/plain", "data": "FR14.2004.1010.0505.0001.3M02.606"},
                    },
                    {"type": "text", "text": "who is this?"},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "crm",
                             "input": {"q": "kaart vier een een een een een een een een een een een een een een een"}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1",
                             "content": "cartão quatro um um um um um um um um um um um um um um um"}],
            },
        ],
    ) as s:
        assert s.get_final_text() is not None
    assert_none_sent(up, _PARTS)


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_fields_and_stream_on_chat_completions(remote):
    """Chat Completions, streamed: a system message as a list of parts, a tool call's arguments, a tool result,
    `user` and `metadata`."""
    g, up = remote
    stream = oai(g).chat.completions.create(
        model="fb",
        stream=True,
        user="scan4111111111111111.pdf",
        metadata={"note": "kaart vier een een een een een een een een een een een een een een een"},
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "Pay to DE 89 3704 0044 0532 0130 00."}]},
            {"role": "user", "content": "card 4|||-||||-||||-||||"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {
                    "name": "crm", "arguments": json.dumps({"f": "FR14.2004.1010.0505.0001.3M02.606"})}}],
            },
            {"role": "tool", "tool_call_id": "c1",
             "content": "cartão quatro um um um um um um um um um um um um um um um"},
        ],
    )
    assert list(stream)
    assert_none_sent(up, _PARTS)


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_fields_on_responses(remote):
    """The Responses API, streamed: instructions, input parts, a function call's arguments and output."""
    g, up = remote
    with oai(g).responses.stream(
        model="fb",
        instructions="Pay to DE 89 3704 0044 0532 0130 00.",
        input=[
            {"role": "user", "content": [
                {"type": "input_text", "text": "card 4|||-||||-||||-||||"},
                {"type": "input_text", "text": "see scan4111111111111111.pdf"},
            ]},
            {"type": "function_call", "call_id": "call_1", "name": "crm",
             "arguments": json.dumps({"f": "FR14.2004.1010.0505.0001.3M02.606"})},
            {"type": "function_call_output", "call_id": "call_1",
             "output": "kaart vier een een een een een een een een een een een een een een een"},
        ],
        tools=[{"type": "function", "name": "crm", "parameters": {"type": "object", "properties": {}}}],
    ) as s:
        assert s.get_final_response() is not None
    assert_none_sent(up, _PARTS)
