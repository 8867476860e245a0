"""Scan every place text can hide in a canonical Request; findings keyed by location.

    scan = scan_request(request, detector)      # {"messages[1].content[0].text": [Finding, ...], ...}
    detector.classes_of(all_findings(scan))      # {"pii": 2}

Locations scanned (a superset of what `redact_canonical` rewrites, so a policy can refuse what
it cannot redact): system blocks; every message's text, thinking text, tool-call name and
arguments (keys and values, recursively), tool results (text, and images' URLs / extra
fields); image URLs that are not base64 `data:` URLs, an image's `detail` and media type, and its
data when it is not base64; unmodelled blocks (`OtherBlock.raw`: a
document's title and file name, citations, ...); the `extra` fields of text blocks; tool
definitions (name, description, every string of the input schema: descriptions, enums,
defaults, examples); `response_format` schema strings and name; `stop` sequences; `metadata`;
`user`; `tool_choice`'s name; the `thinking` object; `reasoning_effort`; request fields with no
canonical slot (`extra`); and, while the request still carries the client's own body
(`source_body`, forwarded byte for byte to a same-format upstream), every other string of that
body (`body...` locations): the fields no codec models (an OpenAI message's `name`, a legacy
`function_call`, a `response_format`'s `description`, a block's or a tool's extra fields such as
`input_examples`) travel in it too. Not those that are not text: ids (`id`, `tool_use_id`,
`tool_call_id`, `call_id`: upstream-issued, high entropy, the secret detector would take them
for keys), `signature`, `encrypted_content`, as long as they hold only the characters of ids and
base64 (one with any other character, an `@`, a dot, a space, is scanned, anywhere in the body and
as a canonical tool call's id, tool result's `tool_use_id` or thinking signature), base64 payloads of images and redacted thinking,
base64 `data:` URLs (a payload with characters base64 has not is text, and scanned), and the top-level `model` (the upstream's model id replaces it).
A PDF's base64 (a document's source, a `file_data`, a `data:application/pdf` URL) yields its text (`...#pdf`
locations, privacy/pdf_text.py; round 13), or `pdf_text.UNREADABLE`, which the detector refuses (fails closed).
A payload that is neither text, a PDF nor an image or audio format (a gzip, a zip, KOI8-R) yields
`payload_bytes.OPAQUE` (`...#bytes` locations), refused the same way (round 14).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from tierwise.canonical import (
    ImageBlock,
    OtherBlock,
    Request,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from tierwise.privacy.charsets import decode
from tierwise.privacy.encoded import holds_text
from tierwise.privacy.finding import Finding
from tierwise.privacy.media_text import media_text
from tierwise.privacy.payload_bytes import OPAQUE, data_url, declared_charset, known_media, opaque, to_b64
from tierwise.privacy.pdf_text import keep, looks_pdf, read_all, text_of
from tierwise.privacy.text_payload import Payload, read
from tierwise.wire.request_parts import call_arguments

Scan = Callable[[str], list[Finding]]
_MAX_DEPTH = 64  # JSON nesting followed; deeper values are scanned as their JSON text


def _canonical(request: Request) -> Iterator[tuple[str, str]]:
    for i, sb in enumerate(request.system):
        yield from _block(f"system[{i}]", sb)
    for i, m in enumerate(request.messages):
        for j, b in enumerate(m.content):
            yield from _block(f"messages[{i}].content[{j}]", b)
    yield from tool_texts(request)
    rf = request.response_format
    if rf is not None:
        if rf.name:
            yield "response_format.name", rf.name
        if rf.schema is not None:
            yield from _json("response_format.schema", rf.schema)
    for i, s in enumerate(request.stop):
        yield f"stop[{i}]", s
    yield from _json("metadata", request.metadata)
    if request.user:
        yield "user", request.user
    tc = request.tool_choice
    if tc is not None and tc.name:
        yield "tool_choice.name", tc.name
    if request.thinking is not None:
        yield from _json("thinking", request.thinking)
    if request.reasoning_effort:
        yield "reasoning_effort", request.reasoning_effort
    yield from _json("extra", request.extra)


def tool_texts(request: Request) -> Iterator[tuple[str, str]]:
    """(location, text) for every string of `request`'s tool definitions: names, descriptions, schemas."""
    for i, t in enumerate(request.tools):
        loc = f"tools[{i}]"
        yield f"{loc}.name", t.name
        if t.description:
            yield f"{loc}.description", t.description
        yield from _json(f"{loc}.input_schema", t.input_schema)
        if t.raw is not None:
            yield from _json(f"{loc}.raw", t.raw)


def iter_texts(request: Request) -> Iterator[tuple[str, str]]:
    """(location, text) for every string of `request` that would travel upstream."""
    if request.source_body is None:
        yield from _canonical(request)
        return
    seen: set[str] = set()
    for loc, t in _canonical(request):
        seen.add(t)
        yield loc, t
    body = request.source_body
    for key, v in body.items():
        if key == "model" or is_payload("", body, key, v):
            continue  # replaced by the upstream's model id before it leaves (`claude-3-5-haiku-...` is no person)
        for loc, t in _body(f"body.{key}", v, 1):
            if t not in seen:
                seen.add(t)  # once per distinct string: counts stay per value, not per copy
                yield loc, t


def _block(loc: str, b: Any) -> Iterator[tuple[str, str]]:
    if isinstance(b, TextBlock):
        yield f"{loc}.text", b.text
        if b.extra:
            yield from _json(f"{loc}.extra", b.extra)
    elif isinstance(b, ThinkingBlock):
        yield f"{loc}.thinking", b.thinking
        if b.signature and not opaque_shaped(b.signature):
            yield f"{loc}.signature", readable(b.signature, id_text(b.signature))
    elif isinstance(b, ToolUseBlock):
        yield f"{loc}.name", b.name
        yield from _json(f"{loc}.input", b.input)
        if b.id and not opaque_shaped(b.id):
            yield f"{loc}.id", readable(b.id, id_text(b.id))
    elif isinstance(b, ToolResultBlock):
        if b.tool_use_id and not opaque_shaped(b.tool_use_id):
            yield f"{loc}.tool_use_id", readable(b.tool_use_id, id_text(b.tool_use_id))
        for k, c in enumerate(b.content):
            yield from _block(f"{loc}.content[{k}]", c)
    elif isinstance(b, ImageBlock):
        if b.url and (pdf := pdf_url(b.url)) is not None:
            yield f"{loc}.url#pdf", text_of(pdf)
        elif b.url and payload_url(b.url):
            if opaque_url(b.url):
                yield f"{loc}.url#bytes", OPAQUE  # round 14: bytes the scan cannot read (a gzip, KOI8-R): fails closed
            elif (u := data_url(b.url)) is not None:
                yield from _media(f"{loc}.url", u.payload)  # review34d: its metadata and words (media_text.py)
        elif b.url:
            yield f"{loc}.url", OPAQUE if opaque_text_url(b.url) else readable(b.url, url_text(b.url))
        # Strings the client chose that travel with the image: OpenAI's `detail` (any string is
        # forwarded), the media type, and the payload of a data: URL that was not base64
        # (`data:image/svg+xml,<svg>...`, `data:text/plain,...`: it leaves as written).
        if b.detail:
            yield f"{loc}.detail", b.detail
        if b.media_type:
            yield f"{loc}.media_type", b.media_type
        data = clean64(b.data) if b.data else b.data  # (a reader drops a `#fragment` and whitespace: round 14)
        if data and _is_base64(data) and looks_pdf(data):
            yield f"{loc}.data#pdf", text_of(data)
        elif data and not binary(data):
            yield f"{loc}.data", readable(data, read(data, charset=declared_charset(b.media_type or "")))
        elif data and opaque(data):
            yield f"{loc}.data#bytes", OPAQUE
        elif data:
            yield from _media(f"{loc}.data", data)
        extra = getattr(b, "extra", None)
        if extra:
            yield from _json(f"{loc}.extra", extra)
    elif isinstance(b, OtherBlock):  # its files' and audio's base64 is not text (`is_payload`)
        # Its ids and blobs as everywhere in the body: skipped when id-shaped (`srvtoolu_...`, a web search
        # result's `encrypted_content`: a SECRET by entropy, which refused every turn after a web search
        # under `secrets: block`; session 24, review24c), scanned otherwise.
        yield from _body(f"{loc}.raw", b.raw, 1)


def _json(loc: str, v: Any, depth: int = 0) -> Iterator[tuple[str, str]]:
    if isinstance(v, str):
        yield loc, v
    elif depth >= _MAX_DEPTH:
        yield loc, repr(v)
    elif isinstance(v, dict):
        for k, x in v.items():
            key = str(k)
            yield f"{loc}.{key}#key", key  # keys can carry values too ({"jane@x.com": ...})
            yield from _json(f"{loc}.{key}", x, depth + 1)
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            yield from _json(f"{loc}[{i}]", x, depth + 1)


# Strings of the client's body that are not text (see the module docstring), when they are shaped like
# an id or a blob: only base64 / URL-safe characters (`toolu_01...`, `call_...`, `fc_68...`, a signature).
# One with other characters (`jane.doe@example.com` as a message's `id`, a tool call's id, a thinking
# signature) is text a client wrote, forwarded as written: scanned (session 24, attack-privacy4).
OPAQUE_KEYS = frozenset({"id", "tool_use_id", "tool_call_id", "call_id", "signature", "encrypted_content"})
# their `data` is base64 / an encrypted blob; a tuple (fuzz38): `in` compares, where a frozenset hashed a hostile
# `type` (an object or a list inside an opaque block: TypeError, a 500)
_BINARY_TYPES = ("base64", "redacted_thinking")
# Only base64 is a payload: a `data:text/plain,...` URL is text as written (skipped, it hid any value),
# and so is a "base64" payload holding characters base64 has not (checked at ~1 ms per MB). A data: URL is read as
# readers read it (payload_bytes.data_url; round 14: `data:;base64,`, quoted parameters, fragments were text).


# `-_`: the URL-safe alphabet; `%`: a data: URL may percent-encode its `+`, `/` and `=` (RFC 2397).
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_%\r\n"


def _is_base64(s: str) -> bool:
    """Only base64 characters (~1 ms per MB: bytes.translate in C; a regex takes ~6)."""
    return s.isascii() and not s.encode("ascii").translate(None, _B64_ALPHABET)


def opaque_shaped(s: str) -> bool:
    """An id or a blob as providers issue them (`toolu_01...`, `call_...`, a signature): only base64 and
    URL-safe characters. Anything else in an id's place is text a client wrote, and scanned; so is one whose
    base64 is text (round 12: `toolu_` + base64 of an address left as written)."""
    return _is_base64(s) and not holds_text(s)


def binary(s: str) -> bool:
    """A base64 payload that is no text once decoded (round 12: a `text/plain` file's base64 was skipped)."""
    return _is_base64(s) and not holds_text(s)


def readable(s: str, got: Payload | None) -> str:
    """What of `s` is scanned: the text its base64 holds (review32d: the whole text, every recognizer), or `s`."""
    return s if got is None else got.text


def id_text(s: str) -> Payload | None:
    """An id a client wrote as base64 of text (`toolu_` + an address's base64): its text (privacy/text_payload)."""
    return read(s, is_id=True) if _is_base64(s) else None


def url_text(v: str) -> Payload | None:
    """A `data:...;base64,` URL whose payload is text as a whole (in its declared charset, if any): its text."""
    u = data_url(v)
    return None if u is None or not u.base64 else read(u.payload, head=u.head, charset=declared_charset(u.media))


def clean64(s: str) -> str:
    """A base64 payload as a reader decodes it: without a `#fragment` and whitespace (line breaks are in the
    alphabet `_is_base64` takes), when the rest is base64."""
    if "#" not in s and " " not in s and "\t" not in s:
        return s
    t = "".join(s.split("#", 1)[0].split())
    return t if _is_base64(t) else s


def opaque_url(v: str) -> bool:
    """Of a data: URL `payload_url` takes for a payload: are its bytes neither text nor a PDF (both asked before) nor
    an image or audio format (round 14: a gzip, a zip, a `.docx`, a short Shift-JIS note; they fail closed)?"""
    u = data_url(v)
    return u is not None and opaque(u.payload)


def opaque_text_url(v: str) -> bool:
    """A data: URL without `;base64` whose percent-encoded bytes are neither text nor a PDF nor an image or audio
    format (round 14: fails closed). Text as written (no `%`) is scanned as such."""
    u = data_url(v)
    if u is None or u.base64 or "%" not in u.payload or pdf_url(v) is not None:
        return False
    raw = unquote_to_bytes(u.payload)
    return not raw.isascii() and decode(raw) is None and not known_media(raw[:64])


def opaque_payload(parent: str, d: dict[str, Any], key: str, v: Any) -> bool:
    """Of a payload `is_payload` takes for one (and that is no PDF): are its bytes neither text nor an image or audio
    format (round 14)? Redacted thinking's encrypted `data` is not asked."""
    if not isinstance(v, str):
        return False
    if key == "data" and (d.get("type") in _BINARY_TYPES or parent == "input_audio"):
        return d.get("type") != "redacted_thinking" and opaque(clean64(v))
    return opaque_url(v)


def _media(loc: str, payload: str) -> Iterator[tuple[str, str]]:
    """Each text field of a file `media_text` reads, as its own location (joined, two fields made one "address")."""
    for k, t in enumerate(media_text(payload)):
        yield f"{loc}#media[{k}]", t


def media_payload(parent: str, d: dict[str, Any], key: str, v: Any) -> str | None:
    """Of a payload `is_payload` takes for one and `opaque_payload` lets pass (an image, audio or video format, or a
    tiny text): its base64, whose metadata and words `media_text` reads (review34d); None for redacted thinking."""
    if not isinstance(v, str) or d.get("type") == "redacted_thinking":
        return None
    if key == "data" and (d.get("type") in _BINARY_TYPES or parent == "input_audio"):
        return clean64(v)
    u = data_url(v)
    return u.payload if u is not None else None


def medias_in(v: Any, parent: str = "", depth: int = 0) -> list[str]:
    """The base64 of every payload `media_payload` takes in an unmodelled block's JSON."""
    out: list[str] = []
    if depth < _MAX_DEPTH and isinstance(v, (dict, list)):
        items = v.items() if isinstance(v, dict) else ((parent, x) for x in v)
        for k, x in items:
            key = str(k)
            if isinstance(v, dict) and is_payload(parent, v, key, x) and not opaque_payload(parent, v, key, x):
                if (m := media_payload(parent, v, key, x)) is not None:
                    out.append(m)
            elif isinstance(v, list) and isinstance(x, str) and payload_url(x) and not opaque_url(x):
                out.append(data_url(x).payload)  # type: ignore[union-attr]
            elif isinstance(x, (dict, list)):
                out.extend(medias_in(x, key if isinstance(v, dict) else parent, depth + 1))
    return out


def payload_text(parent: str, d: dict[str, Any], key: str, v: Any, opaque: frozenset[str] | None = None
                 ) -> Payload | None:
    """In a place `is_payload` reads as binary (or an id's place, when `opaque` names it), base64 that is text as a
    whole: its text. Scanned as any text, redacted in it and written back as valid base64 (review32d)."""
    if not isinstance(v, str):
        return None
    if key == "data" and (d.get("type") in _BINARY_TYPES or parent == "input_audio"):
        return read(v, charset=declared_charset(str(d.get("media_type", "")))) if _is_base64(v) else None
    if opaque is not None and key in opaque:
        return id_text(v)
    return url_text(v)


def is_payload(parent: str, d: dict[str, Any], key: str, v: Any) -> bool:
    """Is `d[key]` a binary payload, not text: a `data:` URL, the base64 of an image, a document
    or an audio clip (`source.data` of type base64, `input_audio.data`), a redacted thinking blob?
    Scanned, a payload is a high-entropy token (a SECRET: a `secrets: block` policy refused every
    PDF) and redacted, a broken file."""
    if not isinstance(v, str):
        return False
    if key == "data" and (d.get("type") in _BINARY_TYPES or parent == "input_audio"):
        return binary(clean64(v)) and not (declared_charset(str(d.get("media_type", "")))
                                           and payload_text(parent, d, key, v) is not None)
    return payload_url(v)


def payload_url(v: str) -> bool:
    """A `data:...;base64,` URL whose payload is base64 indeed. Text labelled base64 (a client that
    forgot to encode a file) is not a payload: it leaves as written, so it is scanned and redacted."""
    u = data_url(v)
    return (u is not None and u.base64 and binary(u.payload)
            and not (declared_charset(u.media) and url_text(v) is not None))  # round 14: text in its charset


def pdf_url(v: str) -> str | None:
    """The base64 of the PDF a `data:` URL holds (labelled `application/pdf` or not; base64, or percent-encoded
    bytes: round 14), or None."""
    u = data_url(v)
    if u is None:
        return None
    if not u.base64:  # `data:application/pdf,%25PDF-1.4...`: the bytes as written
        return to_b64(raw) if b"%PDF-" in (raw := unquote_to_bytes(u.payload))[:1030] else None
    return u.payload if ("pdf" in u.media or looks_pdf(u.payload)) and _is_base64(u.payload) else None


def pdf_payload(parent: str, d: dict[str, Any], key: str, v: Any) -> str | None:
    """The base64 of a PDF in `d[key]`, or None: an Anthropic base64 source (`media_type: application/pdf`, or any
    media type over a PDF's bytes), an OpenAI `file_data` (a `data:` URL or bare base64), any `data:` URL of one.
    Round 13: these were binary payloads, never scanned; now their text is (pdf_text.py)."""
    if not isinstance(v, str) or len(v) < 8:
        return None
    if v[:5].lower() == "data:":
        return pdf_url(v)
    if (key == "data" and d.get("type") == "base64") or key == "file_data":
        v = clean64(v)
        if ("pdf" in str(d.get("media_type", "")).lower() or looks_pdf(v)) and _is_base64(v):
            return v
    return None


def pdfs_in(v: Any, parent: str = "", depth: int = 0) -> list[str]:
    """The base64 of every PDF in an unmodelled block's JSON (`pdf_payload`'s places)."""
    out: list[str] = []
    if depth >= _MAX_DEPTH:
        return out
    if isinstance(v, dict):
        for k, x in v.items():
            if (pdf := pdf_payload(parent, v, str(k), x)) is not None:
                out.append(pdf)
            elif isinstance(x, (dict, list)):
                out.extend(pdfs_in(x, str(k), depth + 1))
    elif isinstance(v, list):
        for x in v:
            if isinstance(x, str) and (pdf := pdf_url(x)) is not None:
                out.append(pdf)
            elif isinstance(x, (dict, list)):
                out.extend(pdfs_in(x, parent, depth + 1))
    return out


def block_pdfs(b: Any) -> list[str]:
    """The base64 of the PDFs a canonical block carries (a document, a `file` part, an image that is a PDF)."""
    if isinstance(b, OtherBlock):
        return pdfs_in(b.raw)
    if isinstance(b, ToolResultBlock):
        return [p for c in b.content for p in block_pdfs(c)]
    if isinstance(b, ImageBlock):
        pdf = pdf_url(b.url) if b.url else b.data if b.data and looks_pdf(b.data) and _is_base64(b.data) else None
        return [pdf] if pdf else []
    return []


async def read_pdfs(request: Request) -> None:
    """Extract the text of `request`'s PDFs in a worker thread (privacy/pdf_text: a child process, up to its time
    bound), so the scan that follows on the event loop finds it kept."""
    pdfs = [p for m in request.messages for b in m.content for p in block_pdfs(b)]
    if pdfs:  # within one budget for the request, kept for its scan and redaction (review33d; pdf_text.read_all)
        keep(await asyncio.to_thread(read_all, pdfs))
    medias = [p for m in request.messages for b in m.content for p in block_medias(b)]
    if medias:  # review34d: decoding and reading a file's text is ~4-5 ms per MB; media_text keeps it for the scan
        await asyncio.to_thread(lambda: [media_text(p) for p in medias])


def block_medias(b: Any) -> list[str]:
    """The base64 of the image, audio or video files (and tiny texts) a canonical block carries, whose text
    `media_text` reads (review34d)."""
    if isinstance(b, OtherBlock):
        return medias_in(b.raw)
    if isinstance(b, ToolResultBlock):
        return [p for c in b.content for p in block_medias(c)]
    if isinstance(b, ImageBlock):
        if b.url and payload_url(b.url) and not opaque_url(b.url) and (u := data_url(b.url)) is not None:
            return [u.payload]
        if b.data and binary(d := clean64(b.data)) and not opaque(d):
            return [d]
    return []


def _body(loc: str, v: Any, depth: int = 0, parent: str = "", *, opaque: frozenset[str] = OPAQUE_KEYS
          ) -> Iterator[tuple[str, str]]:
    if isinstance(v, str):
        yield loc, v
    elif depth >= _MAX_DEPTH:
        yield loc, repr(v)
    elif isinstance(v, dict):
        for k, x in v.items():
            key = str(k)
            if (pdf := pdf_payload(parent, v, key, x)) is not None:
                yield f"{loc}.{key}#pdf", text_of(pdf)  # round 13: a PDF's text (pdf_text.py)
                continue
            if key in opaque and isinstance(x, str) and opaque_shaped(x):
                continue
            if is_payload(parent, v, key, x):
                if opaque_payload(parent, v, key, x):
                    yield f"{loc}.{key}#bytes", OPAQUE  # round 14: bytes the scan cannot read: fails closed
                elif (m := media_payload(parent, v, key, x)) is not None:
                    yield from _media(f"{loc}.{key}", m)
                continue
            if isinstance(x, str) and opaque_text_url(x):
                yield f"{loc}.{key}#bytes", OPAQUE
                continue
            yield f"{loc}.{key}#key", key
            if key == "arguments" and isinstance(x, str):
                x = call_arguments(x)  # a call's JSON arguments: walked as the codec parsed them
            elif (got := payload_text(parent, v, key, x, opaque)) is not None:
                yield f"{loc}.{key}", got.text
                continue
            yield from _body(f"{loc}.{key}", x, depth + 1, key, opaque=opaque)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            if isinstance(x, str) and (pdf := pdf_url(x)) is not None:
                yield f"{loc}[{i}]#pdf", text_of(pdf)
            elif isinstance(x, str) and (got := url_text(x)) is not None:
                yield f"{loc}[{i}]", got.text
            elif isinstance(x, str) and payload_url(x):
                if opaque_url(x):
                    yield f"{loc}[{i}]#bytes", OPAQUE
                elif (u := data_url(x)) is not None:
                    yield from _media(f"{loc}[{i}]", u.payload)
            elif isinstance(x, str) and opaque_text_url(x):
                yield f"{loc}[{i}]#bytes", OPAQUE
            else:
                yield from _body(f"{loc}[{i}]", x, depth + 1, parent, opaque=opaque)


def scan_request(request: Request, scan: Scan) -> dict[str, list[Finding]]:
    """Findings per location (only locations with findings). `scan` is a `Detector` or its `scan`."""
    out: dict[str, list[Finding]] = {}
    for loc, text in iter_texts(request):
        if not text:
            continue
        found = scan(text)
        if found:
            out.setdefault(loc, []).extend(found)
    return out


def all_findings(by_location: dict[str, list[Finding]]) -> Iterable[Finding]:
    for fs in by_location.values():
        yield from fs
