"""The text of a PDF sent as base64 (an Anthropic `document` block's base64 source, an OpenAI `file` part's
`file_data`, a `data:application/pdf;base64,` URL), for the privacy scan.

Round 13 (privacy13): such a PDF was a binary payload and left unscanned, whatever it said. Now its text is
extracted with pypdf in a child process, within bounds (hostile PDFs: compression bombs, page trees deep or wide,
content streams of millions of operators): at most `MAX_PDF_BYTES` decoded, `MAX_PAGES` pages, `MAX_CHARS`
characters of text, `MAX_SECONDS` of wall time (the child is killed: pypdf cannot be stopped inside a page, and a
30 KB PDF whose 16 MB content stream is `(x) Tj` repeated took 125 s of one page's extraction), `MAX_MEMORY` of
address space and CPU seconds set by the child on itself, pypdf's own per-stream limits lowered (`_LIMITS`), and no
external decoder (`jbig2dec_binary=None`). The child costs ~0.3 s of CPU (interpreter and pypdf); each payload's text
is kept (`_CACHE_SIZE` payloads), so a conversation that sends its PDF every turn reads it once. Review33d: a
request's PDFs are read together (`read_all`, in a worker thread) within `MAX_REQUEST_SECONDS` in all (100 slow PDFs
held a worker thread 10 s each), at most `MAX_CHILDREN` children at once across requests (each may take 1 GB), and
kept for the rest of the request (`keep`/`_READ`): with more than `_CACHE_SIZE` PDFs the scan on the event loop
read the evicted ones again, blocking every request for up to 10 s each. A PDF that cannot be read within them, or not at all (encrypted with a password, broken,
a payload labelled PDF that is none), reads as `UNREADABLE`, which the detector refuses to scan
(`DetectorError`): a protecting policy fails closed (not sent to a remote model; a `local_only` route keeps it local).

What a finding does is `redact_canonical`'s: a PDF cannot be edited safely (its text sits in compressed, font-encoded
content streams, and in its metadata, annotations, form fields and attachments), so a PDF whose text has a finding is
replaced by a text block holding its extracted text, redacted. Text drawn as images (a scanned page) is not read,
as images are not (no OCR).
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import subprocess
import sys
import time
from collections import OrderedDict
from contextvars import ContextVar
from threading import BoundedSemaphore, Lock
from typing import Any
from urllib.parse import unquote

from tierwise.privacy import pdf_hidden
from tierwise.privacy.charsets import decode

MAX_PDF_BYTES = 32 * 1024 * 1024  # decoded PDF; a larger one is not read (fails closed)
MAX_PAGES = 500
MAX_CHARS = 4_000_000  # the detector's default `max_chars`: more text could not be scanned anyway
MAX_SECONDS = 10.0  # wall time of the child that extracts (killed then)
MAX_MEMORY = 1024 * 1024 * 1024  # the child's address space
MAX_REQUEST_SECONDS = 30.0  # all the PDFs of one request (past it, the rest read as UNREADABLE: fails closed)
MAX_CHILDREN = max(2, os.cpu_count() or 2)  # extraction children running at once, all requests together
_children = BoundedSemaphore(MAX_CHILDREN)
_STREAM_MAX = 16 * 1024 * 1024  # bytes one stream may decompress to (pypdf's default: 75 MB)
_LIMITS: dict[str, Any] = {
    "maximum_declared_stream_length": _STREAM_MAX,
    "array_based_stream_maximum_output_length": _STREAM_MAX,
    "jbig2_maximum_output_length": _STREAM_MAX,
    "lzw_maximum_output_length": _STREAM_MAX,
    "run_length_maximum_output_length": _STREAM_MAX,
    "zlib_maximum_output_length": _STREAM_MAX,
    "image_maximum_buffer_size": _STREAM_MAX,
    "page_tree_maximum_entries": MAX_PAGES * 4,
    "page_tree_maximum_depth": 32,
    "outline_maximum_entries": 10_000,
    "outline_maximum_depth": 32,
    "xform_maximum_invocations_per_extraction": 1_000,
    "jbig2dec_binary": None,  # never run an external program on a client's file
}

# What a PDF that cannot be read reads as: `Detector.scan` raises on it (NUL characters: no client's text in practice;
# one that sends exactly this only has its own request refused).
UNREADABLE = "\x00tierwise: a PDF the privacy scan could not read\x00"

_MAGIC = b"%PDF-"
_PDF_B64 = "JVBER"  # base64 of `%PDF`
_CACHE_SIZE = 8  # a request's PDF is read by the precheck, the scan and the redaction: once
_cache: OrderedDict[str, str] = OrderedDict()
_lock = Lock()
logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings name objects, not text, but are noise per request


def looks_pdf(payload: str) -> bool:
    """Is base64 `payload` a PDF: `%PDF-` in its first KB (readers accept junk before it, so a payload starting with
    other bytes is still a PDF to the model that gets it)?"""
    if payload.startswith(_PDF_B64):
        return True
    head = "".join((unquote(payload[:1500]) if "%" in payload[:1500] else payload[:1500]).split())
    head = head[: len(head) - len(head) % 4].replace("-", "+").replace("_", "/")
    try:
        raw = binascii.a2b_base64(head)
    except (binascii.Error, ValueError):
        return False
    return _MAGIC in raw[:1030]


# The texts of the PDFs of the request being handled (set by `keep` in its task: the scan, the precheck and the
# redaction that follow read them here, however many PDFs the request holds)
_READ: ContextVar[dict[str, str] | None] = ContextVar("tierwise_pdf_texts", default=None)


def text_of(payload: str, seconds: float = MAX_SECONDS) -> str:
    """The text of base64 PDF `payload` (pages joined by blank lines), or `UNREADABLE`. Read once per request
    (`keep`) and kept for the next requests (`_CACHE_SIZE` payloads). `seconds`: what is left of the request's
    budget (a PDF cut short by it is not kept for later requests)."""
    if (read := _READ.get()) is not None and (got := read.get(payload)) is not None:
        return got
    with _lock:
        got = _cache.get(payload)
        if got is not None:
            _cache.move_to_end(payload)
            return got
    got, whole = _extract(payload, min(seconds, MAX_SECONDS))
    if whole:
        with _lock:
            _cache[payload] = got
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return got


def read_all(payloads: list[str]) -> dict[str, str]:
    """The text of each PDF of one request (blocking: call it in a worker thread), within `MAX_REQUEST_SECONDS`."""
    deadline = time.monotonic() + MAX_REQUEST_SECONDS
    out: dict[str, str] = {}
    for p in dict.fromkeys(payloads):
        left = deadline - time.monotonic()
        out[p] = text_of(p, left) if left > 0 else UNREADABLE
    return out


def keep(texts: dict[str, str]) -> None:
    """Keep `read_all`'s texts for the rest of the current request (its task's context)."""
    read = _READ.get()
    if read is None:
        _READ.set(dict(texts))
    else:
        read.update(texts)


def _extract(payload: str, seconds: float) -> tuple[str, bool]:
    """(text or UNREADABLE, whether the full bound applied: a result cut short by a request's budget or by waiting
    for a free child slot says nothing of the PDF, and is not cached)."""
    if len(payload) > MAX_PDF_BYTES * 4 // 3 + 4096:
        return UNREADABLE, True
    start = time.monotonic()
    if not _children.acquire(timeout=max(seconds, 0.0)):
        return UNREADABLE, False
    try:
        left = seconds - (time.monotonic() - start)
        text = _run(payload, left)
        return text, text != UNREADABLE or left >= 0.9 * MAX_SECONDS
    finally:
        _children.release()


def _run(payload: str, seconds: float) -> str:
    if seconds <= 0:
        return UNREADABLE
    body = unquote(payload) if "%" in payload else payload  # a data: URL may percent-encode `+/=` (RFC 2397)
    try:
        raw = base64.b64decode("".join(body.split()).replace("-", "+").replace("_", "/") + "==")
    except (binascii.Error, ValueError):
        return UNREADABLE
    # `-P`: not the working directory first on the path; the environment: no keys of the gateway
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "HOME")}
    try:
        p = subprocess.run([sys.executable, "-P", "-c", "from tierwise.privacy.pdf_text import child; child()"],
                           input=raw, capture_output=True, timeout=seconds, env=env, check=False)
    except (subprocess.TimeoutExpired, OSError):
        return UNREADABLE
    out = p.stdout
    if p.returncode != 0 or not out.startswith(_OK):
        return UNREADABLE
    outside = _outside(raw)
    if outside is None:
        return UNREADABLE
    text = out[len(_OK):].decode("utf-8", "replace")
    return f"{text}\n\n{outside}" if outside else text


_BLANK = b" \t\r\n\x00\x0c"


def _outside(raw: bytes) -> str | None:
    """The text of the bytes before a PDF's `%PDF-` and after its last `%%EOF` (readers ignore both), "" when they
    are blank, None when the bytes after its end are more than a few and no text (review34d: a zip, a gzip or a
    note appended to a PDF left with it, its text never read: a PDF + ZIP polyglot). Before its header, only
    words are read (junk there is common and at most a KB)."""
    from tierwise.privacy.charsets import decode
    from tierwise.privacy.media_text import word_runs

    start, end = raw.find(_MAGIC), raw.rfind(b"%%EOF")
    parts: list[str] = []
    for piece, after in ((raw[:max(start, 0)], False), (raw[end + 5:] if end >= 0 else b"", True)):
        rest = piece.strip(_BLANK)
        if not rest:
            continue
        if (got := decode(rest)) is not None:
            parts.append(got[0])
        elif after and len(rest) > 32:
            return None
        else:
            parts.extend(word_runs(rest))
    return "\n\n".join(parts)


_OK = b"ok\n"


def child() -> None:
    """The child process: a PDF's bytes on stdin, `ok` and its text on stdout (else a non-zero exit)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MAX_MEMORY, MAX_MEMORY))
    cpu = int(MAX_SECONDS) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    try:
        text = _pages(sys.stdin.buffer.read())
    except BaseException:  # noqa: BLE001 - any failure of a hostile file (RecursionError, MemoryError) is unreadable
        os._exit(3)
    if text == UNREADABLE:
        os._exit(4)
    sys.stdout.buffer.write(_OK + text.encode("utf-8", "replace"))
    sys.stdout.flush()
    os._exit(0)


def _pages(raw: bytes) -> str:
    from pypdf import Configuration, PdfReader, apply_configuration

    start = time.monotonic()  # (the parent's timeout is the bound; this ends a long document sooner)
    with apply_configuration(Configuration().with_overwrites(**_LIMITS)):
        reader = PdfReader(io.BytesIO(raw), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            return UNREADABLE  # a password we do not have: its text cannot be checked
        n = len(reader.pages)
        if n > MAX_PAGES:
            return UNREADABLE
        out: list[str] = []
        size = 0
        for i in range(n):
            page = reader.pages[i]
            t = page.extract_text() or ""
            # review33d: glyphs drawn one `Tj` at a time read `j ane. doe@exampl e. com`; joined per baseline too
            extra = [ln for ln in pdf_hidden.lines(page) if ln not in t]
            extra += [a for a in pdf_hidden.appearances(reader, page) if a.strip()]  # annotation appearances
            size += len(t) + 2 + sum(len(x) + 2 for x in extra)
            if size > MAX_CHARS or time.monotonic() - start > MAX_SECONDS:
                return UNREADABLE
            out.append(t)
            out.extend(extra)
            out.extend(_notes(page))
        # the document information (title, author, subject, keywords) and form fields travel with the file too
        meta: Any = reader.metadata or {}
        out.extend(str(v) for v in meta.values() if isinstance(v, str) and v)
        out.extend(str(v) for v in (reader.get_form_text_fields() or {}).values() if v)
        # review33d: and strings in any object (outlines, links, attachments' names), XMP, text attachments
        seen = set(out)
        for s in (*pdf_hidden.outside_objects(raw, _bytes_text), *pdf_hidden.strings(reader, _bytes_text),
                  *pdf_hidden.unlisted(reader, raw, _bytes_text)):
            if s not in seen:
                seen.add(s)
                size += len(s) + 2
                if size > MAX_CHARS or time.monotonic() - start > MAX_SECONDS:
                    return UNREADABLE
                out.append(s)
    return "\n\n".join(out)


def _bytes_text(raw: bytes) -> str | None:
    got = decode(raw)
    return got[0] if got else None


def _notes(page: object) -> list[str]:
    """The text of a page's annotations (comments, free-text boxes): `/Contents`."""
    annots = page.get("/Annots")  # type: ignore[attr-defined]
    if annots is None:
        return []
    out = []
    for a in list(annots.get_object())[:1000]:
        c = a.get_object().get("/Contents")
        if isinstance(c, str) and c:
            out.append(str(c))
    return out
