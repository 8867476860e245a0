"""The text an image, audio or video payload carries beside its pixels and samples, for the privacy scan: its
metadata as Pillow reads it (PNG `tEXt`/`zTXt`/`iTXt`, EXIF's text fields, XMP, comments) and every run of
printable bytes that reads as words (a space or an `@` in it), anywhere in the file, as ASCII or as UTF-16
(privacy15); and a tiny payload's whole text.

Review34d (privacy round 14's review): a payload whose first bytes were a known format's (`payload_bytes.known_media`)
left unread, whatever followed: a PNG signature followed by a plain note with an address and a card, a real PNG
whose `tEXt`/`zTXt` chunk held the author's e-mail, a JPEG whose EXIF `Artist` or XMP did, an MP3 whose ID3 comment
did: all reached the remote model. Now that text is scanned (`...#media` locations); an image with a finding in it
is withheld from the remote call (redact_canonical: it cannot be edited in place without a library made for
stripping metadata, which is not installed), and a `local_only` class keeps the request local.

An EXIF or XMP GPS position stands as `GPS_POSITION`, which the detector reads as a GPS_POSITION finding (pii, phi;
privacy15): such a photo is withheld as one whose metadata holds an address.

Not read: text in pixels (no OCR), text compressed inside a format other than a PNG's text chunks before its image
data.
"""

from __future__ import annotations

import binascii
import io
import re
import struct
import warnings
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from tierwise.privacy.archives import ArchiveUnreadable, Member, is_archive, read_archive
from tierwise.privacy.charsets import decode
from tierwise.privacy.media_segments import gif_texts, id3_texts, jpeg_end, jpeg_texts, riff_texts
from tierwise.privacy.payload_bytes import OPAQUE, b64_bytes, known_media
from tierwise.privacy.png_chunks import SIGNATURE, late_texts, png_end

# Runs of printable bytes that read as words: 12 or more, two spaces or more, at most one byte in ten outside letters,
# digits and `.@,:-+` (random bytes: ~4 runs of 12 per MB, ~1 in 1,000 of those reads as words; a finding in one of
# them withholds the file, so the rule is strict; a first rule, any run of 6 with a space or an `@`, found an
# "address" in 3 of 20 random 1 MB images)
_MIN_RUN = 12
_PRINTABLE = bytes((ord("a") if 0x20 <= c <= 0x7E or c == 9 else 0) for c in range(256))
_SEED = b"a" * _MIN_RUN
_WORDY = re.compile(rb"[A-Za-z0-9 .@,:+-]")
# privacy18: a run that holds a value with no two spaces around it (`jane.doe@example.com`, `4111111111111111`,
# `+46701234567` alone between binary bytes: in a WebP's own chunk, after a JPEG's or BMP's end) is read too: an
# e-mail's shape, or nine digits (the fewest of a phone, SSN, card or IBAN) with at most single separators
_VALUE = re.compile(rb"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+\.[A-Za-z0-9.-]*[A-Za-z]{2}|[0-9](?:[ ./-]?[0-9]){8}")
_TINY = 12  # bytes: a payload this short is read as text when it is text (`holds_text` needs 12 base64 chars)
_META_KEYS = ("comment", "Description", "Author", "Comment", "Title", "Copyright")
# EXIF tags holding text: ImageDescription, Make, Model, Software, Artist, Copyright, UserComment, XP* (UTF-16)
_EXIF_TEXT = (0x010E, 0x010F, 0x0110, 0x0131, 0x013B, 0x8298, 0x9286, 0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F)


@lru_cache(maxsize=8)  # (a request's scan and redaction read a payload twice; as pdf_text's cache, 8 payloads)
def media_text(payload: str) -> tuple[str, ...]:
    """The texts base64 `payload` (a file the scan lets pass as an image, audio or video format, or a tiny one)
    carries, one per field or run (scanned apart: joined, a field's `00` and the next field's `GIMP 2` read as a
    street address); () when none."""
    raw = _plain64(payload) if _PLAIN.fullmatch(payload, 0, 4096) else b64_bytes(payload)
    if not raw:
        return ()
    if is_archive(raw[:_ARCHIVE_HEAD]):
        # review35f: the one read `opaque` asked (`archive`'s): read again, a request's archive budget, spent by the
        # first reads, made this one fail, and `()` let an archive `opaque` had passed leave unscanned; and a read
        # that fails fails the scan closed
        got = archive(payload)
        if got is None:
            return (OPAQUE,)
        # zipfile reads by the central directory, tarfile stops at the end blocks: a note appended to an archive, or
        # between its entries, is no file of it; words anywhere in its bytes are read as in a media file's
        return (*(m.text for m in got), *word_runs(raw), *utf16_runs(raw))
    return _file_texts(raw)


_ARCHIVE_HEAD = 262  # (a tar's `ustar` sits at 257)


@lru_cache(maxsize=8)
def archive(payload: str) -> list[Member] | None:
    """The files' names and texts of the archive base64 `payload` holds (privacy/archives.py), or None: no archive
    this module reads whole within its bounds (fails closed: `payload_bytes.opaque`)."""
    raw = _plain64(payload) if _PLAIN.fullmatch(payload, 0, 4096) else b64_bytes(payload)
    return _archive(raw) if raw and is_archive(raw[:_ARCHIVE_HEAD]) else None


def _archive(raw: bytes) -> list[Member] | None:
    try:
        return read_archive(raw, _member_media)
    except ArchiveUnreadable:
        return None


def _member_media(data: bytes) -> list[str] | None:
    """A file inside an archive that is an image, audio or video file: its text fields; else None."""
    return list(_file_texts(data)) if known_media(data[:64]) else None


def _file_texts(raw: bytes, images: int = 0) -> tuple[str, ...]:
    if len(raw) < _TINY:
        got = decode(raw)
        return (got[0],) if got is not None else ()
    parts, end = _metadata(raw)
    if raw.startswith(SIGNATURE):  # privacy17: text chunks after the image data, private chunks: png_chunks.py
        parts.extend(late_texts(raw, _exif_chunk, _profile_texts, _words))
    elif raw[:2] == b"\xff\xd8":  # privacy18: segments Pillow skips (IPTC, APPn), GIF extensions, WebP chunks
        parts.extend(jpeg_texts(raw, _words))
    elif raw[:3] == b"GIF":
        parts.extend(gif_texts(raw, _words))
    elif raw[:4] == b"RIFF":
        parts.extend(riff_texts(raw, _words))
    elif raw[:3] == b"ID3":  # an MP3's tag: its zlib-compressed frames
        parts.extend(id3_texts(raw, _words))
    if GPS_POSITION not in parts and _position_elsewhere(raw):
        parts.append(GPS_POSITION)
    # An image Pillow reads: its text fields, and words after its end (a note appended after a PNG's IEND or a
    # JPEG's last EOI); anything else (audio, video, a spoofed signature): words anywhere outside ICC profiles
    rest = _without_icc(raw[end:] if end is not None else raw)
    if end and raw[end:end + 2] == b"\xff\xd8":
        # review38d: another JPEG after this one (an MPO's further images: a 3D or multi-shot camera's) is read as a
        # JPEG, its EXIF by its text fields: read as words since privacy18, its serial numbers withheld 94 of 100
        # camera MPOs (as phone numbers); past `_MAX_IMAGES` fails closed
        parts.extend(_file_texts(raw[end:], images + 1) if images < _MAX_IMAGES else (OPAQUE,))
        rest = b""
    parts.extend(word_runs(rest))
    parts.extend(utf16_runs(rest))  # privacy15: an ID3 comment in UTF-16, a Windows note appended: read as words too
    return tuple(p for p in parts if p.strip())


_MAX_IMAGES = 16  # JPEGs one after another in one file (an MPO's images)
_PLAIN = re.compile(r"[A-Za-z0-9+/]*={0,2}")  # (the first 4 KB: `_plain64` checks the rest as it decodes)


def _plain64(payload: str) -> bytes | None:
    """Standard base64 decoded without copies (b64_bytes joins, strips and translates first: ~1 ms more per MB)."""
    try:
        return binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError):
        return b64_bytes(payload)


def word_runs(raw: bytes) -> list[str]:
    """The runs of printable bytes in `raw` that read as words (see `_MIN_RUN`), found with `bytes.translate` and
    `bytes.find` (a regex over every byte took ~15 ms per MB)."""
    mask = raw.translate(_PRINTABLE)
    out: list[str] = []
    pos = 0
    while (i := mask.find(_SEED, pos)) >= 0:
        j = mask.find(b"\x00", i)
        j = len(raw) if j < 0 else j
        run = raw[i:j]
        if (run.count(b" ") >= 2 and len(_WORDY.sub(b"", run)) * 10 <= len(run)) or _VALUE.search(run):
            out.append(run.decode("ascii"))
        pos = j
    return out


def _words(raw: bytes) -> list[str]:
    """The runs of words or values in a blob of a file's bytes (media_segments.py, png_chunks.py); an XMP packet in it
    by its values (as `_metadata` reads XMP: its ids and serial numbers read as phone numbers)."""
    if (i := raw.find(b"<x:xmpmeta")) >= 0 and (j := raw.find(b"</x:xmpmeta>", i)) >= 0:
        packet = raw[i:j + 12].decode("utf-8", "replace")
        return [*_xmp_values(packet), *_words(raw[:i]), *_words(raw[j + 12:])]
    return [*word_runs(raw), *utf16_runs(raw)]


_ZERO = bytes((ord("a") if c == 0 else 0) for c in range(256))
_NUL_SEED = bytes(_MIN_RUN)


def utf16_runs(raw: bytes) -> list[str]:
    """The runs of UTF-16 text (little- or big-endian, either byte alignment) in `raw` that read as words by
    `word_runs`' rule: ASCII characters each beside a zero byte (privacy15: an MP3's ID3 comment in UTF-16, an
    XP* tag Pillow did not reach, a note a Windows tool appended were not read). Each alignment's characters are
    one slice, its high bytes another; a run needs 12 printable characters and 12 zero high bytes together."""
    out: list[str] = []
    for p in (0, 1):
        highs = raw[p + 1::2] + b"\x00"  # (LE: the high byte follows; BE text reads as LE a byte on)
        if highs.find(_NUL_SEED) < 0:
            continue  # no 12 zero high bytes in a row (compressed data, random bytes): no text here, ~0.2 ms per MB
        chars = raw[p::2]
        mask = chars.translate(_PRINTABLE)
        pos = 0
        while (i := mask.find(_SEED, pos)) >= 0:
            j = mask.find(b"\x00", i)
            j = len(chars) if j < 0 else j
            zeros = highs[i:j].translate(_ZERO)
            at = 0
            while (a := zeros.find(_SEED, at)) >= 0:
                b = zeros.find(b"\x00", a)
                b = len(zeros) if b < 0 else b
                run = chars[i + a:i + b]
                # review38d: and a lone value, as `word_runs` reads one (privacy18 gave the rule to ASCII runs only:
                # an XPAuthor or a note of just `jane.doe@example.com` in UTF-16 was read by no one)
                if (run.count(b" ") >= 2 and len(_WORDY.sub(b"", run)) * 10 <= len(run)) or _VALUE.search(run):
                    out.append(run.decode("ascii"))
                at = b
            pos = j
    return out


def _metadata(raw: bytes) -> tuple[list[str], int | None]:
    """The text fields Pillow reads from an image's headers (no pixel is decoded), and where its image data ends
    (None: not an image Pillow reads)."""
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with matplotlib, not with tierwise's own dependencies (review34d asks for it):
        return [], len(raw)  # without it nothing is read (words in an image's XMP ids and dates made false findings)
    out: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(raw)) as im:
                fmt = im.format
                for k, v in im.info.items():
                    if not isinstance(k, str):
                        continue
                    if k.startswith("Raw profile type"):  # ImageMagick's hex dumps of EXIF, ICC, IPTC, XMP
                        if k.endswith("xmp"):
                            out.extend(_xmp_values(_raw_profile(v)))
                    elif "xmp" in k.lower():
                        out.extend(_xmp_values(_as_text(v)))
                    elif k in _META_KEYS or isinstance(v, str):
                        out.append(_as_text(v))
                out.extend(_exif_fields(im.getexif()))
    except Exception:  # noqa: BLE001 - not an image Pillow reads (audio, video, a spoof): its byte runs are read
        return out, None
    return out, _end(raw, fmt)


def _exif_fields(exif: Any) -> list[str]:
    """An EXIF block's text fields, and GPS_POSITION when it holds a position."""
    out = [_as_text(exif[tag], tag) for tag in _EXIF_TEXT if tag in exif]
    for tag, v in exif.get_ifd(0x8769).items():  # the Exif IFD: UserComment and other strings
        if isinstance(v, (str, bytes)) and tag in _EXIF_TEXT:
            out.append(_as_text(v, tag))
    if _has_position(exif.get_ifd(0x8825)):  # privacy15: where the photo was taken
        out.append(GPS_POSITION)
    return out


def _profile_texts(key: str, v: str) -> list[str]:
    """An ImageMagick raw profile's texts, as `_metadata` reads them from Pillow: an XMP packet's values only."""
    return _xmp_values(_raw_profile(v)) if key.endswith("xmp") else []


def _exif_chunk(data: bytes) -> list[str]:
    """The text fields of EXIF bytes (a PNG's `eXIf` chunk after its image data: privacy/png_chunks.py)."""
    from PIL import Image

    exif = Image.Exif()
    try:
        exif.load(data)
        return _exif_fields(exif)
    except Exception:  # noqa: BLE001 - EXIF that does not parse: read as a file's bytes are
        return [*word_runs(data), *utf16_runs(data)]


def _end(raw: bytes, fmt: str | None) -> int:
    """Where a PNG's or JPEG's data ends (after IEND's CRC, after the last EOI); 0 for other formats (read whole)."""
    if fmt == "PNG":  # privacy18: the first IEND by the chunks, not the last `IEND` bytes (a note can end in one)
        return png_end(raw) or 0
    if fmt in ("JPEG", "MPO"):  # privacy18: the end by the markers, not the last `FF D9` (a note can end in one)
        return jpeg_end(raw) or 0
    return 0


# XMP's fields a person writes (creator, rights, description, title, keywords, contact details): its other values are
# ids, dates, counts and colour data (`xmp.did:...`, `IEC 61966-2.1` read as phone numbers in 2 of 9 JPEGs here)
# review38d: linear. A field's value runs to the next tag of these namespaces (`(.*?)` ran from each opening tag to the
# end of the packet when no closing one came: 120 KB of `<dc:a>` took 11.7 s; the blobs privacy18 reads as XMP are
# as long as a file); a field holding fields (IPTC's CreatorContactInfo) is read by its inner fields
_NS = "dc|photoshop|Iptc4xmpCore|Iptc4xmpExt|xmpRights|plus"
_XMP_FIELD = re.compile(rf"<({_NS}):(\w+)\b[^<>]*>([^<]*(?:<(?!/?(?:{_NS}):)[^<]*)*)</\1:\2>"
                        rf"|\b(?:{_NS}):\w+=\"([^\"]*)\"")
_TAG = re.compile(r"<[^<>]*>")


def _xmp_values(xmp: str) -> list[str]:
    got = [_TAG.sub(" ", m.group(3) or m.group(4) or "").strip() for m in _XMP_FIELD.finditer(xmp)]
    return [*got, GPS_POSITION] if _XMP_GPS.search(xmp) else got


# The text a file's GPS position stands as in the scan: the detector reads it as a GPS_POSITION finding (detect.py),
# so a file holding one is withheld from a remote model like one whose metadata holds an address (privacy15: EXIF
# GPS coordinates are numbers no recognizer reads, and a phone's photo left with where it was taken)
GPS_POSITION = "\x00tierwise: the GPS position of a photo\x00"
# review38d: `[^<>]` (with `[^<]`, each `exif:GPSLatitude>` with no digit or `<` after it scanned to the end: 340 KB of
# them took 44 s, in any media file's bytes)
_XMP_GPS = re.compile(r"exif:GPS(?:Latitude|Longitude)(?:=\"[^\"]*\d|>[^<>]*\d)")


# privacy16: where a file Pillow does not open says it was taken: an EXIF block anywhere in it (an HEIC photo's Exif
# item, in `mdat`: Pillow opens no HEIC without the pillow-heif plugin), an ISO 6709 position (`+59.3293+018.0686/`:
# an MP4's `\xa9xyz`, a QuickTime movie's `com.apple.quicktime.location.ISO6709`); decimals in both numbers and the
# closing `/` make random bytes match about never
# review36f: an HEIF Exif item needs no `Exif\0\0` before its TIFF header (ISO/IEC 23008-12 A.2.1: a 4-byte offset,
# then the TIFF header: libheif and cameras other than Apple's write it so)
_TIFF_HEADERS = (b"II*\x00", b"MM\x00*")  # (found with `bytes.find`: a regular expression took 110 ms a MB)
# review36f: ISO 6709's degrees-minutes(-seconds) and whole-number forms too (`+5919.76+01804.12/`, `+59+018/`): any
# of them is read as a position by exiftool
_ISO6709 = re.compile(rb"([+-]\d{2}(?:\d{2}){0,2}(?:\.\d+)?)([+-]\d{3}(?:\d{2}){0,2}(?:\.\d+)?)(?:[+-]\d+(?:\.\d+)?)?"
                      rb"(?:CRS[\x21-\x2e\x30-\x7e]*)?/")
_XMP_GPS_BYTES = re.compile(rb"exif:GPS(?:Latitude|Longitude)(?:=\"[^\"]*\d|>[^<>]*\d)")
_MAX_BLOCKS = 8  # EXIF blocks parsed a file (each is a bounded parse of at most 1 MB); past it: a position (review36f)
# The top-level boxes an ISO base media file may start with (QuickTime needs no `ftyp`: a `moov` or `wide` first)
_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"wide", b"free", b"skip", b"mdat", b"pnot", b"uuid", b"meta", b"moof"})


def _boxes_but_media(raw: bytes) -> bytes:
    """An ISO base media file's (MP4, MOV, HEIC, AVIF; review36f: whatever top-level box it starts with) top-level
    boxes but `mdat` (the samples: most of the file, and no place for metadata), joined; b"" for other files."""
    if raw[4:8] not in _FIRST_BOXES:
        return b""
    out, pos = [], 0
    while pos + 8 <= len(raw):
        size, kind = int.from_bytes(raw[pos:pos + 4], "big"), raw[pos + 4:pos + 8]
        if size == 1 and pos + 16 <= len(raw):
            size = int.from_bytes(raw[pos + 8:pos + 16], "big")
        elif size == 0:
            size = len(raw) - pos
        if size < 8:
            out.append(raw[pos:])  # a broken box: the rest is read
            break
        if kind != b"mdat":
            out.append(raw[pos:pos + size])
        pos += size
    return b"".join(out)


def _position_elsewhere(raw: bytes) -> bool:
    boxes = _boxes_but_media(raw)
    for i, m in enumerate(_ISO6709.finditer(boxes)):
        if i >= _MAX_BLOCKS:
            return True  # review36f: nine zero positions before the real one hid it (fails closed)
        if any(float(x) != 0 for x in m.groups()):
            return True
    xmp = raw.find(b"exif:GPS")  # (a find first: the expression's own search cost 1.6 ms a MB)
    if _loci(boxes) or (xmp >= 0 and _XMP_GPS_BYTES.search(raw, xmp)):  # review36f: a 3GPP `loci` box; XMP in an HEIF item or an MP4
        return True
    try:
        from PIL import Image
    except ImportError:
        return False
    for i, at in enumerate(_tiff_headers(raw)):
        if i >= _MAX_BLOCKS:
            return True  # review36f: eight blocks without GPS before the real one hid it (fails closed)
        ex = Image.Exif()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ex.load(raw[at:at + 2**20])
                gps = dict(ex.get_ifd(0x8825))
        except Exception:  # noqa: BLE001 - a broken block: no position read from it (Pillow's own open has failed too)
            continue
        if _has_position(gps):
            return True
    return False


def _tiff_headers(raw: bytes) -> Iterator[int]:
    """Where a TIFF header (an EXIF block's start) is in `raw`, in order."""
    nxt = [raw.find(h) for h in _TIFF_HEADERS]
    while max(nxt) >= 0:
        k = min(range(2), key=lambda j: nxt[j] if nxt[j] >= 0 else len(raw))
        yield nxt[k]
        nxt[k] = raw.find(_TIFF_HEADERS[k], nxt[k] + 4)


def _loci(boxes: bytes) -> bool:
    """Does a 3GPP `loci` box (TS 26.244 8.11: version and flags, language, a NUL-ended name, a role, then longitude,
    latitude and altitude as 16.16 fixed-point numbers) give a position not at zero?"""
    pos = 0
    for _ in range(_MAX_BLOCKS):
        at = boxes.find(b"loci", pos)
        if at < 4:
            return False
        pos = at + 4
        if not 18 <= int.from_bytes(boxes[at - 4:at], "big") <= 4096:
            continue  # the word in a title, not a box
        name_end = boxes.find(b"\x00", at + 10)
        if name_end < 0 or name_end + 10 > len(boxes):
            return True  # a broken box: fails closed
        lon, lat = struct.unpack(">ii", boxes[name_end + 2:name_end + 10])
        if lon or lat:
            return True
    return True


def _has_position(gps: dict[int, object]) -> bool:
    """Does an EXIF GPS IFD give a position (GPSLatitude 2 and GPSLongitude 4, not both zero: a camera without a fix
    writes zeros)? Any value Pillow could not read as numbers counts as one (fails closed)."""
    if 2 not in gps or 4 not in gps:
        return False
    try:
        return any(float(x) != 0 for v in (gps[2], gps[4]) for x in v)  # type: ignore[attr-defined]
    except (TypeError, ValueError, ZeroDivisionError):
        return True


def _without_icc(raw: bytes) -> bytes:
    """`raw` without the ICC colour profiles it embeds (their descriptions, `sRGB IEC61966-2.1`, read as phones)."""
    pos = 0
    while (i := raw.find(b"acsp", pos)) >= 36:
        start = i - 36
        size = int.from_bytes(raw[start:start + 4], "big")
        if 128 <= size <= len(raw) - start:
            raw = raw[:start] + raw[start + size:]
            pos = start
        else:
            pos = i + 4
    return raw


def _raw_profile(v: object) -> str:
    """The bytes of an ImageMagick `Raw profile type` text (a name, a length, then hex lines) as text."""
    lines = str(v).strip().split("\n")[2:]
    try:
        return bytes.fromhex("".join(x.strip() for x in lines)).decode("utf-8", "replace")
    except ValueError:
        return ""


def _as_text(v: object, tag: int = 0) -> str:
    if isinstance(v, tuple) and all(isinstance(b, int) and 0 <= b < 256 for b in v):
        v = bytes(v)
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        # privacy17: Windows' XPTitle/XPComment/XPAuthor/XPKeywords/XPSubject (what Explorer's file properties write)
        # are UTF-16LE always, and a UserComment marked UNICODE is UTF-16 in either byte order: short ones, with
        # no byte-order mark, `decode` took for Latin-1 (`j\x00a\x00n\x00e...`, no address found in it)
        if 0x9C9B <= tag <= 0x9C9F:
            return v.decode("utf-16-le", "replace").rstrip("\x00")
        if v[:8] == b"UNICODE\x00":
            body = v[8:]
            big = body[0::2].count(0) > body[1::2].count(0)  # ASCII's zero bytes come first in big-endian
            return body.decode("utf-16-be" if big else "utf-16-le", "replace").rstrip("\x00")
        if v[:8] == b"ASCII\x00\x00\x00":  # EXIF UserComment's character code
            v = v[8:]
        got = decode(v)
        return got[0] if got is not None else v.decode("latin-1")
    return ""
