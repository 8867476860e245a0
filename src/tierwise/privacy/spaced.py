"""Values written with a space between every character: `5 3 6 - 2 2 - 8 1 4 7`, `D E 8 9 3 7 0 4 ...`,
`j a n e . d o e @ e x a m p l e . c o m`. A reader (and a model) takes them at once; the patterns, which
allow no space inside an SSN, an IBAN or an address, did not (recall 0.00 in bench/privacy_evasion.py).

Where to look costs nothing extra: a spaced value with digits lies in one of the digit clusters the
prescan already found (its pattern allows up to four separator characters between digits), and a spaced
address holds ` @ `. Around those only, a run of six or more single printable ASCII characters, each
followed by one space, is joined (`run[::2]`) and the joined text scanned by the structured recognizers
(no NER). A finding there becomes a finding over the spaced run, so redaction removes it whole.
Ordinary text has almost no such runs next to digits (one in 19.8 million characters of QQP questions,
GSM8K, MT-Bench judgements, the standard library and the docs: bench/RESULTS.md, session 24).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

import regex

from tierwise.privacy.finding import Finding
from tierwise.privacy.recognizers.prescan import Prescan

# Six or more single characters, each alone between whitespace: `5 3 6 - 2 2`; the first may follow an
# opening bracket, quote or backtick (`(5 3 6`), the last come before the sentence's punctuation (`c o m?`, `9 3.`).
_OPEN = "([{'\"`|/<:="
_CLOSE = ".,;:!?)]}'\"`|/>"
_RUN = regex.compile(r"(?<![^\s([{'\"`|/<:=])[!-~](?: [!-~]){5,}(?=[.,;:!?)\]}'\"`|/>]{0,2}(?:\s|$))")
# A digit followed by three single characters: every spaced run that makes a digit cluster (six or more
# digits) has one; a window without it holds no spaced run with digits (a digit-led pattern: cheap).
_DIGIT_SPACED = regex.compile(r"[0-9] [!-~] [!-~] [!-~] ")
_REACH = 64  # how far past a digit window (or from an ` @ `) a run may start or end
MIN_TOKENS = 6


def _widen(spans: list[tuple[int, int]], lo: int, hi: int) -> None:
    """Append [lo, hi) to ascending `spans`, merged into the last one where they overlap."""
    if spans and lo <= spans[-1][1]:
        spans[-1] = (spans[-1][0], hi)
    else:
        spans.append((lo, hi))


def _regions(text: str, pre: Prescan) -> list[tuple[int, int]]:
    """The stretches to search, sorted and merged: around each digit window and each ` @ ` (an ` @ `
    every few characters is one stretch, not one per occurrence)."""
    n = len(text)
    ats: list[tuple[int, int]] = []
    i = text.find(" @ ")
    while i >= 0:
        _widen(ats, max(0, i - 2 * _REACH), min(n, i + 2 * _REACH))
        i = text.find(" @ ", i + 3)
    near_digits = []
    for a, b in pre.windows:
        lo, hi = max(0, a - _REACH), min(n, b + _REACH)
        if _DIGIT_SPACED.search(text, lo, hi) is not None:  # most windows are ordinary numbers: not searched
            near_digits.append((lo, hi))
    out: list[tuple[int, int]] = []
    for lo, hi in heapq.merge(near_digits, ats):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def spaced_runs(text: str, pre: Prescan) -> list[tuple[int, int]]:
    """(start, end) of every spaced run near digits or an ` @ `, in order, each once. Every character is
    searched at most once and every run extended once: a run that goes on past its stretch is followed to
    its end, and the search resumes after it (session 24: one run through many stretches was followed
    again from each, quadratic in the text)."""
    if " " not in text:
        return []
    out: list[tuple[int, int]] = []
    n = len(text)
    done = 0  # everything before this offset has been searched
    for lo, hi in _regions(text, pre):
        pos = max(lo, done)
        while pos < hi:
            m = _RUN.search(text, pos, hi)
            if m is None:
                break
            a, b = m.span()
            # a stretch's edge may cut a run: extend it to where it really starts and ends
            while a >= 2 and a - 2 >= done and text[a - 1] == " " and _single(text, a - 2):
                a -= 2
            while b + 1 < n and text[b] == " " and _single(text, b + 1):
                b += 2
            out.append((a, b))
            pos = done = b
        done = max(done, hi)
    return out


def _single(text: str, i: int) -> bool:
    """Is text[i] a printable ASCII character standing alone: whitespace, an opening bracket or quote (or the
    text's start) before it, whitespace or punctuation (or the text's end) after it?"""
    c = text[i]
    return ("!" <= c <= "~" and (i == 0 or text[i - 1].isspace() or text[i - 1] in _OPEN)
            and (i + 1 == len(text) or text[i + 1].isspace() or text[i + 1] in _CLOSE))


# Single digits with one space between each: the card and phone patterns allow that spacing (and read such a value
# with the words around it: `call me at 0 4 9 4 ...`), but not in a grid's row (`not_a_value`).
SINGLE_DIGITS = regex.compile(r"[0-9](?: [0-9]){5,}")
# A line that is nothing but one spaced run (brackets, bars and commas around it: a sudoku's or a matrix's row).
_ROW = regex.compile(r"[ \t\[\]|,]*([!-~](?: [!-~]){5,})[ \t\[\]|,]*")
_LINE_LOOK = 512  # longest line looked at as a grid's row


def _row_tokens(text: str, lo: int, hi: int) -> int:
    """How many single characters the line text[lo:hi] holds if it is one spaced row, else 0."""
    if hi - lo > _LINE_LOOK:
        return 0
    m = _ROW.fullmatch(text, lo, hi)
    return (len(m.group(1)) + 1) // 2 if m else 0


def not_a_value(text: str, a: int, b: int) -> bool:
    """Is the spaced run text[a:b] a row of a grid or an array (a sudoku, a numpy matrix, bits), not a value
    written out? It is all 0s and 1s, or it sits in square brackets, or its line is nothing but the run and the
    line before or after is another such row of as many characters. (Session 25: `5 3 0 0 7 0 0 0 0` and
    `[1 2 3 4 5 6 7 8 9]` were phone numbers, a row of bits a card.)"""
    if not text[a:b:2].strip("01"):
        return True
    if text[max(0, a - 8):a].rstrip()[-1:] == "[" or text[b:b + 8].lstrip()[:1] == "]":
        return True
    start = text.rfind("\n", max(0, a - _LINE_LOOK), a) + 1
    end = text.find("\n", b, b + _LINE_LOOK)
    end = len(text) if end < 0 and len(text) - b <= _LINE_LOOK else end
    if (start == 0 and a > _LINE_LOOK) or end < 0:
        return False
    width = _row_tokens(text, start, end)
    if not width:
        return False
    if start > 0:
        prev = text.rfind("\n", max(0, start - 1 - _LINE_LOOK), start - 1) + 1
        if _row_tokens(text, prev, start - 1) == width:
            return True
    if end < len(text):
        nxt = text.find("\n", end + 1, end + 2 + _LINE_LOOK)
        if _row_tokens(text, end + 1, nxt if nxt >= 0 else len(text)) == width:
            return True
    return False


def spaced_findings(text: str, pre: Prescan, scan: Callable[[str], Iterable[Finding]]) -> list[Finding]:
    """Findings of `scan` (the structured recognizers) in each spaced run joined, over the run's own span."""
    found: list[Finding] = []
    for a, b in spaced_runs(text, pre):
        if not_a_value(text, a, b):
            continue
        joined = text[a:b:2]
        for f in scan(joined):
            found.append(Finding(f.entity, a + 2 * f.start, a + 2 * (f.end - 1) + 1, f.score, f.detector))
    return found


# Addresses only partly spaced out, or with wider gaps: `j o h n @ example.com` (five single characters: no run,
# and the address pattern, which allows spaces around the `@`, took `n @ example.com`, so `j o h` left),
# `j  o  h  n  @  e  x  a  m  p  l  e  .  c  o  m` (two spaces: no run at all), `jane . doe @ example . com`. Around
# each `@` with a space or tab near it, gaps of one to three spaces or tabs between two single characters, next
# to the `@` or around a ` . `, are closed and the
# stretch scanned; only addresses that closed a gap are kept, over their original span (session 26).
_GAP = regex.compile(r"(?<=(?:^|[\s([{'\"`|/<:=])[!-~])(?<!@)[ \t]{1,3}(?=[!-~](?:[\s@.,;:!?)\]}'\"`|/>]|$))"  # single chars
                     r"|(?<=@)[ \t]{1,3}(?=\S)|(?<=\S)[ \t]{1,3}(?=@)"  # next to the `@`
                     r"|(?<=\S)[ \t]{1,3}(?=\.[ \t])|(?<=[ \t]\.)[ \t]{1,3}(?=\S)")  # around a ` . ` (`jane . doe`)


def at_gap_findings(text: str, scan: Callable[[str], Iterable[Finding]]) -> list[Finding]:
    """E-mail findings of `scan` in the stretches around a spaced `@`, spaces closed as above."""
    n = len(text)
    stretches: list[tuple[int, int]] = []
    i = text.find("@")
    while i >= 0:
        if " " in text[max(0, i - 3):i + 4] or "\t" in text[max(0, i - 3):i + 4]:  # `e@`, `n @ `
            _widen(stretches, max(0, i - 2 * _REACH), min(n, i + 2 * _REACH))
        i = text.find("@", i + 1)
    found: list[Finding] = []
    for lo, hi in stretches:
        parts: list[str] = []
        index: list[int] = []  # original offset of each character of the closed stretch
        pos = lo
        for m in _GAP.finditer(text, lo, hi):
            parts.append(text[pos:m.start()])
            index.extend(range(pos, m.start()))
            pos = m.end()
        if pos == lo:
            continue
        parts.append(text[pos:hi])
        index.extend(range(pos, hi))
        closed = "".join(parts)
        for f in scan(closed):
            s, e = index[f.start], index[f.end - 1] + 1
            if f.entity == "EMAIL_ADDRESS" and e - s > f.end - f.start:  # a gap closed inside it
                found.append(Finding(f.entity, s, e, f.score, f.detector))
    return found
