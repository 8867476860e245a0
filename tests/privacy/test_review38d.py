"""Review of privacy round 18 (session 38, review38d): what its new readers still let pass, and what made them slow or
memory-hungry.

1. media_segments left a JPEG segment to Pillow by its first bytes whatever its marker and place: an APP15 or APP13
   starting `Adobe` or `JFIF\\0`, an APP0 JFIF's bytes after its fields, a comment Pillow's later comment replaced, a
   second EXIF block, and any segment after the first scan (Pillow stops there) were read by no one.
2. A lone value in UTF-16 (`jane.doe@example.com` alone, no two spaces): privacy18's value rule was for ASCII runs only.
3. A GIF comment after the trailer, cut in sub-blocks shorter than a word run.
4. An office attribute holding a card grouped with `/` (`descr="4111/1111/1111/1111"`): `office_text` took it for a
   path and dropped it, where the raw XML scan had read it.
5. Each blob inflated up to 1 MB with no bound a file: 200 zlib segments in a 210 KB JPEG gave 210 M characters.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, ImageCms

from tests.privacy.file_parts import b64
from tests.privacy.test_attack_privacy15 import zip_of
from tests.privacy.test_attack_privacy18 import _archive_texts
from tierwise.privacy.media_text import _xmp_values, media_text
from tierwise.privacy.payload_bytes import OPAQUE

EMAIL = "jane.doe@example.com"
NOTE = f"Contact {EMAIL} please".encode()


def _img(fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(out, fmt, **kw)
    return out.getvalue()


def _seg(marker: int, data: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(data) + 2) + data


def _exif(tag: int, value: str) -> bytes:
    exif = Image.Exif()
    exif[tag] = value
    return b"Exif\x00\x00" + exif.tobytes()


def _first(*segments: bytes) -> bytes:
    jpg = _img("JPEG")
    return jpg[:2] + b"".join(segments) + jpg[2:]


def _before_eoi(segment: bytes) -> bytes:
    jpg = _img("JPEG")
    return jpg[:-2] + segment + jpg[-2:]


def _entities(det, data: bytes) -> set[str]:
    return {f.entity for t in media_text(b64(data)) if t != OPAQUE for f in det.scan(t)}


# ---------------------------------------------------------------- 1. JPEG segments Pillow does not read

JPEG_UNREAD = {
    "app15-starting-Adobe": lambda: _first(_seg(0xEF, b"Adobe" + NOTE)),
    "app13-starting-JFIF": lambda: _first(_seg(0xED, b"JFIF\x00" + NOTE)),
    "app0-JFIF-bytes-after-its-fields": lambda: _first(_seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + NOTE)),
    "a-comment-a-later-one-replaced": lambda: _first(_seg(0xFE, NOTE), _seg(0xFE, b"hello")),
    "a-comment-after-the-scan": lambda: _before_eoi(_seg(0xFE, NOTE)),
    "a-second-exif-block": lambda: _first(_seg(0xE1, _exif(0x010E, "x")), _seg(0xE1, _exif(0x013B, EMAIL))),
    "an-exif-block-after-the-scan": lambda: _before_eoi(_seg(0xE1, _exif(0x013B, EMAIL))),
}


@pytest.mark.parametrize("name", list(JPEG_UNREAD))
def test_a_jpeg_segment_pillow_does_not_read_is_read(det, name):
    assert "EMAIL_ADDRESS" in _entities(det, JPEG_UNREAD[name]()), name


def test_a_camera_like_jpeg_is_still_clean(det):
    """EXIF (read by Pillow, once), JFIF, an ICC profile (whose descriptions read as phone numbers): nothing found."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 5D Mark IV"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _img("JPEG", exif=exif, icc_profile=icc)
    texts = media_text(b64(data))
    assert OPAQUE not in texts and not {f.entity for t in texts for f in det.scan(t)} - {"DATE_TIME"}, texts


# ---------------------------------------------------------------- 2. a lone value in UTF-16

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    png = _img("PNG")
    chunk = struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return png[:33] + chunk + png[33:]


UTF16 = {
    "jpeg-app15": lambda: _first(_seg(0xEF, b"\x01\x02" + EMAIL.encode("utf-16-le"))),
    "png-private-chunk": lambda: _png_chunk(b"prVt", b"\x01\x02" + EMAIL.encode("utf-16-le")),
    "after-a-bmp": lambda: _img("BMP") + EMAIL.encode("utf-16-be"),
}


@pytest.mark.parametrize("name", list(UTF16))
def test_a_lone_value_in_utf16_is_read(det, name):
    assert "EMAIL_ADDRESS" in _entities(det, UTF16[name]()), name


# ---------------------------------------------------------------- 3. a GIF comment after the trailer

def _gif_after_trailer(data: bytes) -> bytes:
    blocks = b"".join(bytes([len(data[k:k + 5])]) + data[k:k + 5] for k in range(0, len(data), 5))
    return _img("GIF") + b"\x21\xfe" + blocks + b"\x00\x3b"


def test_a_gif_comment_after_the_trailer_is_read(det):
    assert "EMAIL_ADDRESS" in _entities(det, _gif_after_trailer(NOTE))
    assert "EMAIL_ADDRESS" in _entities(det, _img("GIF") + zlib.compress(NOTE))


def test_a_gif_with_zero_padding_after_its_trailer_is_clean(det):
    texts = media_text(b64(_img("GIF") + bytes(64)))
    assert OPAQUE not in texts and not {f.entity for t in texts for f in det.scan(t)}, texts


# ---------------------------------------------------------------- 4. an office attribute holding a grouped card

_W = '<w:document xmlns:w="x"><w:body><w:p>{}<w:r><w:t>Hello</w:t></w:r></w:p></w:body></w:document>'


@pytest.mark.parametrize("attr", ['descr="4111/1111/1111/1111"', 'title="Card 4111/1111/1111/1111"'])
def test_a_card_grouped_by_slashes_in_an_office_attribute_is_read(det, attr):
    xml = _W.format(f'<wp:docPr id="1" {attr}/>')
    texts = [m.text for m in _archive_texts(zip_of({"word/document.xml": xml.encode()}))]
    assert "CREDIT_CARD" in {f.entity for t in texts for f in det.scan(t)}, texts


def test_office_paths_and_ids_are_still_no_value(det):
    xml = _W.format('<w:hyperlink r:id="rId7" w:rsidR="00AB12CD" w:history="1"/><a:blip r:embed="media/image1.png"/>')
    texts = [m.text for m in _archive_texts(zip_of({"word/document.xml": xml.encode()}))]
    assert not {f.entity for t in texts for f in det.scan(t)}, texts


# ---------------------------------------------------------------- 5. inflation bounded a file

MAX_FILE_INFLATED = 4 << 20  # (media_segments.MAX_FILE_INFLATED, written out: this file runs against round 18 too)


def _zlib_blob() -> bytes:
    return zlib.compress(b"a " * (1 << 18), 9)  # 512 KB each


INFLATING = {
    "jpeg-app15": lambda: _first(*[_seg(0xEF, _zlib_blob())] * 10),
    "gif-comments": lambda: _img("GIF")[:-1] + b"".join(
        b"\x21\xfe" + b"".join(bytes([len(z[k:k + 255])]) + z[k:k + 255] for k in range(0, len(z), 255)) + b"\x00"
        for z in [_zlib_blob()] * 10) + b"\x3b",
    "webp-chunks": lambda: _webp_with([(b"NOTE", _zlib_blob())] * 10),
}


def _webp_with(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = _img("WEBP")[12:] + b"".join(k + struct.pack("<I", len(d)) + d + b"\x00" * (len(d) % 2) for k, d in chunks)
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


@pytest.mark.parametrize("name", list(INFLATING))
def test_a_file_s_blobs_inflate_within_one_bound(name):
    texts = media_text(b64(INFLATING[name]()))
    assert OPAQUE in texts and sum(map(len, texts)) <= MAX_FILE_INFLATED + (1 << 20), name


# ---------------------------------------------------------------- the linear XMP and office expressions read as before

def test_xmp_fields_are_read_as_before():
    xmp = ('<x:xmpmeta><rdf:Description photoshop:City="Stockholm"><dc:creator><rdf:Seq><rdf:li>Jane Doe</rdf:li>'
           '</rdf:Seq></dc:creator><Iptc4xmpCore:CreatorContactInfo rdf:parseType="Resource"><Iptc4xmpCore:CiEmailWork>'
           f'{EMAIL}</Iptc4xmpCore:CiEmailWork></Iptc4xmpCore:CreatorContactInfo></rdf:Description></x:xmpmeta>')
    assert _xmp_values(xmp) == ["Stockholm", "Jane Doe", EMAIL]


def test_an_office_comment_holding_a_less_than_sign_is_still_read(det):
    xml = _W.format("<!-- a < b, card 4111 1111 1111 1111 -->")
    texts = [m.text for m in _archive_texts(zip_of({"word/document.xml": xml.encode()}))]
    assert "CREDIT_CARD" in {f.entity for t in texts for f in det.scan(t)}, texts


# ---------------------------------------------------------------- 6. a camera's MPO (images one after another)

def _camera_jpeg(artist: str | None = None, seed: int = 0) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "FUJIFILM", "FinePix REAL 3D W3"
    if artist:
        exif[0x013B] = artist
    exif[0x8769] = {0xA431: "412345678901", 0xA435: "598765432109", 0xA420: f"{seed * 7919 + 12345:032x}"}
    return _img("JPEG", exif=exif)


def test_a_camera_mpo_s_serial_numbers_are_no_phone_numbers(det):
    """privacy18 read the images after the first as words: the body and lens serial numbers in their EXIF read as
    phone numbers (94 of 100 camera MPOs withheld; base 0). Each further image is read as a JPEG now."""
    data = _camera_jpeg(seed=1) + _camera_jpeg(seed=2)
    texts = media_text(b64(data))
    assert OPAQUE not in texts and not {f.entity for t in texts for f in det.scan(t)} - {"DATE_TIME"}, texts


def test_an_address_in_an_mpo_s_second_image_is_read(det):
    assert "EMAIL_ADDRESS" in _entities(det, _camera_jpeg(seed=1) + _camera_jpeg(EMAIL, seed=2))


def test_jpegs_one_after_another_past_the_bound_fail_closed():
    assert OPAQUE in media_text(b64(_img("JPEG") * 40))


# ---------------------------------------------------------------- 7. amounts with thousands separators

def _luhn_completed(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def _grouped(digits: str, sep: str = ",") -> str:
    return f"{int(digits):,}".replace(",", sep)


@pytest.mark.parametrize("body", ["4123456789012", "41234567890123456", "5123456789012", "2812345678901234",
                                  "3712345678901", "312345678901234"])
def test_an_amount_of_no_card_network_s_length_or_prefix_is_no_card(det, body):
    """Luhn-valid, first digit 2-6, but Visa at 14 or 18 digits, Mastercard 51-55 at 14, 28 (no network) at 17,
    Amex 37 at 14, 31 (no network) at 16: privacy18's thousands rule read each as a card."""
    text = f'total,"{_grouped(_luhn_completed(body))}.00",USD'
    assert "CREDIT_CARD" not in {f.entity for f in det.scan(text)}, text


@pytest.mark.parametrize("digits", ["4111111111111111", "378282246310005", "5555555555554444", "6011111111111117",
                                    "3530111333300000", "4222222222222"])
def test_a_card_s_number_with_thousands_separators_is_still_found(det, digits):
    text = f"customer;{_grouped(digits, '.')};paid"
    assert "CREDIT_CARD" in {f.entity for f in det.scan(text)}, text


def test_a_png_s_text_chunks_inflate_within_one_bound():
    """privacy17's reader inflated each zTXt chunk up to 1 MB with no bound a file (200 of them: 210 M characters)."""
    png = _img("PNG")
    chunk = b"k\x00\x00" + _zlib_blob()
    chunks = (struct.pack(">I", len(chunk)) + b"zTXt" + chunk + struct.pack(">I", zlib.crc32(b"zTXt" + chunk))) * 10
    at = png.rindex(b"IEND") - 4
    texts = media_text(b64(png[:at] + chunks + png[at:]))
    assert OPAQUE in texts and sum(map(len, texts)) <= MAX_FILE_INFLATED + (1 << 20)
