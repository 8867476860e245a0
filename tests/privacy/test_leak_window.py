"""The leak check and ValueSpread read a text window by window (session 23): what they find is what one pass
over the whole text finds, and a value repeated a million times is never one list of a million matches (a
3.9 MB body of one two-letter value held 159 MiB in the leak check and 166 MiB in ValueSpread)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tierwise.privacy import request_vocabulary
from tierwise.privacy.request_vocabulary import ValueSpread, values_in_body


class _Recording:
    """An automaton of ahocorasick_rs that remembers the longest list of matches it returned."""

    longest = 0

    def __init__(self, real: Any, *args: Any, **kw: Any) -> None:
        self._real = real(*args, **kw)

    def find_matches_as_indexes(self, *args: Any, **kw: Any) -> list[tuple[int, int, int]]:
        got = self._real.find_matches_as_indexes(*args, **kw)
        _Recording.longest = max(_Recording.longest, len(got))
        return got


@pytest.fixture
def recording(monkeypatch) -> type[_Recording]:
    _Recording.longest = 0
    for name in ("AhoCorasick", "BytesAhoCorasick"):
        real = getattr(request_vocabulary, name)
        monkeypatch.setattr(request_vocabulary, name, lambda *a, _real=real, **k: _Recording(_real, *a, **k))
    return _Recording


OCCURRENCES = 200_000  # 600 KB of `Al `: three windows' worth of matches in one list before the change


def test_the_leak_check_never_lists_every_match_of_a_repeated_value(recording) -> None:
    body = ('{"content":"' + "Al " * OCCURRENCES + '"}').encode()
    assert values_in_body(body, ["Al", "Bo"]) == ["Al"]
    assert 0 < recording.longest <= request_vocabulary.WINDOW_CHARS


def test_the_spread_never_lists_every_match_of_a_repeated_value(recording) -> None:
    text = "Al " * OCCURRENCES
    found = ValueSpread({"Al": "PERSON"}).add(text, [])
    assert len(found) == request_vocabulary.MAX_SPREAD_MATCHES  # the budget, as before
    assert 0 < recording.longest <= request_vocabulary.WINDOW_CHARS


@pytest.mark.parametrize("window", [1, 2, 3, 7])
def test_the_spread_finds_in_windows_what_one_pass_finds(window, monkeypatch) -> None:
    """Leftmost-longest matches, values that are prefixes and suffixes of each other, word edges, findings
    already there, lone surrogates: window by window, the same findings as over the whole text at once."""
    rnd = random.Random(window)
    alphabet = "aAb1 .@-\u00e9\ud800_"

    def spread(text: str, values: dict[str, str], given: list[Any]) -> list[tuple[str, int, int]]:
        return [(f.entity, f.start, f.end) for f in ValueSpread(values).add(text, given)]

    from tierwise.privacy.finding import Finding

    for _ in range(3000):
        values = {"".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 4))): rnd.choice(["PERSON", "EMAIL"])
                  for _ in range(rnd.randint(1, 5))}
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
        given = [Finding("PHONE", 5, 8, 1.0, "regex")] if len(text) > 8 else []
        monkeypatch.setattr(request_vocabulary, "WINDOW_CHARS", 1 << 16)
        whole = spread(text, values, given)
        monkeypatch.setattr(request_vocabulary, "WINDOW_CHARS", window)
        assert spread(text, values, given) == whole, (values, text)
