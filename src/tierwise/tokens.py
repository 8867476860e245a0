"""Token estimates for when an upstream gives no count (rules, count_tokens, the ledger).

tiktoken's encodings are downloaded at run time, which these machines cannot do, and no
single tokenizer fits every model anyway, so this is a calibrated character heuristic:
about 4 characters per token for English prose and code, plus a small per-message overhead.
It is an estimate and the ledger marks it as one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tierwise.canonical import ImageBlock, OtherBlock, Request, TextBlock, ToolResultBlock
from tierwise.nested_parts import nested_parts
from tierwise.pdf_pages import Allowance, base64_payload, pdf_pages

CHARS_PER_TOKEN = 4.0
PER_MESSAGE = 4
PER_IMAGE = 1000  # a mid-size image on the major APIs
# A document the upstream fetches itself (an Anthropic `document` block by URL or file id): its size is not in
# the request. PDFs of up to 100 pages are read, each page's text and image: about this many at the most.
PER_FETCHED_DOCUMENT = 200_000
# A page of an inline PDF: its text (Anthropic's docs: 1,500-3,000 tokens a page by density; the lower end) and the
# image of it both APIs add (at `PER_IMAGE`). Before wire14 a base64 PDF counted 0 (tierwise/pdf_pages.py).
PER_PDF_PAGE = 1_500 + PER_IMAGE


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
    images, chars, pdf = _images_and_document_chars(req)
    return n + PER_IMAGE * images + estimate_text_chars(chars) + pdf


def hidden_input(req: Request) -> int:
    """Input tokens a request's bytes do not show (one pass over its blocks: this runs on every budgeted
    request): `PER_IMAGE` per image (tool results' included; one named by URL is a few dozen bytes) and
    `PER_FETCHED_DOCUMENT` per document the upstream fetches itself, and what an inline PDF counts past a third of
    its base64 (wire14: 1,000 blank pages in an object stream are 3.5 KB of base64)."""
    n = 0
    allow: list[Allowance] = []  # (one for all the request's PDFs: review37d)
    for b in binary_blocks(req):
        n += PER_IMAGE if type(b) is ImageBlock else _hidden(other_counts(b, allow))  # type: ignore[arg-type]
    return n


def binary_blocks(req: Request) -> Iterator[ImageBlock | OtherBlock]:
    """A request's image and opaque blocks (documents, search results...), tool results' included: what its text
    does not show. One walk for every count of them (estimates, hidden input, fetched documents, usage floors)."""
    for m in req.messages:
        for b in m.content:
            t = type(b)
            if t is TextBlock:  # (most blocks: one identity test)
                continue
            if t is ImageBlock or t is OtherBlock:
                yield b  # type: ignore[misc]
            elif t is ToolResultBlock:
                for c in b.content:  # type: ignore[union-attr]
                    if type(c) is ImageBlock or type(c) is OtherBlock:
                        yield c


def _hidden(counts: tuple[int, int, int, int, int]) -> int:
    images, _chars, pdf, pdf_b64, fetched = counts
    return PER_IMAGE * images + max(0, pdf - pdf_b64 // 3) + PER_FETCHED_DOCUMENT * fetched


def fetched_documents_in(req: Request) -> int:
    """The documents of a request that the upstream fetches (not inline): what they cost is not in its bytes. Those
    in tool results and inside other blocks count (before costs10 a tool result's documents by URL counted 0)."""
    return sum(other_counts(b)[4] for b in binary_blocks(req) if type(b) is OtherBlock)


def _images_and_document_chars(req: Request) -> tuple[int, int, int]:
    """The images of a request's messages, the characters of its inline text documents and search results
    (wire13: not in `Request.text()`, so a 100,000-token document counted nothing against a model's window), and the
    tokens of its inline PDFs (wire14), tool results' and other blocks' nested parts included."""
    n = chars = pdf = 0
    allow: list[Allowance] = []  # (one for all the request's PDFs: review37d, 50 bombs inflated 800 MB)
    for b in binary_blocks(req):
        if type(b) is ImageBlock:
            n += 1
        else:
            i, k, p, _, _ = other_counts(b, allow)  # type: ignore[arg-type]
            n, chars, pdf = n + i, chars + k, pdf + p
    return n, chars, pdf


def other_counts(b: OtherBlock, allow: list[Allowance] | None = None) -> tuple[int, int, int, int, int]:
    """What an opaque block and the parts nested in it (tierwise.nested_parts) hold: images, characters of text
    documents and search results, tokens of inline PDFs, those PDFs' base64 characters, documents the upstream
    fetches. Counted once a block (`OtherBlock.counts`): before costs10 each estimate of a request (window, rules,
    budget, a usage check) read its PDFs' pages again. `allow`: the request's inflate allowance, made when first
    needed (pdf_pages.Allowance)."""
    if b.counts is not None:
        return b.counts
    images = chars = pdf = pdf_b64 = fetched = 0
    for i, part in enumerate(nested_parts(b.raw)[0]):
        kind = part.get("type")
        if i and kind == "image":
            images += 1
            continue
        chars += _document_chars(part)
        if kind == "document":
            src = part.get("source")
            if isinstance(src, dict) and src.get("type") not in ("base64", "text", "content"):
                fetched += 1
        if (data := _pdf_data(part)) is not None:
            if allow is None:
                allow = []
            if not allow:
                allow.append(Allowance())
            pdf += pdf_tokens(data, allow[0])
            pdf_b64 += len(data)
    b.counts = (images, chars, pdf, pdf_b64, fetched)
    return b.counts


def pdf_tokens(data: str, allowance: Allowance | None = None) -> int:
    """The input tokens of an inline PDF, `data` its base64 (bare or a data: URL): `PER_PDF_PAGE` a page. `allowance`:
    what the request's PDFs may still inflate (pdf_pages.Allowance; a new one when None)."""
    return PER_PDF_PAGE * pdf_pages(base64_payload(data), allowance)


def _pdf_data(raw: dict[str, Any]) -> str | None:
    """The base64 of an inline PDF block (an Anthropic base64 `document`, an OpenAI `file` part), else None. A PDF by
    its media type or by its opening bytes (`%PDF` is `JVBER` in base64); other files (a gzip document) are not."""
    kind = raw.get("type")
    data: Any = None
    media: Any = None
    if kind == "document":
        src = raw.get("source")
        if isinstance(src, dict) and src.get("type") == "base64":
            data, media = src.get("data"), src.get("media_type")
    elif kind == "file":
        f = raw.get("file")
        if isinstance(f, dict):
            data = f.get("file_data")
            if isinstance(data, str) and data.startswith("data:"):
                media = data[5:data.find(";")] if ";" in data[:200] else None
    if not isinstance(data, str):
        return None
    if media == "application/pdf" or data[data.find(",") + 1 if data.startswith("data:") else 0:][:5] == "JVBER":
        return data
    return None


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

