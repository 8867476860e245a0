"""Text a PNG carries in chunks that Pillow's header read never reaches (privacy17).

`Image.open` reads the chunks before the first `IDAT` only (the rest on a full decode, which the scan does not do),
and keeps of those only the ones it knows. A PNG may hold its text chunks after the image data (the PNG spec allows
`tEXt`, `zTXt` and `iTXt` anywhere between `IHDR` and `IEND`; libpng writes the ones given to `png_write_end`
there), an `eXIf` chunk after it, and private chunks (`prVt`: a lower-case first letter, which a decoder skips)
anywhere. Privacy round 17 sent each of these, with an e-mail address in it, to the remote model unread.

review37e: the text chunks before the image data were left to Pillow, which keeps one text per keyword (a second
`Comment` chunk replaced the first, the address in it unread), skips an iTXt whose text is not UTF-8 or whose
compression method is unknown, keeps the first of two `eXIf` chunks, and gives up (reading none) past its own
bounds (a zTXt inflating past 1 MB, a chunk whose CRC does not match, a zTXt of an unknown method); an `iCCP`
chunk's profile name (a keyword the writer chose) was never read. Now every text chunk is read here wherever it is
(the ones before the image data Pillow reads too: read twice), and a profile's name.

`late_texts(raw)`: the text of every text chunk (`tEXt`, `zTXt`, `iTXt`: keyword, language, translated keyword,
text), the EXIF text fields of every `eXIf` chunk, an `iCCP` chunk's profile name, and the bytes of any chunk no
decoder reads as image data (private or unknown) when they are text, or zlib-compressed text. Bounded: each chunk inflates to
at most `MAX_INFLATED` bytes and a file has at most `MAX_CHUNKS` chunks; past either the file is unreadable (fails
closed: `OPAQUE`).

privacy18 (review37e's left): a zlib stream of text appended after `IEND`, and text in the padding of a chunk whose
size the spec fixes (`pHYs`, `gAMA`, `tIME`... with bytes after their fields), reached the remote model unread. Bytes
after `IEND` are read as text or inflated (bounded), else fail closed; a fixed-size chunk of another size fails
closed; a palette, transparency or histogram chunk whose bytes are text is read. Text after the zlib stream inside
the image data (`IDAT`) is still not read: finding it means inflating every image's pixels.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

from tierwise.privacy.charsets import decode
from tierwise.privacy.payload_bytes import OPAQUE

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_INFLATED = 1 << 20
MAX_CHUNKS = 10_000
MAX_FILE_TEXT = 4 << 20  # characters a file's chunks give in all (as media_segments.MAX_FILE_INFLATED): past it fails closed
# Chunks whose bytes are image data, palettes, colour or layout numbers (no text) or an ICC profile (its
# descriptions read as phone numbers; media_text leaves profiles out everywhere)
_NO_TEXT = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"fdAT", b"iCCP", b"bKGD", b"cHRM", b"gAMA", b"hIST",
                      b"pHYs", b"sBIT", b"sRGB", b"tIME", b"tRNS", b"acTL", b"fcTL", b"cICP", b"mDCv", b"cLLi",
                      b"sCAL", b"oFFs", b"sTER", b"vpAg"})
# privacy18: the chunks of a size the PNG spec (and APNG's, vpAg's) fixes; one longer carries bytes no decoder reads
# (libpng drops such a chunk as invalid), and they were not read here either: such a file fails closed
_SIZES = {b"IHDR": (13,), b"IEND": (0,), b"gAMA": (4,), b"cHRM": (32,), b"sRGB": (1,), b"pHYs": (9,), b"tIME": (7,),
          b"oFFs": (9,), b"cICP": (4,), b"mDCv": (24,), b"cLLi": (8,), b"acTL": (8,), b"fcTL": (26,), b"sTER": (1,),
          b"vpAg": (9,), b"bKGD": (1, 2, 6), b"sBIT": (1, 2, 3, 4)}
# privacy18: chunks of arbitrary bytes by the spec (a palette, its transparency, a histogram): read when they are text
_ANY_BYTES = frozenset({b"PLTE", b"tRNS", b"hIST"})


class _TooBig(Exception):
    pass


def late_texts(raw: bytes, exif_texts: Callable[[bytes], list[str]],
               profile_texts: Callable[[str, str], list[str]] = lambda _k, _v: [],
               words: Callable[[bytes], list[str]] = lambda _b: []) -> list[str]:
    """The texts of `raw`'s chunks Pillow does not read (see the module docstring); `exif_texts` reads an `eXIf`
    chunk's bytes, `words` (privacy18) the runs of words or values in a private chunk's binary bytes. [OPAQUE] past
    the bounds."""
    out: list[str] = []
    at = len(SIGNATURE)
    left = MAX_FILE_TEXT
    try:
        for n in range(MAX_CHUNKS + 1):
            if at + 8 > len(raw):
                return out
            if n == MAX_CHUNKS:
                return [OPAQUE]
            size, kind = struct.unpack(">I", raw[at:at + 4])[0], raw[at + 4:at + 8]
            if at + 12 + size > len(raw):  # not a chunk (bytes after a signature, a cut file): media_text reads
                return out  # such a file's bytes as words when Pillow has not read it whole
            data = raw[at + 8:at + 8 + size]
            at += 12 + size
            if kind in _SIZES and size not in _SIZES[kind]:
                return [OPAQUE]
            if kind == b"IEND":
                return out + _trailer_texts(raw[at:], words)
            if kind in _ANY_BYTES and (got := decode(data)) is not None:
                out.append(got[0])
            if kind == b"iCCP":  # the profile's name (the profile itself is left out: see _NO_TEXT)
                out.append(data[:80].partition(b"\x00")[0].decode("latin-1"))
            if kind in _NO_TEXT:
                continue
            texts = _profiles_apart(_chunk_texts(kind, data, exif_texts, words), kind, profile_texts)
            left -= sum(map(len, texts))
            if left < 0:  # review38d: 200 zTXt chunks of 1 MB each (a 211 KB PNG) gave 210 M characters, 221 MB
                return [OPAQUE]
            out.extend(texts)
    except (_TooBig, zlib.error):  # a text chunk past the bound, or one that does not inflate: fails closed
        return [OPAQUE]
    return out


def _chunk_texts(kind: bytes, data: bytes, exif_texts: Callable[[bytes], list[str]],
                 words: Callable[[bytes], list[str]]) -> list[str]:
    if kind == b"tEXt":
        key, _, text = data.partition(b"\x00")
        return [key.decode("latin-1"), text.decode("latin-1")]
    if kind == b"zTXt":
        key, _, rest = data.partition(b"\x00")
        return [key.decode("latin-1"), _inflate(rest[1:]).decode("latin-1")]
    if kind == b"iTXt":
        key, _, rest = data.partition(b"\x00")
        compressed = rest[:1] == b"\x01"
        lang, _, rest = rest[2:].partition(b"\x00")
        translated, _, text = rest.partition(b"\x00")
        body = _inflate(text) if compressed else text
        return [key.decode("latin-1"), lang.decode("latin-1"), translated.decode("utf-8", "replace"),
                body.decode("utf-8", "replace")]
    if kind == b"eXIf":
        return exif_texts(data)
    got = decode(data) if decode(data[:256], partial=True) is not None else None  # (binary: its head says so)
    if got is not None:
        return [got[0]]
    if data[:1] == b"\x78":  # a zlib stream's first byte (deflate, 32K window or smaller)
        try:
            inflated = _inflate(data)
        except zlib.error:
            return []
        got = decode(inflated)
        return [got[0]] if got is not None else []
    return words(data)


def png_end(raw: bytes) -> int | None:
    """Where the PNG `raw` ends: after its first `IEND` chunk's CRC, found by walking its chunks (privacy18: media_text
    took the last `IEND` in the file, and an appended note that ended in `IEND` was taken for image data, unread);
    None when the walk meets no `IEND` (a cut or spoofed file: read whole)."""
    at = len(SIGNATURE)
    for _ in range(MAX_CHUNKS):
        if at + 12 > len(raw):
            return None
        size, kind = struct.unpack(">I", raw[at:at + 4])[0], raw[at + 4:at + 8]
        at += 12 + size
        if kind == b"IEND":
            return at if at <= len(raw) else None
    return None


_ZLIB_HEADS = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")


def _trailer_texts(rest: bytes, words: Callable[[bytes], list[str]]) -> list[str]:
    """Bytes after `IEND` (no decoder reads them; privacy18: a zlib stream of text there went out unread): as text
    when they are text (a lone value with no spaces around it is no "words" run for media_text), a zlib or gzip stream
    inflated (bounded) when they are one; anything else but zero padding fails closed."""
    body = rest.lstrip(b"\x00")  # (zero padding around; a gzip stream may end in zero bytes)
    text = body.rstrip(b"\x00")
    if not text:
        return []
    if (got := decode(text)) is not None:
        return [got[0]]
    # words (UTF-16 without a byte-order mark, a note after a stray byte) when they are most of the bytes (UTF-16:
    # two bytes a character); a run of words does not let other bytes pass unread beside it
    runs = words(body)
    if runs and 2 * sum(len(r) for r in runs) >= 0.9 * len(text):
        return runs
    if body[:2] in _ZLIB_HEADS or body[:2] == b"\x1f\x8b":
        d = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip, by the header
        inflated = d.decompress(body, MAX_INFLATED)
        if d.unconsumed_tail or not d.eof or d.unused_data.rstrip(b"\x00"):
            return [OPAQUE]  # past the bound, cut, or more after it: fails closed
        got = decode(inflated) if inflated else ("", "")
        return [got[0]] if got is not None else [OPAQUE]
    return [OPAQUE]


def _profiles_apart(texts: list[str], kind: bytes, profile_texts: Callable[[str, str], list[str]]) -> list[str]:
    """ImageMagick's `Raw profile type <name>` text chunks hold hex dumps of EXIF, ICC, IPTC, XMP, whose digits read as
    phone and card numbers: their keyword and what `profile_texts` (media_text's reading of them) gives, not the dump."""
    if kind in (b"tEXt", b"zTXt", b"iTXt") and texts and texts[0].startswith("Raw profile type"):
        return [texts[0], *profile_texts(texts[0], texts[-1])]
    return texts


def _inflate(data: bytes) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(data, MAX_INFLATED)
    if d.unconsumed_tail:
        raise _TooBig
    return out
