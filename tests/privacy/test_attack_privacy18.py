"""Privacy round 18 (session 38): values smuggled past the detector. Real HTTP, the official SDKs, recording upstream
doubles, `pii: redact` on a fallback route remote -> local (the `remote` fixture).

1. A dash or underscore between a PDF date and the value after it (`D:20261207140009-46701234567`, `...-536-22-8147`,
   `...-2127365000`): review37e reads the text again with the date's digits blanked to letters, and `x-46701234567`
   is no phone or SSN for their recognizers: nothing was found.
2. A compact card glued to letters on both sides: hex letters (`A4111111111111111B`, `ab4111111111111111cd`) were
   taken for a hash at any length (review37e's rule), letters of another script (`é4111111111111111é`, `ж...`, `ア...`)
   were refused by the number rules as word characters and not taken by the glued rule (ASCII letters only).
3. Text where no image reader looked (privacy/png_chunks.py, privacy/media_segments.py): a zlib or gzip stream after a
   PNG's IEND, a note after it that itself ends in `IEND` (media_text took the last `IEND` bytes for the image's end),
   padding in a fixed-size chunk (`pHYs`, `gAMA`, `tIME`), a palette of text; a JPEG's IPTC fields (APP13), other APPn
   segments, a note ending in `FF D9`; a GIF's extensions in sub-blocks under 12 bytes, its plain-text and application
   extensions; a WebP's own chunks (plain or zlib); a TIFF's DocumentName; and a lone value between binary bytes (no
   two spaces around it: media_text's word runs skipped it) after a PNG, JPEG or BMP, in a private chunk.
4. A card printed as a number with thousands separators (`4,111,111,111,111,111`): a spreadsheet's export.
5. A value cut into runs in an office document's XML (Word splits a paragraph wherever formatting, a spelling mark or a
   revision id changes; OpenDocument spans; Excel rich text; PowerPoint runs): the scan read the markup, the value in
   pieces (privacy/office_text.py reads the text as displayed).
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import wave
import zlib

import pytest
from PIL import Image, TiffImagePlugin

from tests.privacy.file_parts import b64, files_sent, send, sent
from tests.privacy.support import ask_remote_not_leaking, leaked, sent_texts
from tests.privacy.test_attack_privacy15 import zip_of
from tests.privacy.test_attack_privacy17 import _chunk, _png_with, _send_image
from tierwise.privacy.media_text import media_text
from tierwise.privacy.payload_bytes import OPAQUE

# ---------------------------------------------------------------- 1. a value glued after a PDF date by a dash

GLUED_TO_A_DATE = {
    "D:20261207140009-46701234567": "46701234567",
    "D:20261207140009Z-46701234567": "46701234567",
    "D:20261207140009-2127365000": "2127365000",
    "D:20261207140009-536-22-8147": "536-22-8147",
    "D:20261207140009_46701234567": "46701234567",
    "(D:20261207140009-(212)736-5000)": "(212)736-5000",
}


@pytest.mark.parametrize("text", list(GLUED_TO_A_DATE))
def test_a_value_glued_after_a_pdf_date_by_a_dash_is_found(det, text):
    value = GLUED_TO_A_DATE[text]
    got = [text[f.start:f.end] for f in det.scan(text)]
    assert any(value in g for g in got), got


DATED_HTTP = {"Created D:20261207140009-46701234567 by the scanner": "46701234567",
              "/CreationDate (D:20261207140009-536-22-8147)": "536-22-8147"}


@pytest.mark.parametrize("text", list(DATED_HTTP))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_value_glued_after_a_pdf_date_does_not_reach_the_remote_model(remote, text):
    ask_remote_not_leaking(*remote, text, DATED_HTTP[text])


@pytest.mark.parametrize("stamp", ["D:20261207140009-05'00'", "D:20261207140009Z", "D:20261207140009-"])
def test_a_pdf_date_with_a_dash_is_still_no_value(det, stamp):
    assert [(f.entity, stamp[f.start:f.end]) for f in det.scan(f"/ModDate ({stamp}) /Producer (x)")
            if f.entity not in ("DATE_TIME", "DATE_OF_BIRTH")] == []


# ---------------------------------------------------------------- 2. a compact card glued to letters on both sides

BOTH_SIDES = ["A4111111111111111B", "ab4111111111111111cd", "Card: ABC4111111111111111DEF ok", "é4111111111111111é",
              "ж4111111111111111ж", "ア4111111111111111ア", "ref é4111111111111111", "4111111111111111é ok"]


@pytest.mark.parametrize("text", BOTH_SIDES)
def test_a_compact_card_glued_to_letters_on_both_sides_is_found(det, text):
    assert "CREDIT_CARD" in {f.entity for f in det.scan(text)}, text


@pytest.mark.parametrize("text", ["Paid with A4111111111111111B yesterday", "Карта ж4111111111111111ж спасибо"])
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_compact_card_glued_to_letters_on_both_sides_does_not_reach_the_remote_model(remote, text):
    ask_remote_not_leaking(*remote, text, "4111111111111111")


@pytest.mark.parametrize("text", ["commit a4111111111111111b9c0d1e2f3a4b5c6d fixed it",
                                  "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                                  "été 2026, 14 jours", "build 20261207 ok"])
def test_a_digest_or_prose_with_digits_is_still_no_card(det, text):
    assert "CREDIT_CARD" not in {f.entity for f in det.scan(text)}, text


# ---------------------------------------------------------------- 3. text where no image reader looks

EMAIL = "jane.doe@example.com"
NOTE = f"Contact {EMAIL} please".encode()


def _img(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(out, fmt)
    return out.getvalue()


def _png_before_data(chunk: bytes) -> bytes:
    png = _png_with(b"", "before")
    return png[:33] + chunk + png[33:]


def _jpeg_segment(marker: int, data: bytes) -> bytes:
    jpg = _img("JPEG")
    return jpg[:2] + b"\xff" + bytes([marker]) + struct.pack(">H", len(data) + 2) + data + jpg[2:]


def _gif_extension(label: int, head: bytes, data: bytes, size: int = 5) -> bytes:
    gif = _img("GIF")
    blocks = b"".join(bytes([len(data[k:k + size])]) + data[k:k + size] for k in range(0, len(data), size))
    return gif[:-1] + b"\x21" + bytes([label]) + (bytes([len(head)]) + head if head else b"") + blocks + b"\x00\x3b"


def _webp_chunk(kind: bytes, data: bytes) -> bytes:
    webp = _img("WEBP")
    body = webp[12:] + kind + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def _iptc(value: bytes) -> bytes:
    dataset = b"\x1c\x02\x76" + struct.pack(">H", len(value)) + value  # 2:118 Contact
    return b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">I", len(dataset)) + dataset


HIDDEN = {
    "png-zlib-after-IEND": lambda: _img("PNG") + zlib.compress(NOTE),
    "png-gzip-after-IEND": lambda: _img("PNG") + gzip.compress(NOTE),
    "png-note-ending-in-IEND-bytes": lambda: _img("PNG") + NOTE + b" IEND\x00\x00\x00\x00",
    "png-lone-address-after-IEND": lambda: _img("PNG") + b"\x00" + EMAIL.encode() + b"\x00",
    "png-pHYs-padded-with-text": lambda: _png_before_data(_chunk(b"pHYs", b"\x00\x00\x0b\x13\x00\x00\x0b\x13\x01" + NOTE)),
    "png-gAMA-padded-with-zlib": lambda: _png_before_data(_chunk(b"gAMA", b"\x00\x00\xb1\x8f" + zlib.compress(NOTE))),
    "png-tIME-padded": lambda: _png_before_data(_chunk(b"tIME", b"\x07\xea\x0c\x07\x10\x23\x09" + EMAIL.encode())),
    "png-palette-of-text": lambda: _png_before_data(_chunk(b"PLTE", NOTE[:len(NOTE) // 3 * 3])),
    "png-private-chunk-lone-address": lambda: _png_before_data(_chunk(b"prVt", b"\x01\x02" + EMAIL.encode() + b"\x00")),
    "jpeg-iptc-contact": lambda: _jpeg_segment(0xED, _iptc(EMAIL.encode())),
    "jpeg-app15-text": lambda: _jpeg_segment(0xEF, NOTE),
    "jpeg-app15-zlib": lambda: _jpeg_segment(0xEF, zlib.compress(NOTE)),
    "jpeg-app1-not-exif": lambda: _jpeg_segment(0xE1, b"MyTool\x00" + EMAIL.encode()),
    "jpeg-note-ending-in-EOI": lambda: _img("JPEG") + NOTE + b"\xff\xd9",
    "jpeg-lone-address-after-EOI": lambda: _img("JPEG") + b"\x00" + EMAIL.encode() + b"\x00",
    "gif-comment-in-small-blocks": lambda: _gif_extension(0xFE, b"", NOTE),
    "gif-plain-text-extension": lambda: _gif_extension(0x01, bytes(12), NOTE),
    "gif-application-extension": lambda: _gif_extension(0xFF, b"NOTETOOL1.0", NOTE),
    "webp-private-chunk-lone-address": lambda: _webp_chunk(b"NOTE", EMAIL.encode()),
    "webp-private-chunk-zlib": lambda: _webp_chunk(b"NOTE", zlib.compress(NOTE)),
    "bmp-lone-address-after-the-pixels": lambda: _img("BMP") + EMAIL.encode(),
    "tiff-document-name": lambda: _tiff({269: EMAIL}),
}


def _tiff(tags: dict[int, str]) -> bytes:
    out = io.BytesIO()
    info = TiffImagePlugin.ImageFileDirectory_v2()
    for k, v in tags.items():
        info[k] = v
    Image.new("RGB", (8, 8)).save(out, "TIFF", tiffinfo=info)
    return out.getvalue()


_MEDIA = {b"\x89PNG": "image/png", b"\xff\xd8": "image/jpeg", b"GIF8": "image/gif", b"RIFF": "image/webp",
          b"BM": "image/bmp", b"II*\x00": "image/tiff"}


def _media(data: bytes) -> str:
    return next(v for k, v in _MEDIA.items() if data.startswith(k))


@pytest.mark.parametrize("name", list(HIDDEN))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_an_address_where_no_image_reader_looks_is_withheld(remote, openai_up, name):
    g, up = remote
    data = HIDDEN[name]()
    _send_image(g, up, openai_up, data, _media(data))
    body = sent(up)  # (withheld, or the whole request kept local: a file the scan cannot read fails closed)
    assert b64(data) not in body and data not in files_sent(up) and EMAIL not in body, name


CLEAN = {
    "png": lambda: _img("PNG"),
    "png-zero-padding-after-IEND": lambda: _img("PNG") + bytes(64),
    "png-private-binary-chunk": lambda: _png_before_data(_chunk(b"prVt", bytes(range(256)) * 4)),
    "jpeg": lambda: _img("JPEG"),
    "jpeg-iptc-caption": lambda: _jpeg_segment(0xED, _iptc(b"Holiday at the lake")),
    "gif": lambda: _img("GIF"),
    "gif-netscape-loop": lambda: _gif_extension(0xFF, b"NETSCAPE2.0", b"\x01\x00\x00", 3),
    "webp": lambda: _img("WEBP"),
    "bmp-with-a-note": lambda: _img("BMP") + b"Made with the editor",
}


@pytest.mark.parametrize("name", list(CLEAN))
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_an_image_with_nothing_protected_where_no_reader_looks_leaves_whole(remote, openai_up, name):
    g, up = remote
    data = CLEAN[name]()
    _send_image(g, up, openai_up, data, _media(data))
    assert b64(data) in sent(up), name


BOMBS = {
    "png-zlib-after-IEND": lambda: _img("PNG") + zlib.compress(b"a" * (2 << 20)),
    "png-binary-after-IEND": lambda: _img("PNG") + bytes(range(256)) * 4,
    "jpeg-app15-zlib": lambda: _jpeg_segment(0xEF, zlib.compress(b"a" * (2 << 20))),
    "jpeg-many-segments": lambda: _img("JPEG")[:2] + b"\xff\xef\x00\x02" * 10_001 + _img("JPEG")[2:],
    "gif-many-extensions": lambda: _img("GIF")[:-1] + b"\x21\xfe\x01a\x00" * 10_001 + b"\x3b",
    "gif-many-sub-blocks": lambda: _img("GIF")[:-1] + b"\x21\xfe" + b"\x01a" * 100_001 + b"\x00\x3b",
    "webp-many-chunks": lambda: _webp_chunk(b"NOTE", b"") + b"NOTE\x00\x00\x00\x00" * 10_001,
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_the_new_readers_fail_closed_past_their_bounds(name):
    assert OPAQUE in media_text(b64(BOMBS[name]()))


# ---------------------------------------------------------------- 4. a card printed as a number with thousands separators

THOUSANDS = {"card 4,111,111,111,111,111": "4,111,111,111,111,111",
             "card 4'111'111'111'111'111": "4'111'111'111'111'111",
             'amount,"4,111,111,111,111,111.00",EUR': "4,111,111,111,111,111",
             "amex 378,282,246,310,005": "378,282,246,310,005"}


@pytest.mark.parametrize("text", list(THOUSANDS))
def test_a_card_with_thousands_separators_is_found(det, text):
    got = [text[f.start:f.end] for f in det.scan(text) if f.entity == "CREDIT_CARD"]
    assert THOUSANDS[text] in got, got


@pytest.mark.parametrize("text", ['customer,"4,111,111,111,111,111",paid', "Karte;4'111'111'111'111'111;bitte"])
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_card_with_thousands_separators_does_not_reach_the_remote_model(remote, text):
    g, up = remote
    ask_remote_not_leaking(g, up, text, "4111111111111111")
    assert not [r for r in up.requests if "4,111,111,111" in r.raw.decode() or "4'111'111'111" in r.raw.decode()]


@pytest.mark.parametrize("text", ["population 7,900,000,000", "debt 31,400,000,000,000", "total 1,234,567,890,123,456",
                                  "x 4,111,111,111,111,111,111", "list 1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6"])
def test_other_numbers_with_thousands_separators_are_no_card(det, text):
    assert "CREDIT_CARD" not in {f.entity for f in det.scan(text)}, text


# ---------------------------------------------------------------- 5. a value cut into runs in an office document

_W = '<w:document xmlns:w="x"><w:body>{}</w:body></w:document>'
_RUN = '<w:r><w:rPr><w:b/><w:rFonts w:ascii="Arial"/></w:rPr><w:t xml:space="preserve">{}</w:t></w:r>'
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _docx(*runs: str) -> bytes:
    body = '<w:p w:rsidR="00AB12CD">' + '<w:proofErr w:type="spellStart"/>'.join(_RUN.format(r) for r in runs) + "</w:p>"
    return zip_of({"[Content_Types].xml": b"<Types/>", "word/document.xml": _W.format(body).encode()})


OFFICE = {
    "docx-address-in-two-runs": lambda: _docx("Mail jane.doe@", "example.com today"),
    "docx-card-in-four-runs": lambda: _docx("Card 4111 ", "1111", " 1111 ", "1111 thanks"),
    "odt-card-in-a-span": lambda: zip_of({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": (
        b'<office:document-content><office:body><office:text><text:p>Card <text:span text:style-name="T1">4111'
        b'</text:span><text:s/>1111 1111 1111</text:p></office:text></office:body></office:document-content>')}),
    "xlsx-address-in-rich-text-runs": lambda: zip_of({"xl/sharedStrings.xml": (
        b'<sst><si><r><t>jane.doe</t></r><r><rPr><b/></rPr><t>@example.com</t></r></si></sst>')}),
    "pptx-address-in-two-runs": lambda: zip_of({"ppt/slides/slide1.xml": (
        b'<p:sld><a:p><a:r><a:t>jane.doe@exam</a:t></a:r><a:r><a:rPr b="1"/><a:t>ple.com</a:t></a:r></a:p></p:sld>'
    )}),
}


@pytest.mark.parametrize("name", list(OFFICE))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_value_cut_into_runs_in_an_office_document_does_not_reach_the_remote_model(remote, openai_up, name):
    g, up = remote
    data = OFFICE[name]()
    send(g, up, openai_up, data, DOCX)
    body = sent(up)
    assert up.requests and b64(data)[:40] not in body and "withheld by the privacy guard" in body, name
    assert not leaked("".join(re.sub(r"<[^>]*>", "", s) for s in sent_texts(up)).encode(),
                      [EMAIL, "4111 1111 1111 1111"]), name


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_an_office_document_with_runs_that_form_no_value_leaves_whole(remote, openai_up):
    g, up = remote
    data = _docx("Invoice 2024", "-05 for the ", "garden", " work")
    send(g, up, openai_up, data, DOCX)
    assert b64(data) in sent(up)


def _wav_with_comment(value: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(4000))
    info = b"INFOICMT" + struct.pack("<I", len(value) + 1) + value + b"\x00" + b"\x00" * ((len(value) + 1) % 2)
    body = out.getvalue()[12:] + b"LIST" + struct.pack("<I", len(info)) + info
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WAVE" + body


AUDIO = {
    "wav-list-info-comment": lambda: _wav_with_comment(EMAIL.encode()),
    "flac-vorbis-comment": lambda: (b"fLaC\x84\x00\x00\x30" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 1)
                                    + struct.pack("<I", 8 + len(EMAIL)) + b"CONTACT=" + EMAIL.encode() + bytes(100)),
}


@pytest.mark.parametrize("name", list(AUDIO))
def test_a_lone_address_in_audio_metadata_is_read(det, name):
    """An audio file's tag holding the address alone (no two spaces around it: media_text's word runs skipped it)."""
    texts = media_text(b64(AUDIO[name]()))
    assert "EMAIL_ADDRESS" in {f.entity for t in texts if t != OPAQUE for f in det.scan(t)}, texts


def _id3(frame_flags: bytes, data: bytes, version: int = 3) -> bytes:
    def syncsafe(n: int) -> bytes:
        return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])

    frame = b"COMM" + (syncsafe(len(data)) if version == 4 else struct.pack(">I", len(data))) + frame_flags + data
    return b"ID3" + bytes([version, 0, 0]) + syncsafe(len(frame)) + frame + b"\xff\xfb\x90\x00" + bytes(400)


_COMM = b"\x00eng\x00" + NOTE
ID3_FRAMES = {
    "id3v2.3-compressed-comment": lambda: _id3(b"\x00\x80", struct.pack(">I", len(_COMM)) + zlib.compress(_COMM)),
    "id3v2.4-compressed-comment": lambda: _id3(b"\x00\x09", bytes([0, 0, 0, len(_COMM)]) + zlib.compress(_COMM), 4),
}


@pytest.mark.parametrize("name", list(ID3_FRAMES))
def test_an_address_in_a_compressed_id3_frame_is_read(det, name):
    texts = media_text(b64(ID3_FRAMES[name]()))
    assert "EMAIL_ADDRESS" in {f.entity for t in texts if t != OPAQUE for f in det.scan(t)}, texts


def test_an_encrypted_id3_frame_fails_closed_and_a_plain_one_does_not():
    assert OPAQUE in media_text(b64(_id3(b"\x00\x40", b"\x01" + bytes(40))))
    assert OPAQUE not in media_text(b64(_id3(b"\x00\x00", b"\x00eng\x00Holiday at the lake")))


HIDDEN_IN_MARKUP = {
    "an-attribute": '<w:bookmarkStart w:id="4111111111111111" w:name="x"/>',
    "a-comment": "<!-- card 4111 1111 1111 1111 -->",
    "a-malformed-tag": "<4111111111111111>",
}


@pytest.mark.parametrize("name", list(HIDDEN_IN_MARKUP))
def test_a_value_in_an_office_document_s_markup_is_still_read(det, name):
    """Reading the XML as displayed must not drop what is in its markup (the raw XML was scanned before)."""
    xml = _W.format(f'<w:p>{HIDDEN_IN_MARKUP[name]}<w:r><w:t>Hello</w:t></w:r></w:p>')
    texts = [m.text for m in _archive_texts(zip_of({"word/document.xml": xml.encode()}))]
    assert "CREDIT_CARD" in {f.entity for t in texts for f in det.scan(t)}, texts


def _archive_texts(data: bytes) -> list:
    from tierwise.privacy.media_text import archive

    got = archive(b64(data))
    assert got is not None
    return got
