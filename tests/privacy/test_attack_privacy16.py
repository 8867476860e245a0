"""Privacy round 16 (session 36, privacy16). Real HTTP, the official SDKs, recording upstream doubles, `pii: redact` on
a fallback route remote -> local (the `remote` fixture) unless said.

1. Text an archive carries where no reader looks: a gzip header's FEXTRA subfields, a zip entry's extra fields other
   than the Info-ZIP Unicode ones (central directory and local header), a tar's padding after a file's data and the
   bytes after the terminating NUL of a header's text fields (`tarfile` cuts a name at its first NUL)."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
import zlib

import pytest

from tests.privacy.file_parts import files_sent, send, send_and_read
from tests.privacy.test_attack_privacy15 import CODE, EMAIL, tar_of

CARD16 = "4111111111111111"
SHORT = "j@example.se"  # (12 bytes: a ustar header's pad)


def _gzip_extra(sub: bytes) -> bytes:
    """A gzip member with FEXTRA (RFC 1952 2.3.1.1) holding `sub` (subfields: SI1 SI2 LEN data)."""
    raw = bytearray(gzip.compress(CODE, mtime=0))
    raw[3] |= 0x04
    raw[10:10] = struct.pack("<H", len(sub)) + sub
    return bytes(raw)


def _subfield(si: bytes, data: bytes) -> bytes:
    return si + struct.pack("<H", len(data)) + data


def _zip_extra(tag: int, data: bytes, where: str = "both") -> bytes:
    field = struct.pack("<HH", tag, len(data)) + data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("add.py")
        info.compress_type = zipfile.ZIP_DEFLATED
        info.extra = field
        z.writestr(info, CODE)
    raw = bytearray(out.getvalue())
    if where == "local":  # the central directory's copy zeroed out: the local header's alone carries it
        c = raw.index(b"PK\x01\x02")
        n = struct.unpack("<H", raw[c + 28:c + 30])[0]
        at = c + 46 + n
        raw[at:at + len(field)] = struct.pack("<HH", 0xCAFE, len(data)) + bytes(len(data))
    elif where == "central":
        n = struct.unpack("<H", raw[26:28])[0]
        raw[30 + n:30 + n + len(field)] = struct.pack("<HH", 0xCAFE, len(data)) + bytes(len(data))
    return bytes(raw)


def _tar_padding(text: bytes) -> bytes:
    """A tar whose first file's padding (after its data, to the next 512-byte block) holds `text`."""
    raw = bytearray(tar_of({"add.py": CODE, "b.py": CODE}))
    at = 512 + len(CODE)
    raw[at:at + len(text)] = text
    return bytes(raw)


def _tar_slack(field_at: int, text: bytes, tar: bytes | None = None) -> bytes:
    """A tar whose first header holds `text` after the NUL ending a field (checksum fixed)."""
    raw = bytearray(tar or tar_of({"add.py": CODE}))
    raw[field_at:field_at + len(text)] = text
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\x00 " % sum(raw[:512])
    assert tarfile.open(fileobj=io.BytesIO(bytes(raw))).getnames() == ["add.py"]
    return bytes(raw)


def _tar_split() -> bytes:
    """An address cut in three, after the NULs of a header's name, uid (written `0`) and group name fields."""
    raw = bytes(tar_of({"add.py": CODE}))
    for at, piece in ((90, b"jane.doe"), (108, b"0\x00@\x00\x00\x00\x00\x00"), (310, b"example.com")):
        raw = _tar_slack(at, piece, raw)
    return raw


def _tar_meta_tail(fmt: int, name: str) -> bytes:
    """A tar whose pax record block (or GNU long-name block) holds an address after what tarfile reads: after the last
    record, after the long name's NUL (within the header's declared size; checksum fixed)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        info = tarfile.TarInfo(name)
        info.size = len(CODE)
        t.addfile(info, io.BytesIO(CODE))
    raw = bytearray(out.getvalue())
    size = int(raw[124:135], 8)
    tail = b"\x00" + EMAIL.encode() if fmt == tarfile.GNU_FORMAT else EMAIL.encode()
    raw[512 + size:512 + size + len(tail)] = tail
    raw[124:136] = b"%011o\x00" % (size + len(tail))
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\x00 " % sum(raw[:512])
    assert tarfile.open(fileobj=io.BytesIO(bytes(raw))).getnames() == [name]
    return bytes(raw)


HIDDEN = {
    "gzip-fextra-text": lambda: _gzip_extra(_subfield(b"AN", EMAIL.encode())),
    "gzip-fextra-card": lambda: _gzip_extra(_subfield(b"ZZ", CARD16.encode())),
    "gzip-fextra-after-bgzf": lambda: _gzip_extra(_subfield(b"BC", b"\x1b\x00") + _subfield(b"XX", EMAIL.encode())),
    "zip-extra-central-and-local": lambda: _zip_extra(0x4E4F, EMAIL.encode()),
    "zip-extra-local-only": lambda: _zip_extra(0x4E4F, EMAIL.encode(), "local"),
    "zip-extra-central-only": lambda: _zip_extra(0x4E4F, EMAIL.encode(), "central"),
    "zip-extra-in-a-timestamp-field": lambda: _zip_extra(0x5455, b"\x01\x00\x00\x00\x00" + EMAIL.encode()),
    "tar-padding": lambda: _tar_padding(EMAIL.encode()),
    "tar-padding-card": lambda: _tar_padding(CARD16.encode()),
    "tar-name-after-nul": lambda: _tar_slack(7, EMAIL.encode()),
    "tar-linkname-after-nul": lambda: _tar_slack(157 + 1, EMAIL.encode()),
    "tar-header-pad": lambda: _tar_slack(500, SHORT.encode()),
    "tar-value-cut-over-three-fields": lambda: _tar_split(),
    "tar-after-the-pax-records": lambda: _tar_meta_tail(tarfile.PAX_FORMAT, "x/" * 60 + "add.py"),
    "tar-after-a-gnu-long-name-s-nul": lambda: _tar_meta_tail(tarfile.GNU_FORMAT, "x/" * 60 + "add.py"),
    "tar-prefix-field": lambda: _tar_slack(345 + 1, EMAIL.encode()),
}


@pytest.mark.parametrize("name", list(HIDDEN))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_text_in_an_archive_s_extra_fields_and_padding_is_read(remote, openai_up, name):
    data = HIDDEN[name]()
    up, body = send_and_read(remote, openai_up, data, "application/zip")
    assert data not in files_sent(up), name
    assert EMAIL not in body and CARD16 not in body and SHORT not in body, name


def _bgzf() -> bytes:
    """A BGZF block (bgzip, BAM, tabix): FEXTRA subfield `BC` holding the block's size less one."""
    body = gzip.compress(CODE, mtime=0)[10:]
    sub = _subfield(b"BC", b"\x00\x00")
    raw = bytearray(b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff" + struct.pack("<H", len(sub)) + sub + body)
    raw[16:18] = struct.pack("<H", len(raw) - 1)
    return bytes(raw)


def _tool_archive(tmp_path, argv: list[str], out: str) -> bytes:
    """An archive made by the system's own `zip` / `tar` (Info-ZIP's UT/ux extra fields, GNU and pax headers with a
    long name) of a folder with code in it."""
    import subprocess

    src = tmp_path / "src" / ("a-very-long-directory-name-" * 5) / "deeper"
    src.mkdir(parents=True)
    (src / "add.py").write_bytes(CODE)
    subprocess.run([*argv, str(tmp_path / out), "src"], cwd=tmp_path, check=True, capture_output=True)
    return (tmp_path / out).read_bytes()


CLEAN = {
    "bgzf-block": lambda tmp: _bgzf(),
    "info-zip": lambda tmp: _tool_archive(tmp, ["zip", "-r"], "a.zip"),
    "gnu-tar": lambda tmp: _tool_archive(tmp, ["tar", "--format=gnu", "-cf"], "a.tar"),
    "pax-tar": lambda tmp: _tool_archive(tmp, ["tar", "--format=pax", "-cf"], "a.tar"),
    "gnu-tar-gz": lambda tmp: _tool_archive(tmp, ["tar", "--format=gnu", "-czf"], "a.tgz"),
    "python-pax-tar-with-a-long-name": lambda tmp: tar_of({"x/" * 80 + "add.py": CODE}, "w"),
    "zip-with-a-timestamp-field": lambda tmp: _zip_extra(0x5455, b"\x03" + struct.pack("<II", 1700000000, 1700000001)),
}


@pytest.mark.parametrize("name", list(CLEAN))
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_clean_archives_with_binary_extra_fields_leave_whole(remote, openai_up, tmp_path, name):
    """Regression guard: binary extra fields, BGZF's block size, GNU and pax long-name headers hold no text."""
    g, up = remote
    data = CLEAN[name](tmp_path)
    send(g, up, openai_up, data, "application/zip")
    assert data in files_sent(up), name


# ---------------------------------------------------------------- 2. a PDF alone: what its reader never reaches

from tests.privacy.pdfs import _FONT, _HELLO, _page, _stream, make_pdf, pdf_document  # noqa: E402

_CAT, _PAGES = b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"


def _plain(*more: bytes, page: bytes = b"") -> bytes:
    return pdf_document([_CAT, _PAGES, _page(page), _HELLO, _FONT, *more])


def _object_stream() -> bytes:
    """An object stream holding an object no cross-reference entry names (pypdf reads only listed ones)."""
    data = zlib.compress(b"9 0 << /Note (" + EMAIL.encode() + b") >>")
    return _plain(b"<< /Type /ObjStm /N 1 /First 4 /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data +
                  b"\nendstream")


def _unlisted_object() -> bytes:
    """An object written in the file that the cross-reference table does not list (an earlier revision's)."""
    raw = _plain()
    at = raw.index(b"xref\n")
    obj = b"9 0 obj\n<< /Author <" + EMAIL.encode().hex().encode() + b"> >>\nendobj\n"
    fixed = raw[:at] + obj + raw[at:]
    return fixed.replace(b"startxref\n%d" % at, b"startxref\n%d" % (at + len(obj)))


PDFS = {
    "pdf-comment-line": lambda: _plain().replace(b"%PDF-1.7\n", b"%PDF-1.7\n%" + EMAIL.encode() + b"\n", 1),
    "pdf-stream-no-page-draws": lambda: _plain(_stream(zlib.compress(EMAIL.encode()), b" /Filter /FlateDecode")),
    "pdf-name-object": lambda: _plain(page=b"/X /" + EMAIL.replace("@", "#40").encode()),
    "pdf-name-as-a-key": lambda: _plain(page=b"/" + CARD16.encode() + b" true"),
    "pdf-object-stream-unlisted-object": _object_stream,
    "pdf-object-the-table-does-not-list": _unlisted_object,
}


@pytest.mark.parametrize("name", list(PDFS))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_text_a_pdf_carries_outside_what_its_reader_reaches_is_read(remote, openai_up, name):
    """A PDF's comments, its name objects (`#40` is `@`), a text stream no page draws, an object inside an object
    stream or in the file that no cross-reference entry lists: pypdf's page text, metadata and listed objects' strings
    never held them, and the PDF reached the remote model with the address inside. Now they are read with the PDF's
    text (a finding replaces the PDF by its redacted text)."""
    data = PDFS[name]()
    up, body = send_and_read(remote, openai_up, data, "application/pdf")
    assert up.requests and data not in files_sent(up), name
    assert EMAIL not in body and CARD16 not in body and EMAIL.replace("@", "#40") not in body, name


CLEAN_PDFS = {
    "plain": lambda: make_pdf(["Hello, the quarterly report is attached.", "Totals: 1,234 units at 56.78 each."],
                              title="Report 2026"),
    "matplotlib-figure": lambda: _matplotlib_pdf(),
}


def _matplotlib_pdf() -> bytes:
    """A real writer's PDF: a figure with text (embedded Type 3 fonts, font programs, an `/Info` with dates)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [4, 1, 9])
    ax.set_xticks([])  # (tick labels `1.00 1.25 1.50 ...` read as a phone number: a false finding of the page text)
    ax.set_title("Latency per request (ms)")
    ax.set_xlabel("run 20261207")
    out = io.BytesIO()
    # review36f: no creation date (`D:20261207140009Z`, the second it ran: its 14 digits pass the card checksum in
    # about one second in ten, and the PDF was replaced by its text: the test failed then)
    fig.savefig(out, format="pdf", metadata={"CreationDate": None})
    plt.close(fig)
    return out.getvalue()


@pytest.mark.parametrize("name", list(CLEAN_PDFS))
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_clean_pdfs_leave_whole(remote, openai_up, name):
    g, up = remote
    data = CLEAN_PDFS[name]()
    send(g, up, openai_up, data, "application/pdf")
    assert data in files_sent(up), name


# ---------------------------------------------------------------- 3. where a photo or a video was taken, outside Pillow

def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _gps_exif(lat: tuple = (59.0, 19.0, 45.0), lon: tuple = (18.0, 4.0, 7.0)) -> bytes:
    from PIL import Image

    ex = Image.Exif()
    ex.get_ifd(0x8825).update({1: "N", 2: lat, 3: "E", 4: lon})
    return ex.tobytes()  # `Exif\0\0` and the TIFF structure, as HEIF's Exif item holds it after a 4-byte offset


def _heic(exif: bytes) -> bytes:
    """An HEIC (iPhone photo) whose Exif item (in `mdat`, as iOS writes it) holds a GPS IFD: Pillow opens no HEIC
    without the pillow-heif plugin, so nothing read it."""
    ftyp = _box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic")
    return ftyp + _box(b"meta", b"\x00" * 4 + _box(b"hdlr", b"\x00" * 8 + b"pict" + b"\x00" * 13)) + _box(
        b"mdat", struct.pack(">I", 0) + exif + bytes(range(256)) * 4)


def _mp4_location(iso6709: bytes) -> bytes:
    """An MP4 whose `udta` holds the `\xa9xyz` location (ISO 6709, as phones and cameras write it)."""
    xyz = _box(b"\xa9xyz", struct.pack(">HH", len(iso6709), 0x15C7) + iso6709)
    return _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41") + _box(b"moov", _box(b"udta", xyz)) + _box(
        b"mdat", bytes(range(256)) * 4)


def _mov_apple_location(iso6709: bytes) -> bytes:
    """A QuickTime movie (an iPhone video) with `com.apple.quicktime.location.ISO6709` in its `meta` keys."""
    key = b"com.apple.quicktime.location.ISO6709"
    keys = _box(b"keys", b"\x00" * 4 + struct.pack(">I", 1) + _box(b"mdta", key))
    ilst = _box(b"ilst", _box(struct.pack(">I", 1), _box(b"data", struct.pack(">II", 1, 0) + iso6709)))
    return _box(b"ftyp", b"qt  \x00\x00\x02\x00qt  ") + _box(b"moov", _box(b"meta", _box(b"hdlr", b"\x00" * 24) +
                                                                           keys + ilst)) + _box(b"mdat", b"\x00" * 64)


def _avif() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 30, 200)).save(out, "AVIF", exif=_gps_exif())
    return out.getvalue()


PLACES = {
    "heic-exif-gps": lambda: _heic(_gps_exif()),
    "mp4-iso6709": lambda: _mp4_location(b"+59.3293+018.0686/"),
    "mp4-iso6709-with-altitude": lambda: _mp4_location(b"-33.8688+151.2093+058.000/"),
    "mov-apple-location": lambda: _mov_apple_location(b"+59.3293+018.0686+012.000/"),
    "avif-exif-gps": _avif,
}
SPOTS = {"heic-exif-gps": "image/heic", "mp4-iso6709": "video/mp4", "mp4-iso6709-with-altitude": "video/mp4",
         "mov-apple-location": "video/quicktime", "avif-exif-gps": "image/avif"}


@pytest.mark.parametrize("name", list(PLACES))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_position_in_a_heic_photo_or_a_video_does_not_reach_the_remote_model(remote, openai_up, name):
    """privacy15 read GPS from what Pillow opens (JPEG, PNG, WebP; AVIF too, kept here as a guard); an iPhone's
    HEIC photo (EXIF in an `mdat` item) and a phone's video (ISO 6709 `+59.3293+018.0686/` in `\xa9xyz` or Apple's
    location key) left with where they were taken. Now withheld as a photo with a GPS position is."""
    g, up = remote
    data = PLACES[name]()
    send(g, up, openai_up, data, SPOTS[name])
    assert up.requests and data not in files_sent(up), name


QUIET = {
    "heic-gps-of-zeros": lambda: _heic(_gps_exif((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))),
    "heic-without-gps": lambda: _heic(b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"),
    "mp4-without-location": lambda: _mp4_location(b""),
    "mp4-location-of-zeros": lambda: _mp4_location(b"+00.0000+000.0000/"),
}


@pytest.mark.parametrize("name", list(QUIET))
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_heic_or_a_video_without_a_position_leaves_whole(remote, openai_up, name):
    g, up = remote
    data = QUIET[name]()
    send(g, up, openai_up, data, "video/mp4" if name.startswith("mp4") else "image/heic")
    assert data in files_sent(up), name


# ---------------------------------------------------------------- 4. the detector's slowest inputs (privacy15's left)


class _Tries:
    """A compiled pattern that counts the start positions it is asked to try: a window's `finditer` tries every one
    of its positions, a `match` one."""

    def __init__(self, rx) -> None:
        self.rx, self.tried = rx, 0

    def finditer(self, text, pos=0, endpos=None):
        self.tried += (len(text) if endpos is None else endpos) - pos
        return self.rx.finditer(text, pos, *(() if endpos is None else (endpos,)))

    def match(self, text, pos=0, endpos=None):
        self.tried += 1
        return self.rx.match(text, pos, *(() if endpos is None else (endpos,)))


@pytest.mark.parametrize("unit", ["key=", "token: ", "api_key=", "Bearer x"])
def test_dense_cue_words_do_not_search_a_window_each(monkeypatch, unit):
    """`key=` repeated (review35f's slowest unit: 1.2 s of CPU per 200,000 characters, ~25 s at the 4 M-character
    request bound) had `_ASSIGN` and `_BEARER` search the 280-character window of every cue again: ~140 start
    positions tried per character. Now they are tried where a cue word can start; what is found covers at least as
    much (bench/privacy_window_equiv.py)."""
    from tierwise.privacy.recognizers import secrets

    tries = [_Tries(secrets._ASSIGN), _Tries(secrets._BEARER)]
    monkeypatch.setattr(secrets, "_ASSIGN", tries[0])
    monkeypatch.setattr(secrets, "_BEARER", tries[1])
    text = (unit * (20_000 // len(unit)))[:20_000]
    found = list(secrets.SecretRecognizer().find(text))
    assert bool(found) == (unit in ("token: ", "api_key=")), found[:3]  # (`key` alone is no assignment's cue word)
    assert sum(t.tried for t in tries) <= 4 * len(text), [t.tried for t in tries]


@pytest.mark.parametrize("unit", ["://a", "://a@", "a://b:c@d "])
def test_repeated_scheme_separators_do_not_search_a_window_each(monkeypatch, unit):
    """`://a` repeated (1.1 s per 200,000 characters) had the URL-credentials pattern search 622 characters around
    every `://`. Now it is tried at the 23 starts a scheme can have, and only when an `@` follows."""
    from tierwise.privacy.recognizers.contact import UrlCredentialsRecognizer

    r = UrlCredentialsRecognizer()
    tries = _Tries(r._rx)
    monkeypatch.setattr(r, "_rx", tries)
    text = (unit * (20_000 // len(unit)))[:20_000]
    list(r.find(text))
    assert tries.tried <= 8 * len(text), tries.tried


def test_a_credential_in_a_url_and_an_assignment_are_still_found():
    from tierwise.privacy.recognizers.contact import UrlCredentialsRecognizer
    from tierwise.privacy.recognizers.secrets import SecretRecognizer

    text = "fetch https://deploy:Hunter2Hunter2@git.example.com/x and set api_key = Zx8Qw2Lp9Rt4Vb7N then go"
    assert [text[f.start:f.end] for f in UrlCredentialsRecognizer().find(text)] == ["deploy:Hunter2Hunter2"]
    assert "Zx8Qw2Lp9Rt4Vb7N" in [text[f.start:f.end] for f in SecretRecognizer().find(text)]
