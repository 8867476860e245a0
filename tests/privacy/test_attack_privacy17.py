"""Privacy round 17 (session 37, privacy17). Real HTTP, the official SDKs, recording upstream doubles, `pii: redact` on
a fallback route remote -> local (the `remote` fixture) unless said.

1. The detector's slowest input, digits between spaces (`1 1 1 ...`, ~3.6 us a character after privacy16): the date
   recognizer tried its whole numeric pattern at every digit run, and the card recognizer's split of a long run walked
   every (start, end) pair of its groups. Counted here (no timing): patterns tried, lines run.
2. Image metadata no reader reached: a PNG's text chunks after its image data (`tEXt`/`zTXt`/`iTXt`, where libpng's
   `png_write_end` puts them), an `eXIf` chunk there, private chunks anywhere, a text chunk's keyword; EXIF's
   UTF-16 fields (Windows' XPAuthor/XPComment..., a UserComment marked UNICODE).
3. Over-redaction: a PDF's dates (`D:20261207140009Z`) read as card or phone numbers (review36f's left).
4. A card one space after another number (`order 123456 4111 1111 1111 1111`, a space-separated table's row, a
   14-digit id that passes Luhn): the card pattern took the first 19 digits and the next try began mid-group.
6. A card printed in its groups with a letter or digit glued outside it (`ID4111 1111 1111 1111`; a restored value
   the model wrote between characters, `9<CREDIT_CARD_1>5`, sent back after the client trimmed its history).
5. A PDF's earlier revision (an incremental update replaced the page's content stream): its kerned line
   (`[(jane.d) -20 (oe@exam) 30 (ple.com)] TJ`, as most producers write text) was read string by string."""

from __future__ import annotations

import io
import struct
import sys
import zlib

import pytest
from PIL import Image

from tests.gateway.conftest import ant, oai
from tests.privacy.file_parts import b64, files_sent, send, sent
from tests.privacy.pdfs import make_pdf, pdf_document
from tierwise.privacy.recognizers import dates, ids
from tierwise.privacy.recognizers.prescan import Prescan

# ---------------------------------------------------------------- 1. the slowest input: digits between spaces


class _Matches:
    """A compiled pattern that counts its anchored tries."""

    def __init__(self, rx) -> None:
        self.rx, self.tried = rx, 0

    def match(self, text, pos=0, endpos=None):
        self.tried += 1
        return self.rx.match(text, pos, *(() if endpos is None else (endpos,)))


@pytest.mark.parametrize("unit", ["1 ", "12 ", "1 1 ", "1\t", "4111 ", "1  "])
def test_digits_between_spaces_do_not_try_the_date_pattern_at_each(monkeypatch, unit):
    """A numeric date goes on from its first digits with `-/.:`, an ordinal, `am`/`h`, or spaces and a month name:
    a digit run followed by spaces and another digit starts none (base: one try per run, 10,000 here)."""
    tries = _Matches(dates._DATE_NUM)
    monkeypatch.setattr(dates, "_DATE_NUM", tries)
    text = (unit * (20_000 // len(unit)))[:20_000]
    assert list(dates.DateTimeRecognizer().find(text, Prescan(text))) == []
    assert tries.tried <= 2, tries.tried


@pytest.mark.parametrize("text", ["on 1 March 2024", "at 5 pm", "12:30", "2024-05-01", "3/4/25", "1st of May",
                                  "17.30 Uhr", "1.\tMärz", "9am", "5 p.m.", "12h30 h"])
def test_numeric_dates_are_still_found(text):
    got = [text[f.start:f.end] for f in dates.DateTimeRecognizer().find(text, Prescan(text))]
    assert got and any(g[0].isdigit() for g in got), got


def _lines_run(fn) -> int:
    """Lines of `CardRecognizer._split` executed while `fn` runs."""
    code = ids.CardRecognizer._split.__code__
    count = 0

    def tracer(frame, event, _arg):
        nonlocal count
        if frame.f_code is not code:
            return None
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize("unit", ["1 ", "1 1 ", "12 ", "7 "])
def test_a_long_spaced_digit_run_is_split_without_walking_every_pair(unit):
    """`_split` joined only the pieces of 13-19 digits, but still looked at every (start, end) pair of a 19-group run:
    ~1,200 lines a match (base: 32 lines a character on `1 `, 12 on `12 `; now 5.4 and 3.0): the ends each start can
    have are bisected now."""
    text = (unit * (4_000 // len(unit)))[:4_000]
    r = ids.CardRecognizer()
    lines = _lines_run(lambda: list(r.find(text, Prescan(text))))
    assert lines <= 8 * len(text), lines / len(text)


@pytest.mark.parametrize("text", ["9 4111 1111 1111 1111 5", "12 4111-1111-1111-1111", "4111 1111 1111 1111 7 7 7"])
def test_a_card_inside_a_longer_run_is_still_found(text):
    got = [text[f.start:f.end].replace(" ", "").replace("-", "") for f in ids.CardRecognizer().find(text, Prescan(text))]
    assert "4111111111111111" in got, got


# ---------------------------------------------------------------- 2. image metadata no reader reached

EMAIL = "jane.doe@example.com"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(save_kw: dict | None = None) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(out, "PNG", **(save_kw or {}))
    return out.getvalue()


def _png_with(chunk: bytes, where: str = "after") -> bytes:
    """A PNG with `chunk` after its image data (before IEND) or before it (after IHDR)."""
    png = _png()
    at = png.rindex(b"IEND") - 4 if where == "after" else 33
    return png[:at] + chunk + png[at:]


def _exif(tag: int, value: bytes, ifd: int | None = None) -> bytes:
    exif = Image.Exif()
    if ifd is None:
        exif[tag] = value
    else:
        exif[ifd] = {tag: value}
    return exif.tobytes()


def _jpeg_with(exif: bytes) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(out, "JPEG", exif=exif)
    return out.getvalue()


NOTE = f"mail {EMAIL} now".encode()
HIDDEN = {
    "png-tEXt-after-image-data": lambda: _png_with(_chunk(b"tEXt", b"Comment\x00" + EMAIL.encode())),
    "png-zTXt-after-image-data": lambda: _png_with(_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(NOTE))),
    "png-iTXt-compressed-after-image-data": lambda: _png_with(
        _chunk(b"iTXt", b"Comment\x00\x01\x00\x00\x00" + zlib.compress(NOTE))),
    "png-iTXt-translated-keyword": lambda: _png_with(_chunk(b"iTXt", b"Author\x00\x00\x00en\x00" + EMAIL.encode()
                                                            + b"\x00x"), "before"),
    "png-tEXt-keyword": lambda: _png_with(_chunk(b"tEXt", EMAIL.encode() + b"\x00x"), "before"),
    "png-eXIf-after-image-data": lambda: _png_with(_chunk(b"eXIf", _exif(0x013B, EMAIL.encode()))),
    "png-private-chunk-before": lambda: _png_with(_chunk(b"prVt", EMAIL.encode()), "before"),
    "png-private-chunk-after": lambda: _png_with(_chunk(b"prVt", EMAIL.encode())),
    "png-private-chunk-zlib": lambda: _png_with(_chunk(b"prVt", zlib.compress(NOTE)), "before"),
    "jpeg-exif-xpauthor-utf16": lambda: _jpeg_with(_exif(0x9C9D, EMAIL.encode("utf-16-le") + b"\x00\x00")),
    "jpeg-exif-xpcomment-utf16": lambda: _jpeg_with(_exif(0x9C9C, NOTE.decode().encode("utf-16-le"))),
    "jpeg-exif-usercomment-unicode-be": lambda: _jpeg_with(
        _exif(0x9286, b"UNICODE\x00" + EMAIL.encode("utf-16-be"), 0x8769)),
    "jpeg-exif-usercomment-unicode-le": lambda: _jpeg_with(
        _exif(0x9286, b"UNICODE\x00" + EMAIL.encode("utf-16-le"), 0x8769)),
}


def _send_image(g, up, openai_up, data: bytes, media: str) -> None:
    if up is openai_up:
        oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": f"data:{media};base64," + b64(data)}},
            {"type": "text", "text": "Describe it."}]}])
    else:
        ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": media, "data": b64(data)}},
            {"type": "text", "text": "Describe it."}]}])


@pytest.mark.parametrize("name", list(HIDDEN))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_an_address_in_image_metadata_no_reader_reached_is_withheld(remote, openai_up, name):
    """Each of these images reached the remote model whole, the address inside: Pillow's header read stops at the
    first IDAT and keeps only the chunks it knows (and their keywords as keys, unscanned); EXIF's UTF-16 fields were
    decoded as Latin-1 (`j\\x00a\\x00n...`). Now the image is withheld, as one whose metadata holds an address."""
    g, up = remote
    data = HIDDEN[name]()
    media = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    _send_image(g, up, openai_up, data, media)
    body = sent(up)
    assert up.requests and b64(data) not in body, name
    assert data not in files_sent(up) and "withheld by the privacy guard" in body, name


CLEAN = {
    "png-text-after-image-data": lambda: _png_with(_chunk(b"tEXt", b"Software\x00GIMP 2.10")),
    "png-private-binary-chunk": lambda: _png_with(_chunk(b"prVt", bytes(range(256)) * 4)),
    "png-with-time-and-phys": lambda: _png_with(_chunk(b"tIME", b"\x07\xea\x0c\x07\x10\x23\x09")
                                                + _chunk(b"pHYs", b"\x00\x00\x0b\x13\x00\x00\x0b\x13\x01")),
    "jpeg-xptitle": lambda: _jpeg_with(_exif(0x9C9B, "Holiday at the lake".encode("utf-16-le"))),
}


@pytest.mark.parametrize("name", list(CLEAN))
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_an_image_whose_extra_chunks_hold_nothing_protected_leaves_whole(remote, openai_up, name):
    g, up = remote
    data = CLEAN[name]()
    _send_image(g, up, openai_up, data, "image/png" if data.startswith(b"\x89PNG") else "image/jpeg")
    assert b64(data) in sent(up), name


def test_a_png_text_chunk_that_inflates_past_the_bound_fails_closed():
    from tierwise.privacy.media_text import media_text
    from tierwise.privacy.payload_bytes import OPAQUE

    bomb = _png_with(_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"a" * (2 << 20))))
    assert OPAQUE in media_text(b64(bomb))


# ---------------------------------------------------------------- 3. a PDF's dates are no cards or phone numbers

LUHN_DATE = "20261207140009"  # passes the card checksum; so do ~1 in 10 dates


def _pdf_dated(stamp: str) -> bytes:
    """A PDF with nothing protected in it but its creation and modification dates."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>",
            b"<< /Producer (tierwise tests) /CreationDate (" + stamp.encode() + b") /ModDate (" + stamp.encode()
            + b") >>"]
    return pdf_document(objs, b" /Info 3 0 R")


@pytest.mark.parametrize("stamp", [f"D:{LUHN_DATE}Z", f"D:{LUHN_DATE}+01'00'", f"D:{LUHN_DATE}-05'00'", f"D:{LUHN_DATE}",
                                   "D:20240315093012+01'00'", "D:19991231235959Z00'00'"])
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_pdf_s_dates_do_not_withhold_it(remote, openai_up, stamp):
    """The 14 digits of a PDF date passed the card checksum one time in ten and the phone parser in about half the
    zone forms: the PDF was replaced by its redacted text. Now a `D:` date (its fields checked) is a date."""
    g, up = remote
    data = _pdf_dated(stamp)
    send(g, up, openai_up, data, "application/pdf")
    assert data in files_sent(up), stamp


@pytest.mark.parametrize("text", ["card 20261207140009 thanks", "D:4111111111111111", "X:20261207140009",
                                  "D:20261307140009 card 4111 1111 1111 1111", "D:20261207140009 4111 1111 1111 1111"])
def test_a_number_that_is_not_a_pdf_date_is_still_found(det, text):
    assert {f.entity for f in det.scan(text)} & {"CREDIT_CARD", "PHONE_NUMBER"}, text


# ---------------------------------------------------------------- 4. a card one space after another number

AFTER_A_NUMBER = ["Order 123456 4111 1111 1111 1111, please refund it.", "10042 4111 1111 1111 1111 12/27",
                  "ref 20261207140009 4111 1111 1111 1111", "tel 08 123 45 67 4111 1111 1111 1111",
                  "2024 5500-0000-0000-0004 was charged", "ids 1 2 3 4 5 6 7 4111 1111 1111 1111"]


@pytest.mark.parametrize("text", AFTER_A_NUMBER)
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_card_one_space_after_another_number_does_not_reach_the_remote_model(remote, text):
    from tests.privacy.support import ask_remote_not_leaking

    card = "5500-0000-0000-0004" if "5500" in text else "4111 1111 1111 1111"  # (`leaked` checks its digits too)
    ask_remote_not_leaking(*remote, text, card)


# ---------------------------------------------------------------- 5. a PDF's earlier revision, its text kerned


def _revised(first: bytes) -> bytes:
    """A PDF whose page content revision 1 wrote as `first` (Flate); revision 2, an incremental update, replaces that
    stream (object 4) with `(Hello) Tj`: readers show Hello, the file still carries revision 1."""
    raw = make_pdf([], content=zlib.compress(first))
    prev = int(raw.rsplit(b"startxref", 1)[1].split()[0])
    clean = zlib.compress(b"BT /F1 11 Tf 72 720 Td (Hello) Tj ET")
    at = len(raw)
    upd = b"4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(clean) + clean + b"\nendstream\nendobj\n"
    return raw + upd + (b"xref\n4 1\n%010d 00000 n \ntrailer\n<< /Size 6 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n"
                        b"%%%%EOF\n" % (at, prev, at + len(upd)))


REVISED = {
    "kerned": b"BT /F1 11 Tf 72 720 Td [(Mail jane.d) -20 (oe@exam) 30.5 (ple.com now)] TJ ET",
    "kerned-hex": b"BT /F1 11 Tf 72 720 Td [<6a616e652e646f65> -120 (@example.com)] TJ ET",
    "kerned-escaped": b"BT /F1 11 Tf 72 720 Td [(jane.doe) -20 (\\100example.com)] TJ ET",
}


@pytest.mark.parametrize("name", list(REVISED))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_an_earlier_revision_s_kerned_line_is_read(remote, openai_up, name):
    g, up = remote
    data = _revised(REVISED[name])
    send(g, up, openai_up, data, "application/pdf")
    assert up.requests and data not in files_sent(up), name
    assert EMAIL not in sent(up), name


def test_the_revised_pdf_shows_the_second_revision():
    """Guard of the fixture: pypdf reads revision 2's page."""
    from pypdf import PdfReader

    r = PdfReader(io.BytesIO(_revised(REVISED["kerned"])), strict=True)
    assert r.pages[0].extract_text().strip() == "Hello"


# ---------------------------------------------------------------- 6. a printed card with something glued outside it

GLUED = ["ID4111 1111 1111 1111, thanks", "card x4111 1111 1111 1111y ok", "ref 4111-1111-1111-11115 b",
         "amex A3782 822463 10005.", "Paid with 94111 1111 1111 11115 yesterday"]


@pytest.mark.parametrize("text", GLUED)
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_printed_card_with_a_letter_or_digit_glued_outside_does_not_reach_the_remote_model(remote, text):
    from tests.privacy.support import ask_remote_not_leaking

    card = "3782 822463 10005" if "3782" in text else "4111-1111-1111-1111" if "-" in text else "4111 1111 1111 1111"
    ask_remote_not_leaking(*remote, text, card)


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_restored_card_glued_by_the_model_is_not_resent_after_the_history_is_trimmed(remote, openai_up):
    """Turn 1: the remote model writes the placeholder between two characters; the client gets the card restored
    there (`94111 1111 1111 11115`). Turn 2: the client dropped turn 1's user message (a trimmed history) and sends
    the answer back: the card went to the remote model in clear (session 36's left)."""
    from tests.doubles import Reply
    from tests.privacy.support import leaked

    g, up = remote
    openai_up.default = lambda rec: Reply(text="Saved 9<CREDIT_CARD_1>5 for you.")
    c = oai(g)
    first = c.chat.completions.create(model="fb", messages=[{"role": "user", "content": "My card is 4111 1111 1111 1111"}])
    answer = first.choices[0].message.content
    assert "94111 1111 1111 11115" in answer  # restored where the model put it
    c.chat.completions.create(model="fb", messages=[{"role": "assistant", "content": answer},
                                                    {"role": "user", "content": "Which card was that?"}])
    assert len(up.requests) == 2 and not leaked(up.requests[1].raw, ["4111 1111 1111 1111"])
