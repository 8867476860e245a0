"""Apply a Pseudonymizer to every place text hides in a canonical Request, and undo it in a Response.

Redacted in a Request: system blocks; message text; tool-use inputs, and tool-call ids and thinking
signatures that are not shaped like ids (an `@`, a dot, a space in them); (every JSON key and string
value, recursively); tool-result text; thinking text; tool definitions' descriptions (and the
`description` strings inside their input schemas and inside a `response_format` JSON schema);
string values of `metadata` and of
unmodelled blocks (`OtherBlock.raw`, not its base64 payloads: `request_scan.is_payload`); the
`user` field. Base64 payloads and ids that are text as a whole (a `.txt` upload, a text
document, an image's base64 that is a note, `toolu_` + base64 of an address) are redacted in their text
and written back as valid base64 (privacy/text_payload.py); other images are not touched. A block carrying a
PDF whose text has a finding (a document, a `file` part) becomes a text block with that text, redacted (round 13:
a PDF cannot be edited safely; privacy/pdf_text.py). The result is a new Request built with `with_changes`, so the same-format
pass-through body (which still holds the originals) is dropped and the request is re-encoded.

Note on thinking: Anthropic signs thinking blocks; a redacted thinking text no longer matches
its signature, and the upstream may reject it. That fails closed (an error, not a leak).

Restored in a Response (and in its `extra_choices`): text blocks, tool-use inputs (keys and
string values), thinking text. `raw` is dropped because the upstream's bytes hold the
placeholders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from tierwise.canonical import (
    Block,
    Choice,
    ImageBlock,
    Message,
    OtherBlock,
    Request,
    Response,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)
from tierwise.privacy.media_text import archive, media_text
from tierwise.privacy.payload_bytes import OPAQUE
from tierwise.privacy.pdf_text import text_of
from tierwise.privacy.redact import FindingLike, Pseudonymizer
from tierwise.privacy.request_scan import (
    OPAQUE_KEYS,
    binary,
    block_medias,
    block_pdfs,
    id_text,
    is_payload,
    medias_in,
    opaque_shaped,
    payload_text,
    payload_url,
    pdfs_in,
    url_text,
)
from tierwise.privacy.text_payload import Payload, read, write

Detect = Callable[[str], Iterable[FindingLike]]


class _Redactor:
    __slots__ = ("p", "detect")

    def __init__(self, p: Pseudonymizer, detect: Detect) -> None:
        self.p = p
        self.detect = detect

    def text(self, s: str) -> str:
        if not s:
            return s
        return self.p.redact(s, self.detect(s))

    def json(self, v: Any) -> Any:
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            return {self.text(k) if isinstance(k, str) else k: self.json(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.json(x) for x in v]
        return v

    def raw(self, v: Any, parent: str = "") -> Any:
        """`json` for an unmodelled block, leaving its binary payloads (base64 files, audio) whole; one that is text
        (a `.txt` upload, a text document) is redacted in its text and stays valid base64."""
        if isinstance(v, dict):
            return {self.text(k) if isinstance(k, str) else k:
                    x if is_payload(parent, v, str(k), x)
                    else self.decoded(got, x) if (got := payload_text(parent, v, str(k), x, OPAQUE_KEYS))
                    else self.raw(x, str(k)) for k, x in v.items()}
        if isinstance(v, list):
            return [self.decoded(got, x) if isinstance(x, str) and (got := url_text(x)) else self.raw(x, parent)
                    for x in v]
        return self.json(v)

    def decoded(self, got: Payload | None, s: str) -> str:
        """Base64 that is text as a whole (`request_scan.payload_text`): redacted in its text and written back as
        valid base64, same `data:` head or id `word_` (review32d: round 12 redacted the base64 characters, and sent
        a broken file); else `s` redacted as text."""
        if got is None:
            return self.text(s)
        red = self.text(got.text)
        return s if red == got.text else write(got, red)

    def pdf(self, payloads: list[str], name: str) -> TextBlock | None:
        """A block carrying PDFs whose text has a finding, as a text block of that text, redacted (round 13); None
        when nothing in them is redacted (the block leaves as it is). A PDF cannot be edited safely: its text sits
        in compressed, font-encoded streams, and in metadata, annotations and form fields (privacy/pdf_text.py)."""
        texts = [text_of(p) for p in payloads]
        red = [self.text(t) for t in texts]
        if red == texts:
            return None
        head = f"[{self.text(name)}: the text of a PDF; the file was withheld by the privacy guard]"
        return TextBlock("\n\n".join([head, *red]))

    def withheld(self, payloads: list[str], name: str) -> TextBlock | None:
        """A block carrying an image, audio or video file whose metadata or words (`media_text`) hold a value to
        redact, as a text block saying it was withheld (review34d); None when nothing in them is redacted. The
        file cannot be edited in place: no library made for stripping metadata is installed, and re-encoding with
        Pillow would change a JPEG's pixels."""
        texts = [t for p in payloads for t in media_text(p)]
        # review35f: a file read again here (its cached reading evicted) past the request's archive budget is no
        # file with nothing to redact: withheld
        if OPAQUE not in texts and all(self.text(t) == t for t in texts):
            return None
        # privacy15: an archive's files are text the model can still use: their redacted text goes in its place
        files = [f"--- {self.text(m.name or '(compressed)')} ---\n{self.text(m.text)}"
                 for p in payloads for m in (archive(p) or ()) if m.text != m.name]
        return TextBlock("\n\n".join([f"[{self.text(name)}: a file withheld by the privacy guard: its metadata or text "
                                       "held a value that may not leave]", *files]))

    def opaque(self, s: str) -> str:
        """An id or a signature: as it is when shaped like one (`request_scan.opaque_shaped`), else text a
        client wrote there (an address as a tool call's id), redacted like any text: a tool call and its
        result keep one id (the same value, the same stand-in), and an encoder that narrows ids to the
        upstream's alphabet (`jane_doe_example_com`) no longer hides the value from the leak check."""
        return s if not s or opaque_shaped(s) else self.decoded(id_text(s), s)

    def schema(self, v: Any) -> Any:
        """Redact the free text and example values of a JSON schema (`description`, `title`, `enum`,
        `const`, `default`, `examples`), leaving names and types alone. An answer that uses a redacted
        enum value carries its stand-in, which the answer's restore turns back."""
        if isinstance(v, dict):
            return {
                k: (self.text(x) if k in _SCHEMA_TEXT and isinstance(x, str)
                    else self.json(x) if k in _SCHEMA_VALUES else self.schema(x))
                for k, x in v.items()
            }
        if isinstance(v, list):
            return [self.schema(x) for x in v]
        return v

    def block(self, b: Block) -> Block:
        if isinstance(b, TextBlock):
            return replace(b, text=self.text(b.text))
        if isinstance(b, ToolUseBlock):
            return replace(b, input=self.json(b.input), id=self.opaque(b.id))
        if isinstance(b, ToolResultBlock):
            return replace(b, content=[self.block(c) for c in b.content],  # type: ignore[misc]
                           tool_use_id=self.opaque(b.tool_use_id))
        if isinstance(b, ThinkingBlock):
            sig = self.opaque(b.signature) if b.signature else b.signature
            return replace(b, thinking=self.text(b.thinking), signature=sig)
        if isinstance(b, OtherBlock):
            pdfs = pdfs_in(b.raw)
            f = b.raw.get("file")
            name = b.raw.get("title") or (f.get("filename") if isinstance(f, dict) else None) or "document"
            return ((pdfs and self.pdf(pdfs, str(name))) or self.withheld(medias_in(b.raw), str(name))
                    or replace(b, raw=self.raw(b.raw)))
        if isinstance(b, ImageBlock) and (pdfs := block_pdfs(b)):
            return self.pdf(pdfs, "document") or b
        if isinstance(b, ImageBlock) and (held := self.withheld(block_medias(b), "image")) is not None:
            return held
        if isinstance(b, ImageBlock) and (b.url or b.data):
            # A payload that is text once decoded (round 12: `data:image/png;base64,` + a note's base64 left as
            # written; the leak check looks for values on word boundaries, and a value's base64 groups sit inside
            # the payload's). A web URL is not rewritten: one holding a value is refused by the leak check.
            url = b.url if not b.url or not b.url[:5].lower() == "data:" or payload_url(b.url) \
                else self.decoded(url_text(b.url), b.url)
            return replace(b, url=url, data=b.data if not b.data or binary(b.data) else self.decoded(read(b.data), b.data))
        return b  # redacted thinking: no clear text

    def tool(self, t: Tool) -> Tool:
        return replace(
            t,
            description=self.text(t.description) if t.description else t.description,
            input_schema=self.schema(t.input_schema),
            raw=self.schema(t.raw) if t.raw is not None else None,
        )


_SCHEMA_TEXT = frozenset({"description", "title"})
_SCHEMA_VALUES = frozenset({"enum", "const", "default", "examples"})


def redact_request(request: Request, p: Pseudonymizer, detect: Detect) -> Request:
    """A copy of `request` with every finding of `detect` replaced by `p`'s stand-ins."""
    r = _Redactor(p, detect)
    return request.with_changes(
        system=[r.block(b) for b in request.system],
        messages=[Message(m.role, [r.block(b) for b in m.content]) for m in request.messages],
        tools=[r.tool(t) for t in request.tools],
        metadata=r.json(request.metadata),
        user=r.text(request.user) if request.user else request.user,
        stop=[r.text(x) for x in request.stop],
        response_format=(
            replace(request.response_format, schema=r.schema(request.response_format.schema))
            if request.response_format is not None and request.response_format.schema is not None
            else request.response_format
        ),
    )


def _restore_json(p: Pseudonymizer, v: Any) -> Any:
    if isinstance(v, str):
        return p.restore(v)
    if isinstance(v, dict):
        return {p.restore(k) if isinstance(k, str) else k: _restore_json(p, x) for k, x in v.items()}
    if isinstance(v, list):
        return [_restore_json(p, x) for x in v]
    return v


def restore_block(p: Pseudonymizer, b: Block) -> Block:
    if isinstance(b, TextBlock):
        return replace(b, text=p.restore(b.text))
    if isinstance(b, ToolUseBlock):
        return replace(b, input=_restore_json(p, b.input))
    if isinstance(b, ThinkingBlock):
        return replace(b, thinking=p.restore(b.thinking))
    if isinstance(b, ToolResultBlock):
        return replace(b, content=[restore_block(p, c) for c in b.content])  # type: ignore[misc]
    return b


def restore_response(response: Response, p: Pseudonymizer) -> Response:
    """A copy of `response` with the stand-ins the model echoed replaced by the originals."""
    if p.empty:
        return response
    return replace(
        response,
        content=[restore_block(p, b) for b in response.content],
        extra_choices=[
            Choice([restore_block(p, b) for b in c.content], c.stop_reason, c.logprobs)
            for c in response.extra_choices
        ],
        raw=None,
        raw_format=None,
    )
