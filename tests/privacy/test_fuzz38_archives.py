"""Gateway fuzz (session 38, fuzz38): zip files that Python's zipfile refuses with an exception other than
BadZipFile. A central directory naming a newer "version needed to extract" (zipfile raises NotImplementedError) or a
file with an empty name (ZipInfo.is_dir raises IndexError) escaped privacy/archives.py's reader: the request got a
500 with no error in its API's schema. A gzip member cut inside its 10-byte header (alone, or after a whole member) raised
IndexError the same way. Now the first and third are unreadable archives (the scan fails closed) and the second is
read; either way the client gets an answer and the value does not reach the remote model."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest

from tests.privacy.file_parts import files_sent, send
from tierwise.privacy.archives import ArchiveUnreadable, read_archive


def _zip(name: str | zipfile.ZipInfo = "a.txt") -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr(name, "call jane.doe@example.com")
    return b.getvalue()


def newer_version() -> bytes:
    raw = bytearray(_zip())
    raw[raw.rfind(b"PK\x01\x02") + 6] = 163  # the central directory's "version needed to extract": 16.3
    return bytes(raw)


def empty_name() -> bytes:
    return _zip(zipfile.ZipInfo(""))


def gzip_cut_in_its_header() -> bytes:
    return gzip.compress(b"call jane.doe@example.com") + b"\x1f\x8b\x08"  # a second member, 3 bytes of its header


HOSTILE = {"newer version": newer_version, "empty name": empty_name, "gzip header cut": gzip_cut_in_its_header}


@pytest.mark.parametrize("data", [b"\x1f\x8b", b"\x1f\x8b\x08", gzip_cut_in_its_header()],
                         ids=["2 bytes", "3 bytes", "a second member cut"])
def test_a_gzip_member_cut_in_its_header_is_unreadable(data):
    with pytest.raises(ArchiveUnreadable):
        read_archive(data, lambda data: None)


def test_a_zip_zipfile_cannot_open_is_unreadable():
    with pytest.raises(ArchiveUnreadable):
        read_archive(newer_version(), lambda data: None)


def test_a_file_with_an_empty_name_is_read():
    assert [m.text for m in read_archive(empty_name(), lambda data: None)] == ["call jane.doe@example.com"]


@pytest.mark.parametrize("make", list(HOSTILE))
@pytest.mark.parametrize("remote", ["openai", "anthropic"], indirect=True)
def test_a_zip_zipfile_refuses_gets_an_answer_and_does_not_reach_the_remote_model(remote, openai_up, make):
    g, up = remote
    data = HOSTILE[make]()
    send(g, up, openai_up, data, "application/zip")
    assert data not in files_sent(up)
    assert b"jane.doe" not in b"".join(r.raw for r in up.requests)
