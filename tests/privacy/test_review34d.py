"""Review of privacy round 14 (session 34, review34d): formats users send that the payload-bytes rule refused as
opaque (JPEG XL, JPEG 2000, classic QuickTime, MIDI, tiny text files, ...), and text inside files the rule let pass
unread because their first bytes were a known format's (a PNG signature before a note, PNG text chunks, EXIF, XMP,
ID3). Real HTTP, the official SDKs, recording upstream doubles, `pii: redact` on a fallback route remote -> local."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy import media_files as mf
from tests.privacy.file_parts import b64, files_sent, send, send_and_read, sent
from tests.privacy.support import SEEDS

EMAIL, CARD = SEEDS["EMAIL_ADDRESS"], SEEDS["CREDIT_CARD"]


@pytest.mark.parametrize("name", list(mf.REFUSED) + list(mf.PASSED))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_files_users_send_reach_the_remote_model_whole(remote, openai_up, anthropic_up, name):
    """The REFUSED ones failed closed after round 14 (`a file whose bytes the privacy scan cannot read`): the remote
    model never saw them (the local target answered). None holds a value: each leaves as it came."""
    g, up = remote
    data = (mf.REFUSED.get(name) or mf.PASSED[name])()
    send(g, up, openai_up, data, "application/octet-stream")
    assert b64(data) in sent(up), name
    local = anthropic_up if up is openai_up else openai_up
    assert not local.requests, name


@pytest.mark.parametrize("name", ["jpeg-xl", "mov-classic", "tiny-csv"])
def test_an_image_url_of_such_a_file_reaches_the_remote_model(remote_openai, name):
    g, up = remote_openai
    data = mf.REFUSED[name]()
    oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/jxl;base64," + b64(data)}},
        {"type": "text", "text": "Describe."}]}])
    assert b64(data) in sent(up)


@pytest.fixture
def remote_openai(gateway, openai_up, anthropic_up):
    from tests.privacy.support import pii_only_remote

    return pii_only_remote("openai", gateway, openai_up, anthropic_up)


NOTE = f"Customer {EMAIL} card {CARD}, call back Monday.\n".encode()
HIDDEN = {
    "png-signature-then-a-note": lambda: b"\x89PNG\r\n\x1a\n" + NOTE,
    "jpeg-marker-then-a-note": lambda: b"\xff\xd8\xff\xe0" + NOTE,
    "ftyp-box-then-a-note": lambda: mf.ftyp(b"isom") + NOTE,
    "png-text-chunk": lambda: mf.png_with_text("Author", f"Jane Doe <{EMAIL}>"),
    "png-compressed-text-chunk": lambda: mf.png_with_text("Comment", f"contact {EMAIL}", compressed=True),
    "jpeg-exif-artist": lambda: mf.jpeg_with_artist(f"Jane Doe {EMAIL}"),
    "jpeg-xmp-creator": lambda: mf.jpeg_with_xmp(EMAIL),
    "mp3-id3-comment": lambda: mf.mp3_with_comment(f"ripped by {EMAIL}"),
    "tiny-text-address": lambda: b"a@b.se",
}


@pytest.mark.parametrize("name", list(HIDDEN))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_text_inside_a_known_format_is_read_and_the_file_withheld(remote, openai_up, name):
    """Each passed as "an image or audio format" by its first bytes and reached the remote model with the address
    (and card) inside. Now the file's metadata and words are scanned; a file holding a value is withheld from the
    remote call (replaced by a note), the rest of the request goes."""
    data = HIDDEN[name]()
    up, body = send_and_read(remote, openai_up, data, "image/png")
    assert up.requests, name
    assert b64(data)[:60] not in body and b64(data)[-60:] not in body, name
    assert EMAIL.encode() not in b"".join(files_sent(up)), name
    assert "withheld by the privacy guard" in body or files_sent(up), name  # (a note read as text: redacted in it)


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_an_image_block_with_metadata_is_withheld_and_a_clean_one_leaves(remote):
    g, up = remote
    dirty, clean = mf.png_with_text("Author", EMAIL), mf.png_with_text("Software", "Pillow")
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(dirty)}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(clean)}},
        {"type": "text", "text": "Compare."}]}])
    body = sent(up)
    assert b64(dirty) not in body and b64(clean) in body and "withheld by the privacy guard" in body


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_real_photo_with_an_icc_profile_and_xmp_ids_leaves_whole(remote):
    """scikit-learn's sample photos carry an sRGB ICC profile (`IEC 61966-2.1`) and XMP ids (`2481220370`), which a
    first reading of every printable run took for phone numbers: each photo was withheld under `pii: redact`."""
    from importlib import resources

    g, up = remote
    for name in ("flower.jpg", "china.jpg"):
        data = resources.files("sklearn.datasets.images").joinpath(name).read_bytes()
        oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + b64(data)}},
            {"type": "text", "text": "Describe."}]}])
        assert b64(data) in sent(up), name


def _zip_of(data: bytes) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", data)
    return out.getvalue()


_PDF = mf.make_pdf(["Quarterly plan, nothing sensitive."])
POLYGLOTS = {
    "pdf-then-a-zip": lambda: _PDF + _zip_of(NOTE * 3),
    "pdf-then-a-gzip": lambda: _PDF + __import__("gzip").compress(NOTE),
    "pdf-then-a-note": lambda: _PDF + NOTE,
}


@pytest.mark.parametrize("name", list(POLYGLOTS))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_data_after_a_pdf_s_end_is_read_or_fails_closed(remote, openai_up, name):
    """A PDF's text was read and the bytes after its `%%EOF` were not (readers ignore them): a zip, a gzip or a note
    appended to a clean PDF reached the remote model with the address and card inside. Now text there is read with
    the PDF's (a finding replaces the PDF by its redacted text) and other bytes there make the PDF unreadable (fails
    closed: the local target answers)."""
    g, up = remote
    data = POLYGLOTS[name]()
    send(g, up, openai_up, data, "application/pdf")
    assert b64(data)[:60] not in sent(up), name
    assert all(EMAIL.encode() not in f and b"PK\x03\x04" not in f for f in files_sent(up)), name


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_png_with_imagemagick_profiles_leaves_whole_and_its_xmp_creator_is_read(remote):
    """ImageMagick keeps a photo's EXIF and ICC profile as hex dumps in text chunks: read as text, the ICC's
    `IEC 61966-2.1` was a phone number (hex decoded by the encoded view), and the software field after a date field
    made a "street address" (`00` + `GIMP 2`): the image was withheld. An XMP creator in such a dump is read."""
    from importlib import resources

    g, up = remote
    photo = resources.files("sklearn.datasets.images").joinpath("flower.jpg").read_bytes()
    clean, dirty = mf.png_as_imagemagick_writes(photo), mf.png_as_imagemagick_writes(photo, xmp_creator=EMAIL)
    for data in (clean, dirty):
        oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(data)}},
            {"type": "text", "text": "Describe."}]}])
    body = sent(up)
    assert b64(clean) in body and b64(dirty) not in body and "withheld by the privacy guard" in body
