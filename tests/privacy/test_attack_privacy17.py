"""Privacy round 17 (session 37, privacy17). Real HTTP, the official SDKs, recording upstream doubles, `pii: redact` on
a fallback route remote -> local (the `remote` fixture) unless said.

1. The detector's slowest input, digits between spaces (`1 1 1 ...`, ~3.6 us a character after privacy16): the date
   recognizer tried its whole numeric pattern at every digit run, and the card recognizer's split of a long run walked
   every (start, end) pair of its groups. Counted here (no timing): patterns tried, lines run."""

from __future__ import annotations

import sys

import pytest

from tierwise.privacy.recognizers import dates, ids
from tierwise.privacy.recognizers.prescan import Prescan

# ---------------------------------------------------------------- 1. the slowest input: digits between spaces


class _Matches:
    """A compiled pattern that counts its anchored tries."""

    def __init__(self, rx) -> None:
        self.rx, self.tried = rx, 0

    def match(self, text, pos=0, endpos=None):
        self.tried += 1
        return self.rx.match(text, pos, *(() if endpos is None else (endpos,)))


@pytest.mark.parametrize("unit", ["1 ", "12 ", "1 1 ", "1\t", "4111 ", "1  "])
def test_digits_between_spaces_do_not_try_the_date_pattern_at_each(monkeypatch, unit):
    """A numeric date goes on from its first digits with `-/.:`, an ordinal, `am`/`h`, or spaces and a month name:
    a digit run followed by spaces and another digit starts none (base: one try per run, 10,000 here)."""
    tries = _Matches(dates._DATE_NUM)
    monkeypatch.setattr(dates, "_DATE_NUM", tries)
    text = (unit * (20_000 // len(unit)))[:20_000]
    assert list(dates.DateTimeRecognizer().find(text, Prescan(text))) == []
    assert tries.tried <= 2, tries.tried


@pytest.mark.parametrize("text", ["on 1 March 2024", "at 5 pm", "12:30", "2024-05-01", "3/4/25", "1st of May",
                                  "17.30 Uhr", "1.\tMärz", "9am", "5 p.m.", "12h30 h"])
def test_numeric_dates_are_still_found(text):
    got = [text[f.start:f.end] for f in dates.DateTimeRecognizer().find(text, Prescan(text))]
    assert got and any(g[0].isdigit() for g in got), got


def _lines_run(fn) -> int:
    """Lines of `CardRecognizer._split` executed while `fn` runs."""
    code = ids.CardRecognizer._split.__code__
    count = 0

    def tracer(frame, event, _arg):
        nonlocal count
        if frame.f_code is not code:
            return None
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize("unit", ["1 ", "1 1 ", "12 ", "7 "])
def test_a_long_spaced_digit_run_is_split_without_walking_every_pair(unit):
    """`_split` joined only the pieces of 13-19 digits, but still looked at every (start, end) pair of a 19-group run:
    ~1,200 lines a match (base: 32 lines a character on `1 `, 12 on `12 `; now 5.4 and 3.0): the ends each start can
    have are bisected now."""
    text = (unit * (4_000 // len(unit)))[:4_000]
    r = ids.CardRecognizer()
    lines = _lines_run(lambda: list(r.find(text, Prescan(text))))
    assert lines <= 8 * len(text), lines / len(text)


@pytest.mark.parametrize("text", ["9 4111 1111 1111 1111 5", "12 4111-1111-1111-1111", "4111 1111 1111 1111 7 7 7"])
def test_a_card_inside_a_longer_run_is_still_found(text):
    got = [text[f.start:f.end].replace(" ", "").replace("-", "") for f in ids.CardRecognizer().find(text, Prescan(text))]
    assert "4111111111111111" in got, got
