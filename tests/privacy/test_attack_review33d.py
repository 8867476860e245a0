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
