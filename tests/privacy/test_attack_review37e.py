"""review37e: an attacker's review of privacy round 17 (session 37). Real HTTP, the official SDKs, recording upstream
doubles, `pii: redact` on a fallback route remote -> local (the `remote` fixture).

1. A PDF date (`D:20261207140009`) ran into the value after it: `D:20261207140009 212-736-5000`,
   `D:20261207140009-4111111111111111`, `D:20261207140009+46701234567`. The recognizers read one longer number (a card
   in the date's 14 digits, the value after it never tried). Before privacy17 the date was redacted as a card and the
   value after it went out as written; since privacy17 drops findings inside PDF dates, nothing was redacted at all.
2. A PNG's text chunks before its image data were left to Pillow (privacy17's png_chunks.py read only the ones after
   it): Pillow keeps one text per keyword (a second `Comment` replaced the first), skips an iTXt that is not UTF-8,
   keeps one `eXIf`, and reads nothing of a file whose text chunk has a bad CRC or inflates past its 1 MB bound or
   names an unknown compression method; an `iCCP` profile's name was never read.
3. privacy17's glued-group step took one space or `-` between the groups: the same card printed with dots, slashes
   or two spaces and a letter glued on (`ID4111.1111.1111.1111`, `A3782/822463/10005`) was not read.
4. A compact card glued to letters that are hex digits (`CC4111111111111111`, `4111111111111111D`, `...BE`): the glued
   rule left out any word of hex digits (taking it for a hash), however short.
5. Many PDF dates (`D:20261207140009 ` repeated): privacy17's filter compared every finding with every date, quadratic
   (100,000 characters 1.5 s, 25,000 0.2 s; the 4M-character limit would hold a worker for hours). Counted here (no
   timing): lines of privacy/pdf_dates.py run.
"""

from __future__ import annotations

import io
import sys
import zlib

import pytest
from PIL import Image, ImageCms

from tests.privacy.file_parts import b64, files_sent, send, sent
from tests.privacy.pdfs import make_pdf
from tests.privacy.support import ask_remote, leaked
from tests.privacy.test_attack_privacy17 import _chunk, _exif, _png_with, _send_image
from tierwise.privacy.media_text import media_text
from tierwise.privacy.payload_bytes import OPAQUE

# ---------------------------------------------------------------- 1. a value right after a PDF date

AFTER_A_DATE = {
    "D:20261207140009 212-736-5000": "212-736-5000",
    "D:20261207140009 (212) 736-5000": "212) 736-5000",
    "D:20261207140009Z 212-736-5000": "212-736-5000",
    "D:20261207140009+46701234567": "46701234567",
    "D:20261207140009-4111111111111111": "4111111111111111",
    "D:20261207140009 4111111111111111": "4111111111111111",
    "D:20261207140009+01'00' 212-736-5000": "212-736-5000",
}


@pytest.mark.parametrize("text", list(AFTER_A_DATE))
def test_a_value_right_after_a_pdf_date_is_found(det, text):
    value = AFTER_A_DATE[text]
    got = [text[f.start:f.end] for f in det.scan(text)]
    assert any(value in g for g in got), got


@pytest.mark.parametrize("text", ["D:20261207144111 1111 1111 1111", "D:4111111111111111", "card 20261207140009 x"])
def test_a_card_glued_into_a_date_like_prefix_is_still_found(det, text):
    assert "CREDIT_CARD" in {f.entity for f in det.scan(text)}, text


@pytest.mark.parametrize("text", ["/CreationDate (D:20261207140009+01'00') /ModDate (D:20261207140009Z)",
                                  "D:20240315093012+01'00' and D:19991231235959Z00'00'"])
def test_pdf_dates_alone_are_still_no_values(det, text):
    assert [f.entity for f in det.scan(text) if f.entity not in ("DATE_TIME", "DATE_OF_BIRTH")] == [], text


@pytest.mark.parametrize("text", list(AFTER_A_DATE))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_value_right_after_a_pdf_date_does_not_reach_the_remote_model(remote, text):
    g, up = remote
    ask_remote(g, up, f"Signed {text} - who is it?")
    assert up.requests and not [r for r in up.requests if leaked(r.raw, [AFTER_A_DATE[text]])], text


@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_pdf_whose_page_prints_a_date_then_a_phone_is_not_sent_as_is(remote, openai_up):
    g, up = remote
    data = make_pdf(["Signed D:20261207140009 212-736-5000 by the holder"])
    send(g, up, openai_up, data, "application/pdf")
    assert up.requests and data not in files_sent(up)
    assert "736-5000" not in sent(up) and "7365000" not in sent(up)


# ---------------------------------------------------------------- 2. a PNG's text chunks before its image data

MAIL = b"jane.doe@example.com"


def _icc(name: bytes) -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return _chunk(b"iCCP", name + b"\x00\x00" + zlib.compress(profile))


def _bad_crc(chunk: bytes) -> bytes:
    return chunk[:-4] + b"\x00\x00\x00\x00"


BEFORE = {
    "second-comment-replaces-the-first": lambda: _png_with(
        _chunk(b"tEXt", b"Comment\x00" + MAIL) + _chunk(b"tEXt", b"Comment\x00hello"), "before"),
    "second-itxt-replaces-the-first": lambda: _png_with(
        _chunk(b"iTXt", b"Comment\x00\x00\x00\x00\x00" + MAIL) + _chunk(b"iTXt", b"Comment\x00\x00\x00\x00\x00hi"), "before"),
    "ztxt-then-text-same-keyword": lambda: _png_with(
        _chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(MAIL)) + _chunk(b"tEXt", b"Comment\x00hi"), "before"),
    "itxt-not-utf8": lambda: _png_with(_chunk(b"iTXt", b"Comment\x00\x00\x00\x00\x00" + MAIL + b" \xe9t\xe9"), "before"),
    "itxt-language-not-ascii": lambda: _png_with(_chunk(b"iTXt", b"Comment\x00\x00\x00\xff\x00\x00" + MAIL), "before"),
    "text-chunk-bad-crc": lambda: _png_with(_bad_crc(_chunk(b"tEXt", b"Comment\x00" + MAIL)), "before"),
    "second-exif": lambda: _png_with(_chunk(b"eXIf", _exif(0x013B, MAIL)) + _chunk(b"eXIf", _exif(0x013B, b"hi")),
                                     "before"),
    "icc-profile-name": lambda: _png_with(_icc(MAIL), "before"),
}


@pytest.mark.parametrize("name", list(BEFORE))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_an_address_in_a_png_text_chunk_pillow_drops_is_withheld(remote, openai_up, name):
    g, up = remote
    data = BEFORE[name]()
    _send_image(g, up, openai_up, data, "image/png")
    body = sent(up)
    assert up.requests and b64(data) not in body, name
    assert "withheld by the privacy guard" in body, name


UNREAD = {
    "itxt-unknown-method": lambda: _png_with(_chunk(b"iTXt", b"Comment\x00\x01\x01\x00\x00" + MAIL), "before"),
    "ztxt-unknown-method": lambda: _png_with(_chunk(b"zTXt", b"Comment\x00\x01" + MAIL), "before"),
    "ztxt-past-the-bound": lambda: _png_with(
        _chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"a" * (1 << 20) + MAIL)), "before"),
}


@pytest.mark.parametrize("name", list(UNREAD))
def test_a_png_text_chunk_no_one_can_read_fails_closed(name):
    assert OPAQUE in media_text(b64(UNREAD[name]())), name


@pytest.mark.parametrize("name", list(UNREAD))
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_png_text_chunk_no_one_can_read_does_not_reach_the_remote_model(remote, openai_up, name):
    g, up = remote
    data = UNREAD[name]()
    _send_image(g, up, openai_up, data, "image/png")
    assert b64(data) not in sent(up), name


def _png_plain() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(out, "PNG", icc_profile=ImageCms.ImageCmsProfile(
        ImageCms.createProfile("sRGB")).tobytes())
    return out.getvalue()


CLEAN_BEFORE = {
    "two-plain-comments": lambda: _png_with(_chunk(b"tEXt", b"Software\x00GIMP 2.10")
                                            + _chunk(b"tEXt", b"Software\x00GIMP 2.10.34"), "before"),
    "named-icc-profile": lambda: _png_with(_icc(b"sRGB IEC61966-2.1"), "before"),
    "pillow-written-icc": _png_plain,
}


@pytest.mark.parametrize("name", list(CLEAN_BEFORE))
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_png_whose_early_chunks_hold_nothing_protected_leaves_whole(remote, openai_up, name):
    g, up = remote
    data = CLEAN_BEFORE[name]()
    _send_image(g, up, openai_up, data, "image/png")
    assert b64(data) in sent(up), name


# ---------------------------------------------------------------- 3. glued groups with the other printed separators

GLUED = ["ID4111.1111.1111.1111", "ID4111/1111/1111/1111", "4111.1111.1111.1111x", "Ref:A3782.822463.10005 ok",
         "ID4111  1111  1111  1111", "No5500/0000/0000/0004."]


@pytest.mark.parametrize("text", GLUED)
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_card_in_dotted_or_slashed_groups_with_a_letter_glued_does_not_reach_the_remote_model(remote, text):
    g, up = remote
    ask_remote(g, up, f"Charge {text} today")
    digits = "".join(c for c in text if c.isdigit())
    assert up.requests and not [r for r in up.requests if leaked(r.raw, [digits])], text
    assert not [r for r in up.requests if text.strip(" .") in r.raw.decode()], text


@pytest.mark.parametrize("text", ["v1234.5678.9012.3456", "build4111.1111.1111.1112", "pi 3.1415.9265.3589"])
def test_dotted_groups_that_are_no_card_are_left(det, text):
    assert "CREDIT_CARD" not in {f.entity for f in det.scan(text)}, text


# ---------------------------------------------------------------- 4. a compact card glued to hex letters

HEX_GLUED = ["CC4111111111111111", "4111111111111111D", "card 5500000000000004BE", "acct:Fa4111111111111111"]


@pytest.mark.parametrize("text", HEX_GLUED)
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_card_glued_to_hex_letters_does_not_reach_the_remote_model(remote, text):
    g, up = remote
    ask_remote(g, up, f"Use {text} for it")
    card = "5500000000000004" if "5500" in text else "4111111111111111"
    assert up.requests and not [r for r in up.requests if leaked(r.raw, [card])], text


@pytest.mark.parametrize("text", ["sha256 3f4111111111111111d0c2e9a7b5c3d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4",
                                  "commit 4111111111111111deadbeefcafe0123456789ab"])
def test_a_hash_holding_a_card_shaped_run_is_still_left(det, text):
    assert "CREDIT_CARD" not in {f.entity for f in det.scan(text)}, text


# ---------------------------------------------------------------- 5. many PDF dates: linear


def _pdf_dates_lines(fn) -> int:
    """Lines of privacy/pdf_dates.py (its functions and their generator expressions) run while `fn` runs."""
    from tierwise.privacy import pdf_dates

    count = 0

    def tracer(frame, event, _arg):
        nonlocal count
        if frame.f_code.co_filename != pdf_dates.__file__:
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


@pytest.mark.parametrize("unit", ["D:20261207140009 ", "D:20261207140009Z 1 ", "(D:20261207140009+01'00') 4111 "])
def test_many_pdf_dates_are_set_aside_in_linear_work(unit):
    from tierwise.privacy.finding import Finding
    from tierwise.privacy.pdf_dates import without_pdf_dates

    text = unit * 2_000
    found = [Finding("CREDIT_CARD", i + 2, i + 16, 1.0, "x") for i in range(0, len(text), len(unit))]
    lines = _pdf_dates_lines(lambda: without_pdf_dates(text, found))
    assert lines <= 40 * 2_000, lines / 2_000
