"""Values written in base64 or hex: `amFuZS5kb2VAZXhhbXBsZS5jb20=`, a JWT's payload segment
(`{"email": "jane.doe@example.com"}`), a Kubernetes Secret's `data:` values, a MIME body with
`Content-Transfer-Encoding: base64` (lines of 76), `6a616e652e646f65406578616d706c652e636f6d`.
Developers paste these while debugging without thinking of what they hold; a model decodes them at
once. The patterns saw only a high-entropy token (a SECRET, so nothing under a `pii`-only policy)
or nothing at all (session 26, attack-privacy6).

A second view, like `spaced.py` and `markup.py`: each run of twelve or more base64 characters (both
alphabets; lines of equal-looking base64 joined when the line before holds a whole number of 4-character
groups and no padding) and each run of sixteen or more hex digits (even length, `0x` allowed) is decoded;
only what decodes to printable UTF-8 text holding an `@` or four digits is scanned by the structured
recognizers (after `textnorm`, no NER). Random bytes, images, archives and hashes almost never decode to
printable text (32 random bytes: ~1e-14), and what does must then still pass the recognizers'
validators (Luhn, IBAN checksums, `phonenumbers`). A finding becomes one over the encoded characters that
carry it (the 4-character groups of base64, the digit pairs of hex; the whole run when the text is not
ASCII), so redaction removes it and leaves the rest of the blob.

Also read (review26c): text in UTF-16 (a zero byte beside each ASCII character), and hex written a byte at a
time with one separator throughout (`6a:61:6e`, `6a 61 6e`, `0x6a, 0x61`, `6a-61`: eight bytes or more).

Also read (session 27): base64 broken by single spaces, tabs or line breaks at any offset (`amFu ZS5k b2VA ...`,
`amFuZS5 kb2VAZXhh...`, a blob wrapped every 10 characters), from pieces that look encoded (a digit beside a
letter, a capital after a small letter, padding) and the pieces around them that do too or are as long.

Encodings inside encodings (base64, base32, hex, percent-encoding, any mix and any depth; round 12) and base64 put
through rot13 as a whole are read: each level is shorter than the last, so the work stays linear.
Not read: gzip, rot13 inside another encoding, base64 glued to letters before it by `/` or `+` (`path/amFu...`: the
groups are misaligned), split base64 whose every piece looks like a word.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable
from urllib.parse import unquote_to_bytes

from tierwise.privacy.charsets import decode, printable, single_byte, utf16_ascii
from tierwise.privacy.finding import Finding
from tierwise.privacy.packed import budget, unpack

# A base64 line of 12+ characters (standard or URL-safe alphabet) with its padding, not inside a longer word.
# The standard library's `re`: ~15x faster than `regex` on these classes (most text is words tried and failed).
_B64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{12,}={0,2}")
_B64_CONT = re.compile(r"\r?\n([A-Za-z0-9+/_-]+={0,2})(?![A-Za-z0-9+/_=-])")
# Hex: 16+ digits (8 bytes), optionally `0x`-prefixed, as a whole token.
_HEX = re.compile(r"(?<![A-Za-z0-9_])(?:0[xX])?([0-9A-Fa-f]{16,})(?![A-Za-z0-9_])")
# (a hex run after `-`, `+` or `/`, `sha-6a61...`, is inside a longer base64 run: not read)
_TO_STD = str.maketrans("-_", "+/")
_DIGITS = frozenset("0123456789")
# Guesses from words, as in markup.py: this view is for structured values.
_NOT_HERE = frozenset({"STREET_ADDRESS", "LOCATION", "DATE_TIME", "DATE_OF_BIRTH", "NRP", "PERSON", "ORGANIZATION", "URL"})


def _text(raw: bytes) -> str | None:
    """`raw` as text if it is printable UTF-8 (or UTF-16, see `charsets.utf16_ascii`) worth scanning (an `@` or four digits),
    else None."""
    try:
        s: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        s = None
    if s is None or "\x00" in s:
        s = utf16_ascii(raw) or s or (raw.decode("cp1252") if single_byte(raw) else None)  # Latin-1 prose: round 13
        if s is None:
            return None
    if not printable(s):  # (privacy15: a no-break space or a word joiner made prose unreadable)
        return None
    if "@" not in s and sum(c in _DIGITS for c in s) < 4:
        return None
    return s


# Hex written a byte at a time with separators (`6a:61:6e`, `6a 61 6e`, `0x6a, 0x61`, `6a-61-6e`): eight bytes or more,
# one separator throughout. (`\x6a\x61` is an escape: textnorm reads it.)
_HEX_SEP = re.compile(r"(?:0[xX])?[0-9A-Fa-f]{2}(?P<sep>[:\- ]|, ?)(?:0[xX])?[0-9A-Fa-f]{2}"
                      r"(?:(?P=sep)(?:0[xX])?[0-9A-Fa-f]{2}){6,}(?![0-9A-Za-z_])")
# Where to try it: a pattern that starts with a literal separator is searched for ~5x faster than one that starts
# with a class of hex digits (most characters of any text), which cost ~8% of a scan of ordinary text.
_HEX_SEP_AT = [re.compile(sep + r"(?P<b>(?:0[xX])?[0-9A-Fa-f]{2})" + sep) for sep in (":", "-", ", ?", " ")]
_HEX_BYTE = re.compile(r"[0-9A-Fa-f]{2}(?![0-9A-Fa-f])")


def _b64_runs(text: str) -> Iterable[tuple[list[tuple[int, int]], str]]:
    """Each base64 run as ([(start, end) of each line's characters], the characters joined, padding dropped)."""
    pos = 0
    while True:
        m = _B64.search(text, pos)
        if m is None:
            return
        lines = [(m.start(), m.end())]
        # wrapped base64 (MIME: 76, PEM: 64): the next line belongs to it when this one is whole groups, unpadded
        while not text[lines[-1][1] - 1] == "=" and (lines[-1][1] - lines[-1][0]) % 4 == 0:
            c = _B64_CONT.match(text, lines[-1][1])
            if c is None:
                break
            lines.append(c.span(1))
        pos = lines[-1][1]
        chars = "".join(text[a:b] for a, b in lines).rstrip("=")
        yield lines, chars


# Base64 broken by spaces or line breaks at any offset (`amFu ZS5k b2VA ...`, `amFuZS5 kb2VAZXhh...`, lines of 10):
# seeds are tokens that look encoded (a digit beside a letter, a capital after a small letter, `=` padding at the
# end), so prose words start nothing; each seed's run is the tokens around it, one space, tab or line break apart,
# that look encoded too or are as long as it (a wrapped blob's lines).
# (possessive, with the pair looked for ahead: `[...]*(?:pair)[...]*` backtracked quadratically over a long token
# followed by `===`, 10,000 characters took minutes)
_SEED = re.compile(r"(?<![A-Za-z0-9+/_=-])(?=[A-Za-z0-9+/_-]*?(?:[0-9][A-Za-z]|[A-Za-z][0-9]|[a-z][A-Z]))"
                   r"[A-Za-z0-9+/_-]++={0,2}+(?![A-Za-z0-9+/_=-])")
_TOKEN = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_LOOKS = re.compile(r"[0-9][A-Za-z]|[A-Za-z][0-9]|[a-z][A-Z]|=$")
# A piece as long as the seed (a wrapped blob's line) that is no word: a capital past its first character, a digit,
# `+ / _ -` (`YWxsIHRo`; not `blocked`, `Address`: a random piece of 7 is all small letters after its first ~0.5%)
_LOOKS_WEAK = re.compile(r"[A-Z0-9+/_-]")
_GAP = re.compile(r"[ \t]|\r?\n[ \t]*")
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-=")
_SPLIT_MAX = 4096  # characters of one split run (a MIME body is read line by line by `_b64_runs` already)
# Where a seed can be: the pairs `_SEED` looks for (a digit beside a letter, a capital after a small letter), found
# with `bytes.find` over the text mapped to one byte a character class (`_CLASSES`); `_SEED` tried at every position
# cost 640 µs per 8,000 characters of PII-dense sentences, this ~20 µs.
_CLASSES = bytes(
    0x30 if chr(c).isdigit() and c < 128 else 0x41 if 65 <= c <= 90 else 0x61 if 97 <= c <= 122 else 0x20
    for c in range(256)
)
_PAIRS = (b"0a", b"0A", b"a0", b"A0", b"aA")
_STRETCH = re.compile(r"[A-Za-z0-9+/_=-]*")


def _stretch_end(text: str, at: int) -> int:
    """Where the stretch of base64's characters starting at `at` ends (`at` itself for none)."""
    m = _STRETCH.match(text, at)
    return at if m is None else m.end()


def _seeds(text: str) -> Iterable[re.Match[str]]:
    """`_SEED.finditer(text)`, tried only at the start of each stretch of base64's characters holding a pair."""
    mask = text.encode("latin-1", errors="replace").translate(_CLASSES)
    nxt = [mask.find(k) for k in _PAIRS]  # each key's next place; `find` only moves forwards: linear
    done = 0
    rev: str | None = None
    while True:
        nxt = [k if k < 0 or k >= done else mask.find(key, done) for k, key in zip(nxt, _PAIRS, strict=True)]
        live = [k for k in nxt if k >= 0]
        if not live:
            return
        i = min(live)
        s = i
        while s > 0 and i - s < 64 and text[s - 1] in _B64_CHARS:
            s -= 1
        if s > 0 and text[s - 1] in _B64_CHARS:  # a long stretch: its start found in C, over the text reversed once
            rev = text[::-1] if rev is None else rev
            s -= _stretch_end(rev, len(text) - s) - (len(text) - s)
        done = max(i + 1, _stretch_end(text, i))  # later pairs of this stretch: already tried
        m = _SEED.match(text, s)
        if m is not None:
            yield m


def _split_b64_runs(text: str) -> Iterable[tuple[list[tuple[int, int]], str]]:
    """Each base64 run broken by single spaces or line breaks, as ([(start, end) of each piece], the pieces joined,
    padding dropped); only runs of two or more pieces and 12 or more characters."""
    done = 0
    for m in _seeds(text):
        if m.start() < done:
            continue
        width = m.end() - m.start()
        pieces = [m.span()]
        tail: tuple[int, int] | None = None
        # backwards: a piece before, one gap away, that looks encoded or is as long as the seed
        while len(pieces) < 256:
            a = pieces[0][0]
            g = a - 1
            while g >= 0 and text[g] in " \t":
                g -= 1
            if g >= 0 and text[g] == "\n":
                g -= 1 + (g > 0 and text[g - 1] == "\r")
            if a - g - 1 < 1 or a - g - 1 > 8 or not _GAP.fullmatch(text, g + 1, a):
                break
            t_end = g + 1
            t_start = t_end
            while t_start > 0 and text[t_start - 1] in _B64_CHARS:
                t_start -= 1
            if t_start == t_end or t_start < done or (t_start and not text[t_start - 1].isspace()):
                break
            tok = text[t_start:t_end]
            if tok.endswith("=") or not (_LOOKS.search(tok) or (len(tok) == width and _LOOKS_WEAK.search(tok, 1))):
                break
            pieces.insert(0, (t_start, t_end))
        # forwards
        while len(pieces) < 256 and not text[pieces[-1][1] - 1] == "=":
            gm = _GAP.match(text, pieces[-1][1])
            if gm is None:
                break
            t = _TOKEN.match(text, gm.end())
            if t is None:
                break
            tok = t.group()
            if _LOOKS.search(tok) or (len(tok) == width and _LOOKS_WEAK.search(tok, 1)):
                pieces.append(t.span())
                if len(tok) < width:  # a wrapped blob's short last line
                    break
            elif len(tok) < width and len(pieces) > 1:  # a short last line that looks like a word (`YWxs`), or a word
                tail = t.span()
                break
            else:
                break
            if sum(b - a for a, b in pieces) > _SPLIT_MAX:
                break
        done = pieces[-1][1]
        if len(pieces) < 2:
            continue
        chars = "".join(text[a:b] for a, b in pieces)
        if tail is not None:  # with the short last piece first; without it if that does not decode to text
            yield [*pieces, tail], (chars + text[tail[0]:tail[1]]).rstrip("=")
            done = tail[1]
        if len(chars) >= 12:
            yield pieces, chars.rstrip("=")


def _decode_b64(chars: str) -> bytes | None:
    chars = chars.translate(_TO_STD)
    chars = chars[: len(chars) - (len(chars) % 4 == 1)]  # a lone last character carries no whole byte
    try:
        return binascii.a2b_base64(chars + "=" * (-len(chars) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        return None


# Base32 (RFC 4648: `A-Z2-7`, one case throughout; TOTP secrets, DNS labels, some ids), whole runs of 16+.
_B32 = re.compile(r"[A-Z2-7]{16,}|[a-z2-7]{16,}")
_B64_ONLY = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
# Ascii85 / base85 tokens: 12+ of their characters (`!`..`u`, base85's alphabet) between whitespace or quotes, not
# all letters and digits (those are base64 runs, read above) or with Ascii85's `<~ ~>` frame.
# Round 9: a short value (7-8 bytes: `10.0.0.1`, `8.8.4.4`) is a token of 9-11 characters; read only when it decodes
# to digits and the separators of an address or a number (random bytes do one time in ~10^7).
_A85_SHORT = re.compile(r"(?=[0-9A-Za-z]*[^0-9A-Za-z\s])[!-~]{9,11}")
_SHORT_VALUE = re.compile(r"[0-9+(][0-9.() +-]{4,9}[0-9]")
# review29d: such a value's first four bytes (0x20-0x39 first) encode to a first character of Ascii85 `+`..`3` or
# base85 `A`..`I`; any other token of 9-11 characters is not decoded (they cost ~65 µs per 8,000 characters of prose)
_SHORT_FIRST = frozenset("+,-./0123ABCDEFGHI")
_A85_TOKEN = re.compile(r"<~[!-u\s]{5,}~>|(?=[0-9A-Za-z]*[^0-9A-Za-z\s])[!-~]{12,4096}")
_MASK85 = bytes(0x78 if 33 <= c <= 126 else 0x20 for c in range(256))
# Words, URLs and addresses in the alphabet (`JaneDoe@example.com`, `https://...`): encoded bytes spread over 85
# characters, so six small letters in a row (p ~ 2e-4 a position) or a capitalised word are rare in them; a token
# with no letter (`+1-984-182-0190`, `4454...0933?`) is none either ((38/85)^12 ~ 6e-5 for 12 characters).
_NOT_85 = re.compile(r"[a-z]{6}|[A-Z][a-z]{4}|://|^[^A-Za-z]*$")
_B85_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~")


def _other_readings(chars: str, raw: bytes | None) -> str | None:
    """A base64-looking run that decoded to nothing worth scanning, read as base32, or as base64 that decoded to
    base32, hex or base64 (`_LEVELS` levels: an encoding inside an encoding)."""
    # base32 in mixed case (round 9: `MfQw4zTfFzSg...` decoded as RFC 4648 asks, case folded): only a run that
    # decoded to nothing as base64 gets here, so the fold costs nothing on ordinary text
    if len(chars) >= 16 and _B32.fullmatch(chars.upper()):
        raw32 = _b32(chars)
        got = (_inner(raw32) or _text(raw32)) if raw32 else None
        if got is not None:
            return got
    got = _inner(raw)
    if got is None and len(chars) >= 12:
        # base64 put through rot13 (round 12): a letter-swapped run decodes to bytes that are no text. Tried once, for
        # the run as written only (not at every level: two readings a level would multiply), so at most twice the work.
        got = _read(_decode_b64(codecs.encode(chars, "rot13")), _LEVELS)
    if got is None and "_" in chars[:16] and len(chars) - chars.index("_") > 12:
        # an id's `word_` before its base64 (`toolu_` + an address's base64: the groups were misaligned; round 12)
        got = _read(_decode_b64(chars[chars.index("_") + 1:]), _LEVELS)
    return got


_TEXT_PROBE = 4096  # characters of a payload decoded to tell text from binary


def holds_text(s: str, words: int = 0) -> bool:
    """Is `s`, base64 (standard or URL-safe, percent-encoded or not) as an id or a file's payload, text once decoded?
    Round 12: `data:text/plain;base64,...`, a `.txt` or `.csv` uploaded as a file and `toolu_` + base64 of an address
    were skipped as binary and left as written. Only its first characters are decoded (an image is ~1 ms per MB to
    decode whole); random bytes are printable UTF-8 for 9 bytes about one time in 10^4, for 48 in 10^20."""
    if "%" in s:
        s = unquote_to_bytes(s[:3 * _TEXT_PROBE]).decode("latin-1")
    s = "".join(s[:_TEXT_PROBE + 64].split())[:_TEXT_PROBE]
    for tail in (s, s[s.find("_") + 1:] if "_" in s[:16] else ""):  # an id's `word_` before its base64
        tail = tail.rstrip("=")
        if len(tail) < 12:
            continue
        raw = _decode_b64(tail[: len(tail) - len(tail) % 4])  # whole groups (a payload's first characters)
        if not raw:
            continue
        got = decode(raw, partial=True)  # UTF-8, UTF-16, Latin-1 prose (round 13); a cut last character is no error
        if got is not None and got[0].replace("\n", " ").replace("\t", " ").count(" ") >= words:
            return True
    return False


def _b32(chars: str) -> bytes | None:
    try:
        return base64.b32decode(chars.upper() + "=" * (-len(chars) % 8))
    except (binascii.Error, ValueError):
        return None


_HEX_ONLY = re.compile(r"(?:[0-9a-f]{2}){8,}|(?:[0-9A-F]{2}){8,}")
# Levels read inside an encoded run (round 9: three in all; session 30: four; round 11: five). Round 12: base64 six
# times and mixes (base64 of hex of base64 of percent-encoded base64 ...) were still missed, one level past the count.
# Each level reads bytes at most 3/4 as long as the last (base64 3/4, base32 5/8, hex and `%XX` at most 1/2), so the
# work of all levels is at most 4x the run's: the count only bounds the stack (a megabyte run has < 50 levels).
_LEVELS = 64
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")


def _inner(raw: bytes | None, levels: int = _LEVELS, rot: bool = True, packed: bool = True) -> str | None:
    """The text of base32, hex or base64 inside decoded bytes, decoded again (review28e: base32 of base32, base32 of
    base64 and base85 of base64; round 9: hex inside base64 and base64 inside hex, and `_LEVELS` levels, so a value
    encoded three times is read). Each level decodes bytes shorter than the last: the cost stays linear."""
    if not raw or levels <= 0:
        return None
    if packed and (out := unpack(raw)) is not None:  # gzip or zlib (`H4sI...`, `eJ...`; packed.py)
        # at every level (review33d: gzip of gzip, gzip of base64 of gzip were read once and left a value unread);
        # the inflation budget of the text bounds the chain's work whatever its depth
        return _read(out, levels - 1, rot, packed)
    try:
        inner = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    if "%" in inner and _PERCENT.search(inner):  # percent-encoded (`YW1h%3D`, `%61%6d`): 3 characters a byte
        inner = unquote_to_bytes(inner).decode("latin-1").strip()
    bare = inner.rstrip("=")
    if len(bare) >= 16 and _B32.fullmatch(bare.upper()):
        got = _read(_b32(bare), levels - 1, rot, packed)
        if got is not None:
            return got
    if _HEX_ONLY.fullmatch(inner):
        got = _read(bytes.fromhex(inner), levels - 1, rot, packed)
        if got is not None:
            return got
    if _B64_ONLY.fullmatch(inner):
        got = _read(_decode_b64(bare), levels - 1, rot, packed)
        if got is None and rot and len(bare) >= 12:
            # rot13 inside another encoding (round 13: base64 of rot13'd base64, hex of it): once per chain, so a
            # level's second reading does not double the levels under it (at most ~2x the chain's work in all)
            got = _read(_decode_b64(codecs.encode(bare, "rot13")), levels - 1, False, packed)
        return got
    return None


def read_nested(raw: bytes | None) -> str | None:
    """`raw` as text worth scanning, or the text of an encoding inside it (`_LEVELS` levels)."""
    return _read(raw, _LEVELS)


def _read(raw: bytes | None, levels: int, rot: bool = True, packed: bool = True) -> str | None:
    """Decoded bytes as text worth scanning; when that text is itself an encoded run (base64 text holds four digits
    often enough to pass `_text`), what is inside it is preferred."""
    if not raw:
        return None
    got = _text(raw)
    if got is None or _encoded_again(got):
        return _inner(raw, levels, rot, packed) or got
    return got


def _encoded_again(text: str) -> bool:
    """Decoded text that may be an encoding itself: a base64 run, or percent-encoded (round 12)."""
    return _B64_ONLY.fullmatch(text.strip().rstrip("=")) is not None or ("%" in text and _PERCENT.search(text) is not None)


def encoded85_findings(text: str, scan: Callable[[str], Iterable[Finding]]) -> list[Finding]:
    """Findings of `scan` in Ascii85 (`<~...~>`, Adobe's) and base85 (RFC 1924: git, Python's `b85encode`) tokens,
    over the whole token. Read over the text as written: normalisation reads `\\51` or `&#` inside one as escapes."""
    found: list[Finding] = []
    parts: list[str] = []
    starts: list[int] = []
    spans: list[tuple[int, int]] = []
    ends: list[int] = []
    at = 0
    for a, b in _tokens85(text):
        token = text[a:b]
        short = b - a < 12
        if short and token[0] not in _SHORT_FIRST:
            continue
        if _NOT_85.search(token) is not None or not (_A85_SHORT if short else _A85_TOKEN).fullmatch(token):
            continue
        dec = _decode_85(token)
        if dec is None or (short and not _SHORT_VALUE.fullmatch(dec)):
            continue
        # the words before the token, as for base64 runs (`ssn <token>`: a bare 9-digit SSN needs its word)
        cue = _NOT_WORDS.sub(" ", text[max(0, a - _CUE):a]) + " "
        starts.append(at + len(cue))
        ends.append(at + len(cue) + len(dec))
        spans.append((a, b))
        parts.append(cue + dec + _SEP)
        at += len(cue) + len(dec) + len(_SEP)
    if not parts:
        return found
    # every token's text in one text, scanned once (review28e: a scan per token cost ~6 s for a megabyte of them)
    for f in scan("".join(parts)):
        i = bisect_right(starts, f.start) - 1
        if f.entity not in _NOT_HERE and i >= 0 and f.end <= ends[i]:
            a, b = spans[i]
            found.append(Finding(f.entity, a, b, f.score, f.detector))
    return found


def _tokens85(text: str) -> Iterable[tuple[int, int]]:
    """(start, end) of each token of 9 to 4,096 printable ASCII characters, and of each `<~ ... ~>` frame, found
    with `bytes.find` over the text mapped a byte a class (a pattern tried at every position: ~170 µs per 8,000
    characters)."""
    mask = text.encode("latin-1", errors="replace").translate(_MASK85)
    i = mask.find(b"x" * 9)
    while i >= 0:
        a = mask.rfind(b" ", 0, i) + 1
        b = mask.find(b" ", i)
        b = len(mask) if b < 0 else b
        if b - a <= 4096:
            yield a, b
        i = mask.find(b"x" * 9, b)
    i = text.find("<~")
    while i >= 0:
        j = text.find("~>", i + 2, i + 8192)
        if j < 0:
            return
        if any(c.isspace() for c in text[i:j]):  # (one without whitespace is a token above)
            yield i, j + 2
        i = text.find("<~", j + 2)


def _decode_85(token: str) -> str | None:
    """An Ascii85 or base85 token's text, if it is text worth scanning (`_text`)."""
    if token.startswith("<~"):
        token = token[2:-2]
    token = "".join(token.split())
    got = _decode_85_once(token)
    if got is None and token and token[-1] in _TRAIL:  # the sentence's punctuation after it (`is <token>.`)
        got = _decode_85_once(token.rstrip(_TRAIL))
    return got


_TRAIL = ".,;:!?)'\""


def _decode_85_once(token: str) -> str | None:
    if len(token) < 9:
        return None
    readings: list[Callable[[str], bytes]] = []
    if all("!" <= c <= "u" or c == "z" for c in token):
        readings.append(base64.a85decode)
    if all(c in _B85_CHARS for c in token):
        readings.append(base64.b85decode)
    for read in readings:
        try:
            raw = read(token)
        except (ValueError, binascii.Error):
            continue
        got = _inner(raw) or _text(raw)
        if got is not None:
            return got
    return None


class _Run:
    """One decoded run: where its decoded text sits in the batch, and how to map a decoded span back."""

    __slots__ = ("at", "length", "lines", "hex_at", "chars", "ascii", "whole", "byte_at")

    def __init__(self, at: int, dec: str, lines: list[tuple[int, int]] | None, hex_at: int, whole: tuple[int, int],
                 byte_at: list[int] | None = None, exact: bool = True) -> None:
        self.at, self.length, self.lines, self.hex_at, self.whole = at, len(dec), lines, hex_at, whole
        self.byte_at = byte_at  # hex with separators: where each byte's two digits are
        self.ascii = exact and dec.isascii()
        # cumulative length of the lines before each one (a bisect per finding, not a walk: a MIME body of
        # 13,000 lines with a value in each was quadratic in a first version)
        self.chars = [0]
        for a, b in lines or ():
            self.chars.append(self.chars[-1] + b - a)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original (start, end) of the encoded characters that carry decoded characters start..end."""
        if not self.ascii:  # byte offsets are not character offsets: the whole run
            return self.whole
        if self.byte_at is not None:
            return self.byte_at[start], self.byte_at[end - 1] + 2
        if self.lines is None:  # hex: two digits a byte
            return self.hex_at + 2 * start, self.hex_at + 2 * end
        lo, hi = 4 * (start // 3), min(self.chars[-1], -(-4 * end // 3))  # base64: 4 characters per 3 bytes
        return self._at(lo), self._at(hi - 1) + 1

    def _at(self, k: int) -> int:
        assert self.lines is not None
        i = bisect_right(self.chars, k) - 1
        return self.lines[i][0] + k - self.chars[i]


_CUE = 48
_NOT_WORDS = re.compile(r"[^A-Za-z]+")
# Between decoded runs in the one text scanned: no recognizer kept here reads a value over three line breaks.
_SEP = "\n\n\n"


def encoded_findings(text: str, scan: Callable[[str], Iterable[Finding]]) -> list[Finding]:
    """Findings of `scan` in the decoded text of base64 and hex runs, over the encoded characters. Every run that
    decodes to text worth scanning goes into one text, scanned once (a scan per run cost ~100 µs each: 7 s for a
    megabyte of short runs)."""
    with budget(len(text)):  # gzip inflated in all its runs: at most the text's size (packed.py)
        return _encoded_findings(text, scan)


def _encoded_findings(text: str, scan: Callable[[str], Iterable[Finding]]) -> list[Finding]:
    runs: list[_Run] = []
    parts: list[str] = []
    at = 0
    last = 0  # end of the last run added

    def add(dec: str, lines: list[tuple[int, int]] | None, hex_at: int, whole: tuple[int, int],
            byte_at: list[int] | None = None, exact: bool = True) -> None:
        nonlocal at, last
        # the words before the run, for recognizers that need a cue (`call me at <base64>`: a number of a region
        # not in `phone_regions` is a phone number only next to one); digits left out, so none joins the value,
        # and never the run before (runs one after another would each be scanned again as the next one's cue)
        cue = _NOT_WORDS.sub(" ", text[max(0, last, whole[0] - _CUE):whole[0]]) + " "
        last = max(last, whole[1])
        runs.append(_Run(at + len(cue), dec, lines, hex_at, whole, byte_at, exact))
        parts.append(cue + dec)
        at += len(cue) + len(dec) + len(_SEP)

    for lines, chars in _b64_runs(text):
        raw = _decode_b64(chars)
        dec = _text(raw) if raw else None
        if dec is None or _encoded_again(dec):  # (base32 pads with up to six `=`)  # session 28: base32, base64 of base64 (the whole run)
            other = _other_readings(chars, raw)
            if other is not None:
                add(other, None, 0, (lines[0][0], lines[-1][1]), exact=False)
                if dec is None:
                    continue
        if dec is not None and raw:
            add(dec, lines, 0, (lines[0][0], lines[-1][1]), exact=len(dec.encode()) == len(raw))
        # hex digits are base64 characters: hex runs are looked for only inside base64 runs (one pass over the text)
        for a, b in lines:
            if b - a < 16:
                continue
            for m in _HEX.finditer(text, max(0, a - 2), b):
                digits = m.group(1)
                if len(digits) % 2 == 0:
                    raw = bytes.fromhex(digits)
                    dec = read_nested(raw)  # round 9: base64 or base32 written in hex
                    if dec is not None:
                        add(dec, None, m.start(1), m.span(), exact=len(dec.encode()) == len(raw))
    read_to = -1  # end of the last split run that decoded to text (its variant without the short last piece is not read)
    for pieces, chars in _split_b64_runs(text):  # session 27: broken by spaces or line breaks anywhere
        if pieces[0][0] < read_to:
            continue
        for skip in (0, 1):  # the first piece may be a word that only looks encoded (`key2 amFu ...`)
            k = sum(b - a for a, b in pieces[:skip])
            raw = _decode_b64(chars[k:]) if len(chars) - k >= 12 else None
            dec = _text(raw) if raw else None
            if dec is not None and raw:
                add(dec, pieces[skip:], 0, (pieces[skip][0], pieces[-1][1]), exact=len(dec.encode()) == len(raw))
                read_to = pieces[-1][1]
                break
    for sep_at in _HEX_SEP_AT:
        done = 0  # end of the last run read with this separator
        for hit in sep_at.finditer(text):
            hm: re.Match[str] | None = None
            # the hit is the separator after a run's first byte, or the one before it (a space before the run)
            for a in (hit.start() - 2, hit.start("b")):
                if a >= 2 and text[a - 2:a] in ("0x", "0X"):
                    a -= 2
                if a >= done and (hm := _HEX_SEP.match(text, a)) is not None and \
                        not (a and (text[a - 1].isalnum() or text[a - 1] == "_")):
                    break
                hm = None
            if hm is None:
                continue
            done = hm.end()
            pos = [b.start() for b in _HEX_BYTE.finditer(text, *hm.span())]
            raw = bytes.fromhex("".join(text[i:i + 2] for i in pos))
            dec = _text(raw)
            if dec is not None:
                add(dec, None, 0, hm.span(), pos if len(dec.encode()) == len(raw) else None, False)
    if not runs:
        return []
    starts = [r.at for r in runs]
    found: list[Finding] = []
    for f in scan(_SEP.join(parts)):
        if f.entity in _NOT_HERE:
            continue
        i = bisect_right(starts, f.start) - 1
        r = runs[i] if i >= 0 else None
        if r is None or f.end > r.at + r.length:  # in the words before a run, or over a separator
            continue
        found.append(Finding(f.entity, *r.span(f.start - r.at, f.end - r.at), f.score, f.detector))
    return found
