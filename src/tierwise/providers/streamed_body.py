"""A stream where a whole answer was asked for (review36b), for providers/http.py and providers/deployment.py: the
reverse of providers/whole_body_stream.py.

Servers and proxies that stream whatever was asked (a `stream: true` forced by a proxy's config, a server that
ignores `stream: false`) answered a non-streamed request with SSE: the gateway read it as JSON and the client got
`sent a body that is not valid JSON` (502, retryable, counted against the deployment) for a good answer. The body is
known by its first line (an SSE field: `data:`, `event:`, `id:`, `retry:` or a `:` comment; after whitespace and a
byte order mark), already read whole within `max_response_bytes`, and decoded by the codec's own stream decoder
(its `max_stream_event_bytes` bound, its error events, its end) into the answer the events make.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from tierwise.canonical import (
    BlockDelta,
    BlockStart,
    MessageDelta,
    MessageStart,
    Response,
    StreamError,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
)
from tierwise.errors import UpstreamError
from tierwise.wire.json_prefix import tool_input
from tierwise.wire.sse import EventTooLarge, EventTooManyLines

if TYPE_CHECKING:
    from tierwise.providers.http import Provider

_FIELDS = (b"data:", b"event:", b"id:", b"retry:", b":")
BOM = b"\xef\xbb\xbf"


class StreamedBody(UpstreamError):
    """A non-streamed call's body that is an SSE stream (`raw`): what post_json raises instead of 'not JSON'."""

    def __init__(self, message: str, raw: bytes) -> None:
        super().__init__(message, retryable=True)
        self.raw = raw


def streamed(raw: bytes) -> bool:
    """Whether a body that is not JSON opens as an SSE stream does."""
    head = raw[:64].lstrip()
    if head[:3] == BOM:
        head = head[3:].lstrip()
    return head.startswith(_FIELDS)


def _largest(usage: Usage, u: Usage) -> None:
    """Running totals (both APIs): the largest of each count, as the stream relay keeps them."""
    for f in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens",
              "web_searches", "billed_usd"):
        if getattr(u, f) > getattr(usage, f):
            setattr(usage, f, getattr(u, f))


async def answer_of(provider: Provider, codec: ModuleType, n: int, body: bytes, headers: dict[str, str]) -> Response:
    """A non-streamed call's answer: the JSON body decoded, or the answer of the stream a server sent instead."""
    try:
        data, raw = await provider.post_json(provider.chat_url, body, headers)
    except StreamedBody as e:
        return streamed_answer(e.raw, codec, n, provider.cfg.max_stream_event_bytes)
    return codec.decode_response(data, raw)


def streamed_answer(raw: bytes, codec: ModuleType, n: int, max_event: int) -> Response:
    """The answer a whole SSE body `raw` streams, decoded by `codec`'s stream decoder."""
    if n > 1:  # (the stream decoder reads the first choice: the others would be lost, unsaid)
        raise UpstreamError(f"upstream answered a request for {n} choices with a stream, which the gateway cannot "
                            "read as a whole answer", retryable=False)
    decoder = codec.StreamDecoder()
    decoder.parser.max_event = max_event
    body = raw.lstrip()
    try:
        chunks = [*decoder.feed(body[3:] if body[:3] == BOM else body), *decoder.finish()]
    except (EventTooLarge, EventTooManyLines) as e:
        raise UpstreamError(f"upstream answered with a stream whose event is too large ({e})",
                            retryable=False) from None
    rid = model = ""
    usage = Usage()
    stop = seq = None
    blocks: dict[int, TextBlock | ThinkingBlock | ToolUseBlock | object] = {}
    args: dict[int, list[str]] = {}
    for chunk in chunks:
        for ev in chunk.events:
            if isinstance(ev, BlockDelta):
                b = blocks.get(ev.index)
                if ev.delta_type == "text" and isinstance(b, TextBlock):
                    b.text += ev.value
                elif ev.delta_type == "thinking" and isinstance(b, ThinkingBlock):
                    b.thinking += ev.value
                elif ev.delta_type == "signature" and isinstance(b, ThinkingBlock):
                    b.signature = (b.signature or "") + ev.value
                elif ev.delta_type == "input_json":
                    args.setdefault(ev.index, []).append(ev.value)
            elif isinstance(ev, BlockStart):
                blocks[ev.index] = ev.block
            elif isinstance(ev, MessageStart):
                rid, model = ev.id, ev.model
                _largest(usage, ev.usage)
            elif isinstance(ev, MessageDelta):
                stop, seq = ev.stop_reason or stop, ev.stop_sequence or seq
                _largest(usage, ev.usage)
            elif isinstance(ev, StreamError):
                if decoder.error is not None:
                    raise decoder.error  # (classified and masked by the decoder)
                raise UpstreamError(f"upstream failed mid-stream: {ev.message}", retryable=False, kind=ev.error_type)
    content = []
    for i in sorted(blocks):
        b = blocks[i]
        if isinstance(b, ToolUseBlock) and i in args:
            b.input = tool_input("".join(args[i]))
        content.append(b)
    return Response(id=rid, model=model, content=content, stop_reason=stop or "end_turn",  # type: ignore[arg-type]
                    stop_sequence=seq, usage=usage)
