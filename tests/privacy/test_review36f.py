"""Review of privacy round 16 (session 36, review36f), as an attacker who wants an address to reach the remote model
inside a PDF. Real HTTP, the official SDKs, `pii: redact` on a fallback route remote -> local (the `remote` fixture).

privacy16 read "objects in the file that no cross-reference entry lists" with a regular expression over the bytes
outside streams (`pdf_hidden.outside_objects`): such an object's stream (Flate, ASCIIHex, an earlier revision's
object stream), and a string of nested parentheses, were read by no one. A name object holding a phone number (no
four digits in a row, no `@`) was not read either."""

from __future__ import annotations

import zlib

import pytest

from tests.privacy.file_parts import files_sent, send, sent
from tests.privacy.pdfs import _FONT, _HELLO, _page, pdf_document

EMAIL = b"jane.doe@example.com"
PHONE = b"+46 70 123 45 67"
_CAT, _PAGES = b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"


def _plain(*more: bytes, page: bytes = b"") -> bytes:
    return pdf_document([_CAT, _PAGES, _page(page), _HELLO, _FONT, *more])


def _unlisted(obj: bytes) -> bytes:
    """`obj` (whole: `9 0 obj ... endobj`) written before the cross-reference table, which does not list it."""
    raw = _plain()
    at = raw.index(b"xref\n")
    return (raw[:at] + obj + raw[at:]).replace(b"startxref\n%d" % at, b"startxref\n%d" % (at + len(obj)))


def _stream_obj(num: int, data: bytes, extra: bytes = b"") -> bytes:
    return b"%d 0 obj\n<< /Length %d%s >>\nstream\n" % (num, len(data), extra) + data + b"\nendstream\nendobj\n"


def _object_stream(inner: bytes) -> bytes:
    data = zlib.compress(inner)
    return b"<< /Type /ObjStm /N 1 /First 4 /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + (
        b"\nendstream")


def _earlier_revision() -> bytes:
    """Revision 1's object 6 is an object stream holding `/Author (address)`; revision 2 (an incremental update)
    replaces object 6 with an empty dictionary: the object stream stays in the file, no table lists it."""
    raw = _plain(_object_stream(b"10 0 << /Author (" + EMAIL + b") >>"))
    prev = int(raw.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    at = len(raw)
    upd = b"6 0 obj\n<< >>\nendobj\n"
    x = at + len(upd)
    return raw + upd + b"xref\n6 1\n%010d 00000 n \ntrailer\n<< /Size 7 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        at, prev, x)


HIDDEN = {
    "unlisted-flate-stream": lambda: _unlisted(_stream_obj(9, zlib.compress(b"Note: " + EMAIL), b" /Filter /FlateDecode")),
    "unlisted-asciihex-stream": lambda: _unlisted(_stream_obj(9, EMAIL.hex().encode() + b">", b" /Filter /ASCIIHexDecode")),
    "unlisted-plain-stream": lambda: _unlisted(_stream_obj(9, b"Note: " + EMAIL)),
    "unlisted-object-stream": lambda: _unlisted(b"9 0 obj\n" + _object_stream(b"10 0 << /A (" + EMAIL + b") >>") +
                                                b"\nendobj\n"),
    "unlisted-nested-parentheses": lambda: _unlisted(b"9 0 obj\n<< /Author (" + EMAIL + b" ((x))) >>\nendobj\n"),
    "earlier-revision-object-stream": _earlier_revision,
    "name-phone-spaces": lambda: _plain(page=b"/X /" + PHONE.replace(b" ", b"#20")),
    "name-phone-dashes": lambda: _plain(page=b"/X /" + PHONE.replace(b" ", b"-")),
}


@pytest.mark.parametrize("name", list(HIDDEN))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_text_of_unlisted_objects_and_phone_names_is_read(remote, openai_up, name):
    g, up = remote
    data = HIDDEN[name]()
    send(g, up, openai_up, data, "application/pdf")
    body = sent(up)
    assert up.requests and data not in files_sent(up), name
    for v in (EMAIL, PHONE, PHONE.replace(b" ", b"-"), PHONE.replace(b" ", b"#20")):
        assert v.decode() not in body, name


def test_the_earlier_revision_is_one_a_reader_opens():
    """Guard of the fixture: pypdf reads the updated file, object 6 as revision 2 wrote it."""
    import io

    from pypdf import PdfReader

    r = PdfReader(io.BytesIO(_earlier_revision()), strict=True)
    assert r.get_object(6) == {} and "Hello" in r.pages[0].extract_text()


# ---------------------------------------------------------------- a tar's sparse file: stored bytes its map skips

CODE = b"print(1)\n\n"


def _gnu_sparse(stored: bytes, placed: int, tail: bytes = b"") -> bytes:
    """A GNU tar whose one file is sparse (type `S`): its map places the first `placed` of the `stored` bytes;
    `tail` is written in the padding after them. `tarfile` and `tar -x` read the placed bytes only."""
    h = bytearray(512)
    h[0:7] = b"add.py\x00"
    for at, v in ((100, b"0000644\x00"), (108, b"0000000\x00"), (116, b"0000000\x00"), (124, b"%011o\x00" % len(stored)),
                  (136, b"00000000000\x00"), (156, b"S"), (257, b"ustar  \x00"), (386, b"%011o\x00" % 0),
                  (398, b"%011o\x00" % placed), (483, b"%011o\x00" % placed)):
        h[at:at + len(v)] = v
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\x00 " % sum(h)
    pad = bytearray(-len(stored) % 512)
    pad[2:2 + len(tail)] = tail
    return bytes(h) + stored + bytes(pad) + bytes(1024)


SPARSE = {
    "gnu-sparse-bytes-its-map-skips": lambda: _gnu_sparse(CODE + b"note " + EMAIL, len(CODE)),
    "gnu-sparse-padding": lambda: _gnu_sparse(CODE, len(CODE), EMAIL),
}


@pytest.mark.parametrize("name", list(SPARSE))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_sparse_file_s_unplaced_bytes_are_read(remote, openai_up, name):
    import io
    import tarfile

    data = SPARSE[name]()
    with tarfile.open(fileobj=io.BytesIO(data)) as t:  # (the fixture: what tarfile gives is the code alone)
        assert [t.extractfile(m).read() for m in t] == [CODE]  # type: ignore[union-attr]
    g, up = remote
    send(g, up, openai_up, data, "application/zip")
    assert up.requests and data not in files_sent(up), name
    assert EMAIL.decode() not in sent(up), name


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_sparse_file_with_nothing_past_its_map_leaves_whole(remote, openai_up):
    g, up = remote
    data = _gnu_sparse(CODE, len(CODE))
    send(g, up, openai_up, data, "application/zip")
    assert data in files_sent(up)


# ---------------------------------------------------------------- where a photo or a video was taken: forms privacy16 skipped

def _places() -> dict:
    import struct

    from tests.privacy.test_attack_privacy16 import _box, _gps_exif, _heic, _mp4_location

    def xyz(iso: bytes) -> bytes:
        return _box(b"\xa9xyz", struct.pack(">HH", len(iso), 0x15C7) + iso)

    ftyp_heic = _box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic")
    ftyp_mp4 = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="59,19.758N" '
           b'exif:GPSLongitude="18,4.116E"/></rdf:RDF></x:xmpmeta>')
    loci = _box(b"loci", b"\x00" * 4 + b"\x15\xc7" + b"home\x00" + b"\x00" +
                struct.pack(">iii", int(18.0686 * 65536), int(59.3293 * 65536), 0) + b"Earth\x00\x00")
    no_gps = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"
    return {
        # an HEIF Exif item may hold the TIFF header with no `Exif\0\0` before it (libheif writes it so)
        "heic-exif-item-without-its-prefix": (_box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + _box(
            b"mdat", struct.pack(">I", 0) + _gps_exif()[6:] + bytes(range(256)) * 4), "image/heic"),
        "heic-xmp-item": (ftyp_heic + _box(b"mdat", xmp + bytes(range(256)) * 4), "image/heic"),
        "heic-eight-exif-blocks-without-gps-first": (_heic(no_gps * 9 + _gps_exif()), "image/heic"),
        "mov-without-ftyp": (_box(b"moov", _box(b"udta", xyz(b"+59.3293+018.0686/"))) + _box(b"mdat", bytes(256)),
                             "video/quicktime"),
        "mp4-free-box-before-ftyp": (_box(b"free", b"") + ftyp_mp4 + _box(b"moov", _box(b"udta", xyz(
            b"+59.3293+018.0686/"))) + _box(b"mdat", bytes(256)), "video/mp4"),
        "mp4-iso6709-degrees-minutes": (_mp4_location(b"+5919.76+01804.12/"), "video/mp4"),
        "mp4-iso6709-whole-degrees": (_mp4_location(b"+59+018/"), "video/mp4"),
        "mp4-nine-zero-positions-first": (_mp4_location(b"+00.0000+000.0000/" * 9 + b"+59.3293+018.0686/"),
                                          "video/mp4"),
        "3gp-loci-box": (_box(b"ftyp", b"3gp5\x00\x00\x02\x003gp5isom") + _box(b"moov", _box(b"udta", loci)) +
                         _box(b"mdat", bytes(256)), "video/3gpp"),
        "mp4-xmp-uuid-box": (ftyp_mp4 + _box(b"uuid", bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC") + xmp) +
                             _box(b"mdat", bytes(256)), "video/mp4"),
    }


PLACES = list(_places())


@pytest.mark.parametrize("name", PLACES)
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_position_in_forms_privacy16_skipped_does_not_reach_the_remote_model(remote, openai_up, name):
    g, up = remote
    data, media = _places()[name]
    send(g, up, openai_up, data, media)
    assert up.requests and data not in files_sent(up), name


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_video_whose_title_says_loci_and_no_position_leaves_whole(remote, openai_up):
    """Guard: the word `loci` in metadata text is no `loci` box; a QuickTime movie without a position leaves whole."""
    from tests.privacy.test_attack_privacy16 import _box

    data = _box(b"moov", _box(b"udta", _box(b"\xa9nam", b"\x00\x05\x15\xc7the loci of a curve"))) + _box(
        b"mdat", bytes(range(256)) * 4)
    g, up = remote
    send(g, up, openai_up, data, "video/quicktime")
    assert data in files_sent(up)


# ---------------------------------------------------------------- a PDF's bounds and its encryption

def _encrypted_with_unlisted_stream() -> bytes:
    """A PDF encrypted with an empty user password (any reader opens it) and an unencrypted Flate stream no table
    lists: `unlisted` decrypted it (garbage) and did not read it as written."""
    import io

    from pypdf import PdfReader, PdfWriter

    from tests.privacy.pdfs import make_pdf

    w = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["Hello"]))))
    w.encrypt(user_password="", owner_password="owner-pw", algorithm="AES-128")
    out = io.BytesIO()
    w.write(out)
    raw = out.getvalue()
    at = raw.rindex(b"\nxref") + 1
    obj = _stream_obj(99, zlib.compress(b"Note: " + EMAIL), b" /Filter /FlateDecode")
    raw = raw[:at] + obj + raw[at:]
    return raw[:raw.rindex(b"startxref")] + b"startxref\n%d\n%%%%EOF\n" % (at + len(obj))


def _past_the_object_bound() -> bytes:
    """100,000 unlisted objects (`_MAX_OBJECTS`), then the address in one more: read past the bound by no one."""
    from tierwise.privacy.pdf_hidden import _MAX_OBJECTS

    filler = b"".join(b"%d 0 obj\n(n)\nendobj\n" % (100 + i) for i in range(_MAX_OBJECTS))
    return _unlisted(filler + b"9 0 obj\n<< /Author (" + EMAIL + b") >>\nendobj\n")


@pytest.mark.parametrize("name", ["encrypted-empty-password-unlisted-stream", "past-the-object-bound"])
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_an_encrypted_pdf_s_plain_object_and_objects_past_the_bound_do_not_reach_the_remote_model(remote, openai_up,
                                                                                                     name):
    data = _encrypted_with_unlisted_stream() if name.startswith("encrypted") else _past_the_object_bound()
    g, up = remote
    send(g, up, openai_up, data, "application/pdf")  # (an unreadable PDF is not sent: the local target serves)
    assert data not in files_sent(up), name
    assert EMAIL.decode() not in sent(up), name


def test_a_pdf_listing_more_objects_than_the_bound_is_not_read_in_part():
    """`strings` read objects 1..99,999 of a file whose table lists more: an address in object 100,001 was read by no
    one (and reached the remote model inside the PDF). Now such a PDF fails its reading (unreadable: fails closed)."""
    from pypdf.generic import DictionaryObject, NameObject, TextStringObject

    from tierwise.privacy import pdf_hidden

    last = pdf_hidden._MAX_OBJECTS + 1

    class Reader:
        trailer = {"/Size": last + 1}
        pages: list = []

        def get_object(self, i: int) -> DictionaryObject:
            if i != last:
                raise KeyError(i)  # (a free entry)
            return DictionaryObject({NameObject("/Note"): TextStringObject(EMAIL.decode())})

    try:
        got = list(pdf_hidden.strings(Reader(), lambda b: None))
    except Exception as e:  # noqa: BLE001 - the bound's own exception
        assert type(e).__name__ == "TooManyObjects", e
        return
    assert EMAIL.decode() in got


# ---------------------------------------------------------------- a secret assignment in a text holding `İ`

@pytest.mark.parametrize("text", ["İlkay: PASSWORD=hunter2abc", "İ Api_Key: Zx8Qw2Lp", "DB_PASSWORD=s3cr3tValue İstanbul"])
def test_an_upper_case_cue_is_found_in_a_text_whose_lower_casing_changes_length(text):
    """`İ` lower-cases to two characters, so the prescan's `lower` is the text as written and the cue search was
    case-sensitive: one Turkish name anywhere in a request let `PASSWORD=...` through (before privacy16 too; the
    differential fuzzer, bench/privacy_recognizer_diff.py, found both versions alike there)."""
    from tierwise.privacy.detect import Detector
    from tierwise.privacy.detect_config import DetectionConfig

    value = {"İlkay: PASSWORD=hunter2abc": "hunter2abc", "İ Api_Key: Zx8Qw2Lp": "Zx8Qw2Lp"}.get(text, "s3cr3tValue")
    found = [text[f.start:f.end] for f in Detector(DetectionConfig()).scan(text) if f.entity == "SECRET"]
    assert value in found, found
