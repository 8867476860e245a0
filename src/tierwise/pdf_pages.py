"""How many pages an inline (base64) PDF has, for token estimates (tierwise.tokens).

The providers put each page of a PDF into the model's context twice: its text and an image of it (Anthropic's PDF
support: 1,500-3,000 tokens of text a page by density, plus the page image at image rates; OpenAI's file inputs:
"both the extracted text and an image of each page"). Before wire14 a base64 PDF (an Anthropic `document` block, an
OpenAI `file` part) counted 0 tokens: a 100-page PDF was `input_tokens: 12` to count_tokens, passed an 8,192-token
model's window check, matched a "short prompt" rule, and was billed nothing when the upstream gave no usage.

The count reads the bytes without a PDF library (this runs on the request path, and pypdf on hostile input belongs in
a child process: privacy/pdf_text.py): page objects (`/Type /Page`) in the file and in its Flate-compressed object
streams (PDF 1.5's `/ObjStm`, where most writers now put them), each page object once by its object number (an
incremental update rewrites the pages it changes: review37d, a 10-page PDF rotated in place counted 20). Object
streams are read front to back, each once (review37d: 4,096 markers before one 8 MB stream re-read it 4,096 times, 21
s of CPU), inflated within one `Allowance` per request (review37d: per PDF, 50 small compression bombs in a 1 MB body
inflated 800 MB). An object stream not read (its filter not Flate, damaged, the allowance spent) may hold as many pages
as it holds objects (its `/N`): a hostile client cannot hide pages in one. The page tree's `/Count` when it says more (a tree may
name one page object many times); when nothing is seen, one page per `BYTES_PER_UNSEEN_PAGE`. At most `MAX_PAGES`. Names are read with their `#xx`
escapes and comments between tokens (review37d: `/Type /P#61ge` is a page to a PDF reader, and was none here).
"""

from __future__ import annotations

import binascii
import re
import zlib
from bisect import bisect_right

MAX_PAGES = 1_000  # (the providers take 100 to 600 pages a request: past this the count stops mattering)
MAX_INFLATED = 16 * 1024 * 1024  # object-stream bytes inflated per request, over all its PDFs (a bomb stops here)
MAX_OBJECT_STREAMS = 4_096  # read per PDF; past it each counts as its /N pages (no honest file has this many)
BYTES_PER_UNSEEN_PAGE = 100_000
# Page dictionaries read per PDF: past this many (an honest file holds each page object once, and a few times more
# when updated in place) the PDF counts `MAX_PAGES` (review37d: a page object repeated 500,000 times cost 0.8 s of CPU)
MAX_MATCHES = 16 * MAX_PAGES
_DICT_BYTES = 4_096  # an object stream's dictionary before its data is far shorter (about 100 bytes)


def _name(word: bytes) -> bytes:
    """A pattern for the PDF name `/word`, each character also as its `#xx` escape."""
    return b"/" + b"".join(b"(?:%s|#%s)" % (re.escape(bytes([c])), b"".join(
        b"[%s%s]" % (bytes([h]), bytes([h]).upper()) if chr(h).isalpha() else bytes([h])
        for h in b"%02x" % c)) for c in word) + rb"(?![A-Za-z0-9_.#-])"


_WS = rb"(?:\s|%[^\r\n]*+)*+"  # (possessive: a run of `%` is one comment, never backtracked into)
_PAGE = re.compile(_name(b"Type") + _WS + _name(b"Page"))
_COUNT = re.compile(_name(b"Count") + _WS + rb"(\d{1,9})")
_OBJSTM = re.compile(_name(b"Type") + _WS + _name(b"ObjStm"))
_N = re.compile(_name(b"N") + _WS + rb"(\d{1,9})")
_FIRST = re.compile(_name(b"First") + _WS + rb"(\d{1,9})")
_FILTER = re.compile(_name(b"Filter"))
_STREAM = re.compile(rb"stream\r?\n")
_HEAD = re.compile(rb"(\d{1,10})\s+\d{1,5}\s*\Z")  # `12 0 ` before `obj`
_PAIR = re.compile(rb"(\d{1,10})\s+(\d{1,10})")


class Allowance:
    """The object-stream bytes one request may still inflate, over all its PDFs (one per estimate)."""

    def __init__(self, left: int = MAX_INFLATED) -> None:
        self.left = left


def base64_payload(data: str) -> bytes:
    """The bytes of base64 `data` (a bare payload or a `data:` URL); b"" when it is not base64."""
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        return b""


def pdf_pages(raw: bytes, allowance: Allowance | None = None) -> int:
    """The pages of the PDF `raw` (see the module's docstring), 1 to `MAX_PAGES`."""
    allowance = Allowance() if allowance is None else allowance
    pages: set[int] = set()  # page objects' numbers
    loose = unread = 0  # page dictionaries outside a numbered object; pages streams not read may hold
    counts: list[int] = []
    spans: list[tuple[int, int]] = []  # object streams' data in `raw`, in order
    pos = streams = matched = 0
    for m in _OBJSTM.finditer(raw):
        if m.start() < pos:
            continue  # (inside the stream before)
        lo = max(pos, m.start() - _DICT_BYTES)
        o = raw.rfind(b"obj", lo, m.start())
        s = _STREAM.search(raw, m.end(), m.end() + _DICT_BYTES)
        head = raw[o if o >= 0 else lo:s.start() if s else m.end() + _DICT_BYTES]
        objects = _N.search(head)
        room = int(objects.group(1)) if objects else MAX_PAGES
        streams += 1
        if s is None or streams > MAX_OBJECT_STREAMS:
            unread += room
            continue
        end = raw.find(b"endstream", s.end())
        end = len(raw) if end < 0 else end
        spans.append((s.end(), end))
        pos = end
        if _FILTER.search(head) is None:
            data = raw[s.end():end]  # (an object stream may be stored plain)
        elif allowance.left <= 0:
            unread += room
            continue
        else:
            d = zlib.decompressobj()
            try:
                data = d.decompress(raw[s.end():end], allowance.left)
            except zlib.error:
                unread += room  # (not Flate, or damaged)
                continue
            allowance.left -= len(data)
            if d.unconsumed_tail:  # (the allowance ran out inside it)
                unread += room
        first = _FIRST.search(head)
        matched += _stream_pages(data, int(first.group(1)) if first else None, pages, MAX_MATCHES - matched)
        if matched >= MAX_MATCHES:
            return MAX_PAGES
        counts.extend(int(c) for c in _COUNT.findall(data))
    starts = [a for a, _ in spans]
    prev = 0
    for m in _PAGE.finditer(raw):
        i = bisect_right(starts, m.start()) - 1
        if i >= 0 and m.start() < spans[i][1]:
            continue  # (read with its stream)
        matched += 1
        if matched >= MAX_MATCHES:
            return MAX_PAGES
        num = _number_before(raw, prev, m.start())
        prev = m.end()
        if num is None:
            loose += 1
        else:
            pages.add(num)
        if len(pages) + loose >= MAX_PAGES:
            break
    counts.extend(int(c) for c in _COUNT.findall(raw))
    # (a page tree may name one page object many times: its /Count, which readers go by, then says more)
    total = max(len(pages) + loose + unread, max(counts, default=0))
    if not total:  # nothing seen: by the size
        total = len(raw) // BYTES_PER_UNSEEN_PAGE
    return max(1, min(total, MAX_PAGES))


def _number_before(raw: bytes, lo: int, pos: int) -> int | None:
    """The number of the object whose dictionary holds `pos` (`12 0 obj` before it, after `lo`), else None."""
    j = raw.rfind(b"obj", lo, pos)
    if j < 0 or raw[j - 3:j] == b"end":
        return None
    h = _HEAD.search(raw, max(lo, j - 24), j)
    return int(h.group(1)) if h else None


def _stream_pages(data: bytes, first: int | None, pages: set[int], most: int) -> int:
    """Add the numbers of the page objects in an object stream's `data` (its header: number, offset pairs); the page
    dictionaries read (at most `most`)."""
    pairs = [(first + int(b), int(a)) for a, b in _PAIR.findall(data, 0, first)] if first is not None else []
    if any(pairs[i][0] >= pairs[i + 1][0] for i in range(len(pairs) - 1)):
        pairs = []  # (offsets not rising: the header is not believed, each page dictionary counts)
    offsets = [o for o, _ in pairs]
    nums = [n for _, n in pairs]
    read = 0
    for m in _PAGE.finditer(data):
        read += 1
        i = bisect_right(offsets, m.start()) - 1
        pages.add(nums[i] if i >= 0 else -1 - m.start())  # (no header: each page dictionary its own)
        if len(pages) >= MAX_PAGES or read >= most:
            break
    return read
