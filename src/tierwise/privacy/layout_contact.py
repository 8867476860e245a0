"""Phone numbers and IPv4 addresses broken up by layout (session 28, attack-privacy8): one group a tab-separated
column, a table cell or a line (`| phone | 415 | 555 | 2671 |`, `ip\\t203\\t0\\t113\\t45`, `(415)\\n555-\\n2671`,
`203.0.\\n113.45`). A reader takes one number; the patterns, which read only spaces, dots and dashes between groups,
read none.

Round 7 (privacy/layout.py) left these out on purpose: numeric tables and columns hold digit groups that make a
possible phone number by chance far more often than a checksummed card. So this view reads them only after a word
for one: a phone word (`phone`, `tel`, `mobile`, `call`, ...) or an IP word (`ip`, `host`, `server`, ...) within
`_REACH` characters before the run, the same separator between all the run's groups, and at least one tab, line
break, cell bar or cell tag among them. The run is joined (groups one space apart for a phone, one dot apart for
four octets) behind its cue word and scanned by the phone and IP recognizers; a finding becomes one over the run.

Cost: one search for a layout gap between two digit groups (led by a digit); the cue words only in the `_REACH`
characters before each such gap, the run pattern only in the `_REACH` characters after each cue, windows merged
(each character searched at most once by each): linear.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable

import regex

from tierwise.privacy.finding import Finding

_PHONE_WORDS = "phone|phones|tel|telephone|mobile|cellphone|fax|call|whatsapp|sms|contact|landline|movil|móvil|telefon"
_IP_WORDS = "ip|ips|ipv4|host|hostname|server|gateway|router|address"
_CUE = regex.compile(rf"(?i)(?<![A-Za-z0-9_])(?:(?P<phone>{_PHONE_WORDS})|(?P<ip>{_IP_WORDS}))(?![A-Za-z0-9_])")
_REACH = 160  # a table's header line and its first row
# A group: digits with an optional `+`, brackets and inner dots or dashes; may end in the dot or dash before a break.
_GROUP = r"\+?\(?[0-9]{1,5}\)?(?:[.-][0-9]{1,5})*[.-]?"
_GAP = r"(?:[ \t\r\n|*_]|<br\s*/?>|</?t[dhr](?:\s[^<>]{0,48})?>){1,48}"
_RUN = re.compile(rf"(?<![A-Za-z0-9.+-]){_GROUP}(?:{_GAP}{_GROUP}){{1,7}}(?![A-Za-z0-9])")
_GAP_RX = re.compile(_GAP)
# Every run with a layout gap has one: a group's end, a gap with a tab, line break, bar or tag, the next group's start.
_HINT = regex.compile(r"[0-9][.)-]?[ *_]{0,8}(?:[\t\r\n|]|<[^<>]{0,60}>)(?:[ \t\r\n|*_]|<[^<>]{0,60}>){0,47}[+(]?[0-9]")
_LAYOUT = frozenset("\t\r\n|<")
_TAG = re.compile(r"<(/?\w+)[^<>]*>")
# Between readings in the one text scanned: no phone or IP pattern reads over three line breaks (encoded.py).
_SEP = "\n\n\n"
_OCTETS = re.compile(r"(?:25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})(?:\.(?:25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})){3}")


def _windows(text: str) -> Iterable[tuple[int, int, str]]:
    """(start, end, "phone", "ip" or "both") after each cue word that has a layout gap between two digit groups
    (`_HINT`) within `_REACH` characters after it; windows that overlap merged. The hints are found first (a
    pattern led by a digit, which the `regex` module does not try at every position) and the cue words only
    before one (a case-blind alternation over a whole text cost ~300 µs per 8,000 characters)."""
    merged: list[tuple[int, int, str]] = []
    done = 0
    for h in _HINT.finditer(text):
        lo = max(done, h.start() - _REACH)
        done = h.start() + 1
        for m in _CUE.finditer(text, lo, h.start() + 1):
            kind = "phone" if m.group("phone") else "ip"
            a, b = m.end(), min(len(text), m.end() + _REACH)
            if merged and a <= merged[-1][1]:
                la, lb, lk = merged[-1]
                merged[-1] = (la, max(lb, b), lk if lk == kind else "both")
            else:
                merged.append((a, b, kind))
    yield from merged


def contact_layout_findings(text: str, scan: Callable[[str], Iterable[Finding]]) -> list[Finding]:
    """Phone numbers and IPv4 addresses whose groups layout separates, after a word for one; spans in `text`."""
    found: list[Finding] = []
    parts: list[str] = []
    starts: list[int] = []
    cands: list[tuple[int, int, str, int, int]] = []  # (where the reading starts in the batch, its length, entity, run)
    at = 0
    if not any(c in text for c in "\t\n|<"):
        return found
    for a, b, kind in _windows(text):
        for m in _RUN.finditer(text, a, b):
            run = m.group()
            gaps = [g.span() for g in _GAP_RX.finditer(run)]
            seps = {_TAG.sub(lambda t: t.group(1), run[x:y]).replace(" ", "") for x, y in gaps}
            if not any(c in _LAYOUT for x, y in gaps for c in run[x:y]) or len(seps - {""}) != 1:
                continue  # plain spaces (the patterns read those), or a row's end between groups
            groups, pos = [], 0
            for x, y in gaps:
                groups.append(run[pos:x])
                pos = y
            groups.append(run[pos:])
            for cand, want in _joins(groups, kind):
                cue = "phone: " if want == "PHONE_NUMBER" else "ip "
                starts.append(at)
                cands.append((at + len(cue), len(cand), want, m.start(), m.end()))
                parts.append(cue + cand + _SEP)
                at += len(cue) + len(cand) + len(_SEP)
    if not cands:
        return found
    # every reading in one text, scanned once (review28e: a scan per run, `tel 1\t2;` over and over, cost ~8 s/MB)
    hit: set[tuple[int, int]] = set()
    for f in scan("".join(parts)):
        i = bisect_right(starts, f.start) - 1
        at, n, want, a, b = cands[i]
        # the whole of the joined run, not a part of it (`555 2671` out of a longer run of a table)
        if f.entity == want and f.start <= at + 1 and at + n - 1 <= f.end <= at + n and (a, b) not in hit:
            hit.add((a, b))
            found.append(Finding(want, a, b, 0.9, "layout-contact"))
    return found


def _joins(groups: list[str], kind: str) -> Iterable[tuple[str, str]]:
    """The run's readings: four octets joined by dots (an IP), the groups one space apart (a phone number; a group
    ending in a dash or dot runs on into the next)."""
    if kind in ("ip", "both"):
        dotted = "".join(g if g.endswith(".") else g + "." for g in groups).rstrip(".")
        if _OCTETS.fullmatch(dotted):
            yield dotted, "IP_ADDRESS"
    if kind in ("phone", "both"):
        yield "".join(g if g.endswith(("-", ".")) else g + " " for g in groups).strip(), "PHONE_NUMBER"


