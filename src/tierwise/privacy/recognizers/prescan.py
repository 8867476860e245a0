"""One shared pass over a text for the structured recognizers: where its digit clusters are.

Cards, national identifiers, SSNs and phone numbers all contain six or more digits written close
together (separated by at most a few spaces, dots, dashes, slashes, underscores, parentheses or a `+`).
`Prescan` finds those clusters once per text — one scan whose pattern starts with an ASCII digit
class, which the `regex` module searches without trying a match at every position — and each
of those recognizers then runs its own pattern only in a short window around each cluster
instead of over the whole text. Its context checks (`SSN`, `card`, `Phone:` ...) still read
the whole text before the match, so what they find does not change; only where they look.

Why a window is enough: a match of any of those patterns consists of digits joined by at most
four separator characters (so it lies inside one cluster) plus at most a few characters before
it (`+`, `(`, two letters of a NINO or NIE, the Corsican `2A` of a French NIR) and after it (a
check letter, a phone extension). `_BEFORE` and `_AFTER` cover those with room to spare.

Texts are normalised first (`textnorm`: every Unicode digit is ASCII by then), so `[0-9]` is
every digit.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator

import regex

_CLUSTER = regex.compile(r"[0-9](?:[ ./()+_\-]{0,4}[0-9]){5,}")
_DIGIT_RUN = regex.compile(r"[0-9]+")
_WORD_MASK = bytes(c if chr(c).isalpha() or c == 0x5F else 0x20 for c in range(256))
_BEFORE = 24  # characters before a cluster a match may start at (prefixes, letters, `+`, `(`)
_AFTER = 28  # characters after a cluster a match may end at (check letters, `ext. 123456`)


class Prescan:
    """Per-text facts several recognizers need, each computed at most once."""

    __slots__ = ("text", "windows", "_digit_runs", "_lower", "lower_exact", "_latin1", "_mask", "claimed", "_claimed_index")

    def __init__(self, text: str) -> None:
        self.text = text
        n = len(text)
        windows: list[tuple[int, int]] = []
        for m in _CLUSTER.finditer(text):
            lo, hi = max(0, m.start() - _BEFORE), min(n, m.end() + _AFTER)
            if windows and lo <= windows[-1][1]:
                windows[-1] = (windows[-1][0], hi)
            else:
                windows.append((lo, hi))
        self.windows = windows
        self._digit_runs: list[tuple[int, int]] | None = None
        self._lower: str | None = None
        self.lower_exact = True  # False once `lower` found that lower-casing changes lengths
        self._latin1: bytes | None = None
        self._mask: str | None = None
        # (start, end, score) of what earlier recognizers found (the detector fills it): a finding
        # that would overlap a higher-scored one loses anyway, so a recognizer may skip its costly
        # checks there (phone validation where a card, an IBAN, an SSN or an IP already is).
        self.claimed: list[tuple[int, int, float]] = []
        # per score threshold: (len(claimed) when built, sorted starts, running max of ends)
        self._claimed_index: dict[float, tuple[int, list[int], list[int]]] = {}

    @property
    def digit_runs(self) -> list[tuple[int, int]]:
        """(start, end) of every maximal run of digits."""
        if self._digit_runs is None:
            self._digit_runs = [m.span() for m in _DIGIT_RUN.finditer(self.text)]
        return self._digit_runs

    @property
    def lower(self) -> str:
        """The text lower-cased; the text itself when lower-casing would change its length
        (a few letters, e.g. `İ`, become two characters), so offsets always agree."""
        if self._lower is None:
            low = self.text.lower()
            self.lower_exact = len(low) == len(self.text)
            self._lower = low if self.lower_exact else self.text
        return self._lower


    @property
    def word_mask(self) -> str:
        """`lower` with every character that is not a Latin-1 letter or `_` turned into a space,
        with one space added at each end (index i + 1 here is index i of the text): a word `w`
        stands alone exactly where ` w ` occurs. Characters beyond Latin-1 become spaces too."""
        if self._mask is None:
            self._mask = " " + self.lower.encode("latin-1", errors="replace").translate(_WORD_MASK).decode("latin-1") + " "
        return self._mask

    def runs_of(self, table: bytes, min_len: int, max_len: int = 0) -> list[tuple[int, int]]:
        """Maximal runs of characters that `table` maps to `a` (a 256-byte translation table over
        Latin-1; characters beyond Latin-1 count as `?`), at least `min_len` long (at most
        `max_len` when given). One C-level translate and a few `find`s: much cheaper than a
        pattern that is tried at every position of the text."""
        if self._latin1 is None:
            # one byte per character: what Latin-1 cannot hold becomes "?"
            self._latin1 = self.text.encode("latin-1", errors="replace")
        t = self._latin1.translate(table)
        key = b"a" * min_len
        out: list[tuple[int, int]] = []
        i = t.find(key)
        while i >= 0:  # `find` returns the leftmost start, so i is the start of its run
            e = t.find(b" ", i + min_len)
            if e < 0:
                e = len(t)
            if not max_len or e - i <= max_len:
                out.append((i, e))
            i = t.find(key, e)
        return out


    def claimed_above(self, start: int, end: int, score: float) -> bool:
        """Whether a finding scored above `score` overlaps start..end (O(log n) per question:
        some span starting before `end` reaches past `start`)."""
        idx = self._claimed_index.get(score)
        if idx is None or idx[0] != len(self.claimed):
            spans = sorted((a, b) for a, b, sc in self.claimed if sc > score)
            starts = [a for a, _b in spans]
            reach: list[int] = []
            top = -1
            for _a, b in spans:
                top = max(top, b)
                reach.append(top)
            idx = (len(self.claimed), starts, reach)
            self._claimed_index[score] = idx
        _n, starts, reach = idx
        k = bisect_left(starts, end)  # spans [0, k) start before `end`
        return k > 0 and reach[k - 1] > start


def class_table(chars: str) -> bytes:
    """A translation table for `Prescan.runs_of`: `chars` (ASCII) -> `a`, every other byte -> space."""
    wanted = set(chars.encode("ascii"))
    return bytes(0x61 if c in wanted else 0x20 for c in range(256))


def prescan_of(text: str, pre: Prescan | None) -> Prescan:
    """`pre` when it is the prescan of `text`, else a new one (recognizers called on their own)."""
    return pre if pre is not None and pre.text is text else Prescan(text)


def finditer_near_digits(rx: re.Pattern[str], text: str, pre: Prescan) -> Iterator[re.Match[str]]:
    """`rx.finditer(text)` restricted to the windows around digit clusters (same matches for a
    pattern whose matches are digit clusters plus the margins above)."""
    for lo, hi in pre.windows:
        yield from rx.finditer(text, lo, hi)
