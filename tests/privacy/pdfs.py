"""Small PDFs made in code for the privacy tests (round 13): text in a Flate-compressed content stream, as nearly every
real PDF has it, and hostile ones (a compression bomb, an object tree nested past any reader's stack)."""

from __future__ import annotations

import zlib


def make_pdf(lines: list[str], *, title: str | None = None, content: bytes | None = None) -> bytes:
    """A one-page PDF whose text is `lines` (Helvetica, a Flate-compressed content stream), as bytes."""
    ops = ["BT", "/F1 11 Tf", "72 720 Td", "14 TL"]
    for ln in lines:
        esc = ln.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({esc}) Tj T*")
    ops.append("ET")
    if content is None:
        content = zlib.compress("\n".join(ops).encode("latin-1"))
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    if title:
        objs.append(b"<< /Title (" + title.encode("latin-1") + b") >>")
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offs = []
    for i, o in enumerate(objs, 1):
        offs.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    x = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offs:
        out += b"%010d 00000 n \n" % off
    info = b" /Info %d 0 R" % len(objs) if title else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, info, x)
    return bytes(out)


def bomb_pdf() -> bytes:
    """A page whose content stream inflates to 200 MB of zeros (~200 KB compressed)."""
    return make_pdf([], content=zlib.compress(b"\0" * (200 * 1024 * 1024), 9))


def deep_pdf(depth: int = 50_000) -> bytes:
    """A page whose text (an e-mail address) follows an array nested `depth` levels deep in its content stream. (An
    array alone, with no operator after it, pypdf 7 skips and reads as a page without text; pypdf 6 raised.)"""
    return make_pdf([], content=zlib.compress(b"BT /F1 11 Tf 72 720 Td " + b"[" * depth + b"]" * depth +
                                              b" (jane.doe@example.com) Tj ET"))


def encrypted_pdf() -> bytes:
    """A PDF of the usual lines, encrypted with a user password (its text cannot be read without it)."""
    import io

    from pypdf import PdfReader, PdfWriter

    w = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["Customer: jane.doe@example.com"]))))
    w.encrypt("secret-pw", algorithm="RC4-128")
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()
