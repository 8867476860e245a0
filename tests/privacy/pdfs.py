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
    return pdf_document(objs, b" /Info %d 0 R" % len(objs) if title else b"")


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


# ---------------------------------------------------------------------------- review33d: text outside page text

def pdf_document(objs: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF of `objs` (object 1 the catalog), with its cross-reference table; `trailer`: more trailer entries."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offs = []
    for i, o in enumerate(objs, 1):
        offs.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    x = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offs:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, trailer, x)
    return bytes(out)


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


_HELLO = _stream(b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET")
_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def _page(extra: bytes = b"") -> bytes:
    return (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> " + extra + b" >>")


def glyph_pdf(text: str, how: str = "Td") -> bytes:
    """`text` drawn one glyph per operator, placed apart (pypdf's page text reads `j ane. doe@exampl e. com`)."""
    glyphs = [bytes([c]) for c in text.encode("latin-1")]
    if how == "Td":
        ops = b" ".join(b"(%s) Tj 7 0 Td" % g for g in glyphs)
    elif how == "reversed":  # drawn right to left: the page still shows it left to right
        ops = b" ".join(b"1 0 0 1 %d 700 Tm (%s) Tj" % (72 + 7 * i, g) for i, g in reversed(list(enumerate(glyphs))))
    else:  # one TJ, glyphs kerned apart
        ops = b"[" + b" ".join(b"(%s) -300" % g for g in glyphs) + b"] TJ"
    return make_pdf([], content=zlib.compress(b"BT /F1 12 Tf 72 700 Td " + ops + b" ET"))


def appearance_pdf(text: str) -> bytes:
    """A page saying Hello with a FreeText annotation drawn (its appearance stream) as `text`, no `/Contents`."""
    ap = _stream(b"BT /F1 12 Tf 100 500 Td (" + text.encode("latin-1") + b") Tj ET",
                 b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >>")
    return pdf_document([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                 _page(b"/Annots [7 0 R]"), _HELLO, _FONT, ap,
                 b"<< /Type /Annot /Subtype /FreeText /Rect [0 0 612 792] /AP << /N 6 0 R >> /DA (/F1 12 Tf) >>"])


def attachment_pdf(text: str) -> bytes:
    """A page saying Hello with `text` in an attached `notes.txt` (the document's EmbeddedFiles)."""
    return pdf_document([b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(notes.txt) 7 0 R] >> >> >>",
                 b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", _page(), _HELLO, _FONT,
                 _stream(text.encode("latin-1"), b" /Type /EmbeddedFile"),
                 b"<< /Type /Filespec /F (notes.txt) /EF << /F 6 0 R >> >>"])


def xmp_pdf(text: str) -> bytes:
    """A page saying Hello whose XMP metadata names `text` as its creator."""
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>' + text.encode("latin-1") +
           b"</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>")
    return pdf_document([b"<< /Type /Catalog /Pages 2 0 R /Metadata 6 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                 _page(), _HELLO, _FONT, _stream(xmp, b" /Type /Metadata /Subtype /XML")])


def outline_pdf(text: str) -> bytes:
    """A page saying Hello with a bookmark titled `text`."""
    return pdf_document([b"<< /Type /Catalog /Pages 2 0 R /Outlines 6 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                 _page(), _HELLO, _FONT, b"<< /Type /Outlines /First 7 0 R /Last 7 0 R /Count 1 >>",
                 b"<< /Title (" + text.encode("latin-1") + b") /Parent 6 0 R /Dest [3 0 R /Fit] >>"])
