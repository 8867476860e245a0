"""Bytes an archive's format carries beside its files' data, which the standard library's readers skip, read as text
for the privacy scan (privacy16): a gzip header's FEXTRA subfields, a zip entry's extra fields (central directory and
local header; privacy15 read only the Info-ZIP Unicode ones), a tar's padding after each data area, and the bytes after
the NUL that ends each of a tar header's fields (`tarfile` cuts a name, a link target or an owner at its first NUL).

Writers fill these places with zeros, binary numbers (zip timestamps, BGZF block sizes) or nothing; an address or a
card number put there reached the remote model unread (`media_text.word_runs` needs two spaces in a run). What is
read from them: the whole when it is text (`charsets.decode`), else every run of `MIN_RUN` printable characters, as
ASCII or UTF-16 (binary numbers rarely make six printable bytes in a row, and such a run finds nothing)."""

from __future__ import annotations

import re
import struct
import tarfile

from tierwise.privacy.charsets import decode

MIN_RUN = 6
_ASCII = re.compile(rb"[\x20-\x7e\t]{%d,}" % MIN_RUN)
_UTF16LE = re.compile(rb"(?:[\x20-\x7e]\x00){%d,}" % MIN_RUN)
_UTF16BE = re.compile(rb"(?:\x00[\x20-\x7e]){%d,}" % MIN_RUN)


def text_of(raw: bytes) -> bytes:
    """The text in `raw` (a place that holds binary numbers or zeros), UTF-8, runs one a line; b"" when none."""
    raw = raw.strip(b"\x00 ")
    if not raw:
        return b""
    got = decode(raw)
    if got is not None:
        return got[0].encode("utf-8")
    runs = [m.group().decode("ascii") for m in _ASCII.finditer(raw)]
    runs += [m.group().decode("utf-16-le") for m in _UTF16LE.finditer(raw)]
    runs += [m.group().decode("utf-16-be") for m in _UTF16BE.finditer(raw)]
    return "\n".join(r.strip() for r in runs if r.strip()).encode("utf-8")


def gzip_extra(raw: bytes) -> bytes:
    """The text in a gzip member's FEXTRA field (RFC 1952 2.3.1.1: subfields of two id bytes, a length, data)."""
    if not raw[3] & 0x04:
        return b""
    n = int.from_bytes(raw[10:12], "little")
    return text_of(raw[12:12 + n])


def zip_extras(raw: bytes, central_extra: bytes, header_offset: int) -> bytes:
    """The text in a zip entry's extra fields, as the central directory holds them and as its local header does (a
    streaming unzipper reads the local one; zipfile reads neither beyond its zip64 sizes)."""
    n, m = struct.unpack("<HH", raw[header_offset + 26:header_offset + 30])
    local = raw[header_offset + 30 + n:header_offset + 30 + n + m]
    return b"\n".join(t for t in (_fields_text(central_extra), _fields_text(local)) if t)


def _fields_text(extra: bytes) -> bytes:
    pos, out = 0, []
    while pos + 4 <= len(extra):
        _tag, size = struct.unpack("<HH", extra[pos:pos + 4])
        out.append(text_of(extra[pos + 4:pos + 4 + size]))
        pos += 4 + size
    out.append(text_of(extra[pos:]))  # bytes past the last whole field
    return b"\n".join(t for t in out if t)


# A tar header's fields (POSIX ustar; `tarfile` reads each up to its first NUL): name, mode, uid, gid, size, mtime,
# chksum, typeflag, linkname, magic, version, uname, gname, devmajor, devminor, prefix, the pad to 512
_USTAR = ((0, 100), (100, 8), (108, 8), (116, 8), (124, 12), (136, 12), (148, 8), (156, 1), (157, 100), (257, 6),
          (263, 2), (265, 32), (297, 32), (329, 8), (337, 8), (345, 155), (500, 12))
# GNU's old format puts times, a sparse map and the real size where ustar has its prefix
_GNU = (*_USTAR[:15], (345, 12), (357, 12), (369, 12), (381, 4), (385, 1), *((386 + 12 * i, 12) for i in range(8)),
        (482, 1), (483, 12), (495, 17))
_META = (b"x", b"g", b"L", b"K", b"X")  # pax, global pax, GNU long name, GNU long link, Solaris pax: a header whose data is text


def tar_hidden(raw: bytes, members: list[tarfile.TarInfo], end: int | None = None) -> bytes:
    """The text in a tar's header slack (after each field's NUL), in the padding after each header's and file's data,
    in the whole data of pax / GNU long-name headers, and in a sparse file's stored bytes past what its map places
    (`end`: where the archive's members end, `tarfile`'s offset after the last)."""
    out: list[bytes] = []
    for k, m in enumerate(members):
        pos = m.offset
        while pos < m.offset_data:
            header = raw[pos:pos + 512]
            out.append(_slack(header))
            size = _octal(header[124:136])
            pos += 512
            if header[156:157] not in _META:
                continue
            blocks = -(-size // 512) * 512
            out.append(text_of(_unparsed(raw[pos:pos + size], header[156:157])))
            out.append(text_of(raw[pos + size:pos + blocks]))
            pos += blocks
        if m.isreg() and not m.issparse():
            stop = m.offset_data + m.size
            out.append(text_of(raw[stop:-(-stop // 512) * 512]))
        elif m.issparse():
            # review36f: a sparse file's map places the first sum(sizes) stored bytes; `tarfile` (and `tar -x`) read
            # only those, so bytes stored past them and the padding after were read by no one
            spans: list[tuple[int, int]] = getattr(m, "sparse", None) or []  # (typeshed: `sparse` is an int)
            placed = m.offset_data + sum(n for _o, n in spans)
            stop = members[k + 1].offset if k + 1 < len(members) else (len(raw) if end is None else end)
            out.append(text_of(raw[placed:stop]))
    return b"\n".join(t for t in out if t)


_RECORD = re.compile(rb"(\d{1,9}) ")


def _unparsed(data: bytes, kind: bytes) -> bytes:
    """What `tarfile` does not read of a pax / long-name header's data (the records it reads are the member's
    `pax_headers`, read as its fields; a long name ends at its NUL): the bytes after the last well-formed record,
    after the name's NUL."""
    if kind in (b"L", b"K"):
        nul = data.find(b"\x00")
        return data[nul + 1:] if nul >= 0 else b""
    pos = 0
    while (m := _RECORD.match(data, pos)) and int(m.group(1)) > 0:
        end = pos + int(m.group(1))
        if end > len(data) or data[end - 1:end] != b"\n" or b"=" not in data[m.end():end]:
            break
        pos = end
    return data[pos:]


def _slack(header: bytes) -> bytes:
    table = _GNU if header[257:265] == b"ustar  \x00" else _USTAR
    parts = []
    for start, length in table:
        field = header[start:start + length]
        if field[:1] in (b"\x80", b"\xff"):  # a base-256 number: binary
            continue
        nul = field.find(b"\x00")
        if nul >= 0:
            parts.append(field[nul + 1:].replace(b"\x00", b""))
    return text_of(b"".join(parts))  # (joined: a value cut into pieces over several fields reads whole)


def _octal(field: bytes) -> int:
    try:
        return int(field.split(b"\x00", 1)[0].strip() or b"0", 8)
    except ValueError:
        return 0
