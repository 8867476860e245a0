"""OpenAI Chat Completions SSE streams: an upstream's chat.completion.chunk events → canonical
(`StreamDecoder`), and canonical events → a client's stream (`StreamEncoder`).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from tierwise.canonical import (
    BlockDelta,
    BlockStart,
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    Request,
    StopReason,
    StreamChunk,
    StreamError,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
)
from tierwise.errors import TierwiseError, UpstreamError
from tierwise.providers.error_classes import body_error
from tierwise.tokens import text_units
from tierwise.wire.json_prefix import MAX_CHECKED, ObjectPrefix
from tierwise.wire.openai_chat.response import (
    FINISH_TO_STOP,
    FORMAT,
    STOP_TO_FINISH,
    content_chunks,
    error_object,
    logprobs_in,
    logprobs_out,
    matched_stop,
    new_completion_id,
    usage_in,
    usage_out,
)
from tierwise.wire.openai_chat.side_calls import SideCalls
from tierwise.wire.sse import SSEParser, data_message

MAX_TOOL_NAME = 1024  # longest tool name taken from a stream's pieces
MAX_CALLS = 4096  # tool calls in one answer (each costs a few hundred bytes of state here, from ~40 upstream bytes)
HELD_CALL_COST, HELD_PIECE_COST = 256, 64  # what a waiting call and each of its pieces cost beyond their text
REUSED = 1 << 48  # positions of calls that came at an index another call had (above any server's own numbers)


class StreamDecoder:
    """OpenAI chat.completion.chunk SSE from an upstream → canonical events."""

    def __init__(self) -> None:
        self.parser = SSEParser()
        self.started = False
        self.open: int | None = None  # index of the open block
        self.open_kind: str | None = None
        self.next_index = 0
        self.tools: dict[int, int] = {}
        self.tool_ids: dict[str, int] = {}  # tool-call id -> its position, for servers that omit `index`
        self.call_ids: dict[int, str] = {}  # position -> the id its call started with
        self.reused: dict[int, int] = {}  # an `index` a server gave a second call -> that call's position
        # The highest position of a call so far (a piece naming no call continues it): review35b, it was read as
        # max() over every call's position at each such piece, 75 us a piece behind 4,000 calls
        self.top: int | None = None
        self.places: dict[int, int] = {}  # a call's position -> its place in the answer's calls (0, 1, 2 …)
        self.names: dict[int, str] = {}  # a started call's position -> its name (to drop a repeated one, wire13)
        self.side_calls: dict[Any, SideCalls] | None = None  # choices past the first: their calls' places (wire13)
        self.side_budget = [MAX_CALLS]  # the calls those may hold, all choices together
        self.renumbered = False  # the chunk being read had a call's `index` set to its place (relayed re-serialised)
        # Calls not started as a block yet, in order of arrival: position -> [id, name, argument pieces]. A call
        # starts (then streamed live) with its first argument piece, once every call before it has started and
        # the open one's arguments are a whole object; else it waits, at worst to the answer's end. OpenAI's
        # deltas name their call by `index`, so a server may interleave two calls' pieces (0, 1, 0) and stream a
        # name in pieces ("fo", "o"): canonical blocks are whole and in order, so a block ended when the next
        # call began lost the later pieces (Anthropic and Responses clients got `write_file({})`), and a block
        # started on a name's first piece kept only that piece.
        self.held: dict[int, list[Any]] = {}
        # What the waiting calls hold (their text and the objects that keep it): at most the provider's
        # `max_stream_event_bytes` (`parser.max_event`), as one event is. They were bounded only by the whole
        # stream's size (64 MB of pieces; the objects of a call opened at a new index in every ~40 bytes cost ten
        # times their bytes).
        self.held_cost = 0
        self.live_args: list[str] = []  # the open call's argument pieces (until another call waits)
        self.live_prefix: ObjectPrefix | None = None  # then: whether they are a whole object yet
        self.checked = [MAX_CHECKED]  # the characters those checks may still read, this stream
        self.stop: StopReason | None = None
        self.stop_sequence: str | None = None
        self.usage = Usage()
        self.ended = False
        self.delta_sent = False
        # The error the upstream reported, as it would be had it come first (the relay raises it when
        # nothing of the stream has reached the client yet).
        self.error: UpstreamError | None = None
        # Choices past the first (`n > 1`) make no events; a relay that checks them (structured output,
        # wire/strict_output.py) sets this list and gets (index, text piece, finish_reason, made a tool call).
        self.side: list[tuple[Any, str, Any, bool]] | None = None
        # Their characters (content and tool arguments): billed, and counted by the relay when the upstream reports
        # no usage (the first choice's alone were, before session 31, costs3: `n: 3` spent 2.95x a budget)
        self.other_chars = 0

    def _close(self, ev: list[StreamEvent]) -> None:
        if self.open is not None:
            ev.append(BlockStop(self.open))
            self.open = None
            self.open_kind = None
            self.live_args, self.live_prefix = [], None

    def _ensure(self, kind: str, ev: list[StreamEvent]) -> int:
        if self.open is not None and self.open_kind == kind:
            return self.open
        self._close(ev)
        idx = self.next_index
        self.next_index += 1
        ev.append(BlockStart(idx, TextBlock("") if kind == "text" else ThinkingBlock("")))
        self.open, self.open_kind = idx, kind
        return idx

    def _live_done(self) -> bool:
        """Whether the open call's arguments are a whole JSON object (or cannot begin one): nothing more of it
        may come. Read only when another call waits behind it; then fed piece by piece."""
        p = self.live_prefix
        if p is None:
            p = self.live_prefix = ObjectPrefix(budget=self.checked)
            p.feed("".join(self.live_args))
            self.live_args = []
        return not p.ok or (p.expect == "done" and not p.token)

    def _promote(self, ev: list[StreamEvent]) -> None:
        """Start held calls as blocks, in order of arrival, while each has its first argument piece (its name
        is whole by then) and the call open before it is complete (its later pieces would be lost)."""
        while self.held:
            ti, (tid, name, args) = next(iter(self.held.items()))
            if not args or (self.open_kind == "tool" and not self._live_done()):
                return
            del self.held[ti]
            self.held_cost -= HELD_CALL_COST + sum(len(a) for a in args) + HELD_PIECE_COST * len(args)
            self._close(ev)
            idx = self.next_index
            self.next_index += 1
            self.tools[ti] = idx
            self.names[ti] = name
            ev.append(BlockStart(idx, ToolUseBlock(tid or f"call_{ti}", name, {})))
            ev.append(BlockDelta(idx, "input_json", "".join(args)))
            self.open, self.open_kind = idx, "tool"
            self.live_args, self.live_prefix = args, None

    def _drop_name(self, tc: dict[str, Any], ti: int) -> None:
        """Take out of `tc` (a piece that repeats call `ti`'s id) a name equal to the call's."""
        fn = tc.get("function")
        if type(fn) is dict and "name" in fn:
            h = self.held.get(ti)
            if fn["name"] == (h[1] if h is not None else self.names.get(ti)):
                del fn["name"]

    def _flush(self, ev: list[StreamEvent]) -> None:
        """End the open block, then every held call as a whole block (the answer's end: nothing more comes)."""
        self._close(ev)
        held, self.held = self.held, {}
        self.held_cost = 0
        for ti, (tid, name, args) in held.items():
            idx = self.next_index
            self.next_index += 1
            self.tools[ti] = idx
            self.names[ti] = name
            ev.append(BlockStart(idx, ToolUseBlock(tid or f"call_{ti}", name, {})))
            if args:
                ev.append(BlockDelta(idx, "input_json", "".join(args)))
            ev.append(BlockStop(idx))

    def _end(self, ev: list[StreamEvent]) -> None:
        self._flush(ev)
        if not self.delta_sent:
            ev.append(MessageDelta(self.stop or "end_turn", self.usage, self.stop_sequence))
            self.delta_sent = True
        ev.append(MessageStop())
        self.ended = True

    def feed(self, data: bytes) -> list[StreamChunk]:
        """The events of every complete message in `data`, as one chunk (its raw bytes the messages'
        bytes), except that an upstream error event comes as a chunk of its own without raw bytes."""
        out: list[StreamChunk] = []
        ev: list[StreamEvent] = []
        raws: list[bytes] = []
        for msg in self.parser.feed(data):
            if self.ended:
                # Nothing follows [DONE] (or an error): chunks a server sent after it (text, a tool call) reached
                # a Responses client as output items after `response.completed`, and a same-format client as
                # bytes after the end.
                break
            d = msg.data
            if d == b"[DONE]":
                if not self.started:
                    raise UpstreamError("upstream stream ended before it started", retryable=True)
                self._end(ev)
                raws.append(msg.raw)
                continue
            if not d:
                continue
            try:
                obj = orjson.loads(d)
            except orjson.JSONDecodeError:
                raise UpstreamError("upstream sent a stream chunk that is not valid JSON", retryable=True) from None
            if type(obj) is not dict:
                raise UpstreamError("upstream sent a stream chunk that is not an object", retryable=True)
            if "error" in obj and (obj["error"] or "choices" not in obj) or (
                    "choices" not in obj and msg.event == "error"):
                # (`event: error` without an `error` member too: relayed raw, its text went out unscrubbed;
                # and any chunk whose `error` is set, `choices` or not: the openai SDK raises on it, so one
                # relayed raw put the upstream's own text, its key, in the client's exception)
                self._failed(obj.get("error", obj), out, ev, raws)
                continue
            if self.open_kind == "text" and not self.ended:
                # The common case, a text delta and nothing else, without the general walk.
                choices = obj.get("choices")
                if type(choices) is list and len(choices) == 1 and type(choices[0]) is dict and not obj.get("usage"):
                    ch = choices[0]
                    delta = ch.get("delta")
                    if (type(delta) is dict and len(delta) == 1 and ch.get("finish_reason") is None
                            and not ch.get("logprobs") and not ch.get("index")):
                        content = delta.get("content")
                        if type(content) is str:
                            if content:
                                ev.append(BlockDelta(self.open, "text", content))  # type: ignore[arg-type]
                            raws.append(msg.raw)
                            continue
            try:
                self._chunk(obj, ev)
            except _ChoiceFailed as f:
                # OpenRouter ends the choice with finish_reason "error" when the provider behind it fails
                # mid-answer (its error beside the choice, or inside it, or nowhere): relayed as sent, the
                # openai SDK handed its caller the half answer as a success.
                self._failed(obj.get("error") or f.choice.get("error") or
                             'the upstream ended the answer with finish_reason "error"', out, ev, raws)
                continue
            except (KeyError, IndexError, TypeError, AttributeError, ValueError):  # off the schema: not a crash
                raise UpstreamError("upstream sent a malformed stream chunk", retryable=True) from None
            if self.renumbered:
                self.renumbered = False
                raws.append(b"data: " + orjson.dumps(obj) + b"\n\n")
                continue
            raws.append(msg.raw)
        if raws:
            out.append(StreamChunk(ev, b"".join(raws) if len(raws) > 1 else raws[0], FORMAT))
        return out

    def _failed(self, err: Any, out: list[StreamChunk], ev: list[StreamEvent], raws: list[bytes]) -> None:
        """The upstream reported `err` inside its stream: raised when nothing of the stream came before it,
        else the events before it as one chunk and the error as a chunk of its own, which ends the stream."""
        self.error = body_error(err)  # classified by its `code` (OpenRouter: an HTTP status), scrubbed
        if not self.started:  # nothing reached the client yet: let a fallback take over
            raise self.error
        if raws:
            out.append(StreamChunk(ev[:], b"".join(raws), FORMAT))
            ev.clear()
            raws.clear()
        self.ended = True
        # Re-encoded by the gateway, never relayed raw: the upstream's error object need not follow the
        # client's schema.
        out.append(StreamChunk([StreamError(self.error.kind, self.error.message)], None, FORMAT))

    def _chunk(self, obj: dict[str, Any], ev: list[StreamEvent]) -> None:
        if not self.started:
            failed = _failed_choice(obj.get("choices"))
            if failed is not None:  # before anything started: nothing of this chunk to keep
                raise _ChoiceFailed(failed)
            self.started = True
            ev.append(MessageStart(str(obj.get("id") or new_completion_id()), str(obj.get("model") or "")))
        if obj.get("usage"):
            u = usage_in(obj["usage"], obj.get("timings"))
            self.usage = u
            if self.stop is not None and not obj.get("choices"):
                # The usage chunk follows the finish chunk: report it now, don't wait for [DONE].
                self._flush(ev)
                if not self.delta_sent:
                    ev.append(MessageDelta(self.stop, u, self.stop_sequence))
                    self.delta_sent = True
        for ch in obj.get("choices") or []:
            if not isinstance(ch, dict):
                continue
            fr = ch.get("finish_reason")
            if fr == "error":  # before its delta: the failed chunk adds nothing to the answer
                raise _ChoiceFailed(ch)
            if (ch.get("index") or 0) != 0:
                d = ch.get("delta")
                if type(d) is not dict:
                    continue
                c = d.get("content")
                if type(c) is str:
                    self.other_chars += text_units(c)
                elif type(c) is list:  # (wire14: chunks)
                    self.other_chars += sum(text_units(t) for _, t in content_chunks(c))
                r = d.get("reasoning_content") or d.get("reasoning")  # (uncounted before review31c)
                if type(r) is str:
                    self.other_chars += text_units(r)
                calls = d.get("tool_calls")
                if type(calls) is list and calls:
                    # (wire13) relayed by their places in the choice, as the first choice's are
                    if self.side_calls is None:
                        self.side_calls = {}
                    sc = self.side_calls.get(ch["index"])
                    if sc is None:
                        sc = self.side_calls[ch["index"]] = SideCalls()
                    for tc in calls:
                        if sc.place(tc, self.side_budget):
                            self.renumbered = True
                        f = tc.get("function") if type(tc) is dict else None
                        a = f.get("arguments") if type(f) is dict else None
                        if type(a) is str:
                            self.other_chars += text_units(a)
                if self.side is not None:
                    self.side.append((ch["index"], c if type(c) is str else "", fr, bool(calls)))
                continue
            delta = ch.get("delta") or {}
            if "reasoning_content" in delta or "reasoning" in delta:
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if isinstance(reasoning, str) and reasoning:
                    idx = self._ensure("thinking", ev)
                    ev.append(BlockDelta(idx, "thinking", reasoning))
            content = delta.get("content")
            if isinstance(content, str) and content:
                idx = self._ensure("text", ev)
                lp = ch.get("logprobs")
                ev.append(BlockDelta(idx, "text", content, logprobs=logprobs_in(lp) if lp else None))
            elif type(content) is list:  # (wire14) chunks: Mistral's reasoning models
                for kind, text in content_chunks(content):
                    ev.append(BlockDelta(self._ensure(kind, ev), kind, text))  # type: ignore[arg-type]
            for tc in delta.get("tool_calls") or ():
                ti = tc.get("index")
                tid = tc.get("id")
                if type(ti) is not int:
                    # Some servers (Gemini's OpenAI endpoint) send each call whole and without
                    # `index`: a new id is a new call, anything else continues the last one.
                    last = 0 if self.top is None else self.top
                    if isinstance(tid, str) and tid and tid not in self.tool_ids:
                        ti = len(self.tools) + len(self.held)
                    else:
                        ti = self.tool_ids.get(tid, last) if isinstance(tid, str) else last
                    given = None
                else:
                    given = ti
                    if self.reused:
                        ti = self.reused.get(ti, ti)
                        if isinstance(tid, str) and tid in self.tool_ids:
                            # (review35b) A server that reuses an index names a piece by its call's id: a later
                            # piece of an earlier call at that index went to the index's latest call (its arguments
                            # joined the wrong call, for both SDKs). Its id says whose it is; relayed without the id
                            # again (the openai SDK joins a repeated id to the call's: `call_acall_a`).
                            ti = self.tool_ids[tid]
                            if ti in self.tools or ti in self.held:
                                del tc["id"]
                                tid = None
                                self.renumbered = True
                                self._drop_name(tc, ti)
                fn = tc.get("function") or {}
                if isinstance(tid, str) and tid and (ti in self.tools or ti in self.held) and \
                        self.call_ids.get(ti, tid) != tid and fn.get("name"):
                    # A new id and a name at the index of a call already started: another call. Ollama numbers
                    # every call of a stream 0 (ollama/ollama#15457, #15497): the second call's arguments were added
                    # to the first's (`{"a": 1}{"b": 2}`), or the call was dropped, for Anthropic and Responses
                    # clients. A new id without a name continues the call: some servers give one call's later
                    # pieces another id (poolsideai/pool#9, mlx-openai-server before its PR #216).
                    known = self.tool_ids.get(tid)
                    if known is None:
                        known = REUSED + len(self.tools) + len(self.held)
                        if given is not None:
                            self.reused[given] = known  # what comes next at that index continues this call
                    ti = known
                if isinstance(tid, str) and tid:
                    if self.call_ids.get(ti) == tid and (ti in self.tools or ti in self.held):
                        # (wire13) A server that repeats a call's header on every piece: the openai SDK joins every
                        # repeated string of a delta (the caller got `id == "call_acall_a"`, `name == "ff"`, and the
                        # next turn named no call); relayed once. Its name, repeated, was joined here too while the
                        # call waited (an Anthropic client got `ff`).
                        del tc["id"]
                        self.renumbered = True
                        self._drop_name(tc, ti)
                    else:
                        self.tool_ids.setdefault(tid, ti)
                        if self.call_ids.setdefault(ti, tid) != tid and (ti in self.tools or ti in self.held):
                            # (review36b) Another id on a started call's later piece (no name: the servers above)
                            # continues the call, and is relayed without it: the openai SDK joined the two
                            # (`call_acall_b`), and the next turn named no call.
                            del tc["id"]
                            self.renumbered = True
                # (wire12) The bytes a same-format client gets name each call by its place, 0, 1, 2 …: the openai
                # SDK's stream helper indexes its list of calls by `index`, so a server's own numbers (from 1, -1,
                # gaps, none, or 0 for every call) relayed as sent raised IndexError/RuntimeError in the caller's
                # code or joined two calls' arguments. The chunk is then relayed re-serialised (`renumbered`).
                place = self.places.get(ti)
                if place is None:
                    place = self.places[ti] = len(self.places)
                if given != place:  # (None when the server gave no integer)
                    tc["index"] = place
                    self.renumbered = True
                args = fn.get("arguments")
                if not (args and isinstance(args, str)):
                    args = None
                if ti in self.tools:
                    if args is not None:
                        idx = self.tools[ti]
                        ev.append(BlockDelta(idx, "input_json", args))
                        if idx == self.open:
                            if self.live_prefix is not None:
                                self.live_prefix.feed(args)
                            else:
                                self.live_args.append(args)
                            if self.held:  # the open call may be complete now: the next may start
                                self._promote(ev)
                    continue
                # Any number names a call: servers number them from 1 (Claude behind OpenAI-compatible
                # proxies), -1 (GLM, Bedrock gateways) or with gaps; the canonical blocks are numbered here,
                # so a translated stream is always 0, 1, 2 … (a pass-through relays the server's own numbers).
                h = self.held.get(ti)
                if h is None:
                    if len(self.tools) + len(self.held) >= MAX_CALLS:
                        raise UpstreamError(f"upstream streamed more than {MAX_CALLS} tool calls in one answer")
                    h = self.held[ti] = ["", "", []]
                    if self.top is None or ti > self.top:
                        self.top = ti
                    self.held_cost += HELD_CALL_COST
                if not h[0] and isinstance(tid, str):
                    h[0] = tid
                name = fn.get("name")
                if isinstance(name, str):
                    if len(h[1]) + len(name) > MAX_TOOL_NAME:
                        # (names are at most 64 characters in OpenAI's API, 128 in Anthropic's: a name streamed in
                        # endless pieces was joined again at every piece, 28 s of the event loop for 14 MB)
                        raise UpstreamError(f"upstream streamed a tool name longer than {MAX_TOOL_NAME} characters")
                    h[1] += name
                if args is not None:
                    h[2].append(args)
                    self.held_cost += len(args) + HELD_PIECE_COST
                    self._promote(ev)
                if self.held_cost > self.parser.max_event:
                    raise UpstreamError(f"upstream held more than {self.parser.max_event} bytes of tool calls behind "
                                        "an unfinished one (max_stream_event_bytes)")
            if fr:
                self.stop = FINISH_TO_STOP.get(fr, "end_turn")
                if (self.tools or self.held) and self.stop == "end_turn":
                    self.stop = "tool_use"
                self.stop_sequence = matched_stop(ch, self.stop)
                if self.stop_sequence is not None:
                    self.stop = "stop_sequence"
                self._flush(ev)

    def finish(self) -> list[StreamChunk]:
        if self.ended:
            return []
        if self.stop is not None:  # a server that ends without [DONE]
            ev: list[StreamEvent] = []
            self._end(ev)
            return [StreamChunk(ev, None, FORMAT)]
        raise UpstreamError("upstream stream ended early", retryable=True)


class _ChoiceFailed(Exception):
    """A choice of the chunk ended with finish_reason "error"."""

    def __init__(self, choice: dict[str, Any]) -> None:
        self.choice = choice


def _failed_choice(choices: Any) -> dict[str, Any] | None:
    """The choice that ended with finish_reason "error", if any."""
    if type(choices) is list:
        for ch in choices:
            if type(ch) is dict and ch.get("finish_reason") == "error":
                return ch
    return None


class StreamEncoder:
    """Canonical events → OpenAI chat.completion.chunk SSE for a client."""

    def __init__(self, model: str, request: Request) -> None:
        self.model = model
        self.id = new_completion_id()
        self.created = int(time.time())
        so = request.extra.get("stream_options")
        self.include_usage = isinstance(so, dict) and bool(so.get("include_usage"))
        self.tool_ordinal: dict[int, int] = {}
        self.tool_args_sent: set[int] = set()  # block indexes of tool calls with some argument text
        self.usage = Usage()
        self.started = False
        self.resumed = False

    def resume(self) -> None:
        """Continue a stream whose chunks went to the client as the upstream sent them (server/stream_relay.py):
        no second opening, and no usage chunk of the encoder's own (it saw none of the upstream's)."""
        self.resumed = self.started = True
        self.include_usage = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> bytes:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        if logprobs is not None:
            choice["logprobs"] = logprobs
        return data_message({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                             "model": self.model, "choices": [choice]})

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        return self._chunk({"role": "assistant", "content": ""})

    def encode(self, ev: StreamEvent) -> bytes:
        k = ev.kind
        if k == "block_delta":
            assert isinstance(ev, BlockDelta)
            pre = self._start()
            if ev.delta_type == "text":
                return pre + self._chunk({"content": ev.value}, logprobs=logprobs_out(ev.logprobs))
            if ev.delta_type == "input_json":
                ordinal = self.tool_ordinal.get(ev.index)
                if ordinal is None or not ev.value:
                    return pre
                self.tool_args_sent.add(ev.index)
                return pre + self._chunk({"tool_calls": [{"index": ordinal, "function": {"arguments": ev.value}}]})
            if ev.delta_type == "thinking":
                return pre + self._chunk({"reasoning_content": ev.value})
            return pre
        if k == "message_start":
            assert isinstance(ev, MessageStart)
            self.usage.take_prompt(ev.usage)
            return self._start()
        if k == "block_start":
            assert isinstance(ev, BlockStart)
            b = ev.block
            pre = self._start()
            if isinstance(b, ToolUseBlock) and not b.server:
                ordinal = len(self.tool_ordinal)
                self.tool_ordinal[ev.index] = ordinal
                return pre + self._chunk({"tool_calls": [{"index": ordinal, "id": b.id, "type": "function",
                                                          "function": {"name": b.name, "arguments": ""}}]})
            if isinstance(b, TextBlock) and b.text:
                return pre + self._chunk({"content": b.text})
            return pre
        if k == "message_delta":
            assert isinstance(ev, MessageDelta)
            self.usage.restate(ev.usage)
            return self._start() + self._chunk({}, STOP_TO_FINISH.get(ev.stop_reason or "end_turn", "stop"))
        if k == "message_stop":
            out = self._start()
            if self.include_usage:
                out += data_message({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                     "model": self.model, "choices": [], "usage": usage_out(self.usage)})
            return out + b"data: [DONE]\n\n"
        if k == "error":
            assert isinstance(ev, StreamError)
            return self.encode_error(TierwiseError(ev.message, kind=ev.error_type))
        if isinstance(ev, BlockStop):
            ordinal = self.tool_ordinal.get(ev.index)
            if ordinal is not None and ev.index not in self.tool_args_sent:
                # Anthropic streams a call without input as one empty piece; OpenAI clients
                # parse `arguments`, and "" is not JSON: send the empty object.
                self.tool_args_sent.add(ev.index)
                return self._chunk({"tool_calls": [{"index": ordinal, "function": {"arguments": "{}"}}]})
            return b""
        return b""

    def encode_error(self, err: TierwiseError) -> bytes:
        return data_message(error_object(err))
