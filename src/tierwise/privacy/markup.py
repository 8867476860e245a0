"""Values with markup inside them: `j<b></b>ane@ex<span>ample</span>.com`, `jane.doe@**example**.com`,
`4111 **1111** 1111 1111`, `` jane.doe@`example`.com ``, `jane<!-- -->@example.com`. A reader of the rendered
text (and a model reading the source) takes the value at once; the patterns, which allow no `<b>` or `**` inside
an address or between a card's groups, did not (session 25, attack-privacy5).

The text itself is still scanned as written (a value inside a tag's attribute or a comment is found there); this
is a second view, like `spaced.py`: around each piece of inline markup that touches a value's character (a
letter, digit, `@`, `.`, `+`, `-`, `_`), the markup is removed and the stretch scanned by the structured
recognizers (no NER). Only findings that held markup inside them are kept, over the original span (markup
included, so redaction removes it whole). What is removed: inline HTML elements' tags (`b`, `i`, `em`, `strong`,
`span`, `font`, `code`, `a`, `mark`, `sub`, `sup`, `wbr`, ...; block elements such as `<br>`, `<p>`, `<td>` mean a
line or a cell and are left, as line breaks are), HTML comments, Markdown emphasis and code-span markers (`*`,
`**`, `***`, `~~`, backticks) that have their twin on the line (emphasis and code spans come in pairs: `30/100 *120`
is an operator); a `*` between two digits is arithmetic (`2**32`, `60*60*24`), not emphasis: kept. Street
addresses, dates, places and names are not taken from this view (`` `22` on PATH `` read as a street).

Each stretch is at most `_REACH` characters either side of the markup it is built around, stretches are merged,
and each character is searched once: linear in the text.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable

import regex

from tierwise.privacy.finding import Finding

_INLINE = ("a|abbr|b|bdi|bdo|big|cite|code|data|del|dfn|em|font|i|ins|kbd|mark|q|s|samp|small|span|strike|strong"
           "|sub|sup|time|tt|u|var|wbr")
# One or more adjacent pieces of markup (`<b></b>`, `**`, `<span class="x">`).
_PIECES = regex.compile(rf"(?:</?(?i:{_INLINE})(?:\s[^<>]{{0,256}})?/?>|<!--[^<>]{{0,256}}?-->|\*{{1,3}}|~~|`{{1,3}})+")
_VALUE_CHAR = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@.+-_")
_DIGITS = frozenset("0123456789")
_REACH = 64
_SPACES = regex.compile(r"\s+")
# Entities whose findings here would be guesses from words the markup set apart (`` `22` on PATH `` read as a
# street): this view is for values markup splits, which have an `@` or digits in a fixed shape.
_NOT_HERE = frozenset({"STREET_ADDRESS", "LOCATION", "DATE_TIME", "DATE_OF_BIRTH", "NRP", "PERSON", "ORGANIZATION", "URL"})


def _pieces(text: str) -> list[tuple[int, int]]:
    """(start, end) of each markup run that touches a value character on at least one side."""
    out: list[tuple[int, int]] = []
    n = len(text)
    for m in _PIECES.finditer(text):
        a, b = m.span()
        left = text[a - 1] if a else " "
        right = text[b] if b < n else " "
        if left not in _VALUE_CHAR and right not in _VALUE_CHAR:
            continue
        if "<" not in text[a:b]:  # Markdown only
            if _between_digits(text, a, b):  # `2**32`, `60*60`: arithmetic
                continue
            if not _paired(text, a, b):  # `30/100 *120`: an operator, not emphasis
                continue
        out.append((a, b))
    return out


def _between_digits(text: str, a: int, b: int) -> bool:
    return a > 0 and b < len(text) and text[a - 1] in _DIGITS and text[b] in _DIGITS


def _paired(text: str, a: int, b: int) -> bool:
    """Does the Markdown marker text[a:b] have its twin on its line within `_REACH`: a closer after it if it can
    open (no space after it), an opener before it if it can close (no space before it)? Emphasis and code spans
    come in pairs (`**1111**`) with no other such marker between; an operator (`30/100 *120`, `a * b`) does not."""
    mark, n = text[a:b], len(text)
    if b < n and not text[b].isspace():  # can open: a closer follows, no space before it
        j = text.find(mark, b + 1, b + _REACH + len(mark))
        while j >= 0 and "\n" not in text[b:j] and mark[0] not in text[b:j]:
            if not text[j - 1].isspace() and not _between_digits(text, j, j + len(mark)):
                return True
            j = text.find(mark, j + len(mark), b + _REACH + len(mark))
    if a > 0 and not text[a - 1].isspace():  # can close: an opener before, no space after it
        j = text.rfind(mark, max(0, a - _REACH - len(mark)), a - 1)
        while j >= 0 and "\n" not in text[j:a] and mark[0] not in text[j + len(mark):a]:
            if j + len(mark) < n and not text[j + len(mark)].isspace() and not _between_digits(text, j, j + len(mark)):
                return True
            j = text.rfind(mark, max(0, a - _REACH - len(mark)), j)
    return False


def markup_findings(text: str, scan: Callable[[str], Iterable[Finding]]) -> list[Finding]:
    """Findings of `scan` (the structured recognizers) in the stretches around inline markup with the markup
    removed, over their original spans, each holding at least one removed piece."""
    if "<" not in text and "*" not in text and "`" not in text and "~~" not in text:
        return []
    pieces = _pieces(text)
    if not pieces:
        return []
    n = len(text)
    starts = [a for a, _ in pieces]
    # stretches around the pieces, merged: (lo, hi, first piece index, end piece index)
    stretches: list[list[int]] = []
    for k, (a, b) in enumerate(pieces):
        lo, hi = max(0, a - _REACH), min(n, b + _REACH)
        if stretches and lo <= stretches[-1][1]:
            stretches[-1][1] = max(stretches[-1][1], hi)
            stretches[-1][3] = k + 1
        else:
            stretches.append([lo, hi, k, k + 1])
    found: list[Finding] = []
    for lo, hi, k0, k1 in stretches:
        parts: list[str] = []
        index: list[int] = []  # original offset of each character of the stripped stretch
        pos = lo
        for a, b in pieces[k0:k1]:
            a, b = max(a, lo), min(b, hi)
            parts.append(text[pos:a])
            index.extend(range(pos, a))
            pos = b
        parts.append(text[pos:hi])
        index.extend(range(pos, hi))
        stripped = "".join(parts)
        if "@" not in stripped and sum(c in _DIGITS for c in stripped) < 6:
            continue  # every structured value the markup could hide has an `@` or six digits
        for f in scan(stripped):
            if f.entity in _NOT_HERE:
                continue
            s, e = index[f.start], index[f.end - 1] + 1
            i = bisect_right(starts, s, k0, k1)  # the first piece starting after the value's start
            if i < k1 and starts[i] < e and not _items(text, pieces, i, k1, s, e):  # markup inside the value
                found.append(Finding(f.entity, s, e, f.score, f.detector))
    return found


def _items(text: str, pieces: list[tuple[int, int]], i: int, k1: int, s: int, e: int) -> bool:
    """Is text[s:e] separate items, each wrapped in markup of its own (`` `8080` `8443` ``, `*0.91* *0.88*`,
    `<code>6386</code> <i>8023</i>`): every space in it between a closing and an opening piece, no piece inside
    a word? Read with the markup removed they were a phone number ("Took `120` `340` `560` ms", "`2024` `2025`");
    a reader sees a list, as of table cells (session 25, review25b)."""
    opened, closed = set(), set()  # where pieces start, where they end
    while i < k1 and pieces[i][0] < e:
        a, b = pieces[i]
        if not (text[a - 1].isspace() if a > s else True) and not (text[b].isspace() if b < e else True):
            return False  # a piece inside a word: `4111<b>1111</b>`, `jane.doe@**example**.com`
        opened.add(a)
        closed.add(b)
        i += 1
    gaps = 0
    for m in _SPACES.finditer(text, s, e):
        if m.start() not in closed or m.end() not in opened:  # `4111 **1111**`: a bare group beside a wrapped one
            return False
        gaps += 1
    return gaps > 0
