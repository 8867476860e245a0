"""Archives inside a payload (zip and the office files that are zips, tar, gzip, bzip2, xz), read for the privacy
scan with bounded decompression: the texts of their files, and their files' names.

Round 14 (privacy14) refused every archive (a gzip of a log, a `.docx`, a `.tar.gz` of a project: fails closed,
even with nothing in it). Now an archive is opened and each file in it is read as the scan reads a payload: text in
an encoding `charsets` reads, an image, audio or video file's metadata and words (`media_text`), or another
archive (nested, to `MAX_DEPTH`). Anything else in it (a PDF, an executable, an encrypted member, bytes in no
format) makes the archive unreadable, and so does going past a bound: the request fails closed, as before.

Bounds (a zip bomb inflates 42 KB to 4.5 PB; a quine zip contains itself): `MAX_MEMBERS` files in all, `MAX_BYTES`
inflated in all, `MAX_RATIO` times an archive's own size plus `SLACK` inflated (per archive and per stream),
`MAX_DEPTH` archives inside archives, and `MAX_REQUEST_BYTES` for all of a request's archives. Inflation is streamed with a length cap (zlib/bz2/lzma `max_length`, zipfile
reads in pieces), so what lies past a bound is never inflated: a declared size is not trusted.
"""

from __future__ import annotations

import bz2
import io
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from contextvars import ContextVar
from typing import NamedTuple

from tierwise.privacy.archive_hidden import gzip_extra, tar_hidden, zip_extras
from tierwise.privacy.charsets import decode
from tierwise.privacy.office_text import is_office_xml, office_text

MAX_MEMBERS = 1_000
MAX_BYTES = 8 * 1024 * 1024  # (a request's text is scanned up to privacy.max_request_chars, 4 M by default)
MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_RATIO = 100  # text compresses 3-10x, logs up to ~30x, a column of zeros ~1000x: read up to 100x
SLACK = 64 * 1024
MAX_DEPTH = 3
_CHUNK = 64 * 1024


class ArchiveUnreadable(Exception):
    """An archive the scan cannot read whole within its bounds, or holding a file it cannot read: fails closed."""


class Member(NamedTuple):
    name: str  # its path inside the archive(s), `outer.zip/inner.tar/notes.txt`; "" for a gzip's one stream
    text: str  # its text (a file's text, or one text field of a media file)


def is_archive(head: bytes) -> bool:
    """Are these a payload's first bytes (at least 262) an archive's this module reads?"""
    return kind(head) is not None


def kind(head: bytes) -> str | None:
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:3] == b"\x1f\x8b\x08":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[257:262] == b"ustar":
        return "tar"
    return None


_REQUEST: ContextVar[list[int] | None] = ContextVar("tierwise_archive_request_budget", default=None)


def request_budget() -> None:
    """For the rest of the current request (its task, and the worker threads it reads payloads in), all its archives
    together inflate at most `MAX_REQUEST_BYTES` (a 32 MB body of 400 archives, each at its own bound, inflated
    3.2 GB before this)."""
    _REQUEST.set([MAX_REQUEST_BYTES])


class _Budget:
    def __init__(self) -> None:
        self.bytes = MAX_BYTES
        self.members = MAX_MEMBERS
        self.request = _REQUEST.get()

    def take(self, n: int) -> None:
        self.bytes -= n
        if self.bytes < 0:
            raise ArchiveUnreadable(f"more than {MAX_BYTES // 2**20} MB inflated")
        if self.request is not None:
            self.request[0] -= n
            if self.request[0] < 0:
                raise ArchiveUnreadable(f"a request's archives inflating past {MAX_REQUEST_BYTES // 2**20} MB")

    def member(self) -> None:
        self.members -= 1
        if self.members < 0:
            raise ArchiveUnreadable(f"more than {MAX_MEMBERS} files")


def read_archive(raw: bytes, media: Callable[[bytes], list[str] | None]) -> list[Member]:
    """The texts of archive `raw`'s files and their names. `media(data)`: the text fields of an image, audio or video
    file (privacy/media_text.py), or None when `data` is no such file. Raises `ArchiveUnreadable`."""
    out: list[Member] = []
    _read(raw, "", 0, _Budget(), media, out)
    return out


def _read(raw: bytes, path: str, depth: int, b: _Budget, media: Callable[[bytes], list[str] | None],
          out: list[Member]) -> None:
    if depth >= MAX_DEPTH:
        raise ArchiveUnreadable(f"archives nested more than {MAX_DEPTH} deep")
    k = kind(raw[:262])
    cap = min(MAX_RATIO * len(raw) + SLACK, b.bytes + 1)
    if k == "zip":
        members = _zip(raw, cap, b)
    elif k == "tar":
        members = _tar(raw, b)
    else:
        fields: list[tuple[str, bytes]] = []
        members = [("", _stream(raw, k, cap, b, fields)), *fields]
    for name, data in members:
        _file(data, f"{path}/{name}" if path else name, depth, b, media, out)


def _file(data: bytes, path: str, depth: int, b: _Budget, media: Callable[[bytes], list[str] | None],
          out: list[Member]) -> None:
    if path:
        out.append(Member(path, path))  # a file's name is text too (`jane.doe@example.com.vcf`)
    if not data:
        return
    if kind(data[:262]) is not None:
        _read(data, path or "(compressed)", depth + 1, b, media, out)
        return
    got = decode(data)
    if got is not None:
        # privacy18: an office document's XML as displayed (a value cut into runs by markup is read whole, and the
        # redacted text sent in the file's place holds no markup between its pieces)
        out.append(Member(path, office_text(got[0]) if is_office_xml(got[0]) else got[0]))
        return
    texts = media(data)
    if texts is None:
        raise ArchiveUnreadable(f"a file the scan cannot read ({path or 'compressed data'})")
    out.extend(Member(path, t) for t in texts)


def _stream(raw: bytes, k: str | None, cap: int, b: _Budget, fields: list[tuple[str, bytes]]) -> bytes:
    """gzip (all its members), bzip2 or xz `raw` inflated, at most `cap` bytes (past it: unreadable). A gzip
    member's header name and comment go to `fields` (review35f: `gzip -lN` shows them; they were not read)."""
    parts: list[bytes] = []
    total = 0
    rest = raw
    while rest:
        if k == "gzip":
            fields.extend(_gzip_fields(rest))
        d: zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor
        if k == "gzip":
            d = zlib.decompressobj(31)
        elif k == "bzip2":
            d = bz2.BZ2Decompressor()
        else:
            d = lzma.LZMADecompressor()
        try:
            got = d.decompress(rest, cap - total + 1)
        except (zlib.error, OSError, EOFError, lzma.LZMAError) as e:
            raise ArchiveUnreadable(f"broken {k} data") from e
        total += len(got)
        b.take(len(got))
        if total > cap:
            raise ArchiveUnreadable(f"{k} data inflating past {MAX_RATIO} times its size")
        parts.append(got)
        if not d.eof:
            raise ArchiveUnreadable(f"truncated {k} data")
        rest = d.unused_data
        if k != "gzip" or not rest.startswith(b"\x1f\x8b"):
            if rest.strip(b"\x00"):
                raise ArchiveUnreadable(f"other data after {k} data")
            break
    return b"".join(parts)


def _gzip_fields(raw: bytes) -> list[tuple[str, bytes]]:
    """A gzip member's FNAME and FCOMMENT (RFC 1952 2.3.1), as (a name for it, its bytes)."""
    if len(raw) < 10:  # (fuzz38: a member cut inside its header raised IndexError, a 500)
        raise ArchiveUnreadable("a truncated gzip header")
    flags, pos, out = raw[3], 10, []
    if flags & 0x04:  # FEXTRA: binary subfields (BGZF's block sizes), or text (privacy16: read)
        if extra := gzip_extra(raw):
            out.append(("#gzip-extra", extra))
        pos += 2 + int.from_bytes(raw[10:12], "little")
    for bit, what in ((0x08, "#gzip-name"), (0x10, "#gzip-comment")):
        if flags & bit:
            end = raw.find(b"\x00", pos)
            if end < 0:
                raise ArchiveUnreadable("a broken gzip header")
            out.append((what, raw[pos:end]))
            pos = end + 1
    return out


def _zip(raw: bytes, cap: int, b: _Budget) -> list[tuple[str, bytes]]:
    try:
        z = zipfile.ZipFile(io.BytesIO(raw))
        infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError) as e:
        raise ArchiveUnreadable("a broken zip") from e  # (fuzz38: a newer "version needed" -> NotImplementedError)
    out: list[tuple[str, bytes]] = []
    total = 0
    for info in infos:
        b.member()
        if info.filename.endswith("/"):  # (fuzz38: not is_dir(), which raises IndexError on an empty name)
            out.append((info.filename, b""))
            continue
        if info.flag_bits & 0x1:
            raise ArchiveUnreadable(f"an encrypted file ({info.filename})")
        limit = min(cap - total, MAX_RATIO * info.compress_size + SLACK)
        try:
            with z.open(info) as f:
                chunks: list[bytes] = []
                n = 0
                while chunk := f.read(min(_CHUNK, limit - n + 1)):
                    n += len(chunk)
                    b.take(len(chunk))
                    if n > limit:
                        raise ArchiveUnreadable(f"a file inflating past {MAX_RATIO} times its size ({info.filename})")
                    chunks.append(chunk)
        except ArchiveUnreadable:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of a hostile zip (bad CRC, unknown method) is unreadable
            raise ArchiveUnreadable(f"a zip file it cannot inflate ({info.filename})") from e
        total += n
        out.append((info.filename, b"".join(chunks)))
        out.extend(_zip_fields(info))
        if extra := zip_extras(raw, info.extra, info.header_offset):
            out.append((f"{info.filename}#extra", extra))
    if z.comment:  # review35f: `unzip` prints the archive's comment; its files' comments and Unicode names too
        out.append(("#zip-comment", z.comment))
    out.extend(("#outside its files", gap) for gap in _zip_gaps(raw, z.start_dir, infos))  # type: ignore[attr-defined]
    return out


def _zip_fields(info: zipfile.ZipInfo) -> list[tuple[str, bytes]]:
    """A zip entry's comment and its Info-ZIP Unicode path and comment extra fields (0x7075, 0x6375: `unzip` shows
    them in place of the name and comment zipfile reads)."""
    out = [(f"{info.filename}#comment", info.comment)] if info.comment else []
    x, pos = info.extra, 0
    while pos + 4 <= len(x):
        tag, size = struct.unpack("<HH", x[pos:pos + 4])
        if tag in (0x7075, 0x6375):
            out.append((f"{info.filename}#unicode-field", x[pos + 9:pos + 4 + size]))  # (version 1, CRC-32 4)
        pos += 4 + size
    return out


def _zip_gaps(raw: bytes, start_dir: int, infos: list[zipfile.ZipInfo]) -> list[bytes]:
    """The bytes of zip `raw` that no entry (local header, data, data descriptor), central directory or end record
    covers, zeros aside (review35f: zipfile reads by the central directory, so an entry it does not list, deflated,
    or a note with no two spaces appended after the end record was read by no one; a reader that walks local headers,
    as streaming unzippers do, reads it)."""
    spans: list[tuple[int, int]] = []
    for i in infos:
        o = i.header_offset
        if raw[o:o + 4] != b"PK\x03\x04":
            raise ArchiveUnreadable("a zip entry without its local header")
        n, m = struct.unpack("<HH", raw[o + 26:o + 30])
        end = o + 30 + n + m + i.compress_size
        if i.flag_bits & 0x08:  # a data descriptor: its signature is optional, its sizes 4 or 8 bytes
            end += 4 if raw[end:end + 4] == b"PK\x07\x08" else 0
            short = struct.pack("<III", i.CRC, i.compress_size & 0xFFFFFFFF, i.file_size & 0xFFFFFFFF)
            end += 12 if raw[end:end + 12] == short else 20
        spans.append((o, end))
    p = start_dir
    for _ in infos:
        if raw[p:p + 4] != b"PK\x01\x02":
            raise ArchiveUnreadable("a broken zip central directory")
        n, m, c = struct.unpack("<HHH", raw[p + 28:p + 34])
        p += 46 + n + m + c
    if raw[p:p + 4] == b"PK\x06\x06":  # zip64 end record, then its locator
        p += 12 + int.from_bytes(raw[p + 4:p + 12], "little")
    if raw[p:p + 4] == b"PK\x06\x07":
        p += 20
    if raw[p:p + 4] != b"PK\x05\x06":
        raise ArchiveUnreadable("a broken zip end record")
    spans.append((start_dir, p + 22 + int.from_bytes(raw[p + 20:p + 22], "little")))
    gaps, pos = [], 0
    for s, e in sorted(spans):
        if s > pos:
            gaps.append(raw[pos:s])
        pos = max(pos, e)
    gaps.append(raw[pos:])
    return [g for g in gaps if g.strip(b"\x00")]


def _tar(raw: bytes, b: _Budget) -> list[tuple[str, bytes]]:
    """A tar's regular files (a tar stores them whole: its size bounds them); links and devices hold no data."""
    out: list[tuple[str, bytes]] = []
    seen: list[tarfile.TarInfo] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as t:
            while (m := t.next()) is not None:
                b.member()
                seen.append(m)
                # review35f: a link's target, the owner's names and pax records (`tar -tv` shows them) are text
                fields = "\n".join([m.linkname, m.uname, m.gname, *(f"{k}={v}" for k, v in m.pax_headers.items())])
                if fields.strip():
                    out.append((f"{m.name}#fields", fields.encode("utf-8", "surrogateescape")))
                if not m.isfile():
                    out.append((m.name, b""))
                    continue
                f = t.extractfile(m)
                data = f.read() if f is not None else b""
                b.take(len(data))
                out.append((m.name, data))
            end = t.offset
    except ArchiveUnreadable:
        raise
    except Exception as e:  # noqa: BLE001 - a broken or hostile tar header
        raise ArchiveUnreadable("a broken tar") from e
    if raw[end:].strip(b"\x00"):  # review35f: past the end blocks (`tar -i` reads on): as a file of it
        out.append(("#after its end", raw[end:].lstrip(b"\x00")))
    if hidden := tar_hidden(raw, seen, end):  # privacy16: after header fields' NULs, in the padding
        out.append(("#headers and padding", hidden))
    return out
