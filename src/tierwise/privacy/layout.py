"""Values broken up, or turned around, by how text is laid out (session 27, attack-privacy7).

- **Layout between a value's groups**: a card's or an IBAN's groups one per line, one per tab-separated column,
  one per table cell (`| 4111 | 1111 | 1111 | 1111 |`, `<td>4111</td><td>1111</td>`), joined by `<br>`, or with
  Markdown emphasis between two digits (`4**1**11 1111 ...`, `4111 111**1 1**111 1111`, `4_1_11 ...`). A reader
  (and a model) reads one number; the patterns, which take only spaces and dashes between groups, read none, or a
  wrong phone number over part of it (which left the rest). Round 6 measured that reading every such gap as a
  separator for every entity adds phone numbers in ordinary text (`1500 1500/100` in GSM8K, version columns), so
  this view keeps only payment cards (Luhn, and an issuer's first digits: 2221-2720, 3, 4, 5, 6 — a column of years
  `2019 2020 2021 2022` passes Luhn one time in ten), IBANs (mod 97) and US SSNs. Tables and columns of numbers
  hold digit groups by chance (142 of 300 random numeric tables had a "card" under the checksums alone), so across
  tabs, lines and cells a card must be grouped as one (4-4-4-4, 4-6-5, ...), with one separator between all its
  groups and a card word before it; an SSN 3-2-4 with an SSN word. Emphasis inside or around a group needs neither.
- **Right-to-left overrides**: `U+202E` (RLO) shows the characters after it reversed until `U+202C` (PDF), an
  isolate's end or the line's end: RLO + `1111 1111 1111 1114` displays `4111 1111 1111 1111`, and a model told
  the text is reversed reads it too. Normalisation removes the control and the reversed digits fail the checksum;
  here each overridden stretch is also read reversed.

A second view like `markup.py`: the text is still scanned as written, and a finding here is kept only over a
stretch that held a layout gap (or an override), over its original span. Runs are found by one scan that needs a
digit in every group (letters-only groups of at most four capitals, an IBAN's bank code, pass between them); each
run is joined and scanned once: linear in the text.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable

import regex

from tierwise.privacy.finding import Finding

# A group: letters and digits holding a digit, dashes inside (`6-22-8147`), or up to four capitals (`NWBK` in a GB
# IBAN), on word bounds.
_GROUP = r"(?<![A-Za-z0-9-])(?:[A-Za-z]{0,4}[0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,22}|[A-Z]{1,4})(?![A-Za-z0-9])"
# What may stand between two groups: spaces, tabs, line breaks, table bars, emphasis markers, `<br>` and table
# cell tags; at most 48 characters (a cell's padding).
_GAP = r"(?:[ \t\r\n|*_,;\"+/]|<br\s*/?>|</?t[dhr](?:\s[^<>]{0,48})?>){1,48}+"
# The first group holds a digit (a run tried at every capital letter of prose cost ~2 ms per 8,000 characters).
_FIRST = r"(?<![A-Za-z0-9-])[A-Za-z]{0,4}[0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,22}(?![A-Za-z0-9])"
# The standard library's engine (possessive quantifiers since 3.11): the run search over a whole text costs a third
# of the `regex` module's (280 vs 860 µs per 8,000 characters of PII-dense sentences).
_RUN = re.compile(rf"{_FIRST}(?:{_GAP}{_GROUP})++")
_LAYOUT_RX = re.compile(r"[\t\r\n|*_<,;\"+/]")  # groups hold none of these: one in a run is in a gap
_NO_DIGITS = str.maketrans("", "", "0123456789")
_LAYOUT = frozenset("\t\r\n|*_<,;\"+/")  # a gap with one of these is layout, not the plain spaces the patterns read
_EMPHASIS = frozenset("*_")
# Round 9: list and CSV separators and code (`4111,1111,...`, `[4111, 1111, ...]`, `"4111" + "1111"`, `536/22/8147`)
# are cells too: a card word before, grouped as one, one separator throughout.
_CELL = frozenset("\t\r\n|<,;\"+/")  # tabs, lines and cells: where tables and columns of numbers hold digit groups
_CARD_GROUPS = frozenset({(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4)})
_GROUP_SEP = regex.compile(r"[ -]")
_TAG = regex.compile(r"<(/?\w+)[^<>]*>")  # `<br/>` and `<br>`, `<td class=x>` and `<td>` are one separator
_CUE_REACH = 120  # a table's header line
_CARD_CUE = regex.compile(r"(?i)\b(?:card|cc|cc_?num(?:ber)?|credit|debit|maestro|visa|mastercard|amex|pan|kort|karte|carte"
                          r"|tarjeta|carta|kreditkarte)s?\b")
_SSN_CUE = regex.compile(r"(?i)\b(?:ssn|ss#|ss no|social security|soc\.? sec|taxpayer|tin|itin)\b")
_KEEP = LAYOUT_ENTITIES = frozenset({"CREDIT_CARD", "IBAN_CODE", "US_SSN"})
_ISSUER = regex.compile(r"(?:2(?:2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|[3-6])")
_GAP_RX = re.compile(_GAP)
# Single digits one gap apart (`| 5 3 4 | 6 7 8 |`, a sudoku's rows across their bars and lines) are a grid, as
# in spaced.py, not a value's groups.
_SINGLES = regex.compile(r"[0-9](?: [0-9-])+")
# Where runs can be: one byte a character (`0` digit, `a` letter or dash, space, `L` a layout character, or any other
# character inside a tag, `.` anything else); a run lies within one stretch without `.`, and only stretches holding an `L` and 8
# digits are searched (the search over all of a PII-dense text cost 280 µs per 8,000 characters).
_MASK = bytes(
    0x30 if 48 <= c <= 57 else 0x61 if 65 <= c <= 90 or 97 <= c <= 122 or c == 45 else 0x20 if c == 32
    else 0x4C if chr(c) in "\t\r\n|*_<>,;\"+/" else 0x2E
    for c in range(256)
)
_ANY_TAG = re.compile(r"<[^<>]*>")
_RLO = "\u202e"
_RLO_END = regex.compile("[\u202c\u2069\n]")


def _gaps(run: str) -> list[tuple[int, int]]:
    """(start, end) of each gap between the groups of a run."""
    out: list[tuple[int, int]] = []
    for m in _GAP_RX.finditer(run):
        a, b = m.span()
        if 0 < a and b < len(run):
            out.append((a, b))
    return out


def _stretches(text: str) -> Iterable[tuple[int, int]]:
    """(start, end) of each stretch that may hold a run with a layout gap and 8 digits; every run lies in one."""
    mask = bytearray(text.encode("latin-1", errors="replace").translate(_MASK))
    if "<" in text:
        for t in _ANY_TAG.finditer(text):  # a tag's attributes (`class="x"`) do not end a stretch
            mask[t.start():t.end()] = mask[t.start():t.end()].replace(b".", b"L")
    i = mask.find(b"L")
    while i >= 0:
        a = mask.rfind(b".", 0, i) + 1
        b = mask.find(b".", i)
        b = len(mask) if b < 0 else b
        if mask.count(b"0", a, b) >= 8:
            yield a, b
        i = mask.find(b"L", b)


def layout_findings(text: str, scan: Callable[[str], Iterable[Finding]]) -> list[Finding]:
    """Checksum-vouched values whose groups layout separates, over their original spans."""
    found: list[Finding] = []
    if not any(c in text for c in "\t\n|*_<,;\"+/"):
        return found
    for m in (m for a, b in _stretches(text) for m in _RUN.finditer(text, a, b)):
        if _LAYOUT_RX.search(text, m.start(), m.end()) is None:
            continue  # plain spaces only: the patterns read these already
        run, base = m.group(), m.start()
        if len(run) - len(run.translate(_NO_DIGITS)) < 8:
            continue  # fewer than 8 digits: no card, IBAN or SSN (the joined text holds no more digits than the run)
        gaps = _gaps(run)
        if not any(any(c in _LAYOUT for c in run[a:b]) for a, b in gaps):
            continue  # plain spaces only: the patterns read these already
        parts: list[str] = []
        index: list[int] = []  # offset in `run` of each character of the joined text
        pos = 0
        for a, b in gaps:
            parts.append(run[pos:a])
            index.extend(range(pos, a))
            gap = run[a:b]
            if not set(gap) <= _EMPHASIS:  # emphasis inside a group (`4**1**11`) joins; any other gap is a space
                parts.append(" ")
                index.append(a)
            pos = b
        parts.append(run[pos:])
        index.extend(range(pos, len(run)))
        joined = "".join(parts)
        if sum(c.isdigit() for c in joined) < 8:
            continue
        # review30f: the gaps inside a finding by bisection (a list comprehension over every gap of the run for
        # every finding was quadratic: `4|11 1|11 11|1 ` × 16,000, 256 KB, took 24 s).
        starts, ends = [a for a, _ in gaps], [b for _, b in gaps]
        for f in scan(joined):
            if f.entity not in _KEEP or _SINGLES.fullmatch(joined, f.start, f.end):
                continue
            s, e = index[f.start], index[f.end - 1] + 1
            inside = [run[a:b] for a, b in gaps[bisect_right(ends, s):bisect_left(starts, e)]]
            if not any(c in _LAYOUT for g in inside for c in g):
                continue  # the value lies within plain spaces: the text's own scan has it
            if f.entity == "CREDIT_CARD" and not _ISSUER.match(joined, f.start):
                continue
            if any(_structural(g) for g in inside) and not _as_laid_out(f.entity, joined[f.start:f.end], inside,
                                                                               text, base + s):
                continue
            found.append(Finding(f.entity, base + s, base + e, f.score, f.detector))
    return found


def _structural(gap: str) -> bool:
    """A tab, a line, a cell, or a closer and an opener with a space between (`**4111** **1111**`: separate items,
    as markup.py reads them), rather than emphasis inside a group (`4**1**11`) or around one (`4111 _1111_ 1111`)."""
    return any(c in _CELL for c in gap) or (" " in gap and gap[0] in _EMPHASIS and gap[-1] in _EMPHASIS)


def _as_laid_out(entity: str, value: str, inside: list[str], text: str, at: int) -> bool:
    """A value across tabs, lines or cells: is it laid out as one (the same separator between all its groups, the
    groups its own: 4-4-4-4 for a card), with a word for it before (a card or SSN word within 120 characters)?
    A table or a column of numbers holds 16 digits that pass Luhn with an issuer's first digit in 4% of its rows of
    four 4-digit numbers (142 of 300 random numeric tables had a "card" before these checks)."""
    seps = {_TAG.sub(lambda m: m.group(1), g).replace(" ", "") for g in inside} - {""}  # plain spaces: a group's own
    if len(seps) != 1:
        return False  # `4111 | 1111 |` + line break + `| 1111 | 1111`: a row's end is no group separator
    if entity == "IBAN_CODE":
        return True  # a country code, its length and mod 97
    lo = max(0, at - _CUE_REACH)
    if entity == "CREDIT_CARD":
        return tuple(len(g) for g in _GROUP_SEP.split(value)) in _CARD_GROUPS and _CARD_CUE.search(text, lo, at) is not None
    if entity == "US_SSN":
        return tuple(len(g) for g in _GROUP_SEP.split(value)) == (3, 2, 4) and _SSN_CUE.search(text, lo, at) is not None
    return False


# Round 9: a value inside a file or identifier name (`receipt_4111111111111111.png`, `tax_536_22_8147.pdf`): `_` is a
# word character, so the patterns' word bounds read no value there. Each token holding a digit beside a `_` is read
# with its `_` as spaces (the same length: offsets carry over), all such tokens in one text, scanned once.
_US_DIGIT = re.compile(r"_[0-9]|[0-9]_")
_TOKEN_END = re.compile(r"[\s/\\\"'`<>()\[\]{}|,;:=]")
_US_REACH = 64  # how far a token is followed on each side of its `_`
_US_SEP = "\n\n\n"
_US_GROUPS = re.compile(r"[ _-]+")


def underscore_findings(text: str, scan: Callable[[str], Iterable[Finding]]) -> list[Finding]:
    """Card, IBAN and SSN findings in tokens whose digits `_` separates from a word or from each other."""
    if "_" not in text:
        return []
    spans: list[tuple[int, int]] = []
    pos = 0
    while (m := _US_DIGIT.search(text, pos)) is not None:
        a = max(0, m.start() - _US_REACH)
        back = _TOKEN_END.search(text[a:m.start()][::-1])
        lo = m.start() - back.start() if back else a
        e2 = _TOKEN_END.search(text, m.end(), m.end() + _US_REACH)
        hi = e2.start() if e2 else min(len(text), m.end() + _US_REACH)
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(hi, spans[-1][1]))
        else:
            spans.append((lo, hi))
        pos = max(hi, m.end())
    spans = [(a, b) for a, b in spans if sum(c.isdigit() for c in text[a:b]) >= 8]
    if not spans:
        return []
    starts: list[int] = []
    parts: list[str] = []
    at = 0
    for a, b in spans:
        starts.append(at)
        parts.append(text[a:b].replace("_", " "))
        at += b - a + len(_US_SEP)
    out: list[Finding] = []
    for f in scan(_US_SEP.join(parts)):
        i = bisect_right(starts, f.start) - 1
        a, b = spans[i]
        s, e = a + f.start - starts[i], a + f.end - starts[i]
        if f.entity in _KEEP and e <= b and "_" in text[max(0, s - 1):e + 1] and _grouped_as(f.entity, text[s:e]):
            out.append(Finding(f.entity, s, e, f.score, f.detector))
    return out


def _grouped_as(entity: str, value: str) -> bool:
    """A card's digits in one group or a card's groups (4-4-4-4, 4-6-5 ...), an SSN's as 3-2-4 or one group.
    review29d: a date and a time or a timestamp and a counter (`IMG_20230515_123456789.jpg`,
    `log_1700000000_123456.txt`) joined as one card passed Luhn one time in ten."""
    groups = tuple(len(g) for g in _US_GROUPS.split(value) if g)
    if len(groups) == 1 or entity == "IBAN_CODE":
        return True
    return groups in _CARD_GROUPS if entity == "CREDIT_CARD" else groups == (3, 2, 4)


def reversed_findings(text: str, scan: Callable[[str], Iterable[Finding]]) -> list[Finding]:
    """Findings in each stretch after an RLO of the text as written (normalisation removes the control), read
    in the order it is displayed; spans in `text`."""
    out: list[Finding] = []
    if _RLO not in text:
        return out
    i = text.find(_RLO)
    while i >= 0:
        m = _RLO_END.search(text, i + 1)
        end = m.start() if m else len(text)
        shown = text[i + 1:end][::-1]
        for f in scan(shown):
            out.append(Finding(f.entity, end - f.end, end - f.start, f.score, f.detector))
        i = text.find(_RLO, end)
    return out
