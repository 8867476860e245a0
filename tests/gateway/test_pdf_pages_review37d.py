"""Review of wire14's PDF page count (session 37, review37d), as a hostile client and as an honest one: CPU spent per
request (object streams re-read once per marker; each of a request's PDFs its own 16 MB to inflate), pages hidden
from the count (an object stream it cannot read, escaped names, comments), and honest PDFs counted twice (an
incremental update rewrites the pages it changes). Real HTTP, the upstream doubles, the official SDKs; the PDFs are
made here and by pypdf."""

from __future__ import annotations

import base64
import io
import zlib
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter

import tierwise.pdf_pages as pdf_pages_module
from tests.doubles.script import Reply
from tests.gateway.conftest import ant
from tests.privacy.pdfs import pdf_document
from tierwise.pdf_pages import MAX_INFLATED, MAX_MATCHES, MAX_PAGES, pdf_pages
from tierwise.tokens import PER_PDF_PAGE

_PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"


def b64(pdf: bytes) -> str:
    return base64.b64encode(pdf).decode()


def doc(pdf: bytes) -> dict[str, Any]:
    return {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(pdf)}}


def count_tokens(g: Any, *pdfs: bytes) -> int:
    return ant(g).messages.count_tokens(model="main", messages=[{"role": "user", "content": [
        *[doc(p) for p in pdfs], {"type": "text", "text": "summarise"}]}]).input_tokens  # type: ignore[misc]


def _g(two_tier: Any) -> Any:
    return two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})


def object_stream(objs: list[bytes], first_num: int, filt: bytes = b"/Filter /FlateDecode",
                  encode: Any = zlib.compress) -> bytes:
    """An object stream as writers make it (qpdf, Acrobat): a header of (number, offset) pairs, then the objects."""
    offs, body = [], b""
    for o in objs:
        offs.append(len(body))
        body += o + b"\n"
    head = b" ".join(b"%d %d" % (first_num + i, off) for i, off in enumerate(offs)) + b"\n"
    data = encode(head + body)
    return (b"<< /Type /ObjStm /N %d /First %d /Length %d %s >>\nstream\n" % (len(objs), len(head), len(data), filt)
            + data + b"\nendstream")


def packed(pages: int, **kw: Any) -> bytes:
    """A PDF of `pages` blank pages whose page tree and pages are in one object stream (objects 2...)."""
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    objs = [b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages), *[_PAGE] * pages]
    return pdf_document([b"<< /Type /Catalog /Pages 2 0 R >>", object_stream(objs, 2, **kw)])


class _Counting:
    """zlib for tierwise.pdf_pages, counting the bytes fed to and made by its inflaters."""

    error = zlib.error

    def __init__(self) -> None:
        self.fed = self.made = 0

    def decompressobj(self) -> Any:
        d, outer = zlib.decompressobj(), self

        class _D:
            @property
            def unconsumed_tail(self) -> bytes:
                return d.unconsumed_tail

            def decompress(self, data: bytes, max_length: int = 0) -> bytes:
                outer.fed += len(data)
                out = d.decompress(data, max_length)
                outer.made += len(out)
                return out
        return _D()


def test_each_object_stream_is_read_once(two_tier, openai_up, monkeypatch):
    # 4,096 object-stream markers before one 1 MB stream: each marker fed the whole stream to zlib again (a 10.75 MB
    # body with an 8 MB stream: 21 s of CPU per estimate, and a request is estimated about three times)
    counting = _Counting()
    monkeypatch.setattr(pdf_pages_module, "zlib", counting)
    tail = bytes(range(256)) * 4096
    pdf = b"%PDF-1.7\n" + b"<< /Type /ObjStm /N 1 /Filter /FlateDecode >>\n" * 4096 + b"stream\n" + tail
    n = count_tokens(_g(two_tier), pdf)
    assert n >= PER_PDF_PAGE, n
    assert counting.fed <= len(pdf), (counting.fed, len(pdf))


def test_a_requests_pdfs_share_one_inflate_allowance(two_tier, openai_up, monkeypatch):
    # 40 PDFs of 16 KB, each an object stream inflating to 16 MB: each PDF had its own 16 MB (640 MB inflated per
    # estimate from a 0.9 MB body)
    counting = _Counting()
    monkeypatch.setattr(pdf_pages_module, "zlib", counting)
    bomb = zlib.compress(b"\0" * MAX_INFLATED, 9)
    pdf = pdf_document([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /ObjStm /N 1 /First 4 /Length %d "
                        b"/Filter /FlateDecode >>\nstream\n" % len(bomb) + bomb + b"\nendstream"])
    n = count_tokens(_g(two_tier), *[pdf] * 40)
    assert n >= 40 * PER_PDF_PAGE, n
    assert counting.made <= 4 * MAX_INFLATED, counting.made  # (count_tokens estimates once or a few times)


def test_pages_in_an_object_stream_not_read_still_count(two_tier, openai_up):
    # pages in an object stream of another filter (LZW, ASCII hex: PDF readers take them), or after a bomb spent
    # the allowance: the page tree is in there too, so nothing was seen and 40 pages counted as 1 (by size)
    g = _g(two_tier)
    hexed = packed(40, filt=b"/Filter [/ASCIIHexDecode /FlateDecode]", encode=lambda b: zlib.compress(b).hex().encode())
    assert count_tokens(g, hexed) >= 40 * PER_PDF_PAGE
    bomb = zlib.compress(b"\0" * (MAX_INFLATED + 1024), 9)
    spent = pdf_document([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /ObjStm /N 1 /First 4 /Length %d "
                          b"/Filter /FlateDecode >>\nstream\n" % len(bomb) + bomb + b"\nendstream"])
    assert count_tokens(g, spent, packed(40)) >= 41 * PER_PDF_PAGE


@pytest.mark.parametrize("spelling", [b"/Type /P#61ge", b"/T#79pe/Page", b"/Type%c\n/Page", b"/Type % x\r /Page"])
def test_pages_in_escaped_names_or_after_comments_count(two_tier, openai_up, spelling):
    # `/P#61ge` is the name /Page to a PDF reader; a comment is white space; the page tree's count hidden the same way
    page = b"<< " + spelling + b" /Parent 2 0 R /MediaBox [0 0 612 792] >>"
    pdf = pdf_document([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /C#6funt 30 >>", *[page] * 30])
    assert count_tokens(_g(two_tier), pdf) >= 30 * PER_PDF_PAGE


def _rotated_in_place(pdf: bytes) -> bytes:
    """`pdf` with every page rotated in an incremental update (as an annotating or signing tool saves)."""
    w = PdfWriter(io.BytesIO(pdf), incremental=True)
    for p in w.pages:
        p.rotate(90)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def _blank(pages: int) -> bytes:
    w = PdfWriter()
    for _ in range(pages):
        w.add_blank_page(612, 792)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def test_pages_an_incremental_update_rewrites_count_once():
    updated = _rotated_in_place(_blank(10))
    assert len(PdfReader(io.BytesIO(updated)).pages) == 10
    assert pdf_pages(updated) == 10  # (was 20)
    # pages first in an object stream, then rewritten as plain objects of the same numbers
    rewritten = packed(10)[:-6] + b"".join(b"%d 0 obj\n<< /Type /Page /Parent 2 0 R /Rotate 90 >>\nendobj\n" % (3 + i)
                                           for i in range(10)) + b"%%EOF\n"
    assert pdf_pages(rewritten) == 10
    assert pdf_pages(packed(7)) == 7 and pdf_pages(packed(MAX_PAGES + 5)) == MAX_PAGES


def test_an_honest_pdf_updated_in_place_is_not_refused(two_tier, openai_up):
    # three pages (7,500 tokens) fit the local model's 8,192-token window; rotated in place they counted six and the
    # request was refused as too long before any upstream call
    openai_up.script(Reply(text="a summary"))
    r = ant(_g(two_tier)).messages.create(model="main", max_tokens=10, messages=[{"role": "user", "content": [
        doc(_rotated_in_place(_blank(3))), {"type": "text", "text": "summarise"}]}])  # type: ignore[list-item]
    assert r.content and r.content[0].text == "a summary"  # type: ignore[union-attr]


def test_a_hostile_header_does_not_fold_pages_into_one():
    # an object stream whose header gives every object offset 0 (each page dictionary counts, as before)
    objs = [b"<< /Type /Pages /Count 0 >>", *[_PAGE] * 12]
    head = b" ".join(b"%d 0" % (2 + i) for i in range(len(objs))) + b"\n"
    data = zlib.compress(head + b"\n".join(objs))
    stm = (b"<< /Type /ObjStm /N %d /First %d /Length %d /Filter /FlateDecode >>\nstream\n"
           % (len(objs), len(head), len(data)) + data + b"\nendstream")
    assert pdf_pages(pdf_document([b"<< /Type /Catalog /Pages 2 0 R >>", stm])) == 12


def test_a_page_object_repeated_past_the_reading_bound_counts_the_most():
    # one page object written 500,000 times (0.8 s of CPU to read them all): past MAX_MATCHES dictionaries the PDF
    # counts MAX_PAGES; the same in an object stream
    assert pdf_pages(b"%PDF-1.7\n" + b"5 0 obj<</Type/Page>>" * (MAX_MATCHES + 1)) == MAX_PAGES
    inner = b"1 0\n" + b"<</Type/Page>>" * (MAX_MATCHES + 1)
    z = zlib.compress(inner, 9)
    assert pdf_pages(b"%PDF\n1 0 obj<</Type/ObjStm/N 1/First 4/Filter/FlateDecode>>stream\n" + z + b"endstream") \
        == MAX_PAGES
