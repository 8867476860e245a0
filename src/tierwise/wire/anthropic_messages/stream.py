"""Anthropic Messages SSE streams: an upstream's events → canonical (`StreamDecoder`), and canonical
events → a client's stream (`StreamEncoder`).
"""

from __future__ import annotations

from typing import Any

import orjson

from tierwise.canonical import (
    Block,
    BlockDelta,
    BlockStart,
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    Ping,
    Request,
    StreamChunk,
    StreamError,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
)
from tierwise.errors import TierwiseError, UpstreamError
from tierwise.wire.anthropic_messages.response import (
    FORMAT,
    error_object,
    invalid_tool_input,
    new_message_id,
    response_block_in,
    response_block_out,
    stop_reason_in,
    stop_reason_out,
    text_out,
    upstream_error,
    usage_in,
    usage_out,
)
from tierwise.wire.json_prefix import MAX_CHECKED, ObjectPrefix
from tierwise.wire.sse import SSEParser, event_message

_DELTA_IN = {"text_delta": ("text", "text"), "input_json_delta": ("input_json", "partial_json"),
             "thinking_delta": ("thinking", "thinking"), "signature_delta": ("signature", "signature")}
_DELTA_OUT = {v[0]: (k, v[1]) for k, v in _DELTA_IN.items()}
_INPUT_JSON, _SIGNATURE = _DELTA_IN["input_json_delta"], _DELTA_IN["signature_delta"]


class StreamDecoder:
    """Anthropic SSE from an upstream → canonical events, one SSE message at a time."""

    other_chars = 0  # (one answer: no choices past the first, whose characters the relay counts apart)

    def __init__(self) -> None:
        self.parser = SSEParser()
        self.started = False
        self.stop_seen = False
        self.ended = False
        self.started_blocks = range(0)  # the indices of the content blocks started so far
        self.tool_checks: dict[int, ObjectPrefix] = {}  # open tool_use blocks: do their pieces begin an object?
        self.checked = [MAX_CHECKED]  # the characters they may still check, this stream (wire/json_prefix.py)
        # The error the upstream reported, as it would be had it come first (the relay raises it when
        # nothing of the stream has reached the client yet).
        self.error: UpstreamError | None = None

    def feed(self, data: bytes) -> list[StreamChunk]:
        """The events of every complete message in `data`, as one chunk (its raw bytes the messages'
        bytes), except that an upstream error event comes as a chunk of its own without raw bytes."""
        out: list[StreamChunk] = []
        events: list[StreamEvent] = []
        raws: list[bytes] = []
        for msg in self.parser.feed(data):
            if self.ended:
                # Nothing follows message_stop (or an error): a server that went on after it (a block, a tool
                # call) reached Responses and OpenAI clients as output after the answer had completed, and a
                # same-format client as bytes after the end.
                break
            if not msg.data:
                raws.append(msg.raw)
                continue
            try:
                obj = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                raise UpstreamError("upstream sent a stream event that is not valid JSON", retryable=True) from None
            if type(obj) is not dict:
                raise UpstreamError("upstream sent a stream event that is not an object", retryable=True)
            evs = self._events(obj, msg.event)
            if evs and isinstance(evs[-1], StreamError):
                # Re-encoded by the gateway, never relayed raw: servers that imitate the Anthropic
                # API (llama-server) send error objects outside its schema.
                if raws:
                    out.append(StreamChunk(events, b"".join(raws), FORMAT))
                    events, raws = [], []
                out.append(StreamChunk(evs, None, FORMAT))
                continue
            events += evs
            raws.append(msg.raw)
        if raws:
            out.append(StreamChunk(events, b"".join(raws) if len(raws) > 1 else raws[0], FORMAT))
        return out

    def _events(self, obj: dict[str, Any], sse_event: str | None) -> list[StreamEvent]:
        # `event: error` is an error whatever its data's `type` says: the anthropic SDK raises on the event name,
        # so an error disguised as a `message_delta` was relayed raw and raised with the upstream's unscrubbed text.
        t = "error" if sse_event == "error" else obj.get("type") or sse_event
        try:
            if t == "message_start":
                m = obj["message"]
                self.started = True
                return [MessageStart(str(m.get("id") or new_message_id()), str(m.get("model") or ""), usage_in(m.get("usage")))]
            # Blocks are numbered 0, 1, 2 … in the order they start, and a delta or stop names a started one: the
            # anthropic SDK appends each started block and indexes its content list with a delta's `index`, so a
            # stream relayed as sent with a delta for a block never started failed in the caller (IndexError).
            if t == "content_block_start":
                i = int(obj["index"])
                if i != len(self.started_blocks) or not self.started:  # (and only after message_start)
                    raise ValueError(i)
                self.started_blocks = range(i + 1)
                block = response_block_in(obj["content_block"])
                if isinstance(block, ToolUseBlock):
                    block.input = {}  # the input arrives as input_json deltas
                    self.tool_checks[i] = ObjectPrefix(budget=self.checked)
                return [BlockStart(i, block)]
            if t == "content_block_delta":
                i = int(obj["index"])
                if i not in self.started_blocks:
                    raise ValueError(i)
                d = obj["delta"]
                kind = _DELTA_IN.get(d.get("type"))
                if kind is None:  # citations_delta and future kinds: nothing canonical to say
                    return []
                # Relayed as sent, a piece that is not a string (the SDK appends each to the block's text), or
                # tool input that cannot begin a JSON object, made the anthropic SDK raise in the caller's code
                # (TypeError; "Unable to parse tool parameter JSON from model"). A signature it assigns: any passes.
                v = d.get(kind[1])
                if type(v) is not str:
                    if kind is not _SIGNATURE:
                        raise TypeError(v)
                    v = str(v or "")
                elif self.tool_checks and kind is _INPUT_JSON:
                    check = self.tool_checks.get(i)
                    if check is not None and not check.feed(v):
                        raise invalid_tool_input("content_block_delta event")
                return [BlockDelta(i, kind[0], v)]  # type: ignore[arg-type]
            if t == "content_block_stop":
                i = int(obj["index"])
                if i not in self.started_blocks:
                    raise ValueError(i)
                self.tool_checks.pop(i, None)
                return [BlockStop(i)]
            if t == "message_delta":
                if not self.started:  # the anthropic SDK fails on any event before message_start (AssertionError)
                    raise ValueError(t)
                d = obj.get("delta") or {}
                self.stop_seen = True
                seq = d.get("stop_sequence")
                return [MessageDelta(stop_reason_in(d.get("stop_reason")) or "end_turn", usage_in(obj.get("usage")),
                                     seq if isinstance(seq, str) else None)]
            if t == "message_stop":
                if not self.started:
                    raise ValueError(t)
                self.ended = True
                return [MessageStop()]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UpstreamError(f"upstream sent a malformed {t} event", retryable=not self.started) from None
        if t == "error" or sse_event == "error":
            # Anthropic nests the error under "error"; llama-server sends its own object as the data.
            detail = obj.get("error") if isinstance(obj.get("error"), dict) else obj
            self.error = upstream_error(detail, started=False)
            if not self.started:
                raise self.error  # nothing reached the client yet: let a fallback take over
            err = upstream_error(detail, started=True)
            self.ended = True  # the upstream closes after an error; finish() must not add another
            return [StreamError(err.kind, err.message)]
        return []  # ping and unknown event types

    def finish(self) -> list[StreamChunk]:
        if self.ended:
            return []
        if self.stop_seen:  # a server that ends without message_stop
            self.ended = True
            return [StreamChunk([MessageStop()], None, FORMAT)]
        raise UpstreamError("upstream stream ended early", retryable=True)


class StreamEncoder:
    """Canonical events → Anthropic SSE for a client.

    Anthropic clients place blocks by `index` into the message's content list, so indices are
    renumbered 0, 1, 2 … in the order blocks start, whatever the producer used.
    """

    def __init__(self, model: str, request: Request) -> None:
        self.model = model
        self.id = new_message_id()
        self.started = False
        self.index: dict[int, int] = {}
        self.open: set[int] = set()
        self.delta_sent = False
        self.stopped = False
        # Each open tool_use block's argument pieces and their check: a piece is passed on while the text
        # can still begin a JSON object (the anthropic SDK raises in the caller's code on one that cannot);
        # the block's end closes what was sent into an object (wire/json_prefix.py).
        self.tool_args: dict[int, tuple[ObjectPrefix, list[str]]] = {}
        self.checked = [MAX_CHECKED]  # the characters their checks may still read, this stream
        self.resumed = False

    def resume(self) -> None:
        """Continue a stream whose opening and message_delta went to the client as the upstream sent them
        (server/stream_relay.py: the decoder adds only the end a server left out)."""
        self.resumed = self.started = self.delta_sent = True

    def _start(self, usage: Usage | None = None) -> bytes:
        if self.started:
            return b""
        self.started = True
        u = usage or Usage()
        message: dict[str, Any] = {"id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": usage_out(u)}
        return (event_message("message_start", {"type": "message_start", "message": message})
                + event_message("ping", {"type": "ping"}))

    def _block_start(self, index: int, block: Block) -> bytes:
        if isinstance(block, TextBlock):
            cb: dict[str, Any] | None = text_out(block)
        elif isinstance(block, ToolUseBlock):
            cb = {"type": "server_tool_use" if block.server else "tool_use", "id": block.id, "name": block.name,
                  "input": {}}
        else:
            cb = response_block_out(block)
        if cb is None:
            return b""
        out = len(self.index)
        self.index[index] = out
        self.open.add(out)
        if isinstance(block, ToolUseBlock):
            self.tool_args[out] = (ObjectPrefix(budget=self.checked), [])
        return event_message("content_block_start", {"type": "content_block_start", "index": out,
                                                     "content_block": cb})

    def _close_all(self) -> bytes:
        return b"".join(self._block_stop(i) for i in sorted(self.open))

    def _block_stop(self, out: int) -> bytes:
        self.open.discard(out)
        pre = b""
        held = self.tool_args.pop(out, None)
        if held is not None:
            rest = held[0].completion("".join(held[1]))
            if rest:
                pre = event_message("content_block_delta", {"type": "content_block_delta", "index": out,
                                                            "delta": {"type": "input_json_delta", "partial_json": rest}})
        return pre + event_message("content_block_stop", {"type": "content_block_stop", "index": out})

    def _delta(self, ev: BlockDelta) -> bytes:
        pre = b""
        if ev.index not in self.index:  # a delta for a block nobody started: start one of its kind
            start: Block = ThinkingBlock("") if ev.delta_type in ("thinking", "signature") else TextBlock("")
            if ev.delta_type == "input_json":
                return b""  # no id or name to start a tool_use block with
            pre = self._block_start(ev.index, start)
        out = self.index[ev.index]
        if out not in self.open:
            return pre
        if self.tool_args:
            held = self.tool_args.get(out)
            if held is not None and ev.delta_type == "input_json":
                held[1].append(ev.value)
                if not held[0].feed(ev.value):
                    return pre  # held: the block's end sends what makes the arguments an object
        dtype, field = _DELTA_OUT[ev.delta_type]
        return pre + event_message("content_block_delta", {"type": "content_block_delta", "index": out,
                                                           "delta": {"type": dtype, field: ev.value}})

    def _message_delta(self, ev: MessageDelta) -> bytes:
        self.delta_sent = True
        u = ev.usage
        usage: dict[str, Any] = {"output_tokens": u.output_tokens}
        if u.input_tokens:
            usage["input_tokens"] = u.input_tokens
        if u.cache_read_tokens:
            usage["cache_read_input_tokens"] = u.cache_read_tokens
        if u.cache_write_tokens:
            usage["cache_creation_input_tokens"] = u.cache_write_tokens
        return self._close_all() + event_message("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": stop_reason_out(ev.stop_reason),
                                               "stop_sequence": ev.stop_sequence}, "usage": usage})

    def encode(self, ev: StreamEvent) -> bytes:
        if self.stopped:
            return b""
        if isinstance(ev, MessageStart):
            return self._start(ev.usage)
        if isinstance(ev, StreamError):
            return self.encode_error(TierwiseError(ev.message, kind=ev.error_type))
        pre = self._start()
        if isinstance(ev, BlockDelta):
            return pre + self._delta(ev)
        if isinstance(ev, BlockStart):
            return pre + self._block_start(ev.index, ev.block)
        if isinstance(ev, BlockStop):
            out = self.index.get(ev.index)
            return pre + (self._block_stop(out) if out is not None and out in self.open else b"")
        if isinstance(ev, MessageDelta):
            return pre + self._message_delta(ev)
        if isinstance(ev, MessageStop):
            if not self.delta_sent:
                pre += self._message_delta(MessageDelta("end_turn"))
            self.stopped = True
            return pre + event_message("message_stop", {"type": "message_stop"})
        if isinstance(ev, Ping):
            return pre + event_message("ping", {"type": "ping"})
        return pre

    def encode_error(self, err: TierwiseError) -> bytes:
        return event_message("error", error_object(err))
