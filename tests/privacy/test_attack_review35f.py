"""Review of privacy round 15 (session 35, review35f) as an attacker on the archive reader: a request whose first
archive reads spend its archive budget, so that a later read of a file the first reads passed came back empty; and
text an archive carries outside its files' data (a zip's comments and Info-ZIP Unicode fields, a gzip header's
name and comment, a tar's link targets, owner names and pax records, bytes past a tar's end blocks or outside every
zip entry). Real HTTP, the official SDKs, recording doubles, `pii: redact` on a fallback route remote -> local."""

from __future__ import annotations

import gzip
import io
import random
import struct
import tarfile
import zipfile

import pytest

from tests.privacy.test_attack_privacy15 import CODE, EMAIL, NOTE, files_sent, send, sent, tar_of, zip_of


def _zip_with(comment: bytes = b"", file_comment: bytes = b"", extra: bytes = b"") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("add.py")
        info.compress_type = zipfile.ZIP_DEFLATED
        info.comment, info.extra = file_comment, extra
        z.writestr(info, CODE)
        z.comment = comment
    return out.getvalue()


def _unicode_path(name: str) -> bytes:
    """An Info-ZIP Unicode Path extra field (0x7075): version 1, the CRC-32 of the header's name, the UTF-8 name."""
    body = b"\x01" + struct.pack("<I", zipfile.crc32(b"add.py")) + name.encode()
    return struct.pack("<HH", 0x7075, len(body)) + body


def _gzip_named(name: str = "", comment: bytes = b"") -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=out, mtime=0) as g:
        g.write(CODE)
    raw = bytearray(out.getvalue())
    if comment:  # (GzipFile writes no FCOMMENT: set the flag and put it after the name)
        raw[3] |= 0x10
        at = raw.index(b"\x00", 10) + 1 if raw[3] & 0x08 else 10
        raw[at:at] = comment + b"\x00"
    return bytes(raw)


def _tar_member(**fields: object) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("add.py")
        for k, v in fields.items():
            setattr(info, k, v)
        if info.type == tarfile.REGTYPE:
            info.size = len(CODE)
        t.addfile(info, io.BytesIO(CODE) if info.type == tarfile.REGTYPE else None)
    return out.getvalue()


def _unlisted_entry() -> bytes:
    """A deflated entry with the note (its local header and data) before a clean zip the central directory lists:
    zipfile reads only what the central directory lists; a streaming unzipper walks the local headers."""
    hidden = zip_of({"notes.txt": NOTE.encode() * 3})
    return hidden[:hidden.index(b"PK\x01\x02")] + zip_of({"add.py": CODE})


OUTSIDE = {
    "zip-archive-comment": lambda: _zip_with(comment=EMAIL.encode()),
    "zip-file-comment": lambda: _zip_with(file_comment=EMAIL.encode()),
    "zip-unicode-path-field": lambda: _zip_with(extra=_unicode_path(f"{EMAIL}.txt")),
    "zip-address-appended": lambda: zip_of({"add.py": CODE}) + EMAIL.encode(),
    "zip-entry-the-central-directory-omits": _unlisted_entry,
    "gzip-header-name": lambda: _gzip_named(f"{EMAIL}.py"),
    "gzip-header-comment": lambda: _gzip_named(comment=EMAIL.encode()),
    "tar-symlink-target": lambda: _tar_member(type=tarfile.SYMTYPE, linkname=f"/home/{EMAIL}/add.py"),
    "tar-owner-name": lambda: _tar_member(uname=EMAIL),
    "tar-pax-comment": lambda: _tar_member(pax_headers={"comment": EMAIL}),
    "gzip-after-a-tar-s-end": lambda: tar_of({"add.py": CODE}) + gzip.compress(NOTE.encode()),
}


@pytest.mark.parametrize("name", list(OUTSIDE))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_text_an_archive_carries_outside_its_files_data_is_read(remote, openai_up, name):
    """`unzip -l`/`zipinfo` print a zip's comments and Unicode names, `gzip -lN` a gzip's stored name, `tar -tv` a
    link's target and the owner, `tar -i` reads past the end blocks, a streaming unzipper reads entries the central
    directory omits: all reached the remote model unread (an address with no two spaces around it is no "words" run
    for `media_text.word_runs`). Now read as the archive's text (the archive withheld, its text redacted) or, when
    unreadable (a deflated entry outside the central directory), failing closed."""
    g, up = remote
    data = OUTSIDE[name]()
    send(g, up, openai_up, data, "application/zip")
    assert data not in files_sent(up) and EMAIL not in sent(up), name


CLEAN = {
    "zip-with-data-descriptors": lambda: _streamed_zip(force_zip64=False),
    "zip64-with-data-descriptors": lambda: _streamed_zip(force_zip64=True),
    "zip-with-a-plain-comment": lambda: _zip_with(comment=b"built by make dist"),
    "tar-with-a-symlink": lambda: _tar_member(type=tarfile.SYMTYPE, linkname="src/add.py"),
    "gzip-with-a-name": lambda: _gzip_named("add.py"),
}


class _Unseekable(io.RawIOBase):
    """A pipe-like sink: zipfile writes data descriptors (flag bit 3) when it cannot seek back."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.buf += b
        return len(b)


def _streamed_zip(force_zip64: bool) -> bytes:
    sink = _Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as z:
        for name in ("add.py", "README.md"):
            with z.open(name, "w", force_zip64=force_zip64) as f:
                f.write(CODE)
    raw = bytes(sink.buf)
    assert zipfile.ZipFile(io.BytesIO(raw)).infolist()[0].flag_bits & 0x08
    return raw


@pytest.mark.parametrize("name", list(CLEAN))
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_clean_archives_with_descriptors_comments_and_links_leave_whole(remote, openai_up, name):
    """Regression guard of the structure walk: entries with data descriptors (32- and 64-bit sizes), a comment, a
    link or a stored name with nothing to redact leave as they came."""
    g, up = remote
    data = CLEAN[name]()
    send(g, up, openai_up, data, "application/zip")
    assert data in files_sent(up), name


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_an_archive_read_after_the_request_s_archive_budget_is_spent_does_not_leave_unscanned(remote, openai_up):
    """The scan asks `opaque` (one read of each archive: readable?) and then `media_text` (a second read: its text).
    Both spent the request's 16 MB archive budget: a 6 MB clean gzip and a 5 MB gzip with an address passed `opaque`
    (11 MB), then the clean one's second read spent the rest and the second's failed, which `media_text` returned as
    "no text": the gzip with the address reached the remote model unscanned. Now the text comes from the one read
    `opaque` made, and a read that fails, fails closed."""
    rnd = random.Random(35)
    filler = gzip.compress(rnd.randbytes(3 * 2**20).hex().encode(), 1)  # 6 MB of hex, ~2x compressed
    with_address = gzip.compress(NOTE.encode() + rnd.randbytes(5 * 2**19).hex().encode(), 1)
    g, up = remote
    from tests.gateway.conftest import ant
    from tests.privacy.test_attack_privacy15 import b64

    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        *({"type": "document", "source": {"type": "base64", "media_type": "application/gzip", "data": b64(d)}}
          for d in (filler, with_address)),
        {"type": "text", "text": "What is in them?"}]}])
    assert with_address not in files_sent(up)


# ---------------------------------------------------------------- a value split between a text and a document

_A, _B = "Write to jane.doe", "@example.com today."
_TEXT_DOC = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": _B}}
SPLIT = {
    "text-then-text-document": lambda: [{"type": "text", "text": _A}, _TEXT_DOC],
    "text-document-then-text": lambda: [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": _A}},
        {"type": "text", "text": _B}],
    "text-then-base64-text-document": lambda: [{"type": "text", "text": _A}, {"type": "document", "source": {
        "type": "base64", "media_type": "text/plain", "data": __import__("base64").b64encode(_B.encode()).decode()}}],
}


@pytest.mark.parametrize("name", list(SPLIT))
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_value_split_between_a_text_and_a_document_is_found(remote, name):
    """The junction scan (split_values) joined the conversation's texts but left out every field of an unmodelled
    block (structure: `type`, `media_type` joined with their neighbours made keys of nothing), and with them a
    document's text: `Write to jane.doe` + a text document `@example.com today.` reached the remote model as
    written. A document's text (`source.data`, a base64 text's text, a PDF's) now reads on as prose."""
    from tests.gateway.conftest import ant

    g, up = remote
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": SPLIT[name]()}])
    body = sent(up)
    assert up.requests and "jane.doe" not in body and "example.com today" not in body, name


@pytest.mark.parametrize("remote", ["openai"], indirect=True)
def test_a_value_split_between_a_text_and_an_openai_file_is_found(remote):
    from tests.gateway.conftest import oai

    g, up = remote
    data = "data:text/plain;base64," + __import__("base64").b64encode(_B.encode()).decode()
    oai(g).chat.completions.create(model="fb", messages=[{"role": "user", "content": [
        {"type": "text", "text": _A}, {"type": "file", "file": {"filename": "note.txt", "file_data": data}}]}])
    body = sent(up)
    assert up.requests and "jane.doe" not in body and data not in body


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_text_beside_a_clean_document_leaves_whole(remote):
    """Regression guard: prose beside a document with digits at the junction is no value."""
    from tests.gateway.conftest import ant

    g, up = remote
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                          "data": "2026 revenue grew 12% on 2025; see table 3."}}
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "text", "text": "Summarise report 7"}, doc]}])
    body = sent(up)
    assert "Summarise report 7" in body and "2026 revenue grew 12% on 2025; see table 3." in body
