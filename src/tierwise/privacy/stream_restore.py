"""Restore stand-ins in a streamed answer, where a placeholder may be split across chunks.

Two layers:

- `BlockRestorer` works on the plain string deltas of one content block. `push(delta)` returns
  the text that is safe to send now; it holds back only a tail that is (or could still grow
  into) a stand-in: a partial match of the Pseudonymizer's pattern that reaches the end of
  what was received, or a complete one touching the end (`PERSON_1` may still become
  `PERSON_12`, `<PERSON_1` may still get its `>`). The held tail is never longer than
  `Pseudonymizer.max_match_len` (the longest issued stand-in or mangled placeholder form).
  `finish()` flushes it. Concatenating every output equals `restore()` of the whole text.
  In JSON mode (tool-call argument deltas, which are raw JSON text) a restored value is
  escaped for a JSON string, so quotes and backslashes in the original keep the JSON valid.

- `StreamRestorer` applies that to canonical stream events (`tierwise.canonical`): a restorer
  per block index (text and thinking deltas as text, `input_json` deltas in JSON mode),
  signature deltas untouched, held text flushed as an extra delta just before the block's
  `BlockStop` (or before `MessageDelta` / `MessageStop` / `StreamError` if a block was never
  stopped). Deltas whose whole text was held back are dropped unless they carry logprobs.
  `restore_chunk` rewrites a `StreamChunk` and drops its raw bytes, since those hold the
  placeholders.

The event layer was chosen (over per-format SSE text) because every wire format maps onto the
canonical events, so one implementation serves OpenAI and Anthropic clients alike.
"""

from __future__ import annotations

import json
from dataclasses import replace

import regex

from tierwise.canonical import (
    BlockDelta,
    BlockStart,
    BlockStop,
    MessageDelta,
    MessageStop,
    StreamChunk,
    StreamError,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)
from tierwise.privacy.redact import CLOSE, MAX_INNER_SPACE, SPACES, Pseudonymizer
from tierwise.privacy.redact_canonical import restore_block

_CLOSE_TAIL = regex.compile(rf"{SPACES}{CLOSE}")
_TAIL_MAX = MAX_INNER_SPACE + 6


class BlockRestorer:
    """Incremental `restore` over one block's string deltas."""

    __slots__ = ("_p", "_pat", "_json", "_pending", "_ctx")

    def __init__(self, p: Pseudonymizer, json_mode: bool = False) -> None:
        self._p = p
        self._pat = p.pattern()
        self._json = json_mode
        self._pending = ""
        self._ctx = ""  # the last emitted characters: what the placeholder lookbehind may look at

    @property
    def held(self) -> int:
        """How many characters are currently held back."""
        return len(self._pending)

    def push(self, delta: str) -> str:
        pat = self._pat
        if pat is None:
            return delta
        ctx = self._ctx
        buf = ctx + self._pending + delta
        base = len(ctx)
        n = len(buf)
        cut = n
        for m in pat.finditer(buf, base, partial=True):
            end = m.end()
            if end == n and m.start() < n:  # still incomplete, or complete but could grow
                cut = m.start()
                break
            if n - end <= _TAIL_MAX and _could_close(m, buf, end):
                # `< PERSON_1 ` may still get its `>`: the engine prefers the shorter full match.
                cut = m.start()
                break
        self._pending = buf[cut:]
        if cut == base:
            return ""
        return self._restore(buf, base, cut)

    def finish(self) -> str:
        if not self._pending:
            return ""
        buf = self._ctx + self._pending
        self._pending = ""
        return self._restore(buf, len(self._ctx), len(buf))

    def _restore(self, buf: str, start: int, end: int) -> str:
        p = self._p
        out: list[str] = []
        pos = start
        # Scan the whole buffer, not a slice: a lookahead at `end` must see the held text
        # (`PERSON_1` followed by a held `2...` is not `PERSON_1`). No match straddles `end`.
        for m in self._pat.finditer(buf, start):  # type: ignore[union-attr]
            if m.start() >= end:
                break
            orig = p.original_for(m)
            if orig is None:
                continue
            out.append(buf[pos : m.start()])
            out.append(orig if not self._json else _json_escape(orig))
            pos = m.end()
        out.append(buf[pos:end])
        # Raw context for the lookbehind (a letter, an escape like `\n`, or `\u003c`: 6 chars).
        self._ctx = buf[max(0, end - 6) : end]
        return "".join(out)


def _could_close(m: regex.Match[str], buf: str, end: int) -> bool:
    """True when a placeholder match has no closing bracket and the text after it, up to the
    end of what was received, could still grow into spaces + a closing bracket."""
    if "c" not in m.re.groupindex or m.group("e") is None or m.group("c") is not None:
        return False
    return _CLOSE_TAIL.fullmatch(buf, end, partial=True) is not None


def _json_escape(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


_DELTA_FOR_BLOCK = {TextBlock: "text", ThinkingBlock: "thinking", ToolUseBlock: "input_json"}


class StreamRestorer:
    """Restores stand-ins event by event over a canonical stream."""

    __slots__ = ("_p", "_blocks")

    def __init__(self, p: Pseudonymizer) -> None:
        self._p = p
        self._blocks: dict[int, tuple[str, BlockRestorer]] = {}

    def _open(self, index: int, delta_type: str) -> BlockRestorer:
        r = BlockRestorer(self._p, json_mode=delta_type == "input_json")
        self._blocks[index] = (delta_type, r)
        return r

    def _flush(self, index: int) -> list[StreamEvent]:
        entry = self._blocks.pop(index, None)
        if entry is None:
            return []
        delta_type, r = entry
        tail = r.finish()
        return [BlockDelta(index, delta_type, tail)] if tail else []  # type: ignore[arg-type]

    def flush_all(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for index in sorted(self._blocks):
            out.extend(self._flush(index))
        return out

    def feed(self, event: StreamEvent) -> list[StreamEvent]:
        """The events to send in place of `event` (none, one, or flushed text plus the event)."""
        if self._p.empty:
            return [event]
        if isinstance(event, BlockDelta):
            if event.delta_type == "signature":
                return [event]
            entry = self._blocks.get(event.index)
            r = entry[1] if entry is not None else self._open(event.index, event.delta_type)
            text = r.push(event.value)
            if not text and not event.logprobs:
                return []
            return [replace(event, value=text)]
        if isinstance(event, BlockStart):
            self._flush(event.index)  # a reused index without a stop: nothing sensible to keep
            delta_type = _DELTA_FOR_BLOCK.get(type(event.block))
            if delta_type is not None:
                self._open(event.index, delta_type)
                return [replace(event, block=restore_block(self._p, event.block))]
            return [event]
        if isinstance(event, BlockStop):
            return [*self._flush(event.index), event]
        if isinstance(event, MessageDelta | MessageStop | StreamError):
            return [*self.flush_all(), event]
        return [event]

    def restore_chunk(self, chunk: StreamChunk) -> StreamChunk:
        """`chunk` with its events restored; the raw bytes are dropped (they hold placeholders)."""
        if self._p.empty:
            return chunk
        events: list[StreamEvent] = []
        for e in chunk.events:
            events.extend(self.feed(e))
        return StreamChunk(events=events, raw=None, raw_format=None)
