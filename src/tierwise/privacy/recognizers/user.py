"""The user's own detectors: dictionaries of words/phrases and regular expressions, per entity name.

Dictionaries: one Aho-Corasick automaton (ahocorasick-rs) over the case-folded text, longest
match first, kept only on word boundaries. Patterns: the `regex` module with a per-text
timeout; a pattern that times out raises (the detector fails closed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import ahocorasick_rs
import regex

from tierwise.privacy.finding import Finding
from tierwise.privacy.recognizers.prescan import Prescan


class PatternTimeout(Exception):
    """A user pattern ran past its time limit on some text."""


class DictionaryRecognizer:
    name = "user.dictionary"

    def __init__(self, dictionaries: Mapping[str, Sequence[str]]) -> None:
        words: list[str] = []
        owners: list[str] = []
        for entity, items in dictionaries.items():
            for w in items:
                w2 = " ".join(w.split()).casefold()
                if w2:
                    words.append(w2)
                    owners.append(entity)
        self.entities = frozenset(dictionaries)
        self._owners = owners
        self._ac = (
            ahocorasick_rs.AhoCorasick(words, matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_LONGEST) if words else None
        )

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        if self._ac is None:
            return
        folded = text.casefold()
        if len(folded) != len(text):  # casefold changed lengths (e.g. ß -> ss): fall back to lower()
            folded = text.lower()
            if len(folded) != len(text):
                return
        # Collapse runs of whitespace to single spaces without moving offsets: map every
        # whitespace character to a space (phrases in the dictionary use single spaces).
        folded = regex.sub(r"\s", " ", folded)
        n = len(folded)
        for idx, start, end in self._ac.find_matches_as_indexes(folded):
            if (start > 0 and folded[start - 1].isalnum()) or (end < n and folded[end].isalnum()):
                continue
            yield Finding(self._owners[idx], start, end, 1.0, self.name)


class PatternRecognizer:
    name = "user.pattern"

    def __init__(self, patterns: Mapping[str, Sequence[str]], timeout_s: float) -> None:
        self._compiled = [(entity, regex.compile(p)) for entity, pats in patterns.items() for p in pats]
        self.entities = frozenset(patterns)
        self.timeout_s = timeout_s

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        for entity, rx in self._compiled:
            try:
                for m in rx.finditer(text, timeout=self.timeout_s):
                    if m.end() > m.start():
                        yield Finding(entity, m.start(), m.end(), 1.0, self.name)
            except TimeoutError:
                raise PatternTimeout(f"user pattern for {entity} ran past {self.timeout_s}s") from None
