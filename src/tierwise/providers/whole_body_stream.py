"""A whole JSON body where a stream was asked for (wire13), for providers/deployment.py's stream relay.

Servers answer `stream: true` with one JSON body: an error object sent with 200 (one-api and LiteLLM-style proxies,
a server refusing the model), or the whole answer (servers and proxies that ignore `stream`; a content type may say
either). The stream decoder found no event in it and the client got `upstream stream ended early` (502, retryable,
counted against the deployment): the upstream's own error (a 404-class "model not found") was lost, and a good answer
was thrown away. The body is recognised by its first byte (no SSE line starts with `{` or `[`; the content type is
not trusted either way), read whole within `max_response_bytes` as the relay already bounds it, and decoded as a
non-streamed answer is: an error object is that error (classified and masked as a 2xx body's error is), an answer is
replayed as the canonical events a stream of it would have made.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import orjson

from tierwise.canonical import StreamChunk
from tierwise.errors import UpstreamError
from tierwise.policies.escalation import response_events
from tierwise.providers.streamed_body import BOM


def _unmarked(data: bytes) -> bytes:
    """`data` without leading whitespace and a UTF-8 byte order mark (review36b: a Windows-made proxy's JSON body
    opening with one was taken for a stream, then `upstream stream ended early`; orjson refuses the mark)."""
    data = data.lstrip()
    return data[3:].lstrip() if data[:3] == BOM else data


def choose(decoder: Any, data: bytes, codec: ModuleType) -> tuple[bool, Any, bytes]:
    """(whether the body's kind is still unknown, the decoder for it, `data` to feed it) after its first read `data`.
    A stream's leading byte order mark is taken out (review36b): the SSE parser read `\ufeffdata:` as an unknown field
    and dropped the first event, text and all, with a 200 (the SSE standard ignores one leading mark)."""
    if isinstance(decoder, _Held):  # (wire14: the mark's first bytes came alone)
        decoder, data = decoder.decoder, decoder.data + data
    if data[:3] == BOM:
        data = data[3:]
    elif len(data) < 3 and BOM.startswith(data) and data:  # a mark split across reads: wait for its end
        return True, _Held(decoder, data), b""
    head = _unmarked(data)[:1]
    if not head:
        return True, decoder, data
    if head in (b"{", b"["):
        return False, WholeBody(decoder, codec), data
    return False, decoder, data


class _Held:
    """The stream decoder while the opening read was the first byte or two of a byte order mark (wire14: the mark
    was then fed to the decoder as text, `\ufeffdata:` an unknown field, and the first event dropped with a 200; a
    whole JSON body was taken for a stream). Feeds nothing; `choose` joins `data` to the next read."""

    def __init__(self, decoder: Any, data: bytes) -> None:
        self.decoder = decoder
        self.data = data

    def feed(self, data: bytes) -> list[StreamChunk]:
        return []

    def __getattr__(self, name: str) -> Any:  # (the body ended here: the decoder's own end, error and bounds)
        return getattr(self.decoder, name)


class WholeBody:
    """The stream decoder's interface over a whole JSON body: nothing until the body ends, then all of it."""

    def __init__(self, decoder: Any, codec: ModuleType) -> None:
        self.parser = decoder.parser  # (its `max_event` bound is the relay's; unused here)
        self.codec = codec
        self.parts: list[bytes] = []
        self.ended = False
        self.error: UpstreamError | None = None
        self.other_chars = 0  # (one answer: see finish)

    def feed(self, data: bytes) -> list[StreamChunk]:
        self.parts.append(data)  # (the relay stops at `max_response_bytes`)
        return []

    def finish(self) -> list[StreamChunk]:
        if self.ended:
            return []
        self.ended = True
        raw, self.parts = _unmarked(b"".join(self.parts)), []
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError("upstream answered a stream request with a body that is neither a stream nor "
                                "JSON", retryable=True) from None
        resp = self.codec.decode_response(body)  # an error object raises it (classified, masked)
        if resp.extra_choices:
            # (canonical events carry one choice: an `n > 1` stream is relayed as the upstream sent it, never made)
            raise UpstreamError(f"upstream answered a stream request for {1 + len(resp.extra_choices)} choices with "
                                "one JSON body, which the gateway cannot stream", retryable=False)
        return [StreamChunk(response_events(resp), None, self.codec.FORMAT)]
