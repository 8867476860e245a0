"""An inline PDF's pages are read once a request (session 38, costs10). Each estimate of a request (the window check,
the budget's reservation, a usage check, rules, count_tokens) read every PDF's pages again before: a 10 MB PDF cost
about 40 ms of CPU each time (bench/RESULTS.md, wire14). Real gateway, the anthropic SDK, the Anthropic double."""

from __future__ import annotations

import base64

from tests.budgets.frontier_spend import frontier_config
from tests.doubles import Reply
from tests.gateway.conftest import ant, anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)
from tests.gateway.test_pdf_pages_review37d import packed


def test_a_pdf_is_read_once_per_request(gateway, openai_up, anthropic_up, monkeypatch):  # noqa: F811
    import tierwise.tokens as tokens

    reads: list[int] = []
    real = tokens.pdf_pages

    def counted(raw, allowance=None):
        reads.append(len(raw))
        return real(raw, allowance)

    monkeypatch.setattr(tokens, "pdf_pages", counted)
    cfg = frontier_config(openai_up, anthropic_up, usd=5.0)
    cfg["models"]["frontier"]["context_window"] = 200_000  # (the window check estimates the request too)
    g = gateway(cfg)
    anthropic_up.default = Reply(text="read", usage=(12, 5))  # (a count below the floor: checked against it)
    pdf = base64.b64encode(packed(3)).decode()
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}}
    ant(g).messages.create(model="main", max_tokens=10,
                           messages=[{"role": "user", "content": [doc, {"type": "text", "text": "sum up"}]}])
    assert len(anthropic_up.requests) == 1
    # Before: 2 reads (the window check, the reservation)
    assert len(reads) == 1, f"the PDF's pages were read {len(reads)} times for one request"
