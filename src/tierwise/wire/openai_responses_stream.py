"""Canonical stream events → the OpenAI Responses API's streaming events, one at a time.

The sequence the official SDK and Codex read: `response.created`, `response.in_progress`, then
per output item `response.output_item.added`, its content (`response.content_part.added`,
`response.output_text.delta`…`.done`, `response.content_part.done`; for function calls
`response.function_call_arguments.delta`…`.done`; for reasoning `response.reasoning_text.*`),
`response.output_item.done`, and at the end `response.completed` (or `response.incomplete`)
with the whole response and its usage. Every event carries a `sequence_number`. A failure
mid-stream is an `error` event followed by `response.failed`.

Nothing is buffered beyond what the final `response.completed` must repeat (each item's text).
"""

from __future__ import annotations

from typing import Any

import orjson

from tierwise.canonical import (
    BlockDelta,
    BlockStart,
    MessageDelta,
    MessageStart,
    RedactedThinkingBlock,
    StopReason,
    StreamError,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
)
from tierwise.errors import TierwiseError
from tierwise.wire.openai_responses import (
    REDACTED_PREFIX,
    Exchange,
    call_item,
    error_object,
    item_id,
    message_item,
    reasoning_item,
)


class _Item:
    __slots__ = ("kind", "output_index", "id", "parts", "signature", "call_id", "name", "prefix")

    def __init__(self, kind: str, output_index: int, iid: str) -> None:
        self.kind = kind
        self.output_index = output_index
        self.id = iid
        self.parts: list[str] = []
        self.signature: str | None = None
        self.call_id = ""
        self.name = ""
        self.prefix = b""


class ResponsesStreamEncoder:
    def __init__(self, exchange: Exchange, model: str) -> None:
        self.x = exchange
        self.model = model
        self.seq = 0
        self.started = False
        self.open: dict[int, _Item] = {}  # canonical block index → its output item
        self.output: list[dict[str, Any]] = []
        self.usage = Usage()
        self.stop: StopReason | None = None
        self.finished = False

    # ------------------------------------------------------------------ framing

    def _event(self, etype: str, payload: dict[str, Any]) -> bytes:
        payload["type"] = etype
        payload["sequence_number"] = self.seq
        self.seq += 1
        return b"event: " + etype.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        snap = orjson.dumps(self.x.response_object("in_progress", self.model, [], None))
        out = []
        for etype in ("response.created", "response.in_progress"):  # one snapshot, serialised once
            out.append(b"".join((b"event: ", etype.encode(), b'\ndata: {"type":"', etype.encode(),
                                 b'","sequence_number":', str(self.seq).encode(), b',"response":', snap, b"}\n\n")))
            self.seq += 1
        return b"".join(out)

    # ------------------------------------------------------------------ events

    def encode(self, ev: StreamEvent) -> bytes:
        k = ev.kind
        if k == "block_delta":
            assert isinstance(ev, BlockDelta)
            it = self.open.get(ev.index)
            if it is None:
                return b""
            if ev.delta_type == "signature":
                it.signature = (it.signature or "") + ev.value
                return b""
            if not ev.value:
                return b""
            it.parts.append(ev.value)
            if it.kind == "message" and ev.delta_type == "text":
                # The hot event (one per token): its fixed part is built once per item.
                seq = self.seq
                self.seq += 1
                return b"".join((it.prefix, orjson.dumps(ev.value), b',"logprobs":[],"sequence_number":',
                                 str(seq).encode(), b"}\n\n"))
            if it.kind == "function_call" and ev.delta_type == "input_json":
                return self._event("response.function_call_arguments.delta", {
                    "item_id": it.id, "output_index": it.output_index, "delta": ev.value})
            if it.kind == "reasoning" and ev.delta_type == "thinking":
                return self._event("response.reasoning_text.delta", {
                    "item_id": it.id, "output_index": it.output_index, "content_index": 0, "delta": ev.value})
            it.parts.pop()
            return b""
        if k == "block_start":
            assert isinstance(ev, BlockStart)
            return self._start() + self._block_start(ev)
        if k == "block_stop":
            it = self.open.pop(ev.index, None)  # type: ignore[union-attr]
            return self._block_stop(it) if it is not None else b""
        if k == "message_start":
            assert isinstance(ev, MessageStart)
            self.usage.take_prompt(ev.usage)
            return self._start()
        if k == "message_delta":
            assert isinstance(ev, MessageDelta)
            self.stop = ev.stop_reason
            self.usage.restate(ev.usage)
            return b""
        if k == "message_stop":
            return self._finish()
        if k == "error":
            assert isinstance(ev, StreamError)
            return self.encode_error(TierwiseError(ev.message, kind=ev.error_type))
        return b""

    def _block_start(self, ev: BlockStart) -> bytes:
        b = ev.block
        out = len(self.output) + len(self.open)
        if isinstance(b, TextBlock):
            it = _Item("message", out, item_id("msg_"))
            it.prefix = (b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":"'
                         + it.id.encode() + b'","output_index":' + str(out).encode() + b',"content_index":0,"delta":')
            self.open[ev.index] = it
            data = self._event("response.output_item.added", {
                "output_index": out, "item": message_item(it.id, [], "in_progress")})
            data += self._event("response.content_part.added", {
                "item_id": it.id, "output_index": out, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
            if b.text:
                data += self.encode(BlockDelta(ev.index, "text", b.text))
            return data
        if isinstance(b, ThinkingBlock):
            it = _Item("reasoning", out, item_id("rs_"))
            it.signature = b.signature or None
            self.open[ev.index] = it
            data = self._event("response.output_item.added", {
                "output_index": out, "item": reasoning_item(it.id, None, None, "in_progress")})
            data += self._event("response.content_part.added", {
                "item_id": it.id, "output_index": out, "content_index": 0,
                "part": {"type": "reasoning_text", "text": ""}})
            if b.thinking:
                data += self.encode(BlockDelta(ev.index, "thinking", b.thinking))
            return data
        if isinstance(b, RedactedThinkingBlock):
            item = reasoning_item(item_id("rs_"), None, REDACTED_PREFIX + b.data, "completed")
            self.output.append(item)
            return (self._event("response.output_item.added", {"output_index": out, "item": item})
                    + self._event("response.output_item.done", {"output_index": out, "item": item}))
        if isinstance(b, ToolUseBlock) and not b.server:
            it = _Item("function_call", out, item_id("fc_"))
            it.call_id, it.name = b.id, b.name
            self.open[ev.index] = it
            data = self._event("response.output_item.added", {
                "output_index": out, "item": call_item(it.id, b.id, b.name, "", "in_progress", self.x.namespaces)})
            if b.input:  # a policy that re-streams a finished answer gives the arguments at the start
                data += self.encode(BlockDelta(ev.index, "input_json", orjson.dumps(b.input).decode()))
            return data
        return b""

    def _block_stop(self, it: _Item) -> bytes:
        text = "".join(it.parts)
        base = {"item_id": it.id, "output_index": it.output_index}
        if it.kind == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            item = message_item(it.id, [part], "completed")
            data = self._event("response.output_text.done", {**base, "content_index": 0, "text": text, "logprobs": []})
            data += self._event("response.content_part.done", {**base, "content_index": 0, "part": part})
        elif it.kind == "reasoning":
            item = reasoning_item(it.id, text, it.signature, "completed")
            data = self._event("response.reasoning_text.done", {**base, "content_index": 0, "text": text})
            data += self._event("response.content_part.done", {
                **base, "content_index": 0, "part": {"type": "reasoning_text", "text": text}})
        else:
            args = text or "{}"
            item = call_item(it.id, it.call_id, it.name, args, "completed", self.x.namespaces)
            data = self._event("response.function_call_arguments.done", {**base, "arguments": args})
        self.output.append(item)
        return data + self._event("response.output_item.done", {"output_index": it.output_index, "item": item})

    def _finish(self) -> bytes:
        if self.finished:
            return b""
        data = self._start()
        for idx in sorted(self.open):  # a block the upstream never closed
            data += self._block_stop(self.open.pop(idx))
        self.finished = True
        obj = self.x.response_object("completed", self.model, self.output, self.usage, self.stop)
        self.x.save(obj)
        etype = "response.completed" if obj["status"] == "completed" else "response.incomplete"
        return data + self._event(etype, {"response": obj})

    def encode_error(self, err: TierwiseError) -> bytes:
        if self.finished:
            return b""
        self.finished = True
        e = error_object(err)["error"]
        data = self._start() + self._event("error", {"code": e["code"] or e["type"], "message": e["message"],
                                                     "param": e["param"]})
        obj = self.x.response_object("failed", self.model, self.output, self.usage)
        obj["error"] = {"code": e["code"] or e["type"], "message": e["message"]}
        return data + self._event("response.failed", {"response": obj})
