"""The structure of a multiple-choice question, as counts meant to mean the same in any domain (issue 22).

What makes a multiple-choice question hard for a weaker model, whatever its subject: a stem that asks for the
exception ("all of the following EXCEPT"), options that combine statements ("I and III only", "all of the
above"), enumerated statements to check one by one, options that are numbers or formulas (a calculation),
options that resemble one another (close distractors), and long, uneven options (nuanced statements to
compare). None of these counts reads a word of the subject or the number of options (4 here, 10 in other
benchmarks): each is a share, a ratio or a yes/no, so a benchmark with more options keeps the same scale.
A prompt without options (parsed as lines `A. …`, `(A) …` or `A) …`, at least two, in order) gets zeros.
"""

from __future__ import annotations

import math
import re

import numpy as np

from tierwise.routers.features import digit_count

CHOICE_NAMES = ("stem_exception", "option_combinations", "statements", "numeric_option_share",
                "option_overlap", "option_length_spread", "option_log_words")

_OPTION_LINE = re.compile(r"^\s*\(?([A-J])[.)]\s+(.*\S)\s*$")
_EXCEPTION = re.compile(r"\b(?:NOT|EXCEPT|LEAST|FALSE|INCORRECT|CANNOT)\b|(?i:\bexcept\b|\bnot true\b|\bleast likely\b|"
                        r"\b(?:is|are|would|does|do|could|was|were|can) not\b(?=[^\n]*\?)|\bis (?:false|incorrect)\b)")
_COMBINATION = re.compile(r"^(?:(?:I{1,3}|IV|VI{0,3})(?:\s*(?:,\s*and|,|and|&)\s*(?:I{1,3}|IV|VI{0,3}))*(?:\s+only)?|"
                          r"(?:all|none|both|neither) of the (?:above|following|options)|both|neither|"
                          r"[A-J] and [A-J](?: only)?)\.?$", re.IGNORECASE)
# Every match of _EXCEPTION holds one of these words (any case) this many characters after its start (CANNOT, "is
# false", "could not"), so only those starts need trying; exact for any text but the four characters a
# case-insensitive pattern also reads as ASCII letters (and the one whose lower case is longer), left to the search.
_EXCEPTION_WORDS = ("not", "except", "least", "false", "incorrect")
_EXCEPTION_OFFSETS = (0, 3, 4, 5, 6)
_CASE_SPECIAL = "\u0130\u0131\u017f\u212a"  # İ ı ſ K
_STATEMENT = re.compile(r"\bStatement\s*\d|(?:^|\n)\s*(?:I{1,3}|IV)\.\s")
_WORD = re.compile(r"\w+")


def parse_choices(text: str) -> tuple[str, list[str]]:
    """The stem and the options of a multiple-choice prompt (letters in order from A); no options → (text, [])."""
    lines = text.rstrip().split("\n")
    opts: list[str] = []
    first = -1
    for i, line in enumerate(lines):
        m = _OPTION_LINE.match(line)
        if m and ord(m.group(1)) - ord("A") == len(opts):
            if not opts:
                first = i
            opts.append(m.group(2))
        elif m and m.group(1) == "A":  # a new list starts: keep the last one
            opts, first = [m.group(2)], i
    if len(opts) < 2:
        return text, []
    return "\n".join(lines[:first]), opts


def asks_exception(stem: str) -> bool:
    """`_EXCEPTION.search(stem)`, trying the regex only where a match can start (the whole search took ~140 µs on
    a long stem; most of its positions start no match)."""
    if any(c in stem for c in _CASE_SPECIAL):
        return bool(_EXCEPTION.search(stem))
    low = stem.lower()  # the same length and positions: no character above lower-cases to several
    starts: set[int] = set()
    for w in _EXCEPTION_WORDS:
        i = low.find(w)
        while i >= 0:
            starts.update(i - d for d in _EXCEPTION_OFFSETS if i >= d)
            i = low.find(w, i + 1)
    return any(_EXCEPTION.match(stem, p) for p in sorted(starts))


def _statements(stem: str) -> int:
    """`len(_STATEMENT.findall(stem))`; every match holds "Statement", "I." or "V.", and most stems none."""
    return len(_STATEMENT.findall(stem)) if "Statement" in stem or "I." in stem or "V." in stem else 0


def _numeric(option: str) -> bool:
    """Half the option's non-space characters or more are digits or "=+-*/^().,%√π$<>" (no character is both)."""
    chars = "".join(option.split())
    return bool(chars) and (digit_count(chars) + sum(map(chars.count, "=+-*/^().,%√π$<>"))) * 2 >= len(chars)


def choice_features(text: str) -> np.ndarray:
    """`CHOICE_NAMES` as float64; all zeros for a prompt without options."""
    stem, opts = parse_choices(text)
    if not opts:
        return np.zeros(len(CHOICE_NAMES))
    words = [set(_WORD.findall(o.lower())) for o in opts]
    pairs = [(a, b) for i, a in enumerate(words) for b in words[i + 1:]]
    overlap = float(np.mean([len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs]))
    lens = np.array([len(o) for o in opts], dtype=float)
    return np.array([
        float(asks_exception(stem)),
        sum(bool(_COMBINATION.match(o.strip())) for o in opts) / len(opts),
        float(_statements(stem) >= 2),
        sum(map(_numeric, opts)) / len(opts),
        overlap,
        float(lens.std() / lens.mean()) if lens.mean() > 0 else 0.0,
        math.log1p(float(np.mean([len(_WORD.findall(o)) for o in opts]))),
    ])
