"""Normalise text before matching, and map spans found in it back to the original text.

Hostile or merely unusual text hides identifiers from patterns: zero-width spaces inside a
card number, full-width digits (`４１１１`), Arabic-Indic digits, non-breaking spaces, Unicode
dashes, bidi overrides, letters of another script that look Latin (`DЕ89...` with a Cyrillic
`Е`), escapes a reader undoes at sight (`jane%40example.com`, `&#64;`, `\\u0040`).
`normalise` removes format characters (Unicode category Cf: zero-width space/joiners, bidi
controls, soft hyphen, BOM), maps every decimal digit to ASCII, every dash to `-`, and applies
NFKC per character. It also removes the other default-ignorable characters (variation
selectors, the combining grapheme joiner, Mongolian variation selectors, Hangul fillers: they
render as nothing or nearly so) and a combining mark placed on an ASCII character
(`4\u0301111...` still reads as a card number to a model).

Look-alike letters: a character that Unicode's confusables data (TR39, `confusables.txt`, as
shipped by the PyPI package `confusable-homoglyphs`) lists as confusable with one ASCII letter
or digit becomes that character, but only inside a whitespace-delimited token that also holds
an ASCII letter or a digit: that is how a look-alike hides a Latin identifier (`sk-аnt-...`,
`ΑKIA...`, `DЕ89 3704...`), while Russian or Greek prose keeps its own letters (no
half-Latinised words for the name and secret detectors to misread).

Escapes: `%XX` that decodes to a letter, digit or one of ` @.+-_:`; HTML character references
(`&#64;`, `&#x40;`, `&commat;`); `\\uXXXX` and `\\xXX`; a backslash before `@ . + _ -` (Perl
strings, regular expressions, Markdown: `jane\\.doe\\@example\\.com`); quoted-printable `=40` and
`=2E` before a letter (`jane.doe=40example.com`; `phone=4045551234` keeps its digits), `=2E` between
digits and a soft line break (`=` + newline inside a word); each of those escaped again (`%2540`, `&amp;#64;`,
`\\\\u0040`) when it stands for a letter, digit or one of ` @.+-_:`. Each becomes the character it stands for.

`SpanMap` turns a span of the normalised text into the span of the original that produced it
(zero-width characters inside a value are inside the span, and a finding covering a decoded
escape covers the whole escape, so redaction removes them too).

Defanged `[@]`, `[.]` become `@` and `.`; the ideographic full stops IDNA
reads as a domain's dots (`。`, `｡`) become `.` inside a token with Latin letters or digits.

Text with no non-ASCII character, `%`, `&`, backslash, `=40`, `=2E`, `=` + newline or a defanged `@`/`.` is
returned as is with no map: the common case costs one `isascii()` and a few substring tests (those of more than
one character only after their first character is found).
"""

from __future__ import annotations

import binascii
import functools
import heapq
import html
import importlib.resources
import json
import unicodedata
from bisect import bisect_right

import regex

# Two scans, merged by position (one alternation of both is 15x slower on ASCII text): non-ASCII
# runs, and escapes (percent-encoding, an HTML character reference, \uXXXX, \xXX).
_NON_ASCII = regex.compile(r"[^\x00-\x7f]+")
# Escaped twice (`%2540`, `&amp;#64;`, `\\\\u0040`: an escape written into text that is escaped again, as JSON
# in a JSON string is) stands for the same character: the inner escape is decoded too. Quoted-printable's `=2E`
# also between digits (`192=2E168=2E1=2E20`), and its soft line break (`=` at a line's end, inside a word).
_ESCAPE = regex.compile(r"%(?:25){0,4}[0-9A-Fa-f]{2}|&(?:amp;){0,4}(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?"
                        r"|\\{1,4}u[0-9A-Fa-f]{4}|\\{1,4}x[0-9A-Fa-f]{2}|\\{1,4}[@.+_-]"
                        r"|(?:=[0-9A-Fa-f]{2}){3,}|=(?:40|2[Ee])(?=[A-Za-z])|\+A[A-Za-z0-9+/]{2,}-?"
                        r"|%u[0-9A-Fa-f]{4}|\\{1,2}[0-9A-Fa-f]{1,6}(?:\r\n|[ \t\n])?"
                        r"|\\{1,2}N\{[A-Za-z][A-Za-z0-9 -]{1,60}\}"
                        r"|(?<=[0-9])=2[Ee](?=[0-9])|(?<=[^\s=])=\r?\n(?=\S)"
                        r"|\[[@.]\]")
# Quoted-printable runs (`=6A=61=6E=65=40...`, three escapes or more) and UTF-7's base64 runs of ASCII text (`+AEA-`:
# UTF-16 of an ASCII character starts with a zero byte, so its base64 starts with `A`): round 9. Looked for only when
# one is there (`_QP_RUN`, `+A`): most text with an `=` or a `+` holds neither.
# review29d: lower-case hex too (`=6a=61=6e...`: RFC 2045 asks for capitals, decoders, Python's `quopri` among them,
# read both)
_QP_RUN = regex.compile(r"=[0-9A-Fa-f]{2}=[0-9A-Fa-f]{2}=[0-9A-Fa-f]{2}")
_PERCENT_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 @.+-_:")
# One encoding inside another (`%26%2364%3B` is a percent-encoded `&#64;`, `&#37;40` an HTML reference to the
# `%` of `%40`): a percent escape may also stand for the characters that start an escape, and a text whose
# decoded escapes made a new one is normalised again (at most `_PASSES` times; session 26, attack-privacy6).
_PERCENT_NESTED = _PERCENT_OK | frozenset("&#;%\\")
_STARTS_ESCAPE = frozenset("%&\\")
_PASSES = 3
# Default_Ignorable_Code_Point characters outside category Cf (those are removed by category).
_IGNORABLE = regex.compile(r"[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0"
                           r"\U000e0000-\U000e0fff]")
_SPACE = regex.compile(r"\s")
_SPACE_BEFORE = regex.compile(r"\s", regex.REVERSE)
_LATIN_OR_DIGIT = regex.compile(r"[0-9A-Za-z\p{Nd}]")
NEAR = 64  # how far from a look-alike its token is searched for Latin letters or digits
_cache: dict[str, str] = {}
_CACHE_MAX = 65536


@functools.cache
def confusables() -> dict[str, str]:
    """Character -> the one ASCII letter or digit Unicode lists it as confusable with (1,300+:
    Cyrillic, Greek, Armenian, Cherokee, mathematical and other look-alikes)."""
    data = json.loads(importlib.resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    out = {}
    for ch, entries in data.items():
        if len(ch) == 1 and not ch.isascii():
            ascii_ = [e["c"] for e in entries if len(e["c"]) == 1 and e["c"].isascii() and e["c"].isalnum()]
            if len(ascii_) == 1:
                # UTS #39 folds I, l and 1 to `l`; a capital look-alike (Cyrillic `І`, Greek `Ι`)
                # stands for `I` in what it hides (`ІT60...` is an Italian IBAN).
                out[ch] = "I" if ascii_[0] == "l" and ch.isupper() else ascii_[0]
    return out


# What one non-ASCII character becomes, when that does not depend on its neighbours: its
# replacement, or MARK (a combining mark: removed when placed on an ASCII character), or
# (LOOK, the ASCII character) for a look-alike (replaced inside a token with Latin or digits).
MARK, LOOK, SEP = "\x00mark", "\x00look", "\x00sep"
# Dots that group digits in print and in hostile text (`4111•1111•1111•1111`, `536·22·8147`): a `-` between two
# digits, as written elsewhere (a bullet list keeps its bullets). Round 9.
_DIGIT_SEPS = frozenset("\u2022\u00b7\u2219\u22c5\u2027\u30fb\u2024\u2981\u25cf\u00a6")
_info: dict[str, str | tuple[str, str]] = {}


# The full stops IDNA (UTS #46) reads as a domain's dots (`jane@example。com` is an address to a mail client):
# look-alikes of `.`, replaced like the confusables (only in a token with Latin letters or digits).
# (The full-width `．` is not here: NFKC folds it to `.` wherever it is, as it does the rest of a full-width address.)
_IDNA_DOTS = {"\u3002": ".", "\uff61": "."}


def _char_info(ch: str) -> str | tuple[str, str]:
    got = _info.get(ch)
    if got is None:
        if ch in _IDNA_DOTS:
            got = (LOOK, _IDNA_DOTS[ch])
        elif ch in _DIGIT_SEPS:
            got = SEP
        elif _IGNORABLE.match(ch):
            got = ""
        elif unicodedata.category(ch) in ("Mn", "Me"):  # Me: the keycap `4\ufe0f\u20e3` and enclosing circles (round 9)
            got = MARK
        else:
            got = _norm_char(ch)
            look = confusables().get(ch) if got == ch else None
            if look is not None:
                got = (LOOK, look)
        if len(_info) < _CACHE_MAX:
            _info[ch] = got
    return got


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


def _unescape(esc: str) -> str | None:
    """The character(s) an escape stands for, normalised; None: leave it as written."""
    if esc[0] == "%" and esc[1] != "u":  # `%40`, and `%2540` (the `%` of `%40` encoded again)
        ch = chr(int(esc[-2:], 16))
        return ch if ch in _PERCENT_NESTED else None
    if esc[1] == "u" and esc[0] == "%":  # JavaScript's `escape()`: `%u0040`
        code = int(esc[2:], 16)
        return None if 0xD800 <= code <= 0xDFFF else "".join(_norm_char(c) for c in chr(code))
    if esc[0] == "[":  # defanged, as security write-ups do: `jane.doe[@]example[.]com`
        return esc[1]
    if esc[0] == "=":  # quoted-printable `=40` / `=2E`; a soft line break (`=` + newline) is nothing
        if esc[1] in "\r\n":
            return ""
        if len(esc) == 3:
            return chr(int(esc[1:], 16))
        try:  # a run is bytes: UTF-8 (`Ren=C3=A9=40example.com`)
            got = bytes(int(esc[i:i + 2], 16) for i in range(1, len(esc), 3)).decode("utf-8")
        except UnicodeDecodeError:
            return None
        return got if _plain_run(got) else None
    if esc[0] == "+":  # UTF-7's `+AEA-`: base64 of UTF-16, the bits left over zero
        return _utf7(esc[1:].rstrip("-"))
    if esc[0] == "\\":
        inner = esc.lstrip("\\")
        twice = len(esc) - len(inner) > 1  # `\\u0040`: a JSON string's escape, escaped again
        if len(inner) == 1 and inner in "@.+_-":  # `\@`, `\.`: Perl strings, regexes, Markdown (`jane\.doe\@example\.com`)
            return inner
        if inner[0] == "N":  # Python's `\N{COMMERCIAL AT}`
            try:
                got = unicodedata.lookup(inner[2:-1])
            except KeyError:
                return None
            return "".join(_norm_char(c) for c in got)
        if inner[0] not in "ux":  # C/Python octal `\100`, CSS `\40 ` / `\000040`: a letter, digit or ` @.+-_:` only
            return _octal_or_css(inner)
        code = int(inner[1:], 16)
        if 0xD800 <= code <= 0xDFFF or (twice and chr(code) not in _PERCENT_OK):
            return None
        return "".join(_norm_char(c) for c in chr(code))
    twice = esc.startswith("&amp;") and len(esc) > 5 and esc[5] in "#abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if twice:  # `&amp;#64;`, `&amp;amp;commat;`: the reference's own `&` escaped
        rest = esc[5:]
        while rest.startswith("amp;"):
            rest = rest[4:]
        got = html.unescape("&" + rest)
        return got if len(got) == 1 and got in _PERCENT_OK else None
    got = html.unescape(esc)
    if got == esc or "\x00" in got or "\ufffd" in got:
        return None
    return "".join(_norm_char(c) for c in got)


def _utf7(chars: str) -> str | None:
    """A UTF-7 shifted run's characters, when they are all letters, digits or ` @.+-_:` (`+14155552671`, a phone
    number, decodes to CJK characters and stays as written)."""
    bits = len(chars) * 6
    units = bits // 16
    if units == 0 or bits - units * 16 >= 6:
        return None
    try:
        raw = binascii.a2b_base64(chars + "=" * (-len(chars) % 4))
    except (binascii.Error, ValueError):
        return None
    raw = raw[: units * 2]
    if len(raw) != units * 2:
        return None
    got = raw.decode("utf-16-be", "replace")
    # ASCII only: base64 data after a `+A` (an image, a key) decodes to printable CJK far more often than to ASCII
    return got if got.isascii() and _plain_run(got) else None


def _plain_run(got: str) -> bool:
    """A decoded quoted-printable or UTF-7 run is text: printable characters, spaces, tabs and line breaks.
    review29d: round 9 kept a run only when every character was a letter, digit or ` @.+-_:`, so one `!` or line
    break in it (`=21=6A=61=6E=65=40...` is `!jane@...`) left the whole run, address and all, unread; and a run
    with one such character (`jane=3D=3D=40example.com`) also hid the `=40` that a lone escape reads as `@`."""
    return all(c.isprintable() or c in "\t\r\n" for c in got) and "\ufffd" not in got


def _octal_or_css(inner: str) -> str | None:
    """A backslash's hex digits (and the whitespace CSS ends an escape with) as C/Python octal or a CSS escape.
    Octal takes three digits (first 0-3) and leaves what follows as written (`\\05522` is `-22`, `\\100example`
    `@example`); CSS takes up to six, ended by whitespace, six digits or a character that is no hex digit. Either
    counts only when it stands for a letter, a digit or one of ` @.+-_:` (`\\d`, `\\1`, `C:\\2024` stay)."""
    digits = inner.rstrip(" \t\r\n")
    tail = inner[len(digits):]
    if len(digits) >= 3 and digits[0] in "0123" and all(c in "01234567" for c in digits[1:3]):
        ch = chr(int(digits[:3], 8))
        if ch in _PERCENT_OK:
            return ch + digits[3:] + tail
    code = int(digits, 16)
    ch = chr(code) if code <= 0x10FFFF else ""
    return ch if ch and ch in _PERCENT_OK else None


class SpanMap:
    """Maps normalised-text spans back to original-text spans.

    Stored as runs (norm_start, norm_len, orig_start, orig_len, identity): an identity run maps
    1:1; a replaced character or escape maps all its output characters onto the whole original
    text it came from.
    """

    __slots__ = ("_nstarts", "_runs")

    def __init__(self, nstarts: list[int], runs: list[tuple[int, int, int, int, bool]]) -> None:
        self._nstarts = nstarts
        self._runs = runs

    def _locate(self, i: int) -> tuple[int, int]:
        """(orig_start, orig_end) of the original text behind normalised character i."""
        k = bisect_right(self._nstarts, i) - 1
        ns, _nl, os_, ol, ident = self._runs[k]
        if ident:
            o = os_ + (i - ns)
            return o, o + 1
        return os_, os_ + ol

    def span(self, start: int, end: int) -> tuple[int, int]:
        s, _ = self._locate(start)
        _, e = self._locate(end - 1)
        return s, e


def _latin_around(text: str, a: int, b: int) -> bool:
    """Does the whitespace-delimited token around the non-ASCII run text[a:b] hold an ASCII letter
    or a digit (looking at most NEAR characters out on each side)?"""
    left = text[a - 1] if a else " "
    right = text[b] if b < len(text) else " "
    if left.isalnum() or right.isalnum():  # (ASCII: the run is as long as it goes)
        return True
    lo, hi = a, b
    if not left.isspace():
        m = _SPACE_BEFORE.search(text, max(0, a - NEAR), a)
        lo = m.end() if m else max(0, a - NEAR)
    if not right.isspace():
        m = _SPACE.search(text, b, b + NEAR)
        hi = m.start() if m else min(len(text), b + NEAR)
    return _LATIN_OR_DIGIT.search(text, lo, hi) is not None


def _on_ascii(text: str, j: int) -> bool:
    """Is the combining mark at `j` placed on an ASCII character (through other marks before it)?"""
    k = j - 1
    while k >= 0 and not text[k].isascii() and (unicodedata.category(text[k]) in ("Mn", "Cf")
                                                 or _IGNORABLE.match(text[k])):
        k -= 1
    return k >= 0 and text[k].isascii()


class _Chained(SpanMap):
    """The maps of successive passes: a span of the last pass's text, back through each to the original."""

    __slots__ = ("_maps",)

    def __init__(self, maps: list[SpanMap]) -> None:
        self._maps = maps

    def span(self, start: int, end: int) -> tuple[int, int]:
        for m in reversed(self._maps):
            start, end = m.span(start, end)
        return start, end


def normalise(text: str) -> tuple[str, SpanMap | None]:
    """(normalised text, map back) — map is None when nothing changed."""
    maps: list[SpanMap] = []
    for _ in range(_PASSES):
        text, spans, again = _normalise_once(text)
        if spans is not None:
            maps.append(spans)
        if not again:
            break
    if not maps:
        return text, None
    return text, maps[0] if len(maps) == 1 else _Chained(maps)


def _normalise_once(text: str) -> tuple[str, SpanMap | None, bool]:
    """One pass: (normalised text, map back or None, did a decoded escape write a character that starts one?)."""
    ascii_ = text.isascii()
    # one-character tests first (memchr): a multi-character one costs ~10x more, so each needs its first character
    escapes = ("%" in text or "&" in text or "\\" in text
               or ("=" in text and ("=40" in text or "=2E" in text or "=2e" in text or "=\n" in text or "=\r" in text
                                    or _QP_RUN.search(text) is not None))
               or ("+" in text and "+A" in text)
               or ("[" in text and ("[.]" in text or "[@]" in text)))
    if ascii_ and not escapes:
        return text, None, False
    again = False
    out: list[str] = []
    runs: list[tuple[int, int, int, int, bool]] = []
    changed = False
    npos = 0  # length of normalised text so far
    opos = 0  # original position consumed so far

    def keep(a: int, b: int) -> None:
        nonlocal npos
        if b > a:
            out.append(text[a:b])
            runs.append((npos, b - a, a, b - a, True))
            npos += b - a

    def put(rep: str, a: int, b: int) -> None:
        nonlocal npos
        if rep:
            out.append(rep)
            runs.append((npos, len(rep), a, b - a, False))
            npos += len(rep)

    found = heapq.merge(() if ascii_ else _NON_ASCII.finditer(text), _ESCAPE.finditer(text) if escapes else (),
                        key=lambda m: m.start())
    for m in found:
        a, b = m.span()
        keep(opos, a)
        opos = b
        if text[a].isascii():  # an escape
            decoded = _unescape(m.group())
            if decoded is None:
                keep(a, b)
            else:
                changed = True
                put(decoded, a, b)
                # review29d: a quoted-printable or UTF-7 run may decode to another escape (`=25=34=30` is `%40`)
                again = again or (decoded in _STARTS_ESCAPE if len(decoded) == 1 else
                                  text[a] in "=+" and any(c in _STARTS_ESCAPE for c in decoded))
            continue
        # Non-ASCII run: unchanged characters form identity runs, replaced ones their own runs.
        seg_start = a
        latin = None  # does the token around this run hold Latin or digits? (asked once per run)
        for j in range(a, b):
            ch = text[j]
            info = _info.get(ch) or _char_info(ch)
            if isinstance(info, tuple):
                if latin is None:
                    latin = _latin_around(text, a, b)
                rep = info[1] if latin else ch
            elif info is MARK:
                rep = "" if _on_ascii(text, j) else ch
            elif info is SEP:
                rep = "-" if 0 < j < len(text) - 1 and text[j - 1].isdigit() and text[j + 1].isdigit() else ch
            else:
                rep = info
            if rep == ch:
                continue
            changed = True
            keep(seg_start, j)
            put(rep, j, j + 1)
            seg_start = j + 1
        keep(seg_start, b)
    if not changed:
        return text, None, False
    keep(opos, len(text))
    return "".join(out), SpanMap([r[0] for r in runs], runs), again
