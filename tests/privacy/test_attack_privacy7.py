"""Privacy attack round 7 (session 27, attack-privacy7): a card's or an IBAN's groups separated by layout (tabs,
line breaks, table cells, `<br>`, `<td>`), Markdown emphasis between two digits (`4**1**11 1111 ...`), a value
written reversed behind a right-to-left override (U+202E), which displays it the right way round, and base64
broken by spaces or line breaks at any offset (`amFu ZS5k ...`, a blob wrapped every 10 characters).

Before: none found (a tab-separated card nothing at all; `4111 111**1 1**111 1111` a phone number over `111 1111`,
so redaction left the rest of the card; `5**3**6-22-8147` a phone number over `6-22-8147`). Now `privacy/layout.py`
reads them, for values a checksum or a fixed shape vouches for only (no phone numbers: round 6 measured those);
across tabs, lines and cells a card or an SSN needs its own grouping and a word for it before (random numeric
tables made a "card" in 142 of 300 before that rule).

Real HTTP, the official SDKs, recording upstream doubles, as in rounds 2-6."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.support import ask_remote, found

RLO, PDF = "\u202e", "\u202c"

# text, the entity, the value's characters (letters and digits) the finding must cover
LAID_OUT = {
    "card over tabs": ("card\t4111\t1111\t1111\t1111\tok", "CREDIT_CARD"),
    "card one group a line": ("my card:\n4111\n1111\n1111\n1111\nthanks", "CREDIT_CARD"),
    "card over table cells": ("| card | 4111 | 1111 | 1111 | 1111 |", "CREDIT_CARD"),
    "card over cells, no padding": ("|card|4111|1111|1111|1111|", "CREDIT_CARD"),
    "card over HTML cells": ("<tr><th>Visa</th><td>4111</td><td>1111</td><td>1111</td><td>1111</td></tr>", "CREDIT_CARD"),
    "card over <br>": ("Card:<br>4111<br>1111<br/>1111<br>1111", "CREDIT_CARD"),
    "card with bold between digits": ("pay with 4**1**11 1111 1111 1111 now", "CREDIT_CARD"),
    "card with bold across a group break": ("pay with 4111 111**1 1**111 1111 now", "CREDIT_CARD"),
    "card with italic between digits": ("pay with 4_1_11 1111 1111 1111 now", "CREDIT_CARD"),
    "card over two lines": ("card: 4111 1111\n1111 1111", "CREDIT_CARD"),
    "card over dashes and lines": ("credit card\n4111-1111\n1111-1111", "CREDIT_CARD"),
    "IBAN over tabs": ("IBAN\tDE89\t3704\t0044\t0532\t0130\t00", "IBAN_CODE"),
    "IBAN one group a line": ("IBAN:\nGB29\nNWBK\n6016\n1331\n9268\n19", "IBAN_CODE"),
    "SSN with bold between digits": ("SSN 5**3**6-22-8147", "US_SSN"),
    "SSN one group a line": ("SSN:\n536\n22\n8147", "US_SSN"),
}
DIGITS = {"CREDIT_CARD": "4111111111111111", "IBAN_CODE": "", "US_SSN": "536228147"}


def _compact(s: str) -> str:
    return re.sub(r"[^0-9A-Za-z]|br|td|tr", "", s)


@pytest.mark.parametrize("case", list(LAID_OUT))
def test_values_broken_by_layout_are_found_whole(det, case):
    text, entity = LAID_OUT[case]
    hits = [v for e, v in found(det, text) if e == entity]
    want = DIGITS[entity] or ("DE89370400440532013000" if "DE89" in text else "GB29NWBK60161331926819")
    assert any(_compact(v) == want for v in hits), found(det, text)


@pytest.mark.parametrize("text", [
    f"card {RLO}1111 1111 1111 1114{PDF} ok",       # displays 4111 1111 1111 1111
    f"IBAN: {RLO}00 0310 2350 4400 4073 98ED",      # to the end of the line
    f"{RLO}7418-22-635{PDF}",                        # an SSN
])
def test_a_value_behind_a_right_to_left_override_is_found(det, text):
    assert [e for e, _ in found(det, text) if e in {"CREDIT_CARD", "IBAN_CODE", "US_SSN"}], found(det, text)


# what the layout view may find (checksummed or fixed-shape values; no phone numbers)
_KEEP = {"CREDIT_CARD", "IBAN_CODE", "US_SSN"}

NOT_VALUES = {
    "a column of years": "year\n2019\n2020\n2021\n2022\n2023",
    "a table of years": "| 2019 | 2020 | 2021 | 2022 |\n|---|---|---|---|\n| 1.2 | 3.4 | 5.6 | 7.8 |",
    "TSV of counts": "id\tn\tm\n1041\t1500\t1500\n2232\t1250\t980\n3117\t4410\t2045",
    "arithmetic": "2**32 = 4294967296 and 60*60*24 = 86400, 1500 1500/100",
    "a version column": "0.5\n0.9.6\n1.0\n1.0.1\n2.0",
    "bold numbers in a list": "**4111** **1111** **1111** **1111**",
    "a printed matrix": "[[1 2 3]\n [4 5 6]\n [7 8 9]]",
    "reversed prose": f"{RLO}olleh dlrow, 2024 si ti{PDF}",
    "snake_case with digits": "v_1_2_3 = x_10_20_30_40",
    # 4% of rows of four 4-digit numbers pass Luhn with an issuer's first digit: no card without a card word
    "a table of 4-digit figures": "| region | q1 | q2 | q3 | q4 |\n| north | 4111 | 1111 | 1111 | 1111 |",
    "a column of 4-digit figures": "sales\n4111\n1111\n1111\n1111",
    "a card word, groups across a row's end": "| card | 4111 | 1111 |\n| x | 1111 | 1111 |",
    "a card word, groups of three": "card rows:\n411\t111\t111\t111\t111\t1",
    "a sudoku in blocks": "| 439 | 977 | 562 |\n| 478 | 492 | 646 |\n| 447 | 323 | 611 |",
}


@pytest.mark.parametrize("case", list(NOT_VALUES))
def test_layout_invents_no_value(det, case):
    text = NOT_VALUES[case]
    assert [f for f in found(det, text) if f[0] in _KEEP] == []


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def chop(s: str, width: int, sep: str = " ") -> str:
    return sep.join(s[i:i + width] for i in range(0, len(s), width))


EMAIL = "jane.doe@example.com"
SPLIT_B64 = {
    "every 4, spaces": (f"decode: {chop(b64(EMAIL), 4)} thanks", "EMAIL_ADDRESS"),
    "every 7, spaces": (f"decode: {chop(b64('card 4111 1111 1111 1111'), 7)} thanks", "CREDIT_CARD"),
    "every 10, line breaks": (f"decode:\n{chop(b64('IBAN DE89 3704 0044 0532 0130 00'), 10, chr(10))}\nthanks", "IBAN_CODE"),
    "every 8, indented lines": (f"value:\n  {chop(b64('mail me at ' + EMAIL + ' or call'), 8, chr(10) + '  ')}\nok",
                                "EMAIL_ADDRESS"),
    "one space at an odd offset": (f"x {b64(EMAIL)[:7]} {b64(EMAIL)[7:]} y", "EMAIL_ADDRESS"),
    "a word that looks encoded before it": (f"key2 {b64(EMAIL)[:5]} {b64(EMAIL)[5:]}", "EMAIL_ADDRESS"),
}


@pytest.mark.parametrize("case", list(SPLIT_B64))
def test_base64_broken_by_spaces_or_lines_is_read(det, case):
    text, entity = SPLIT_B64[case]
    assert entity in {e for e, _ in found(det, text)}, found(det, text)


def test_base64_padding_before_a_line_break_is_not_a_soft_break(det):
    """`...MDA=` + newline + `thanks`: the quoted-printable soft break joined the padding's line to the next word,
    the run decoded to nothing, and the IBAN in it was not found (base64 with `==`, or a blank line after, was)."""
    text = f"decode:\n{b64('IBAN DE89 3704 0044 0532 0130 00')}\nthanks"
    assert text.split("\n")[1].endswith("A=")
    assert "IBAN_CODE" in {e for e, _ in found(det, text)}, found(det, text)
    assert ("EMAIL_ADDRESS", "jane.doe@exam=\nple.com") in found(det, "mail jane.doe@exam=\nple.com ok")


SPLIT_NOT_VALUES = {
    "camelCase identifiers": "call getValue2 setValue3 then parseInt4 toString5 and mapKeys6 ok",
    "hashes one per line": "\n".join(hashlib.sha1(str(i).encode()).hexdigest()[:12] for i in range(8)),
    "base64 of text without values, split": chop(b64("Hello world, nothing in particular here at all."), 8),
    "random key split": chop(base64.b64encode(hashlib.sha512(b"k").digest()).decode(), 10, "\n"),
    "ids in prose": "tickets AB12 CD34 EF56 GH78 and PR 12 were closed in v2 r3",
}


@pytest.mark.parametrize("case", list(SPLIT_NOT_VALUES))
def test_split_base64_invents_no_value(det, case):
    text = SPLIT_NOT_VALUES[case]
    assert [f for f in found(det, text) if f[0] not in {"SECRET", "DATE_TIME"}] == []


# ---------------------------------------------------------------- over HTTP

# the card's first eight digits: redacting only a part of it (base redacted `111 1111` as a phone number out of
# `4111 111**1 1**111 1111`) still sends these
CARD_DIGITS = "41111111"


def _digits_sent(raw: bytes) -> str:
    """Every string of the body, as its digits only, each string read forwards and backwards, and its base64
    decoded with its whitespace removed."""
    out: list[str] = []

    def walk(x: object) -> None:
        if isinstance(x, str):
            squeezed = re.sub(r"\s", "", x)
            for m in re.finditer(r"[A-Za-z0-9+/]{12,}", squeezed):
                for off in range(4):
                    t = m.group()[off:]
                    try:
                        x += "\n" + base64.b64decode(t[: len(t) - len(t) % 4]).decode("latin-1")
                    except ValueError:
                        pass
            d = re.sub(r"\D", "", x)
            out.extend((d, d[::-1]))
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(json.loads(raw))
    return "\n".join(out)


LEAKY = {
    "a card over table cells": "My card, from the form:\n| 4111 | 1111 | 1111 | 1111 |\nis it valid?",
    "a card over tabs": "pasted from the sheet's card column: 4111\t1111\t1111\t1111",
    "a card with bold between digits": "check 4111 111**1 1**111 1111 please",
    "a card behind an RLO": f"is {RLO}1111 1111 1111 1114{PDF} a valid card?",
    "a card in base64 wrapped every 10": f"what is in this field?\n{chop(b64('card 4111 1111 1111 1111'), 10, chr(10))}\n",
}


@pytest.mark.parametrize("remote", ["anthropic", "openai"], indirect=True)
@pytest.mark.parametrize("case", list(LEAKY))
def test_laid_out_values_do_not_leave(remote, case):
    g, up = remote
    text = LEAKY[case]
    ask_remote(g, up, text)
    assert up.requests
    for rec in up.requests:
        assert CARD_DIGITS not in _digits_sent(rec.raw), rec.raw


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_card_in_a_tool_results_table_does_not_leave(remote):
    """A tool's output rendered as a Markdown table (a database client's), one group per cell."""
    g, up = remote
    table = "| id | card number | | | |\n|---|---|---|---|---|\n| 7 | 4111 | 1111 | 1111 | 1111 |"
    r = ant(g).messages.create(model="fb", max_tokens=50, tools=[{"name": "sql", "input_schema": {"type": "object"}}],
                               messages=[{"role": "user", "content": "what is the card of customer 7?"},
                                         {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "sql",
                                                                            "input": {"q": "select * from cards"}}]},
                                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                                                       "content": table}]}])
    assert r.content
    assert up.requests
    for rec in up.requests:
        assert CARD_DIGITS not in _digits_sent(rec.raw), rec.raw


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_card_over_tabs_in_a_function_output_does_not_leave(remote):
    """The same through the Responses API: a spreadsheet export as a function's output."""
    g, up = remote
    r = oai(g).responses.create(model="fb", input=[
        {"role": "user", "content": "summarise the export"},
        {"type": "function_call", "call_id": "call_1", "name": "export", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "name\tcard\t\t\t\nJ\t4111\t1111\t1111\t1111\n"},
    ], tools=[{"type": "function", "name": "export", "parameters": {"type": "object", "properties": {}}}])
    assert r.output_text
    assert up.requests
    for rec in up.requests:
        assert CARD_DIGITS not in _digits_sent(rec.raw), rec.raw


def test_a_long_token_before_padding_is_read_in_linear_time(det):
    """`a1a1...a1===`: the first seed pattern backtracked over the whole token for each pair in it (10,000
    characters did not finish in two minutes). Bounded by a pytest timeout-free check: the scan returns."""
    assert [f for f in det.scan("a1" * 20_000 + "===") if f.entity != "SECRET"] == []
