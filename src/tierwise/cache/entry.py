"""What a cache entry holds and how it becomes bytes (orjson, no pickle: a shared Redis must not
be able to make the gateway run code).

An entry is either a whole Response or the chunks of a stream, each with the upstream's exact
bytes (so a client of the same format gets the same bytes again) and its canonical events (so a
client of another format gets the same events re-encoded). Raw bytes travel as latin-1 text,
which maps every byte to one character and back without loss.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import orjson

from tierwise.canonical import (
    Block,
    BlockDelta,
    BlockStart,
    BlockStop,
    Choice,
    ImageBlock,
    MessageDelta,
    MessageStart,
    MessageStop,
    OtherBlock,
    Ping,
    RedactedThinkingBlock,
    Response,
    StreamChunk,
    StreamError,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    TokenLogprob,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

ENTRY_VERSION = 1


class BadEntry(ValueError):
    """Stored bytes that are not an entry this version can read (treated as a miss)."""


@dataclass(slots=True)
class Entry:
    kind: str  # "response" | "stream"
    response: Response | None = None
    chunks: list[StreamChunk] | None = None
    question: str = ""  # the last user turn, for the semantic tier (empty in exact-only memory entries)
    tools: bool = False  # the request carried tools or the answer called one (not worked out, as `question`)
    cost_usd: float | None = None  # what the answer cost when it was made
    usage: Usage | None = None
    model: str | None = None  # the upstream model that made it
    created: float = 0.0


# ---------------------------------------------------------------------------- size

ENTRY_OVERHEAD = 512  # bytes: an entry's objects and fields besides its answer's bytes
EVENT_OVERHEAD = 64  # bytes an event's canonical form adds to a stored stream


def size(e: Entry) -> int:
    """What an entry kept as objects (the memory backend) counts against the cache's bounds: about
    what `dumps` would make of it, without making it. A response's bytes count twice (the upstream's
    bytes and the decoded content); a stream's chunks their bytes and a fixed cost per event."""
    n = ENTRY_OVERHEAD + len(e.question)
    r = e.response
    if r is not None:
        raw = r.raw
        n += 2 * len(raw) if raw is not None else len(dumps(e))
    if e.chunks is not None:
        for c in e.chunks:
            n += len(c.raw or b"") + EVENT_OVERHEAD * len(c.events)
    return n


def pack(e: Entry) -> Any:
    """What the memory backend keeps of a response entry: its bytes (already in the client's format)
    and plain values in one flat tuple of atoms (`packed`), which takes about half the memory of the
    objects and which the garbage collector stops tracking when it first collects it (so a full cache
    adds nothing to what later collections traverse); `unpack` decodes it again on a hit. Others as
    they are."""
    r = e.response
    if r is None or r.raw is None or r.raw_format is None or e.chunks is not None:
        return e
    u = e.usage
    usage = None if u is None else (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens,
                                    u.estimated)
    return packed(e.kind, r.raw, r.raw_format, e.question, e.tools, e.cost_usd, usage, e.model, e.created)


def packed(kind: str, raw: bytes, raw_format: str, question: str, tools: bool, cost: float | None,
           usage: tuple[int, int, int, int, bool] | None, model: str | None, created: float) -> tuple[Any, ...]:
    """The flat tuple `pack` makes, from its parts (`AnswerCache.keep_answer` makes the same inline)."""
    if usage is None:
        return (kind, raw, raw_format, question, tools, cost, model, created, None, 0, 0, 0, False)
    return (kind, raw, raw_format, question, tools, cost, model, created, *usage)


PACKED_OVERHEAD = ENTRY_OVERHEAD // 2  # a packed entry's tuple and atoms besides its bytes and question


def packed_size(t: tuple[Any, ...]) -> int:
    """What a packed entry counts against the cache's bounds."""
    return PACKED_OVERHEAD + len(t[1]) + len(t[3])


def unpack(v: Any, decode: Any) -> Entry:
    """An entry `pack` kept (`decode(body, raw)`: its format's response decoder), or `v` itself."""
    if type(v) is not tuple:
        return v  # type: ignore[no-any-return]
    kind, raw, _, question, tools, cost, model, created, tin, tout, tcr, tcw, est = v
    return Entry(kind, decode(orjson.loads(raw), raw), None, question, tools, cost,
                 None if tin is None else Usage(tin, tout, tcr, tcw, est), model, created)


def served(r: Response) -> Response:
    """A kept response as a hit hands it out: its own object, content list and usage, so nothing a
    caller changes on it reaches the entry (blocks and bytes are shared: nothing changes those)."""
    c = copy.copy(r)
    c.content = list(r.content)
    c.usage = copy.copy(r.usage)
    c.extra_choices = list(r.extra_choices)
    return c


# ---------------------------------------------------------------------------- encode


def _raw(b: bytes | None) -> str | None:
    return None if b is None else b.decode("latin-1")


def _default(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("latin-1")
    if isinstance(v, tuple):
        return list(v)
    raise TypeError


def dumps(e: Entry) -> bytes:
    d: dict[str, Any] = {"v": ENTRY_VERSION, "kind": e.kind, "q": e.question, "tools": e.tools, "cost": e.cost_usd,
                         "usage": e.usage, "model": e.model, "created": e.created}
    if e.response is not None:
        r = e.response
        d["resp"] = {"id": r.id, "model": r.model, "content": r.content, "stop_reason": r.stop_reason,
                     "stop_sequence": r.stop_sequence, "usage": r.usage, "logprobs": r.logprobs,
                     "extra_choices": r.extra_choices, "raw": _raw(r.raw), "raw_format": r.raw_format}
    if e.chunks is not None:
        d["chunks"] = [{"raw": _raw(c.raw), "fmt": c.raw_format, "events": c.events} for c in e.chunks]
    return orjson.dumps(d, default=_default)


# ---------------------------------------------------------------------------- decode


def _usage(d: Any) -> Usage:
    if not d:
        return Usage()
    return Usage(int(d.get("input_tokens", 0)), int(d.get("output_tokens", 0)), int(d.get("cache_read_tokens", 0)),
                 int(d.get("cache_write_tokens", 0)), bool(d.get("estimated", False)))


def _logprobs(v: Any) -> list[TokenLogprob] | None:
    if v is None:
        return None
    return [TokenLogprob(x["token"], x["logprob"], [(t[0], t[1]) for t in x.get("top") or []]) for x in v]


def _block(d: dict[str, Any]) -> Block:
    t = d.get("type")
    if t == "text":
        return TextBlock(d["text"], extra=d.get("extra"))
    if t == "tool_use":
        return ToolUseBlock(d["id"], d["name"], d["input"], server=bool(d.get("server")))
    if t == "thinking":
        return ThinkingBlock(d["thinking"], d.get("signature"))
    if t == "redacted_thinking":
        return RedactedThinkingBlock(d["data"])
    if t == "image":
        return ImageBlock(d.get("media_type"), d.get("data"), d.get("url"), d.get("detail"))
    if t == "tool_result":
        return ToolResultBlock(d["tool_use_id"], [_block(c) for c in d["content"]],  # type: ignore[misc]
                               bool(d.get("is_error")))
    if t == "other":
        return OtherBlock(d["raw"])
    raise BadEntry(f"unknown block type {t!r}")


def _event(d: dict[str, Any]) -> StreamEvent:
    k = d.get("kind")
    if k == "message_start":
        return MessageStart(d["id"], d["model"], _usage(d.get("usage")))
    if k == "block_start":
        return BlockStart(d["index"], _block(d["block"]))
    if k == "block_delta":
        return BlockDelta(d["index"], d["delta_type"], d["value"], logprobs=_logprobs(d.get("logprobs")))
    if k == "block_stop":
        return BlockStop(d["index"])
    if k == "message_delta":
        return MessageDelta(d.get("stop_reason"), _usage(d.get("usage")), d.get("stop_sequence"))
    if k == "message_stop":
        return MessageStop()
    if k == "ping":
        return Ping()
    if k == "error":
        return StreamError(d["error_type"], d["message"])
    raise BadEntry(f"unknown event kind {k!r}")


def _bytes(s: str | None) -> bytes | None:
    return None if s is None else s.encode("latin-1")


def loads(data: bytes) -> Entry:
    try:
        d = orjson.loads(data)
        if not isinstance(d, dict) or d.get("v") != ENTRY_VERSION:
            raise BadEntry("not a cache entry of this version")
        e = Entry(kind=d["kind"], question=d.get("q") or "", tools=bool(d.get("tools")), cost_usd=d.get("cost"),
                  usage=_usage(d.get("usage")) if d.get("usage") else None, model=d.get("model"),
                  created=float(d.get("created") or 0))
        r = d.get("resp")
        if r is not None:
            e.response = Response(
                id=r["id"], model=r["model"], content=[_block(b) for b in r["content"]],
                stop_reason=r.get("stop_reason"), stop_sequence=r.get("stop_sequence"), usage=_usage(r.get("usage")),
                logprobs=_logprobs(r.get("logprobs")),
                extra_choices=[Choice([_block(b) for b in c["content"]], c.get("stop_reason"),
                                      _logprobs(c.get("logprobs"))) for c in r.get("extra_choices") or []],
                raw=_bytes(r.get("raw")), raw_format=r.get("raw_format"))
        if d.get("chunks") is not None:
            e.chunks = [StreamChunk([_event(ev) for ev in c["events"]], _bytes(c.get("raw")), c.get("fmt"))
                        for c in d["chunks"]]
        return e
    except BadEntry:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, UnicodeError) as err:
        raise BadEntry(f"unreadable cache entry: {type(err).__name__}") from None
