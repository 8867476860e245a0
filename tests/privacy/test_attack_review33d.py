"""Review of privacy round 13 (session 33, review33d): PDFs whose text reaches the model but not pypdf's page text
(glyphs placed one at a time, annotation appearances, attachments, XMP, bookmarks), and the extraction child's bounds
across many PDFs in one request.

Real HTTP, the official SDKs, recording upstream doubles."""

from __future__ import annotations

import base64
import json

import pytest

from tests.gateway.conftest import ant
from tests.privacy.pdfs import appearance_pdf, attachment_pdf, glyph_pdf, outline_pdf, xmp_pdf
from tests.privacy.support import SEEDS

EMAIL = SEEDS["EMAIL_ADDRESS"]


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def doc_block(pdf: bytes) -> dict:
    return {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(pdf)},
            "title": "notes.pdf"}


HIDDEN = {
    "glyph-per-Td": lambda: glyph_pdf(EMAIL, "Td"),
    "glyphs-drawn-right-to-left": lambda: glyph_pdf(EMAIL, "reversed"),
    "glyphs-kerned-in-one-TJ": lambda: glyph_pdf(EMAIL, "TJ"),
    "annotation-appearance": lambda: appearance_pdf(EMAIL),
    "attached-text-file": lambda: attachment_pdf(f"Customer: {EMAIL}\n"),
    "xmp-metadata": lambda: xmp_pdf(EMAIL),
    "bookmark-title": lambda: outline_pdf(EMAIL),
}


@pytest.mark.parametrize("make", list(HIDDEN.values()), ids=list(HIDDEN))
@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_pdf_s_text_outside_its_page_text_does_not_reach_the_remote_model(remote, make):
    g, up = remote
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        doc_block(make()), {"type": "text", "text": "Summarise."}]}])
    assert up.requests
    raw = up.requests[-1].raw.decode() if isinstance(up.requests[-1].raw, bytes) else up.requests[-1].raw
    assert "JVBER" not in raw and EMAIL not in raw, raw[:300]
    assert "notes.pdf" in json.loads(raw)["messages"][0]["content"][0]["text"]


# ---------------------------------------------------------------------------- the extraction child's bounds

def _counting(monkeypatch):
    """Record each extraction child started: (its PDF, whether it ran on a thread with a running event loop)."""
    import asyncio

    from tierwise.privacy import pdf_text

    calls: list[tuple[str, bool]] = []
    real = pdf_text._extract

    def extract(payload, *a, **kw):
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        calls.append((payload, on_loop))
        return real(payload, *a, **kw)

    monkeypatch.setattr(pdf_text, "_extract", extract)
    monkeypatch.setattr(pdf_text, "_cache", type(pdf_text._cache)())
    return calls


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_a_request_with_more_pdfs_than_the_cache_reads_each_once_and_never_on_the_event_loop(remote, monkeypatch):
    """12 PDFs, the cache holds 8: the scan on the event loop extracted the 4 evicted ones again there (a child of up
    to 10 s each, blocking every request of the gateway)."""
    from tests.privacy.pdfs import make_pdf

    calls = _counting(monkeypatch)
    g, up = remote
    docs = [doc_block(make_pdf([f"Quarterly figures, part {i}."])) for i in range(12)]
    ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        *docs, {"type": "text", "text": "Summarise."}]}])
    assert up.requests
    assert len(calls) == 12, f"{len(calls)} extractions for 12 PDFs"
    assert not any(on_loop for _, on_loop in calls), "a PDF was extracted on the event loop"


@pytest.mark.parametrize("remote", ["anthropic"], indirect=True)
def test_the_pdfs_of_one_request_share_one_time_budget(remote, openai_up, monkeypatch):
    """Six PDFs that each run the child to its bound (here 1 s) with a request budget of 2 s: the request is refused
    for the remote model (fails closed) after at most three children, not six."""
    import zlib

    from tests.privacy.pdfs import make_pdf
    from tierwise.privacy import pdf_text

    monkeypatch.setattr(pdf_text, "MAX_SECONDS", 1.0)
    monkeypatch.setattr(pdf_text, "MAX_REQUEST_SECONDS", 2.0, raising=False)
    calls = _counting(monkeypatch)
    g, up = remote
    slow = [make_pdf([], content=zlib.compress(b"BT /F1 11 Tf (x) Tj ET\n" * (700_000 + i), 9)) for i in range(6)]
    r = ant(g).messages.create(model="fb", max_tokens=50, messages=[{"role": "user", "content": [
        *[doc_block(p) for p in slow], {"type": "text", "text": "Summarise."}]}])
    assert not up.requests and openai_up.requests and r.content
    assert len(calls) <= 3, f"{len(calls)} children for one request"
