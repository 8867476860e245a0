"""Normalise text before matching, and map spans found in it back to the original text.

Hostile or merely unusual text hides identifiers from patterns: zero-width spaces inside a
card number, full-width digits (`４１１１`), Arabic-Indic digits, non-breaking spaces, Unicode
dashes, bidi overrides. `normalise` removes format characters (Unicode category Cf: zero-width
space/joiners, bidi controls, soft hyphen, BOM), maps every decimal digit to ASCII, every dash
to `-`, and applies NFKC per character. It also removes the other default-ignorable characters
(variation selectors, the combining grapheme joiner, Mongolian variation selectors, Hangul
fillers: they render as nothing or nearly so) and a combining mark placed on an ASCII character
(`4\u0301111...` still reads as a card number to a model). `SpanMap` turns a span of the normalised text into the
span of the original that produced it (zero-width characters inside a value are inside the
span, so redaction removes them too).

ASCII text is returned as is with no map: the common case costs one `isascii()`.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right

import regex

_NON_ASCII = regex.compile(r"[^\x00-\x7f]+")
# Default_Ignorable_Code_Point characters outside category Cf (those are removed by category).
_IGNORABLE = regex.compile(r"[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0"
                           r"\U000e0000-\U000e0fff]")
_cache: dict[str, str] = {}
_CACHE_MAX = 65536


def _norm_char(ch: str) -> str:
    rep = _cache.get(ch)
    if rep is not None:
        return rep
    cat = unicodedata.category(ch)
    if cat == "Cf":
        rep = ""
    elif cat == "Nd":
        rep = str(unicodedata.decimal(ch, 0))
    elif cat == "Pd" or ch == "\u2212":  # dashes and the minus sign
        rep = "-"
    elif cat in ("Zl", "Zp"):
        rep = "\n"
    else:
        rep = unicodedata.normalize("NFKC", ch)
        # NFKC can yield non-ASCII digits or dashes (e.g. circled digits -> ASCII already); keep as is.
    if len(_cache) < _CACHE_MAX:
        _cache[ch] = rep
    return rep


class SpanMap:
    """Maps normalised-text spans back to original-text spans.

    Stored as runs: each run is (norm_start, orig_start, orig_len_per_char_or_cluster); a
    run of unchanged text maps 1:1, a replaced character maps all its output characters to
    its one original character.
    """

    __slots__ = ("_nstarts", "_runs")

    def __init__(self, nstarts: list[int], runs: list[tuple[int, int, int, bool]]) -> None:
        # runs[i] = (norm_start, norm_len, orig_start, identity); for a non-identity run the
        # whole norm_len maps onto one original character at orig_start.
        self._nstarts = nstarts
        self._runs = runs

    def _locate(self, i: int) -> tuple[int, int]:
        """(orig_start, orig_end) of the original text behind normalised character i."""
        k = bisect_right(self._nstarts, i) - 1
        ns, _nl, os_, ident = self._runs[k]
        if ident:
            o = os_ + (i - ns)
            return o, o + 1
        return os_, os_ + 1

    def span(self, start: int, end: int) -> tuple[int, int]:
        s, _ = self._locate(start)
        _, e = self._locate(end - 1)
        return s, e


def _on_ascii(text: str, j: int) -> bool:
    """Is the combining mark at `j` placed on an ASCII character (through other marks before it)?"""
    k = j - 1
    while k >= 0 and not text[k].isascii() and (unicodedata.category(text[k]) in ("Mn", "Cf")
                                                 or _IGNORABLE.match(text[k])):
        k -= 1
    return k >= 0 and text[k].isascii()


def normalise(text: str) -> tuple[str, SpanMap | None]:
    """(normalised text, map back) — map is None when nothing changed."""
    if text.isascii():
        return text, None
    out: list[str] = []
    runs: list[tuple[int, int, int, bool]] = []
    changed = False
    npos = 0  # length of normalised text so far
    opos = 0  # original position consumed so far
    for m in _NON_ASCII.finditer(text):
        a, b = m.span()
        if a > opos:  # ASCII run: identity
            out.append(text[opos:a])
            runs.append((npos, a - opos, opos, True))
            npos += a - opos
        # Non-ASCII run: unchanged characters form identity runs, replaced ones their own runs.
        seg_start = a
        for j in range(a, b):
            ch = text[j]
            if _IGNORABLE.match(ch) or (unicodedata.category(ch) == "Mn" and _on_ascii(text, j)):
                rep = ""
            else:
                rep = _norm_char(ch)
            if rep == ch:
                continue
            changed = True
            if j > seg_start:
                out.append(text[seg_start:j])
                runs.append((npos, j - seg_start, seg_start, True))
                npos += j - seg_start
            if rep:
                out.append(rep)
                runs.append((npos, len(rep), j, False))
                npos += len(rep)
            seg_start = j + 1
        if b > seg_start:
            out.append(text[seg_start:b])
            runs.append((npos, b - seg_start, seg_start, True))
            npos += b - seg_start
        opos = b
    if not changed:
        return text, None
    if opos < len(text):
        out.append(text[opos:])
        runs.append((npos, len(text) - opos, opos, True))
    return "".join(out), SpanMap([r[0] for r in runs], runs)
