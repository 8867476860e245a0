"""Bytes that are text in an encoding other than UTF-8: what a `.txt` saved by Windows Notepad or an older tool holds
(Latin-1 / Windows-1252, UTF-16 with or without its byte-order mark), for the places that read a base64 payload as
text (privacy/text_payload.py, `encoded.holds_text`, the encoded view's `encoded._text`).

Round 13 (privacy13): only UTF-8 (and ASCII-only UTF-16 in the encoded view) was read, so a Latin-1 `text/plain`
document (`Kund: Jöns Åberg, jane.doe@example.com`) was binary, and left unscanned. Bytes are taken for single-byte
text only when they read as prose does: no control character but tab and line breaks, at least 80% printable ASCII,
at least one letter past ASCII (else it is ASCII, which UTF-8 reads), at least 60% letters and spaces, a space,
line break, comma or semicolon per 32 bytes (the base64 text of a nested encoding with a few bytes of garbage after
it passed the rest, and took the cue words of the next run: bench/privacy_evasion.py's phones in base64 six times,
0.78 -> 0.75), and 24 bytes or more. Random bytes pass all of that about one time in 10^12 at 24 bytes (an id's base64), and images, archives
and PDFs (control bytes in their first bytes) never do.
"""

from __future__ import annotations

import codecs
import unicodedata

_MIN_SINGLE = 24
_CONTROLS = bytes(c for c in range(32) if c not in (9, 10, 12, 13)) + b"\x7f\x81\x8d\x8f\x90\x9d"
_ASCII_PRINTABLE = bytes(range(32, 127)) + b"\t\n\r\x0c"
_GAPS = b" \t\n\r,;"  # words or fields: base64 text with a few bytes of garbage after it has none (privacy_evasion)
_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123)) + b" \t\n\r" + bytes(range(0xC0, 0x100))


def decode(raw: bytes, *, partial: bool = False) -> tuple[str, str] | None:
    """(text, encoding) for bytes that are text: UTF-8 (with or without a BOM), UTF-16 with a BOM or with the zero
    bytes of mostly-ASCII text, or Windows-1252 prose (see the module docstring); None otherwise. `partial`: `raw`
    is the head of a longer payload (a character cut at its end is no error)."""
    if raw.startswith(codecs.BOM_UTF8):
        return _try(raw[3:], "utf-8-sig", partial, raw)
    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be")):  # before UTF-16's
        if raw.startswith(bom) and len(raw) >= 8:
            body = raw[4:]
            return _try(body[: len(body) - len(body) % 4] if partial else body, enc, False, raw)
    for bom, enc in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if raw.startswith(bom):
            return _try(raw[2:], enc, partial, raw)
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(raw, final=not partial)
        return (text, "utf-8") if _printable(text) else None
    except UnicodeDecodeError:
        pass
    if len(raw) >= 8:
        for enc, zeros in (("utf-16-le", raw[1::2]), ("utf-16-be", raw[0::2])):
            if zeros.count(0) >= 0.7 * len(zeros):
                return _try(raw[: len(raw) - len(raw) % 2] if partial else raw, enc, False, raw)
    if single_byte(raw):
        return raw.decode("cp1252"), "cp1252"
    if ebcdic(raw):  # (before the CJK readings: GB18030 read EBCDIC prose as CJK "text", round 14)
        return raw.decode("cp037"), "cp037"
    return _east_asian(raw, partial)


_EBCDIC_ASCII = bytes(range(0x40, 0x100))  # space, punctuation, letters and digits; below 0x40: controls (but NL)
_EBCDIC_LETTERS = (bytes(range(0x81, 0x8A)) + bytes(range(0x91, 0x9A)) + bytes(range(0xA2, 0xAA))
                   + bytes(range(0xC1, 0xCA)) + bytes(range(0xD1, 0xDA)) + bytes(range(0xE2, 0xEA)) + b"\x40\x05\x15\x25")
_EBCDIC_GAPS = b"\x40\x05\x15\x25\x0d\x6b\x5e"  # space, tab, NL, LF, CR, comma, semicolon
_EBCDIC_PUNCT_ABOVE = bytes(c for c in range(0x40, 0x100) if c not in _EBCDIC_LETTERS and c < 0xF0
                            and c not in b"\x4b\x4c\x4d\x4e\x50\x5a\x5b\x5c\x5d\x5e\x60\x61\x6b\x6c\x6d\x6e\x6f\x7a\x7b\x7c\x7d\x7e\x7f")


def ebcdic(raw: bytes) -> bool:
    """Is `raw` EBCDIC prose (what a mainframe's files and an AS/400 export hold; code page 037/500 share letters,
    digits and `@ . , - +`)? The single-byte rule read in EBCDIC's letters: no control but tab and line ends, 60%
    letters and spaces, a gap per 32 bytes, 80% of bytes among EBCDIC's ASCII-like characters, 24 bytes or more.
    Round 14: EBCDIC was binary (and GB18030 read it as CJK), left unread with its addresses and cards."""
    n = len(raw)
    if n < _MIN_SINGLE or len(raw.translate(None, _EBCDIC_ASCII + b"\x05\x15\x25\x0d")) != 0:
        return False
    letters = n - len(raw.translate(None, _EBCDIC_LETTERS))
    gaps = n - len(raw.translate(None, _EBCDIC_GAPS))
    rare = n - len(raw.translate(None, _EBCDIC_PUNCT_ABOVE))
    return letters >= 0.6 * n and gaps * 32 >= n and rare * 5 <= n


# review33d: Japanese, Chinese and Korean text (and UTF-16 of it without a byte-order mark, which has too few zero
# bytes for the rule above) was binary, and left unscanned with the addresses and card numbers it held
_MIN_WIDE = 64  # random bytes of 24-48 read as GB18030 prose ~1 in 10^4 times (none in 200,000 at 64 and more)
_C0 = bytes(c for c in range(32) if c not in (9, 10, 12, 13)) + b"\x7f"
_WIDE = ("shift_jis", "euc_jp", "gb18030", "big5", "euc_kr")


def _east_asian(raw: bytes, partial: bool) -> tuple[str, str] | None:
    """UTF-16 (no BOM) or a legacy CJK encoding, when the text reads as such prose: printable, no control byte but
    whitespace, 64 bytes or more, every character past ASCII a CJK, kana, hangul or full-width one (or their
    punctuation), some of them, punctuation or line breaks among them, and (written back by `encode`) the same
    bytes again."""
    if len(raw) < _MIN_WIDE:
        return None
    even = raw[: len(raw) - len(raw) % 2] if partial else raw
    for enc in ("utf-16-le", "utf-16-be"):
        text = _strict(even, enc, False)
        if text is not None and _cjk_prose(text) and sum(c < "\x7f" for c in text) * 10 >= len(text):
            return text, enc
    if len(raw.translate(None, _C0)) != len(raw):  # (0x81... are lead bytes of Shift-JIS and GBK)
        return None
    for enc in _WIDE:
        text = _strict(raw, enc, partial)
        if text is not None and _cjk_prose(text) and (partial or text.encode(enc) == raw):
            return text, enc
    return None


def _strict(raw: bytes, enc: str, partial: bool) -> str | None:
    try:
        return codecs.getincrementaldecoder(enc)().decode(raw, final=not partial)
    except UnicodeDecodeError:
        return None


def _cjk_prose(text: str) -> bool:
    wide = [c for c in text if c > "\x7f"]
    # (a mark per 64 characters: prose has them; random bytes that decode as CJK mostly have none)
    marks = sum("\u3000" <= c <= "\u303f" or "\uff01" <= c <= "\uff1f" for c in wide) + text.count("\n")
    return (len(wide) >= 4 and marks * 64 >= len(text) and _printable(text)
            and all("\u3000" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" or "\uff00" <= c <= "\uffef" for c in wide))


def single_byte(raw: bytes) -> bool:
    """Is `raw` Windows-1252 / Latin-1 prose (module docstring)?"""
    n = len(raw)
    if n < _MIN_SINGLE or raw.isascii() or len(raw.translate(None, _CONTROLS)) != n:
        return False
    ascii_n = n - len(raw.translate(None, _ASCII_PRINTABLE))
    letters = n - len(raw.translate(None, _LETTERS))
    gaps = n - len(raw.translate(None, _GAPS))
    return ascii_n >= 0.8 * n and letters >= 0.6 * n and gaps * 32 >= n


def encode(text: str, encoding: str) -> bytes:
    """`text` in `encoding` (placeholders are ASCII; a character the encoding has not, from a surrogate value,
    falls back to UTF-8 for the whole text rather than being lost)."""
    bom = b""
    if encoding.endswith("+bom"):
        encoding = encoding[:-4]
        bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE, "utf-32-le": codecs.BOM_UTF32_LE,
               "utf-32-be": codecs.BOM_UTF32_BE}[encoding]
    try:
        return bom + text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _try(body: bytes, enc: str, partial: bool, raw: bytes) -> tuple[str, str] | None:
    try:
        text = codecs.getincrementaldecoder(enc)().decode(body, final=not partial)
    except UnicodeDecodeError:
        return None
    bom = raw[: len(raw) - len(body)]
    return (text, enc if not bom or enc == "utf-8-sig" else f"{enc}+bom") if _printable(text) else None


def _printable(text: str) -> bool:
    return bool(text) and printable(text)


# Characters `str.isprintable` refuses that prose holds: Unicode spaces (no-break space in French typography and
# copied web text, thin and ideographic spaces), line and paragraph separators, and format characters (word joiner,
# zero-width space, soft hyphen, bidi marks); the detector's normalisation reads through them (privacy/textnorm.py)
_PROSE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cf"})


def printable(text: str) -> bool:
    """Is `text` printable as prose is: no control character but tab, line breaks and form feed (privacy15: a text
    with one no-break space was no text: a `.txt` file failed closed, and under `pii` only an address in base64 of
    such a text was not read)."""
    t = text.replace("\n", " ").replace("\t", " ").replace("\r", " ").replace("\x0c", " ")
    return t.isprintable() or all(c.isprintable() or unicodedata.category(c) in _PROSE_CATEGORIES for c in set(t))


def utf16_ascii(raw: bytes) -> str | None:
    """Text in UTF-16 (what Windows tools and PowerShell's `-EncodedCommand` encode): ASCII text in it has a zero
    byte beside every character, which made it unprintable UTF-8, so its values went unread (review26c)."""
    for enc, bom in (("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")):
        body = raw[2:] if raw.startswith(bom) else raw
        zeros = body[1::2] if enc == "utf-16-le" else body[0::2]
        if len(body) % 2 == 0 and body and not zeros.strip(b"\x00"):
            try:
                return body.decode(enc)
            except UnicodeDecodeError:
                return None
    return None
