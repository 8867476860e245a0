"""Text in the parts of JPEG, GIF and WebP files that Pillow's header read skips (privacy18), for media_text.

Pillow reads a JPEG's EXIF, XMP, comments and JFIF fields, a GIF's comment and a WebP's EXIF and XMP; media_text then
read words only after a JPEG's *last* `FF D9` bytes, so:
- a note appended after a JPEG that itself ended in `FF D9` was taken for image data, unread (`jpeg_end` walks the
  markers to the real end of the image);
- an APPn segment Pillow does not parse (APP13's IPTC fields, where photo tools write the author's e-mail and
  phone; APP3-APP15; an APP1 or APP2 that is not EXIF, XMP or an ICC profile), and bytes between segments, were never
  read (`jpeg_texts`);
- a GIF's plain-text and application extensions, and any extension cut into sub-blocks shorter than media_text's
  12-byte words, were read by no one (`gif_texts` joins each extension's sub-blocks);
- a WebP's chunks other than its image, EXIF and XMP, compressed or not (`riff_texts`);
- an MP3's ID3v2.3/2.4 frames compressed with zlib (`id3_texts`).
Each blob is read as text when it is text, inflated when it is a zlib stream (at most `MAX_INFLATED` bytes: past it
fails closed), else given to `words` (media_text's runs of words or values). At most `MAX_PARTS` segments, blocks or
chunks and `MAX_SUB_BLOCKS` GIF sub-blocks a file: past either fails closed. Entropy-coded image data (after a JPEG's SOS, a GIF's LZW blocks) is not read.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable

from tierwise.privacy.charsets import decode
from tierwise.privacy.payload_bytes import OPAQUE

MAX_PARTS = 10_000
MAX_INFLATED = 1 << 20
# review38d: and at most this much a file in all (10,000 segments of 1 KB, each inflating to 1 MB: 10 GB of text;
# 200 of them, a 210 KB JPEG, took 221 MB); a request's text is scanned up to privacy.max_request_chars, 4 M by default
MAX_FILE_INFLATED = 4 << 20
# A GIF's sub-blocks (255 bytes each as encoders write them: 25 MB of image data): 1-byte blocks made the walk 0.6 s
# for 4 MB
MAX_SUB_BLOCKS = 100_000
Words = Callable[[bytes], list[str]]
_ZLIB_HEADS = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
# review38d: the segments left to Pillow were picked by their first bytes whatever their marker and place, so an APP15
# or APP13 starting `Adobe`, `JFIF\0` or `Exif\0`, a second EXIF block, a comment Pillow's later one replaced, and any
# segment after the first scan (Pillow stops at it) were read by no one. Now only what Pillow reads is left to it:
# the first APP1 `Exif\0\0` before the first scan (the EXIF media_text reads), and an APP2 ICC profile chunk (a
# profile's own texts are not read in any format: their descriptions read as phone numbers). Everything else is read
# here (a comment or XMP packet Pillow reads too is read twice: harmless).
_EXIF_HEAD = b"Exif\x00\x00"
_ICC_HEAD = b"ICC_PROFILE\x00"


def blob_texts(data: bytes, words: Words, spent: list[int] | None = None) -> list[str]:
    """A blob's text: as text, inflated from zlib (bounded), else its runs of words or values (`words`); `spent[0]`
    counts down the file's `MAX_FILE_INFLATED` (below 0: raises _TooMany)."""
    body = data.strip(b"\x00")
    if not body:
        return []
    if b"<x:xmpmeta" in body:  # an XMP packet (Photoshop's APP13 copy, an extended XMP): `words` reads its values
        return words(data)
    if (got := decode(body)) is not None:
        return [got[0]]
    if body[:2] in _ZLIB_HEADS:
        d = zlib.decompressobj()
        try:
            inflated = d.decompress(body, MAX_INFLATED)
        except zlib.error:
            return words(data)
        if d.unconsumed_tail:
            return [OPAQUE]
        _spend(spent, len(inflated))
        got = decode(inflated)
        return [got[0]] if got is not None else words(inflated)
    return words(data)


class _TooMany(Exception):
    pass


def _spend(spent: list[int] | None, n: int) -> None:
    if spent is not None:
        spent[0] -= n
        if spent[0] < 0:
            raise _TooMany


def jpeg_end(raw: bytes) -> int | None:
    """Where the JPEG `raw` ends (after the EOI that ends its last scan), by its markers; None: no end found."""
    try:
        return _jpeg_walk(raw, None)
    except _TooMany:
        return None


def jpeg_texts(raw: bytes, words: Words) -> list[str]:
    """The texts of a JPEG's segments Pillow does not read (see the module docstring); [OPAQUE] past the bounds."""
    out: list[str] = []
    state = {"exif": False, "scan": False}  # Pillow has read an EXIF block / stopped at the first scan
    spent = [MAX_FILE_INFLATED]
    try:
        _jpeg_walk(raw, lambda marker, data: out.extend(_segment_texts(marker, data, words, state, spent)))
    except _TooMany:
        return [*out, OPAQUE]
    return out


def _segment_texts(marker: int, data: bytes, words: Words, state: dict[str, bool], spent: list[int]) -> list[str]:
    if marker == -1:  # bytes between segments (a decoder skips them)
        return blob_texts(data, words, spent)
    if marker == 0xDA:
        state["scan"] = True
    if marker == 0xE1 and data.startswith(_EXIF_HEAD) and not state["exif"] and not state["scan"]:
        state["exif"] = True
        return []  # (the EXIF block Pillow reads: media_text reads its text fields)
    if marker == 0xE2 and data.startswith(_ICC_HEAD):
        return []  # (an ICC profile chunk: see _ICC_HEAD)
    if marker != 0xFE and not 0xE0 <= marker <= 0xEF:
        return []  # (other markers hold tables)
    if marker == 0xED:  # Photoshop's resources: IPTC's fields, each a text
        return [*_iptc_values(data), *words(data)]
    return blob_texts(data, words, spent)


def _iptc_values(data: bytes) -> list[str]:
    """IPTC IIM datasets (0x1C, record, dataset, 2-byte length, value) in a Photoshop APP13 segment."""
    out: list[str] = []
    pos = 0
    for _ in range(MAX_PARTS):
        i = data.find(b"\x1c", pos)
        if i < 0 or i + 5 > len(data):
            break
        n = struct.unpack(">H", data[i + 3:i + 5])[0]
        if 1 <= data[i + 1] <= 9 and not n & 0x8000:
            got = decode(data[i + 5:i + 5 + n]) if n else None
            if got is not None:
                out.append(got[0])
            pos = i + 5 + n
        else:
            pos = i + 1
    return out


_NEXT_MARKER = re.compile(rb"\xff(?=[^\x00\xd0-\xd7])", re.DOTALL)


def _jpeg_walk(raw: bytes, seen: Callable[[int, bytes], None] | None) -> int | None:
    if raw[:2] != b"\xff\xd8":
        return None
    pos = 2
    for _ in range(MAX_PARTS):
        nxt = raw.find(b"\xff", pos)
        if nxt < 0:
            return None
        if nxt > pos and seen is not None:
            seen(-1, raw[pos:nxt])
        pos = nxt
        while pos < len(raw) and raw[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= len(raw):
            return None
        marker = raw[pos]
        pos += 1
        if marker == 0xD9:
            return pos
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):  # standalone markers
            continue
        if pos + 2 > len(raw):
            return None
        size = struct.unpack(">H", raw[pos:pos + 2])[0]
        if seen is not None:
            seen(marker, raw[pos + 2:pos + size])
        pos += size
        if marker == 0xDA:  # a scan: entropy-coded data up to the next marker (FF 00 is a stuffed FF, FF D0-D7 restarts)
            m = _NEXT_MARKER.search(raw, pos)  # (in C: a loop over each FF 00 took 0.8 s for 4 MB of them)
            if m is None:
                return None
            pos = m.start()
    raise _TooMany


def _fails_closed(walk: Callable[[bytes, Words, list[str], list[int]], list[str]]) -> Callable[[bytes, Words], list[str]]:
    """`walk(raw, words, out, spent)` with the file's inflation budget; [*out, OPAQUE] past it."""
    def run(raw: bytes, words: Words) -> list[str]:
        out: list[str] = []
        try:
            return walk(raw, words, out, [MAX_FILE_INFLATED])
        except _TooMany:
            return [*out, OPAQUE]
    return run


@_fails_closed
def gif_texts(raw: bytes, words: Words, out: list[str], spent: list[int]) -> list[str]:
    """Each extension's sub-blocks joined (the application and plain-text extensions' headers apart), read as a
    blob; [OPAQUE] past the bounds."""
    if len(raw) < 13 or raw[:3] != b"GIF":
        return []
    pos = 13 + (3 << ((raw[10] & 7) + 1) if raw[10] & 0x80 else 0)
    budget = [MAX_SUB_BLOCKS]
    last = len(raw.rstrip(b"\x00"))  # (zero padding after the trailer)
    ended = False
    for _ in range(MAX_PARTS):
        if budget[0] < 0:
            break
        if pos >= last:
            return out
        if raw[pos] == 0x3B:  # review38d: the trailer; blocks after it (a comment cut in sub-blocks) are read on
            pos, ended = pos + 1, True
            continue
        if raw[pos] == 0x21 and pos + 1 < len(raw):
            label = raw[pos + 1]
            blocks, pos = _sub_blocks(raw, pos + 2, budget)
            if label == 0xF9:
                continue  # graphic control: delays and flags
            if label in (0x01, 0xFF) and blocks:
                out.extend(blob_texts(blocks[0], words, spent))  # the text grid / the application's name
                blocks = blocks[1:]
            out.extend(blob_texts(b"".join(blocks), words, spent))
        elif raw[pos] == 0x2C and pos + 10 <= len(raw):
            flags = raw[pos + 9]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1  # (the LZW minimum code size)
            _, pos = _sub_blocks(raw, pos, budget, keep=False)
        else:  # not a block: media_text reads the rest as words; after the trailer, as a blob (text, zlib) too
            return [*out, *blob_texts(raw[pos:last], words, spent)] if ended else out
    return [*out, OPAQUE]


def _sub_blocks(raw: bytes, pos: int, budget: list[int], keep: bool = True) -> tuple[list[bytes], int]:
    """The sub-blocks from `pos` to the block terminator, and where it ends; `budget[0]` counts down the file's
    sub-blocks (below 0: past `MAX_SUB_BLOCKS`, the caller fails closed)."""
    blocks: list[bytes] = []
    while pos < len(raw) and (n := raw[pos]):
        budget[0] -= 1
        if budget[0] < 0:
            break
        if keep:
            blocks.append(raw[pos + 1:pos + 1 + n])
        pos += 1 + n
    return blocks, pos + 1


# WebP chunks Pillow reads (EXIF, XMP) or that hold image data, animation frames, a profile
_RIFF_KNOWN = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP", b"EXIF", b"XMP "})


@_fails_closed
def riff_texts(raw: bytes, words: Words, out: list[str], spent: list[int]) -> list[str]:
    """A WebP's chunks other than `_RIFF_KNOWN`, each read as a blob; [OPAQUE] past the bounds."""
    if raw[:4] != b"RIFF" or raw[8:12] != b"WEBP":
        return []
    pos = 12
    for _ in range(MAX_PARTS):
        if pos + 8 > len(raw):
            return out
        kind, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        if kind not in _RIFF_KNOWN:
            out.extend(blob_texts(raw[pos + 8:pos + 8 + size], words, spent))
        pos += 8 + size + (size & 1)
    return [*out, OPAQUE]


def _syncsafe(b: bytes) -> int:
    return (b[0] & 0x7F) << 21 | (b[1] & 0x7F) << 14 | (b[2] & 0x7F) << 7 | (b[3] & 0x7F)


@_fails_closed
def id3_texts(raw: bytes, words: Words, out: list[str], spent: list[int]) -> list[str]:
    """An ID3v2.3/2.4 tag's compressed frames, inflated (`MAX_INFLATED` each) and read as blobs: a tagger may zlib a
    frame (a comment holding the owner's e-mail), and media_text's words read the file's bytes as they are. An
    encrypted frame, or one past the bounds, fails closed; uncompressed frames are left to the words."""
    if raw[:3] != b"ID3" or raw[3] not in (3, 4) or len(raw) < 10:
        return []
    v4 = raw[3] == 4
    end = min(len(raw), 10 + _syncsafe(raw[6:10]))
    pos = 10
    for _ in range(MAX_PARTS):
        if pos + 10 > end or raw[pos] == 0:  # the tag's end, or its padding
            return out
        size = _syncsafe(raw[pos + 4:pos + 8]) if v4 else struct.unpack(">I", raw[pos + 4:pos + 8])[0]
        fmt = raw[pos + 9]
        data = raw[pos + 10:pos + 10 + size]
        pos += 10 + size
        compressed, encrypted = (fmt & 0x08, fmt & 0x04) if v4 else (fmt & 0x80, fmt & 0x40)
        if encrypted:
            return [*out, OPAQUE]
        if not compressed:
            continue
        skip = (1 if fmt & 0x40 else 0) + (4 if fmt & 0x01 else 0) if v4 else 4 + (1 if fmt & 0x20 else 0)
        d = zlib.decompressobj()
        try:
            inflated = d.decompress(data[skip:], MAX_INFLATED)
        except zlib.error:
            return [*out, OPAQUE]
        if d.unconsumed_tail:
            return [*out, OPAQUE]
        _spend(spent, len(inflated))
        out.extend(blob_texts(inflated, words, spent))
    return [*out, OPAQUE]
