"""Privacy round 15 (session 35, privacy15): what session 34 left — a photo's EXIF/XMP GPS position, UTF-16 text in a
file's bytes, archives (zip, tar, gzip) read with bounded decompression instead of refused, and `.env` switches taken
for passwords. Real HTTP, the official SDKs, recording upstream doubles, `pii: redact` on a fallback route remote ->
local (the `remote` fixture)."""

from __future__ import annotations

import io
from fractions import Fraction

import pytest
from PIL import Image

from tests.gateway.conftest import ant, oai
from tests.privacy.file_parts import b64, files_sent, send, send_and_read, sent
from tests.privacy.support import SEEDS
from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DetectionConfig

EMAIL, CARD = SEEDS["EMAIL_ADDRESS"], SEEDS["CREDIT_CARD"]
NOTE = f"Customer {EMAIL} card {CARD}, call back Monday.\n"


# ---------------------------------------------------------------- GPS position in a photo's metadata


def _rational(dms: tuple[float, float, float]) -> tuple[Fraction, ...]:
    return tuple(Fraction(x).limit_denominator(100) for x in dms)


def jpeg_with_gps(lat=(59, 19, 45.6), lon=(18, 4, 7.2), fmt: str = "JPEG") -> bytes:
    ex = Image.Exif()
    gps = ex.get_ifd(0x8825)
    gps.update({1: "N", 2: _rational(lat), 3: "E", 4: _rational(lon)})
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 30, 200)).save(out, fmt, exif=ex.tobytes())
    return out.getvalue()


def jpeg_with_xmp_gps() -> bytes:
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="59,19.76N" '
           b'exif:GPSLongitude="18,4.12E"/></rdf:RDF></x:xmpmeta>')
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 30, 200)).save(out, "JPEG", xmp=xmp)
    return out.getvalue()


GPS = {
    "jpeg-exif-gps": jpeg_with_gps,
    "png-exif-gps": lambda: jpeg_with_gps(fmt="PNG"),
    "webp-exif-gps": lambda: jpeg_with_gps(fmt="WEBP"),
    "jpeg-xmp-gps": jpeg_with_xmp_gps,
}


@pytest.mark.parametrize("name", list(GPS))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_photo_s_gps_position_does_not_reach_the_remote_model(remote, openai_up, name):
    """A phone's photo carries where it was taken (EXIF GPSLatitude/GPSLongitude: numbers no recognizer read):
    it reached the remote model whole. Now the file is withheld, as one whose metadata holds an address."""
    g, up = remote
    data = GPS[name]()
    oai_or_ant = up is openai_up
    if oai_or_ant:
        oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + b64(data)}},
            {"type": "text", "text": "Where was this taken?"}]}])
    else:
        ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": b64(data)}},
            {"type": "text", "text": "Where was this taken?"}]}])
    body = sent(up)
    assert up.requests and b64(data) not in body, name
    assert data not in files_sent(up) and "withheld by the privacy guard" in body, name


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_photo_without_a_fix_leaves_whole(remote):
    """A camera without a fix writes a GPS IFD of zeros: no position, the photo leaves as it came."""
    g, up = remote
    data = jpeg_with_gps((0, 0, 0), (0, 0, 0))
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": b64(data)}},
        {"type": "text", "text": "Describe."}]}])
    assert b64(data) in sent(up)


# ---------------------------------------------------------------- `.env` switches


@pytest.mark.parametrize("line", ["FIRST_PASS=enabled", "SECOND_PASS=disabled", "LINT_PASS=optional",
                                  "TOKEN_REFRESH=always"])
def test_a_switch_named_like_a_password_is_not_a_secret(line):
    """`FIRST_PASS=enabled` in a `.env` (a first pass over the data, switched on) was redacted as a password."""
    d = Detector(DetectionConfig(classes={"secrets": {}}))
    assert [line[f.start:f.end] for f in d.scan(line)] == []


@pytest.mark.parametrize("line", ["DB_PASSWORD=hunter2hunter2", "password: correcthorse", "SMTP_PASS=enabled2024"])
def test_a_password_beside_them_still_is(line):
    d = Detector(DetectionConfig(classes={"secrets": {}}))
    assert d.scan(line), line


# ---------------------------------------------------------------- UTF-16 text in a file's bytes


def mp3_with_utf16_comment(value: str) -> bytes:
    import struct

    from tests.privacy.media_files import MP3_FRAMES

    text = b"\x01eng" + "\ufeff".encode("utf-16-le") + b"\x00\x00" + value.encode("utf-16")  # encoding 1: BOM'd UTF-16
    frame = b"COMM" + struct.pack(">I", len(text)) + b"\x00\x00" + text
    size = len(frame)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x03\x00\x00" + syncsafe + frame + MP3_FRAMES


def png_then(tail: bytes) -> bytes:
    from tests.privacy.media_files import image

    return image("PNG") + tail


UTF16 = {
    "mp3-id3-utf16-comment": lambda: mp3_with_utf16_comment(f"ripped by {EMAIL} card {CARD}"),
    "png-then-utf16le-note": lambda: png_then(NOTE.encode("utf-16-le")),
    "png-then-utf16be-note": lambda: png_then(NOTE.encode("utf-16-be")),
    "png-then-odd-utf16le-note": lambda: png_then(b"\x07" + NOTE.encode("utf-16-le")),
}


@pytest.mark.parametrize("name", list(UTF16))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_utf16_text_inside_a_file_is_read_and_the_file_withheld(remote, openai_up, name):
    """ASCII runs were read from a file's bytes (review34d), UTF-16 ones not: an MP3 whose ID3 comment is UTF-16 (as
    most taggers write it) or a PNG with a UTF-16 note after its end reached the remote model with the address and
    card inside."""
    data = UTF16[name]()
    up, body = send_and_read(remote, openai_up, data, "image/png")
    assert up.requests and b64(data)[-60:] not in body, name
    assert all(EMAIL.encode("utf-16-le") not in f and EMAIL.encode("utf-16-be") not in f for f in files_sent(up))
    assert "withheld by the privacy guard" in body, name


# ---------------------------------------------------------------- archives, read with bounded decompression


def zip_of(files: dict[str, bytes], method: int | None = None) -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if method is None else method) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def tar_of(files: dict[str, bytes], mode: str = "w") -> bytes:
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _gz(b: bytes) -> bytes:
    import gzip

    return gzip.compress(b)


LOG = b"".join(b"2026-12-07T10:%02d:00Z INFO worker started job %d in 41 ms\n" % (i % 60, i) for i in range(200))
CODE = b"def add(a, b):\n    return a + b\n"
CLEAN = {
    "gzip-of-a-log": ("application/gzip", lambda: _gz(LOG)),
    "zip-of-code": ("application/zip", lambda: zip_of({"src/": b"", "src/add.py": CODE, "README.md": b"# adder\n"})),
    "tar-of-code": ("application/x-tar", lambda: tar_of({"add.py": CODE})),
    "tar-gz-of-code": ("application/gzip", lambda: tar_of({"add.py": CODE, "log.txt": LOG}, "w:gz")),
    "bzip2-of-a-log": ("application/x-bzip2", lambda: __import__("bz2").compress(LOG)),
    "xz-of-a-log": ("application/x-xz", lambda: __import__("lzma").compress(LOG)),
    "zip-with-an-image": ("application/zip", lambda: zip_of({"a.png": __import__("tests.privacy.media_files",
                                                                                 fromlist=["x"]).image("PNG")})),
}


@pytest.mark.parametrize("name", list(CLEAN))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_an_archive_with_nothing_protected_in_it_reaches_the_remote_model(remote, anthropic_up, openai_up, name):
    """Round 14 refused every archive (fails closed: the local target answered a gzip of a log, a zip of code). Now
    its files are read within bounds, and an archive with nothing protected in it leaves as it came."""
    g, up = remote
    media, make = CLEAN[name]
    data = make()
    send(g, up, openai_up, data, media)
    assert b64(data) in sent(up), name
    local = anthropic_up if up is openai_up else openai_up
    assert not local.requests, name


DIRTY = {
    "gzip-of-a-note": lambda: _gz(NOTE.encode()),
    "zip-of-a-note-and-code": lambda: zip_of({"add.py": CODE, "notes/customer.txt": NOTE.encode()}),
    "zip-stored": lambda: zip_of({"customer.txt": NOTE.encode()}, method=0),
    "tar-gz": lambda: tar_of({"add.py": CODE, "customer.txt": NOTE.encode()}, "w:gz"),
    "xz-of-a-note": lambda: __import__("lzma").compress(NOTE.encode()),
    "zip-in-a-zip": lambda: zip_of({"inner.zip": zip_of({"customer.txt": NOTE.encode()})}),
    "docx-like": lambda: zip_of({"word/document.xml": b"<w:t>" + NOTE.encode() + b"</w:t>"}),
    "address-in-a-file-name": lambda: zip_of({f"{EMAIL}.txt": b"hello\n"}),
    "utf16-note-in-a-zip": lambda: zip_of({"n.txt": NOTE.encode("utf-16")}),
    "image-with-gps-in-a-zip": lambda: zip_of({"photo.jpg": jpeg_with_gps()}),
}


@pytest.mark.parametrize("name", list(DIRTY))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_an_archive_s_values_are_redacted_and_its_text_goes_in_its_place(remote, openai_up, name):
    """The archive is withheld; its files' text, redacted, goes in its place (the value never leaves)."""
    data = DIRTY[name]()
    up, body = send_and_read(remote, openai_up, data, "application/zip")
    assert up.requests and b64(data)[:40] not in body and EMAIL not in body and CARD not in body, name
    assert "withheld by the privacy guard" in body, name
    if name in ("zip-of-a-note-and-code", "tar-gz"):
        assert "return a + b" in body  # the clean file's text reaches the model


BOUNDED = {
    "gzip-bomb": lambda: _gz(b"0" * 20_000_000),
    "zip-member-past-the-ratio": lambda: zip_of({"zeros.txt": b" " * 5_000_000, "n.txt": NOTE.encode()}),
    "four-deep": lambda: zip_of({"a.zip": zip_of({"b.zip": zip_of({"c.zip": zip_of({"d.txt": NOTE.encode()})})})}),
    "too-many-files": lambda: zip_of({f"f{i}.txt": b"x" for i in range(1_100)}),
    "binary-member": lambda: zip_of({"a.bin": bytes(range(256)) * 4, "n.txt": NOTE.encode()}),
    "pdf-member": lambda: zip_of({"a.pdf": __import__("tests.privacy.media_files", fromlist=["x"]).make_pdf([NOTE])}),
    "truncated-gzip": lambda: _gz(NOTE.encode() * 20)[:-12],
    "gzip-then-junk": lambda: _gz(NOTE.encode()) + b"\x01junk" * 20,
}


@pytest.mark.parametrize("name", list(BOUNDED))
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_an_archive_past_a_bound_or_with_a_file_the_scan_cannot_read_fails_closed(remote, openai_up, name):
    """Size, ratio, depth, count, unreadable members, broken streams: the remote model never sees the archive
    (the local target answers)."""
    g, up = remote
    data = BOUNDED[name]()
    send(g, up, openai_up, data, "application/zip")
    assert b64(data)[:40] not in sent(up), name
    assert openai_up.requests, name


def test_a_request_s_archives_inflate_within_one_budget():
    """Each archive has its own bound (8 MB, 100x its size); a request of many such archives inflated each to its
    bound (a 32 MB body: 3.2 GB). All of a request's archives now draw on one budget of 16 MB: the third of three
    6 MB logs is not read (fails closed)."""
    import contextvars
    import random

    from tierwise.privacy.archives import request_budget
    from tierwise.privacy.media_text import archive

    rnd = random.Random(15)
    lines = [b"job %d took %d ms on worker %x\n" % (rnd.randrange(10**6), rnd.randrange(999), rnd.getrandbits(32))
             for _ in range(200_000)]
    logs = [b64(_gz(b"".join(lines) + bytes([65 + i]))) for i in range(3)]  # ~6 MB each

    def run() -> list[bool]:
        request_budget()
        return [archive(p) is not None for p in logs]

    assert contextvars.copy_context().run(run) == [True, True, False]


HIDING = {
    "note-after-a-zip": lambda: zip_of({"add.py": CODE}) + NOTE.encode() * 2,
    "note-after-a-tar": lambda: tar_of({"add.py": CODE}) + NOTE.encode() * 2,
    "utf16-note-after-a-zip": lambda: zip_of({"add.py": CODE}) + NOTE.encode("utf-16-le"),
}


@pytest.mark.parametrize("name", list(HIDING))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_text_outside_an_archive_s_files_is_read_too(remote, openai_up, name):
    """zipfile reads a zip by its central directory and tarfile stops at its end blocks: a note appended to a clean
    archive (or between its entries) was no file of it, and reached the remote model unread with this round's first
    reader. Words anywhere in an archive's bytes are read as in a media file's."""
    data = HIDING[name]()
    up, body = send_and_read(remote, openai_up, data, "application/zip")
    assert b64(data)[:40] not in body and EMAIL not in body, name


# ---------------------------------------------------------------- prose with a no-break space or a word joiner

PROSE = {
    "no-break-space": f"Kontakt:\xa0{EMAIL}, Preis 10\xa0EUR.\n",
    "word-joiner": f"Meeting\u2060notes: write to {EMAIL} before Monday.\n",
    "thin-space-and-soft-hyphen": f"Cus\xadtomer {EMAIL}\u2009card {CARD}.\n",
}


@pytest.mark.parametrize("name", list(PROSE))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_base64_of_prose_with_a_unicode_space_is_read(remote, name):
    """`str.isprintable` refuses U+00A0, U+2060, U+00AD, U+2009: base64 of such a note in a message was no text to the
    encoded view, and under `pii` only (no `secrets` class to take the blob for a key) the address reached the remote
    model."""
    from tests.privacy.support import ask_remote

    g, up = remote
    ask_remote(g, up, "Decode this for me: " + b64(PROSE[name].encode()) + " please")
    body = sent(up)
    assert up.requests and EMAIL not in body and b64(PROSE[name].encode()) not in body, name


@pytest.mark.parametrize("name", list(PROSE))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_text_file_with_a_unicode_space_is_redacted_not_refused(remote, anthropic_up, openai_up, name):
    """Such a `.txt` was "bytes the scan cannot read" since round 14 (fails closed: the local target answered, the
    remote model never got the file). Now it is text: redacted and sent."""
    g, up = remote
    send(g, up, openai_up, PROSE[name].encode(), "text/plain")
    local = anthropic_up if up is openai_up else openai_up
    assert up.requests and not local.requests, name
    assert EMAIL not in sent(up) and EMAIL.encode() not in b"".join(files_sent(up)), name
    assert any(b"@" not in f and len(f) > 20 for f in files_sent(up)), name


# ---------------------------------------------------------------- a 60-character message held the scan for hours


@pytest.mark.timeout(300)
@pytest.mark.parametrize("word", ["q" * 80 + "A1+", "see abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefgh9Z/ ok"])
def test_a_token_of_small_letters_does_not_hold_the_secret_scan(gateway, openai_up, anthropic_up, word):
    """The secret recognizer's CamelCase pattern split a run of small letters every way before failing on the `+`
    (catastrophic backtracking: 30 letters 0.4 s, each 2 more ~2.5x): one such message under any privacy section
    with the `secrets` class (a default class; examples/claude-code.yaml) held a worker thread or the event loop for
    longer than a lifetime. Now the request is answered (the client gives up after 240 s; it never had to)."""
    from tests.privacy.support import privacy_config

    fb = {"fb": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0}}
    cfg = privacy_config(openai_up.url, anthropic_up.url, fb, policy={"secrets": "redact"})
    cfg["privacy"]["classes"] = {"secrets": {}}
    cfg["server"]["default_route"] = "fb"
    g = gateway(cfg)
    r = ant(g).with_options(timeout=240, max_retries=0).messages.create(
        model="fb", max_tokens=20, messages=[{"role": "user", "content": f"what is {word}?"}])
    assert r.content and anthropic_up.requests
