"""What a payload's bytes are, for the privacy scan: a `data:` URL read as a reader reads it (`data_url`), the
charset a payload declares (`declared_charset`), and whether bytes the scan cannot read as text or a PDF are a
known image or audio format (`known_media`) or opaque bytes, which fail the scan closed (`OPAQUE`).

Round 14 (privacy14):
- `data:` URLs were matched by a pattern stricter than readers are (WHATWG fetch, RFC 2397): `data:;base64,` (no
  media type), a quoted or percent-encoded parameter (`name="a b.pdf"`, `name=a%20b.pdf`), `;base64 ,`, a
  `#fragment` after the payload or spaces inside it were no payload to the scan, which then read the URL as text and
  found nothing in the PDF it carried: the PDF reached the remote model with its values. A data: URL that is not
  base64 but percent-encoded bytes (`data:application/pdf,%25PDF-1.4...`) was likewise text.
- Bytes that were neither text in an encoding the scan reads nor a PDF were skipped as "binary": a gzip or zip of
  a text or a PDF, a `.docx`, EBCDIC, KOI8-R, a Shift-JIS note under 64 bytes all reached the remote model unread.
  Now only formats that carry pixels or sound (their magic bytes) are skipped; any other bytes fail closed under a
  protecting policy (not sent to a remote model; a fallback target serves). Encrypted blobs the APIs define
  (redacted thinking, signatures, `encrypted_content`) are not payloads and are not affected.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

from tierwise.privacy.archives import is_archive
from tierwise.privacy.charsets import decode

# A text the detector refuses to scan (fails closed), as `pdf_text.UNREADABLE`
OPAQUE = "\x00tierwise: bytes the privacy scan cannot read\x00"

_WS = " \t\n\r\x0c"
_BASE64_END = re.compile(r";[ ]*base64", re.IGNORECASE)


class DataUrl(NamedTuple):
    head: str  # `data:` through the comma, as written
    media: str  # the media type and parameters (between `data:` and the comma, without `;base64`), lower-cased
    base64: bool
    payload: str  # base64: without ASCII whitespace and any `#fragment`; else as written (percent-encoded)


def data_url(v: str) -> DataUrl | None:
    """`v` as a `data:` URL the way WHATWG fetch reads one (the scheme in any case, the first comma ends the
    header, `;base64` at the header's end after spaces, a fragment is no part of the payload), or None."""
    if v[:5].lower() != "data:":
        return None
    comma = v.find(",")
    if comma < 0:
        return None
    header = v[5:comma].strip(_WS)
    payload = v[comma + 1:]
    if "#" in payload:
        payload = payload[: payload.index("#")]
    ends = [m.start() for m in _BASE64_END.finditer(header) if m.end() == len(header)]
    is64 = bool(ends)
    if is64:
        header = header[: ends[0]]
        payload = "".join(payload.split()) if any(c in payload for c in _WS) else payload
    return DataUrl(v[: comma + 1], header.lower(), is64, payload)


def url_bytes(u: DataUrl) -> bytes | None:
    """The bytes a data: URL carries (None: base64 that does not decode)."""
    if not u.base64:
        return unquote_to_bytes(u.payload)
    return b64_bytes(u.payload)


def b64_bytes(payload: str, limit: int | None = None) -> bytes | None:
    """Base64 `payload` (standard or URL-safe, percent-encoded or not) decoded; `limit`: only its first characters."""
    s = payload if limit is None else payload[: limit + 64]
    if "%" in s:
        s = unquote_to_bytes(s).decode("latin-1")
    s = "".join(s.split()).rstrip("=").replace("-", "+").replace("_", "/")
    if limit is not None:
        s = s[:limit]
        s = s[: len(s) - len(s) % 4]
    try:
        return binascii.a2b_base64(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError):
        return None


def to_b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# Codecs that are not a text's encoding (they transform text or stand for nothing)
_NOT_CHARSETS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"})
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([\w.:-]{1,40})", re.IGNORECASE)


def declared_charset(media: str) -> str | None:
    """The text encoding a media type names (`text/plain;charset=IBM037`), when Python has it; else None."""
    m = _CHARSET.search(media or "")
    if m is None:
        return None
    try:
        info = codecs.lookup(m.group(1))
    except LookupError:
        return None
    return info.name if getattr(info, "_is_text_encoding", True) and info.name not in _NOT_CHARSETS else None


# Formats that carry pixels or sound, by their first bytes: the scan does not read them (no OCR, no speech), as
# before.
_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"\x89PNG\r\n\x1a\n"), (0, b"\xff\xd8\xff"), (0, b"GIF87a"), (0, b"GIF89a"), (0, b"BM"),
    (0, b"II*\x00"), (0, b"MM\x00*"), (0, b"\x00\x00\x01\x00"), (4, b"ftyp"),  # ftyp: HEIC, AVIF, MP4, M4A, MOV
    (0, b"OggS"), (0, b"fLaC"), (0, b"ID3"), (0, b"\x1aE\xdf\xa3"),  # Ogg, FLAC, MP3 with tags, WebM/Matroska
    (0, b"#!AMR"), (0, b"FORM"), (0, b".snd"),
    # review34d: formats users send that failed closed as opaque bytes: JPEG XL (codestream, container), JPEG 2000
    # (jp2, j2k), QuickTime/MP4 files that begin with another box than `ftyp` (classic `.mov`, fragments), QOI, ICNS,
    # Photoshop, DDS, MIDI, CAF, WMA/ASF, MPEG program streams, FLV
    (0, b"\xff\x0a"), (4, b"JXL \r\n\x87\n"), (4, b"jP  \r\n\x87\n"), (0, b"\xff\x4f\xff\x51"),
    (4, b"moov"), (4, b"mdat"), (4, b"wide"), (4, b"free"), (4, b"skip"), (4, b"pnot"), (4, b"styp"),
    (0, b"qoif"), (0, b"icns"), (0, b"8BPS"), (0, b"DDS "), (0, b"MThd"), (0, b"caff"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"), (0, b"\x00\x00\x01\xba"), (0, b"FLV\x01"),
)
_RIFF = (b"WEBP", b"WAVE", b"AVI ")
_NETPBM = re.compile(rb"P[1-7][ \t\r\n]")  # PBM/PGM/PPM/PAM: a text header, then binary samples


def known_media(head: bytes) -> bool:
    """Are these a payload's first bytes an image, audio or video format's?"""
    if head[:4] in (b"RIFF", b"RIFX", b"RF64"):  # (big-endian and 64-bit WAV too)
        return head[8:12] in _RIFF
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio frames, ADTS AAC
        return True
    if _NETPBM.match(head) or (head[:1] == b"\x0a" and head[1:2] in b"\x00\x02\x03\x04\x05" and head[2:3] == b"\x01"):
        return True  # (PCX: manufacturer 10, a version, RLE encoding)
    return any(head[at:at + len(m)] == m for at, m in _MAGIC)


def opaque(payload: str) -> bool:
    """Base64 `payload` is neither text (asked before) nor a format `known_media` lets pass: opaque bytes."""
    head = b64_bytes(payload, 352)
    if head is not None and len(head) < 12 and head and decode(head) is not None:
        return False  # review34d: a tiny text file (`ok\n`, `a,b\n1,2\n`) is read whole (media_text.py)
    if head is not None and is_archive(head):
        # (imported here: media_text reads payloads with this module's helpers)
        from tierwise.privacy.media_text import archive

        return archive(payload) is None  # privacy15: read within bounds (archives.py), else opaque as before
    return head is None or not known_media(head[:64])
