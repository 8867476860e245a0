"""An inline image's width and height, read from its header (PNG, GIF, JPEG, WebP) without an image library: what
the providers bill an image by (providers/usage_bounds.py floors an upstream's input count with it). Only the first
`HEAD_BYTES` of the image are decoded; past them (a JPEG whose metadata is longer) the size is unknown."""

from __future__ import annotations

import binascii
import re

HEAD_BYTES = 96 * 1024  # (a JPEG's EXIF segment, before its frame header, is at most 64 KB)
_B64_HEAD = HEAD_BYTES // 3 * 4
_SEGMENTS = 256  # read before the frame header (an honest JPEG has a few dozen; a hostile one's fill costs no more)
_FILL = re.compile(rb"\xff+")
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)


def image_size(data: str) -> tuple[int, int] | None:
    """(width, height) of base64 image `data` (bare, or a data: URL), None when its header is not read."""
    if data.startswith("data:"):
        data = data[data.find(",") + 1:]
    raw = _decoded(data[:64])  # (every header but a JPEG's frame is in its first 48 bytes)
    if raw[:2] == b"\xff\xd8":
        raw = _decoded(data[:_B64_HEAD])
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR":
        return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    if raw[:6] in (b"GIF87a", b"GIF89a") and len(raw) >= 10:
        return int.from_bytes(raw[6:8], "little"), int.from_bytes(raw[8:10], "little")
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return _webp(raw)
    if raw[:2] == b"\xff\xd8":
        return _jpeg(raw)
    return None


def _decoded(head: str) -> bytes:
    try:
        return binascii.a2b_base64(head[:len(head) - len(head) % 4])
    except (binascii.Error, ValueError):
        return b""


def _webp(raw: bytes) -> tuple[int, int] | None:
    kind = raw[12:16]
    if kind == b"VP8 " and len(raw) >= 30:
        return int.from_bytes(raw[26:28], "little") & 0x3FFF, int.from_bytes(raw[28:30], "little") & 0x3FFF
    if kind == b"VP8L" and len(raw) >= 25:
        bits = int.from_bytes(raw[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if kind == b"VP8X" and len(raw) >= 30:
        return 1 + int.from_bytes(raw[24:27], "little"), 1 + int.from_bytes(raw[27:30], "little")
    return None


def _jpeg(raw: bytes) -> tuple[int, int] | None:
    i = 2
    for _ in range(_SEGMENTS):
        if i + 9 > len(raw) or raw[i] != 0xFF:
            return None
        i = _FILL.match(raw, i).end() - 1  # type: ignore[union-attr]  # (fill bytes: a run of 0xFF, one step)
        marker = raw[i + 1] if i + 1 < len(raw) else 0
        if marker in _SOF:
            return int.from_bytes(raw[i + 7:i + 9], "big"), int.from_bytes(raw[i + 5:i + 7], "big")
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # (markers without a length)
            i += 2
            continue
        i += 2 + int.from_bytes(raw[i + 2:i + 4], "big")  # (a segment's length counts its own two bytes: i moves on)
    return None
