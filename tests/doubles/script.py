"""Script items for the upstream doubles: what the next request gets, and faults to inject.

Both doubles read the same items; each renders them in its own wire format. Wrappers
(`Delay`, `CutStream`, `SlowStream`) say *how* to deliver and wrap the item that says *what*
to deliver (`Reply` or `Fail`); `then=None` means "the double's `default`".
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_PIECES = re.compile(r"\s*\S+|\s+")


@dataclass
class ToolCall:
    """A tool call the model makes; `id` is generated from the position when not given."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass
class Reply:
    """A successful answer.

    `usage` is (input_tokens, output_tokens); when None the double counts them itself
    (input: a size estimate of the request, output: the number of streamed text pieces).
    `stop_reason` overrides the natural one (`end_turn`/`tool_use` or `stop`/`tool_calls`),
    e.g. "max_tokens" / "length". `thinking` adds a thinking block (Anthropic) before the text.
    `logprobs=True` adds OpenAI logprobs for each text piece. `matched_stop`: the answer ended on this
    stop string (finish `stop`; the OpenAI double reports it as vLLM does, `choices[].stop_reason`).
    """

    text: str = ""
    usage: tuple[int, int] | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: bool = False
    stop_reason: str | None = None
    thinking: str | None = None
    signature: str = "sig-double-0001"
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # of cache_write_tokens, those for a one-hour cache (Anthropic's usage reports it)
    web_searches: int = 0  # Anthropic's web search server tool: `usage.server_tool_use.web_search_requests`
    cost: float | None = None  # OpenRouter's `usage.cost` (USD billed for the call, its fees included), if given
    model: str | None = None
    matched_stop: str | None = None
    # Hidden reasoning (OpenAI double): reported in `completion_tokens_details.reasoning_tokens`; OpenAI counts it in
    # `completion_tokens` too, Gemini's OpenAI layer (and proxies before it) left it out there and in `total_tokens` only.
    reasoning_tokens: int = 0
    reasoning_outside_completion: bool = False

    def pieces(self) -> list[str]:
        """The text split the way it is streamed: one word (with its leading space) per piece."""
        return _PIECES.findall(self.text) if self.text else []


@dataclass
class Fail:
    """Answer with this HTTP status and the provider's real error body (and Retry-After if given: seconds, or a
    string sent as it is, such as an HTTP date).

    `error_type` overrides the type the double picks from the status.
    """

    status: int = 500
    msg: str | None = None
    retry_after: float | str | None = None
    error_type: str | None = None


@dataclass
class Raw:
    """Answer with exactly this status, content type and body: an upstream off its own schema
    (an Anthropic 200 whose body is `type: error`, a text/plain 502 from a proxy, a hand-made stream)."""

    status: int = 200
    body: bytes | str = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)  # more response headers (e.g. Content-Encoding)
    # Offsets at which the body is cut into writes `pause` seconds apart (each likely its own read at the gateway:
    # a byte order mark or a UTF-8 character split across reads); empty: one write.
    split: tuple[int, ...] = ()
    pause: float = 0.1


@dataclass
class Delay:
    """Wait `seconds` before sending anything (headers included), then answer with `then`."""

    seconds: float
    then: Item | None = None


@dataclass
class CutStream:
    """Start answering with `then` and drop the connection after `after_chunks` chunks.

    0 drops the connection before any response byte. Streams count SSE events; a
    non-streaming body is sent as headers plus part of the body, then cut.
    """

    after_chunks: int = 0
    then: Item | None = None


@dataclass
class SlowStream:
    """Deliver `then` with a pause of `interval` seconds between chunks."""

    interval: float
    then: Item | None = None


@dataclass
class LateEnd:
    """Streaming only: send every event of `then`, then wait `seconds` before ending the body
    (the chunked terminator in a write of its own, as servers that flush each event do)."""

    seconds: float = 0.05
    then: Item | None = None


@dataclass
class StreamError:
    """Streaming only: send `after_chunks` chunks of `then`, then the provider's mid-stream
    error event (Anthropic `event: error`, OpenAI `data: {"error": ...}`) and end the stream.

    `data`: the error event's data as given instead (the shapes other servers send, e.g. OpenRouter's
    chunk whose choice ends with `finish_reason: "error"`). `release`: hold the error until the test
    sets this event (once its client has read the text before it), so "after bytes reached the
    client" needs no timing."""

    after_chunks: int = 2
    msg: str = "Overloaded"
    error_type: str = "overloaded_error"
    then: Item | None = None
    data: Any = None
    release: threading.Event | None = None


@dataclass
class Corrupt:
    """Answer 200 with `then`, but damage it: `kind="json"` breaks the JSON (the body, or the
    data of stream event `at_chunk`), `kind="utf8"` puts an invalid UTF-8 byte into its text."""

    kind: str = "json"
    at_chunk: int = 1
    then: Item | None = None


@dataclass
class Trickle:
    """Slow loris: send the answer one byte at a time, `interval` seconds apart."""

    interval: float = 0.05
    then: Item | None = None


@dataclass
class Gate:
    """Wait (at most 30 s) until the test sets `release` before sending anything, then answer with `then`: the
    answer is in progress for as long as the test needs (other work queued behind it, a cap reached), however
    the machine schedules its threads. A `Delay` only makes that likely."""

    release: threading.Event
    then: Item | None = None


@dataclass
class Hold:
    """Streaming only: send the events of `then` before event `at_chunk`, then wait (at most 30 s) until the test
    sets `release` (once its client has read what came before), and go on: a fault at that event (`CutStream`,
    `Corrupt`) then comes after bytes reached the client however the machine schedules its threads. A pause
    (`SlowStream`) only makes that likely: on a busy machine the gateway read the fault with the events before
    it, nothing had reached the client, and the route moved on."""

    at_chunk: int
    release: threading.Event
    then: Item | None = None


# A callable item computes the item from the recorded request (e.g. echo the prompt back).
Item = Reply | Fail | Raw | Delay | CutStream | SlowStream | LateEnd | StreamError | Corrupt | Trickle | Hold | Gate | str | Callable[[Any], Any]


@dataclass
class Plan:
    """How to deliver one answer, flattened from nested wrappers."""

    final: Reply | Fail | Raw
    delay: float = 0.0
    interval: float = 0.0
    cut_after: int | None = None
    error_after: StreamError | None = None
    corrupt: Corrupt | None = None
    trickle: float = 0.0
    end_delay: float = 0.0
    hold: Hold | None = None
    gate: threading.Event | None = None


def resolve(item: Any, default: Any, request: Any) -> Plan:
    """Flatten `item` (and the default when a wrapper has `then=None`) into a Plan."""
    plan = Plan(final=Reply())
    depth = 0
    used_default = item is default
    while True:
        depth += 1
        if depth > 50:
            raise ValueError("script item nests too deep (a default that refers to itself?)")
        if item is None:
            # `then=None` means the default; inside the default itself it means a plain "ok".
            item = default if not used_default else None
            used_default = True
            if item is None:
                item = Reply(text="ok")
            continue
        if isinstance(item, str):
            item = Reply(text=item)
        if isinstance(item, (Reply, Fail, Raw)):
            plan.final = item
            return plan
        if isinstance(item, Delay):
            plan.delay += item.seconds
        elif isinstance(item, SlowStream):
            plan.interval = item.interval
        elif isinstance(item, LateEnd):
            plan.end_delay = item.seconds
        elif isinstance(item, CutStream):
            plan.cut_after = item.after_chunks
        elif isinstance(item, StreamError):
            plan.error_after = item
        elif isinstance(item, Corrupt):
            plan.corrupt = item
        elif isinstance(item, Trickle):
            plan.trickle = item.interval
        elif isinstance(item, Hold):
            plan.hold = item
        elif isinstance(item, Gate):
            plan.gate = item.release
        elif callable(item):
            item = item(request)
            continue
        else:
            raise TypeError(f"not a script item: {item!r}")
        item = item.then
