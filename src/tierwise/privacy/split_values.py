"""Values split across texts: a card number, an e-mail or a key cut in two (or more) between
consecutive message parts, messages or tool-call arguments is still one value to the model that
reads the conversation, and each piece alone matches no pattern.

`split_findings(texts, scan)` scans each junction of consecutive texts: the last `WINDOW`
characters before it and the first `WINDOW` after it (taken across several texts when they are
short), joined with nothing between them, the way a reader runs them together. A value found
across the junction becomes one finding per piece, in each text's own offsets, with the value's
entity: every piece is redacted (or counted for the policy) like a whole value. Not when a piece
already holds a whole value of the same entity found in its own text: that is the value run on
into the next text (`...is jane@example.com.` + `My card...` reads as `jane@example.com.My`),
not a split one. A piece without a letter or digit (the separator at the cut) is left alone.

Cost: one scan of at most 2 x WINDOW characters per junction, structured detectors only (the
caller passes a scan without NER: names split mid-word are not looked for), and only at a
junction where the word just before the cut or the word just after it holds a digit or `@`: a
value cut there has its digits or `@` on at least one side of the cut (a card, IBAN, id or phone
number is digits; an e-mail address has its `@` on one side; keys and tokens have digits),
while the junctions of ordinary prose have none. Not looked for: a word cut in two (`Blue` +
`bird` of a user dictionary), an address cut between two words with no digit
(`221B Baker` + `Street`), a name.

Results are kept per window (`cache`, keyed by a BLAKE2b digest of the window, never its text,
keyed with the client's own salt so that no client can time another's windows, in the client's own
part of a FindingsCache so that no client's windows push out another's): a conversation re-sends its
history every turn, so each junction is scanned once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from tierwise.privacy.detect import resolve_overlaps
from tierwise.privacy.finding import Finding
from tierwise.privacy.findings_cache import FindingsCache

# Stretch on each side of a junction that a split value is looked for in: an IBAN with spaces is
# 42 characters, a card 23, an e-mail address rarely over 60. A longer value (an API key of ~110)
# is still found from its part inside the window, and a piece that reaches the window's edge is
# carried on to the end of its run of non-space characters in its text.
WINDOW = 64
DETECTOR = "split"
NEAR = 24
_DIGIT_OR_AT = re.compile(r"[\d@]")  # (str patterns: \d is every Unicode decimal digit)
_DIGIT_LIKE = re.compile(r"(?i:zero|oh|one|two|three|four|five|six|seven|eight|nine|niner)[,.-]?|[OolI]{2,}[,.-]?")

Scan = Callable[[str], list[Finding]]


def _side(texts: Sequence[str], k: int, step: int) -> list[tuple[int, int, int]]:
    """(text index, start, end) pieces from the junction before text k outwards, WINDOW long in
    total: backwards (step -1) from text k-1, forwards (step 1) from text k. In reading order."""
    parts: list[tuple[int, int, int]] = []
    need = WINDOW
    i = k - 1 if step < 0 else k
    while 0 <= i < len(texts) and need > 0:
        t = texts[i]
        if step < 0:
            a = max(0, len(t) - need)
            parts.append((i, a, len(t)))
            need -= len(t) - a
        else:
            b = min(len(t), need)
            parts.append((i, 0, b))
            need -= b
        i += step
    return parts[::-1] if step < 0 else parts


def _may_cross(left: str, right: str) -> bool:
    """Does the word before the cut or the word after it hold a digit or `@`, or is either a digit word or made of
    look-alikes of digits (`one`, `llll`: privacy/digit_views.py reads numbers written so, session 28)?"""
    before, after = left[-NEAR:].split(), right[:NEAR].split()
    edge = (before[-1] if before else "") + (after[0] if after else "")
    if _DIGIT_OR_AT.search(edge) is not None:
        return True
    return any(_DIGIT_LIKE.fullmatch(w) for w in (before[-1:] + after[:1]))


def _scan_window(window: str, scan: Scan, cache: FindingsCache | None, salt: bytes) -> list[Finding]:
    if cache is None:
        return scan(window)
    key = FindingsCache.key(salt, window)
    got = cache.get(key)
    if got is None:
        got = scan(window)
        cache.put(key, got)
    return got


def split_findings(texts: Sequence[str], scan: Scan, own: Callable[[str], list[Finding]],
                   cache: FindingsCache | None = None, salt: bytes = b"") -> dict[int, list[Finding]]:
    """Text index -> pieces of values that cross from one text into the next (empty texts are
    skipped over: they separate nothing). `own(text)`: the text's own findings; `cache`: the windows'
    findings, kept by the caller across calls; `salt` (up to 64 bytes): the client's."""
    idx = [i for i, t in enumerate(texts) if t]
    seq = [texts[i] for i in idx]
    out: dict[int, list[Finding]] = {}
    for k in range(1, len(seq)):
        if not _may_cross(seq[k - 1], seq[k]):
            continue
        parts = _side(seq, k, -1) + _side(seq, k, 1)
        window = "".join(seq[i][a:b] for i, a, b in parts)
        junction = sum(b - a for i, a, b in parts if i < k)
        for f in _scan_window(window, scan, cache, salt):
            if not f.start < junction < f.end:
                continue  # inside one text: that text's own scan finds it
            pieces, w0 = [], 0
            for i, a, b in parts:
                w1 = w0 + (b - a)
                s, e = max(f.start, w0), min(f.end, w1)
                if s < e:
                    pieces.append((i, a + s - w0, a + e - w0))
                w0 = w1
            if any(g.entity == f.entity and s <= g.start and g.end <= e for i, s, e in pieces for g in own(seq[i])):
                continue  # a whole value run on into the next text
            for i, s, e in pieces:
                t = seq[i]
                if s == parts[0][1] and i == parts[0][0]:  # at the window's left edge: to the token's start
                    while s > 0 and not t[s - 1].isspace():
                        s -= 1
                if e == parts[-1][2] and i == parts[-1][0]:  # at its right edge: to the token's end
                    while e < len(t) and not t[e].isspace():
                        e += 1
                if any(c.isalnum() for c in t[s:e]):
                    out.setdefault(idx[i], []).append(Finding(f.entity, s, e, f.score, DETECTOR))
    return {i: resolve_overlaps(fs) for i, fs in out.items()}  # (a value seen from two junctions)


def merge(own: list[Finding], pieces: list[Finding]) -> list[Finding]:
    """A text's own findings with the pieces of split values in it; a piece overlapping an own
    finding grows to cover both (redacting more, never less, of either)."""
    grown = []
    for p in resolve_overlaps(pieces):
        s, e = p.start, p.end
        for f in own:
            if f.start < e and s < f.end:
                s, e = min(s, f.start), max(e, f.end)
        grown.append(Finding(p.entity, s, e, p.score, p.detector))
    kept = [f for f in own if not any(f.start < g.end and g.start < f.end for g in grown)]
    return resolve_overlaps(kept + grown)
