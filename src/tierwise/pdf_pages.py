"""How many pages an inline (base64) PDF has, for token estimates (tierwise.tokens).

The providers put each page of a PDF into the model's context twice: its text and an image of it (Anthropic's PDF
support: 1,500-3,000 tokens of text a page by density, plus the page image at image rates; OpenAI's file inputs:
"both the extracted text and an image of each page"). Before wire14 a base64 PDF (an Anthropic `document` block, an
OpenAI `file` part) counted 0 tokens: a 100-page PDF was `input_tokens: 12` to count_tokens, passed an 8,192-token
model's window check, matched a "short prompt" rule, and was billed nothing when the upstream gave no usage.

The count reads the bytes without a PDF library (this runs on the request path, and pypdf on hostile input belongs in
a child process: privacy/pdf_text.py): page objects (`/Type /Page`) in the file and in its Flate-compressed object
streams (PDF 1.5's `/ObjStm`, where most writers now put them), inflated within `MAX_INFLATED` bytes; when none is
seen, the page tree's `/Count`; when neither, one page per `BYTES_PER_UNSEEN_PAGE`. At most `MAX_PAGES`.
"""

from __future__ import annotations

import binascii
import re
import zlib

MAX_PAGES = 1_000  # (the providers take 100 to 600 pages a request: past this the count stops mattering)
MAX_INFLATED = 16 * 1024 * 1024  # object-stream bytes inflated per PDF, in all (a compression bomb stops here)
MAX_OBJECT_STREAMS = 4_096
BYTES_PER_UNSEEN_PAGE = 100_000

_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z0-9_.#-])")
_COUNT = re.compile(rb"/Count\s+(\d{1,9})")
_OBJSTM = re.compile(rb"/Type\s*/ObjStm(?![A-Za-z0-9_.#-])")
_STREAM = re.compile(rb"stream\r?\n")


def base64_payload(data: str) -> bytes:
    """The bytes of base64 `data` (a bare payload or a `data:` URL); b"" when it is not base64."""
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        return b""


def pdf_pages(raw: bytes) -> int:
    """The pages of the PDF `raw` (see the module's docstring), 1 to `MAX_PAGES`."""
    pages = len(_PAGE.findall(raw))
    counts = [int(m) for m in _COUNT.findall(raw)]
    left = MAX_INFLATED
    for n, m in enumerate(_OBJSTM.finditer(raw)):
        if n >= MAX_OBJECT_STREAMS or left <= 0 or pages >= MAX_PAGES:
            break
        s = _STREAM.search(raw, m.end())
        if s is None:
            break
        end = raw.find(b"endstream", s.end())
        try:
            inflated = zlib.decompressobj().decompress(raw[s.end():end if end >= 0 else len(raw)], left)
        except zlib.error:
            continue  # (not Flate, or damaged: its pages stay unseen)
        left -= len(inflated)
        pages += len(_PAGE.findall(inflated))
        counts.extend(int(c) for c in _COUNT.findall(inflated))
    if not pages:  # none seen: the page tree's total, else the size
        pages = max(counts, default=0) or len(raw) // BYTES_PER_UNSEEN_PAGE
    return max(1, min(pages, MAX_PAGES))
