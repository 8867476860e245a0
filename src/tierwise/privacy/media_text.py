"""The text an image, audio or video payload carries beside its pixels and samples, for the privacy scan: its
metadata as Pillow reads it (PNG `tEXt`/`zTXt`/`iTXt`, EXIF's text fields, XMP, comments) and every run of
printable bytes that reads as words (a space or an `@` in it), anywhere in the file; and a tiny payload's whole text.

Review34d (privacy round 14's review): a payload whose first bytes were a known format's (`payload_bytes.known_media`)
left unread, whatever followed: a PNG signature followed by a plain note with an address and a card, a real PNG
whose `tEXt`/`zTXt` chunk held the author's e-mail, a JPEG whose EXIF `Artist` or XMP did, an MP3 whose ID3 comment
did: all reached the remote model. Now that text is scanned (`...#media` locations); an image with a finding in it
is withheld from the remote call (redact_canonical: it cannot be edited in place without a library made for
stripping metadata, which is not installed), and a `local_only` class keeps the request local.

Not read: text in pixels (no OCR), EXIF GPS coordinates (numbers, no text a detector reads), UTF-16 text in a
file's bytes, text compressed inside a format other than a PNG's text chunks before its image data.
"""

from __future__ import annotations

import io
import re
import warnings
from functools import lru_cache

from tierwise.privacy.charsets import decode
from tierwise.privacy.payload_bytes import b64_bytes

_RUN = re.compile(rb"[\x20-\x7e\t]{6,}")
_WORDISH = (b" ", b"@")
_TINY = 12  # bytes: a payload this short is read as text when it is text (`holds_text` needs 12 base64 chars)
_META_KEYS = ("comment", "xmp", "XML:com.adobe.xmp", "Description", "Author", "Comment", "Title", "Copyright")
# EXIF tags holding text: ImageDescription, Make, Model, Software, Artist, Copyright, UserComment, XP* (UTF-16)
_EXIF_TEXT = (0x010E, 0x010F, 0x0110, 0x0131, 0x013B, 0x8298, 0x9286, 0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F)


@lru_cache(maxsize=32)
def media_text(payload: str) -> str:
    """The text base64 `payload` (a file the scan lets pass as an image, audio or video format, or a tiny one)
    carries, joined by line breaks; "" when none."""
    raw = b64_bytes(payload)
    if not raw:
        return ""
    if len(raw) < _TINY:
        got = decode(raw)
        return got[0] if got is not None else ""
    parts = _metadata(raw)
    parts.extend(r.decode("ascii") for r in _RUN.findall(raw) if any(w in r for w in _WORDISH))
    return "\n".join(p for p in parts if p.strip())


def _metadata(raw: bytes) -> list[str]:
    """The text fields Pillow reads from an image's headers (no pixel is decoded); [] when it reads none."""
    try:
        from PIL import Image
    except ImportError:  # (an optional dependency: the byte runs still read uncompressed text)
        return []
    out: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(raw)) as im:
                for k, v in im.info.items():
                    if isinstance(k, str) and (k in _META_KEYS or isinstance(v, str)):
                        out.append(_as_text(v))
                exif = im.getexif()
                for tag in _EXIF_TEXT:
                    if tag in exif:
                        out.append(_as_text(exif[tag]))
                for tag, v in exif.get_ifd(0x8769).items():  # the Exif IFD: UserComment and other strings
                    if isinstance(v, (str, bytes)) and tag in _EXIF_TEXT:
                        out.append(_as_text(v))
    except Exception:  # noqa: BLE001 - not an image Pillow reads (audio, video, a spoof): its byte runs are read
        return out
    return out


def _as_text(v: object) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        if v[:8] in (b"ASCII\x00\x00\x00", b"UNICODE\x00"):  # EXIF UserComment's character code
            v = v[8:]
        got = decode(v)
        return got[0] if got is not None else v.decode("latin-1")
    return ""
