"""wire14: an inline (base64) PDF counted 0 tokens: an Anthropic `document` block or an OpenAI `file` part of 40 pages
was `input_tokens: 12` to count_tokens and passed an 8,192-token model's window check (sent, to be refused or cut by
the model). The providers put each page's text and an image of it into the context: now a page counts
`PER_PDF_PAGE` (tierwise/pdf_pages.py reads the pages, object streams included). Real HTTP, the upstream doubles,
the official SDKs."""

from __future__ import annotations

import base64
import zlib

import anthropic
import openai
import pytest

from tests.gateway.conftest import ant, oai
from tests.privacy.pdfs import pdf_document
from tierwise.pdf_pages import MAX_PAGES, base64_payload, pdf_pages
from tierwise.tokens import PER_PDF_PAGE

_PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"


def plain_pdf(pages: int) -> bytes:
    """`pages` blank pages, each its own object."""
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    return pdf_document([b"<< /Type /Catalog /Pages 2 0 R >>",
                         b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages, *[_PAGE] * pages])


def packed_pdf(pages: int, count: bool = True) -> bytes:
    """`pages` pages inside one Flate-compressed object stream (PDF 1.5+, what most writers make now), the page tree
    too: no `/Type /Page` in the file's own bytes."""
    objs = [b"<< /Type /Pages /Kids [] /Count %d >>" % (pages if count else 0), *[_PAGE] * pages]
    body = b"\n".join(objs)
    head = b" ".join(b"%d %d" % (2 + i, 0) for i in range(len(objs)))  # (offsets unread here)
    data = zlib.compress(head + b"\n" + body)
    stm = (b"<< /Type /ObjStm /N %d /First %d /Length %d /Filter /FlateDecode >>\nstream\n"
           % (len(objs), len(head) + 1, len(data)) + data + b"\nendstream")
    return pdf_document([b"<< /Type /Catalog /Pages 2 0 R >>", stm])


def b64(pdf: bytes) -> str:
    return base64.b64encode(pdf).decode()


def _g(two_tier):
    return two_tier(routes={"main": {"policy": "fallback", "targets": ["local"], "retries": 0}})


@pytest.mark.parametrize("make", [plain_pdf, packed_pdf])
def test_count_tokens_counts_a_pdfs_pages(two_tier, openai_up, make):
    g = _g(two_tier)
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(make(40))}}
    n = ant(g).messages.count_tokens(model="main", messages=[{"role": "user", "content": [
        doc, {"type": "text", "text": "summarise"}]}]).input_tokens
    assert n >= 40 * PER_PDF_PAGE, n


def test_a_pdf_in_a_tool_result_is_counted(two_tier, openai_up):
    g = _g(two_tier)
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(plain_pdf(5))}}
    n = ant(g).messages.count_tokens(model="main", tools=[{"name": "read", "input_schema": {"type": "object"}}],
                                     messages=[{"role": "user", "content": "read it"},
                                               {"role": "assistant", "content": [
                                                   {"type": "tool_use", "id": "t1", "name": "read", "input": {}}]},
                                               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                                                             "content": [doc]}]}]).input_tokens
    assert n >= 5 * PER_PDF_PAGE, n


def test_an_openai_file_part_past_the_window_is_refused_in_the_openai_schema(two_tier, openai_up):
    g = _g(two_tier)  # the local model's window: 8,192 tokens; 10 pages are about 25,000
    part = {"type": "file", "file": {"filename": "r.pdf", "file_data": "data:application/pdf;base64," +
                                     b64(packed_pdf(10))}}
    with pytest.raises(openai.BadRequestError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": [
            part, {"type": "text", "text": "summarise"}]}])  # type: ignore[list-item]
    assert isinstance(e.value.body, dict) and "context" in str(e.value.body).lower(), e.value.body
    assert openai_up.last is None  # refused before any upstream call


def test_an_anthropic_pdf_past_the_window_is_refused_in_the_anthropic_schema(two_tier, openai_up):
    g = _g(two_tier)
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(plain_pdf(10))}}
    with pytest.raises(anthropic.BadRequestError) as e:
        ant(g).messages.create(model="main", max_tokens=10, messages=[{"role": "user", "content": [
            doc, {"type": "text", "text": "summarise"}]}])
    assert "prompt is too long" in str(e.value), str(e.value)
    assert openai_up.last is None


def test_page_reading_is_bounded():
    assert pdf_pages(packed_pdf(3)) == 3 and pdf_pages(plain_pdf(7)) == 7
    assert pdf_pages(packed_pdf(6, count=False)) == 6
    assert pdf_pages(plain_pdf(MAX_PAGES + 50)) == MAX_PAGES
    assert pdf_pages(b"") == 1 and pdf_pages(base64_payload("not base64!!")) == 1
    # an object stream that inflates to 200 MB: read to MAX_INFLATED, then the page tree's count
    bomb = zlib.compress(b"\0" * (200 * 1024 * 1024), 9)
    stm = (b"<< /Type /ObjStm /N 1 /First 4 /Length %d /Filter /FlateDecode >>\nstream\n" % len(bomb) + bomb +
           b"\nendstream")
    assert pdf_pages(pdf_document([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Count 4 >>", stm])) == 4
    # nothing readable: by size
    assert pdf_pages(b"%PDF-1.7\n" + b"\x00" * 450_000) == 4


def test_a_budget_reserves_the_pages_a_small_body_hides():
    # 1,000 blank pages in an object stream are 3.5 KB of base64: a third of the body's bytes reserved 1,200 tokens
    # for 2.5 million
    from tierwise.canonical import Message, OtherBlock, Request
    from tierwise.tokens import hidden_input

    data = b64(packed_pdf(MAX_PAGES))
    req = Request(model="m", messages=[Message("user", [OtherBlock({"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": data}})])])
    assert len(data) // 3 + hidden_input(req) >= MAX_PAGES * PER_PDF_PAGE


def test_only_pdfs_are_counted_as_pages():
    from tierwise.canonical import Message, OtherBlock, Request
    from tierwise.tokens import estimate_request

    gz = base64.b64encode(b"\x1f\x8b" + bytes(300_000)).decode()
    blocks = [OtherBlock({"type": "document", "source": {"type": "base64", "media_type": "application/gzip", "data": gz}}),
              OtherBlock({"type": "file", "file": {"file_data": "data:application/zip;base64," + gz}})]
    assert estimate_request(Request(model="m", messages=[Message("user", blocks)])) < 100
    pdf = b64(plain_pdf(3))
    for raw in ({"type": "document", "source": {"type": "base64", "media_type": "application/octet-stream", "data": pdf}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64," + pdf}}):
        assert estimate_request(Request(model="m", messages=[Message("user", [OtherBlock(raw)])])) >= 3 * PER_PDF_PAGE
