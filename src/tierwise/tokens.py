"""Token estimates for when an upstream gives no count (rules, count_tokens, the ledger).

tiktoken's encodings are downloaded at run time, which these machines cannot do, and no
single tokenizer fits every model anyway, so this is a calibrated character heuristic:
about 4 characters per token for English prose and code, plus a small per-message overhead.
It is an estimate and the ledger marks it as one.
"""

from __future__ import annotations

from typing import Any

from tierwise.canonical import ImageBlock, OtherBlock, Request, TextBlock, ToolResultBlock

CHARS_PER_TOKEN = 4.0
PER_MESSAGE = 4
PER_IMAGE = 1000  # a mid-size image on the major APIs
# A document the upstream fetches itself (an Anthropic `document` block by URL or file id): its size is not in
# the request. PDFs of up to 100 pages are read, each page's text and image: about this many at the most.
PER_FETCHED_DOCUMENT = 200_000


def estimate_text(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN + 0.999) if text else 0


def text_units(text: str) -> int:
    """`text`'s length in the characters `estimate_text_chars` divides: a non-ASCII character counts as many as its
    UTF-8 bytes beyond the first times 1.5 more (a CJK or Hangul character 4, about a token; an emoji 5.5). Tokenizers
    spend about a token on each CJK or Hangul character, and one or more on an emoji, not a quarter: before session
    34's review (review34b) an answer of 4,000 Chinese characters from an upstream that reports no usage was billed
    1,000 tokens of output."""
    n = len(text)
    if text.isascii():
        return n
    return n + 3 * (len(text.encode("utf-8", "surrogatepass")) - n) // 2


def estimate_text_chars(chars: int) -> int:
    return int(chars / CHARS_PER_TOKEN + 0.999) if chars else 0


def estimate_request(req: Request) -> int:
    n = estimate_text(req.text())
    n += PER_MESSAGE * (len(req.messages) + (1 if req.system else 0))
    for t in req.tools:
        n += estimate_text(t.name) + estimate_text(t.description or "") + estimate_text(str(t.input_schema))
    images, chars = _images_and_document_chars(req)
    return n + PER_IMAGE * images + estimate_text_chars(chars)


def hidden_input(req: Request) -> int:
    """Input tokens a request's bytes do not show (one pass over its blocks: this runs on every budgeted
    request): `PER_IMAGE` per image (tool results' included; one named by URL is a few dozen bytes) and
    `PER_FETCHED_DOCUMENT` per document the upstream fetches itself."""
    n = 0
    for m in req.messages:
        for b in m.content:
            t = type(b)
            if t is TextBlock:  # (most blocks: one identity test)
                continue
            if t is ImageBlock:
                n += PER_IMAGE
            elif isinstance(b, ToolResultBlock):
                n += PER_IMAGE * sum(1 for c in b.content if isinstance(c, ImageBlock))
            elif isinstance(b, OtherBlock) and b.raw.get("type") == "document":
                src = b.raw.get("source")
                if isinstance(src, dict) and src.get("type") not in ("base64", "text", "content"):
                    n += PER_FETCHED_DOCUMENT
    return n


def fetched_documents_in(req: Request) -> int:
    """The documents of a request that the upstream fetches (not inline): what they cost is not in its bytes."""
    n = 0
    for m in req.messages:
        for b in m.content:
            if isinstance(b, OtherBlock) and b.raw.get("type") == "document":
                src = b.raw.get("source")
                if isinstance(src, dict) and src.get("type") not in ("base64", "text", "content"):
                    n += 1
    return n


def _images_and_document_chars(req: Request) -> tuple[int, int]:
    """The images of a request's messages, and the characters of its inline text documents and search results
    (wire13: not in `Request.text()`, so a 100,000-token document counted nothing against a model's window), tool
    results' included."""
    n = chars = 0
    for m in req.messages:
        for b in m.content:
            t = type(b)
            if t is TextBlock:
                continue
            if t is ImageBlock:
                n += 1
            elif t is ToolResultBlock:
                for c in b.content:  # type: ignore[union-attr]
                    if type(c) is ImageBlock:
                        n += 1
                    elif type(c) is OtherBlock:
                        chars += _document_chars(c.raw)
            elif t is OtherBlock:
                chars += _document_chars(b.raw)  # type: ignore[union-attr]
    return n, chars


def _document_chars(raw: dict[str, Any]) -> int:
    """The characters of an inline text document or a search result (its text pieces; 0 for other blocks)."""
    kind = raw.get("type")
    if kind == "search_result":
        content = raw.get("content")
    elif kind == "document":
        src = raw.get("source")
        if not isinstance(src, dict):
            return 0
        content = src.get("data") if src.get("type") == "text" else src.get("content") if src.get(
            "type") == "content" else None
    else:
        return 0
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(c["text"]) for c in content if isinstance(c, dict) and isinstance(c.get("text"), str))
    return 0


def images_in(req: Request) -> int:
    """The images of a request's messages (tool results' included)."""
    n = 0
    for m in req.messages:
        for b in m.content:
            if isinstance(b, ImageBlock):
                n += 1
            elif isinstance(b, ToolResultBlock):
                n += sum(1 for c in b.content if isinstance(c, ImageBlock))
    return n
