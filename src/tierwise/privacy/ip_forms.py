"""IPv4 addresses written in the other forms a resolver or a reader takes (round 9, attack-privacy9).

The IP recognizer reads the dotted-decimal form (`203.0.113.45`). The same address reaches a model, and a browser or
`ping`, as:

- `dot` words or defanged dots: `203 dot 0 dot 113 dot 45`, `203(dot)0(dot)113(dot)45`, `203 . 0 . 113 . 45` (the
  same separator between all four parts; a `.` only with a space on each side, which a version or a sum never has,
  and not four single digits: `steps 1 . 2 . 3 . 4`);
- parts in hex or octal (`0xCB.0x00.0x71.0x2D`, `0313.0.0161.055`: what `inet_aton` accepts); at least one part
  written so (`0x`, or a leading zero and two more digits: `1.02.03.04` is a version), every part 0-255;
- one number: `http://3405803821/`, `http://0xcb00712d/` as a URL's host, or after a word for an address (`ip`,
  `ipv4`, `ip address`, `inet`, `remote_addr`) within a few characters: a decimal of 8-10 digits from 1.0.0.0 up,
  or `0x` and 8 hex digits. A bare long number elsewhere is an id, a count or a timestamp, not read.

Findings are IP_ADDRESS over the whole written form (its span in the text given). Each search is gated by a substring
test (`dot`, ` . `, `0x`, `://`, a dotted part with a leading zero, a cue word) and runs on the standard library's
`re` with bounded repeats: linear in the text.
"""

from __future__ import annotations

import re

from tierwise.privacy.finding import Finding

_NAME = "view.ip_forms"
_SCORE = 0.9
# review29d: the separators may differ (`203 dot 0 dot 113 . 45`, `203(dot)0 dot 113 dot 45` went unread)
_DOT_SEP = r"(\s{0,3}(?:\(dot\)|\[dot\]|\{dot\}|<dot>|dot)\s{0,3}|[ \t]{1,3}\.[ \t]{1,3})"
_DOT_WORDS = re.compile(
    rf"(?<![\w.])(\d{{1,3}}){_DOT_SEP}(\d{{1,3}}){_DOT_SEP}(\d{{1,3}}){_DOT_SEP}(\d{{1,3}})(?![\w]|\.\d)",
    re.IGNORECASE,
)
_PART = r"(?:0[xX][0-9a-fA-F]{1,2}|[0-9]{1,4})"
_BASES = re.compile(rf"(?<![\w.]){_PART}\.{_PART}\.{_PART}\.{_PART}(?![\w]|\.\d)")
# Where a dotted address with a hex or octal part can be: `0x` and a hex digit, or a zero and two octal digits
# (led by the literal `0`: a pattern led by a lookbehind is tried at every position, ~300 µs per 8,000 characters)
_BASES_AT = re.compile(r"0[xX][0-9a-fA-F]|0[0-7]{2}")
_BASES_REACH = 20  # the longest such address: `0xCB.0x00.0x71.0x2D` is 19 characters
_URL_HOST = re.compile(r"://(?:[^/@\s]{1,256}@)?(0[xX][0-9a-fA-F]{1,8}|[0-9]{8,10})(?=[/:?#\s\"'<>)\]]|$)")
# One number after a word for an address: the numbers are found first (`_NUMBER`), the word looked for in the
# `_CUE_REACH` characters before each (a case-blind alternation over the whole text cost ~250 µs per 8,000 characters)
_NUMBER = re.compile(r"(?<![\w.])(?:0[xX][0-9a-fA-F]{8}|[0-9]{8,10})(?![\w.])")
_HEX_NUMBER_AT = re.compile(r"0[xX][0-9a-fA-F]{8}")
_DIGIT_MASK = bytes(
    0x30 if 48 <= c <= 57 else 0x2E for c in range(256)
)  # digit runs by `bytes.find` (a digit class
# leading a pattern is tried at every position: ~85 µs per 8,000 characters)
_CUE = re.compile(
    r"\b(?:ip|ipv4|ip[ _-]?addr(?:ess)?|inet|remote[ _-]?addr|client[ _-]?ip|src[ _-]?ip|dst[ _-]?ip)\b"
    r"[\s:=\"'#-]{0,6}(?:is\s{1,3})?\Z",
    re.IGNORECASE,
)
_CUE_REACH = 32
_LOW = 1 << 24  # 1.0.0.0: a smaller number as an address is in 0.0.0.0/8, and far more often a count


def _part(p: str) -> int | None:
    """A dotted part's value as `inet_aton` reads it (`0x` hex, a leading zero octal), or None."""
    try:
        if p[:2] in ("0x", "0X"):
            return int(p[2:], 16)
        if len(p) > 1 and p[0] == "0":
            return int(p, 8)
        return int(p)
    except ValueError:
        return None


def ip_form_findings(text: str) -> list[Finding]:
    """IP_ADDRESS findings for the forms above, spans in `text`."""
    out: list[Finding] = []
    if "dot" in text or "DOT" in text or "Dot" in text or " . " in text or "\t.\t" in text:
        for m in _DOT_WORDS.finditer(text):
            parts = [m.group(i) for i in (1, 3, 5, 7)]
            if "." in m.group(2) + m.group(4) + m.group(6) and all(len(p) == 1 for p in parts):
                continue  # `steps 1 . 2 . 3 . 4`: a list, as often as an address
            if all(int(p) <= 255 for p in parts):
                out.append(Finding("IP_ADDRESS", m.start(), m.end(), _SCORE, _NAME))
    done = 0
    for anchor in _BASES_AT.finditer(text):
        if anchor.start() < done:
            continue
        for m in _BASES.finditer(text, max(done, anchor.start() - _BASES_REACH), anchor.end() + _BASES_REACH):
            if not m.start() <= anchor.start() < m.end():
                continue
            done = m.end()
            parts = m.group().split(".")
            if not any(p[:2] in ("0x", "0X") or (len(p) > 2 and p[0] == "0") for p in parts):
                continue  # plain dotted decimal (the IP recognizer's), or `1.02.03.04`: a version, a date
            values = [_part(p) for p in parts]
            if all(v is not None and v <= 255 for v in values):
                out.append(Finding("IP_ADDRESS", m.start(), m.end(), _SCORE, _NAME))
    if "://" in text:
        for m in _URL_HOST.finditer(text):
            v = _part(m.group(1))
            if v is not None and _LOW <= v < 1 << 32:
                out.append(Finding("IP_ADDRESS", m.start(1), m.end(1), _SCORE, _NAME))
    starts: list[int] = []
    mask = text.encode("latin-1", errors="replace").translate(_DIGIT_MASK)
    i = mask.find(b"00000000")
    while i >= 0:
        starts.append(i)
        j = mask.find(b".", i)
        i = -1 if j < 0 else mask.find(b"00000000", j)
    if "0x" in text or "0X" in text:
        starts = sorted(starts + [m.start() for m in _HEX_NUMBER_AT.finditer(text)])
    for at in starts:
        num = _NUMBER.match(text, at)
        if num is None:
            continue
        v = _part(num.group())
        if (
            v is not None
            and _LOW <= v < 1 << 32
            and _CUE.search(text, max(0, num.start() - _CUE_REACH), num.start())
        ):
            out.append(Finding("IP_ADDRESS", num.start(), num.end(), _SCORE, _NAME))
    return out
