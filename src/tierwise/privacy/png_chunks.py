"""Text a PNG carries in chunks that Pillow's header read never reaches (privacy17).

`Image.open` reads the chunks before the first `IDAT` only (the rest on a full decode, which the scan does not do),
and keeps of those only the ones it knows. A PNG may hold its text chunks after the image data (the PNG spec allows
`tEXt`, `zTXt` and `iTXt` anywhere between `IHDR` and `IEND`; libpng writes the ones given to `png_write_end`
there), an `eXIf` chunk after it, and private chunks (`prVt`: a lower-case first letter, which a decoder skips)
anywhere. Privacy round 17 sent each of these, with an e-mail address in it, to the remote model unread.

`late_texts(raw)`: the text of every text chunk after the first `IDAT`, the EXIF text fields of an `eXIf` chunk
after it, and the bytes of any chunk no decoder reads as image data (private or unknown) when they are text, or
zlib-compressed text; every chunk Pillow reads before the image data is left to it. Bounded: each chunk inflates to
at most `MAX_INFLATED` bytes and a file has at most `MAX_CHUNKS` chunks; past either the file is unreadable (fails
closed: `OPAQUE`).
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
# Chunks whose bytes are image data, palettes, colour or layout numbers (no text) or an ICC profile (its
# descriptions read as phone numbers; media_text leaves profiles out everywhere)
_NO_TEXT = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"fdAT", b"iCCP", b"bKGD", b"cHRM", b"gAMA", b"hIST",
                      b"pHYs", b"sBIT", b"sRGB", b"tIME", b"tRNS", b"acTL", b"fcTL", b"cICP", b"mDCv", b"cLLi",
                      b"sCAL", b"oFFs", b"sTER", b"vpAg"})
_PILLOW_READS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf"})  # before the image data


class _TooBig(Exception):
    pass


def late_texts(raw: bytes, exif_texts: Callable[[bytes], list[str]]) -> list[str]:
    """The texts of `raw`'s chunks Pillow does not read (see the module docstring); `exif_texts` reads an `eXIf`
    chunk's bytes. [OPAQUE] past the bounds."""
    out: list[str] = []
    at, seen_idat = len(SIGNATURE), False
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
            if kind == b"IEND":
                return out
            if kind == b"IDAT":
                seen_idat = True
            if kind in _NO_TEXT:
                continue
            if kind in _PILLOW_READS and not seen_idat:
                # Pillow reads a text chunk's text but keeps its keyword as a key (and an iTXt's language and
                # translated keyword as attributes), which no one scanned
                if kind != b"eXIf":
                    key, _, rest = data.partition(b"\x00")
                    out.append(key.decode("latin-1"))
                    if kind == b"iTXt":
                        lang, _, rest = rest[2:].partition(b"\x00")
                        out += [lang.decode("latin-1"), rest.partition(b"\x00")[0].decode("utf-8", "replace")]
                continue
            out.extend(_chunk_texts(kind, data, exif_texts))
    except (_TooBig, zlib.error):  # a text chunk past the bound, or one that does not inflate: fails closed
        return [OPAQUE]
    return out


def _chunk_texts(kind: bytes, data: bytes, exif_texts: Callable[[bytes], list[str]]) -> list[str]:
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
    return []


def _inflate(data: bytes) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(data, MAX_INFLATED)
    if d.unconsumed_tail:
        raise _TooBig
    return out
