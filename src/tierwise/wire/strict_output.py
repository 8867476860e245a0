"""Structured output: an answer the client asked to be JSON (OpenAI Chat `response_format` `json_schema` /
`json_object`, the Responses API's `text.format`, Anthropic's `output_config.format`) must be that JSON, and the
official SDKs hold the upstream to it. The openai SDK's `chat.completions.parse` validates the answer's text with
the client's pydantic model (`ValidationError` in the caller's code), `chat.completions.stream` parses the text
partially after every piece (`ValueError` on text that cannot begin JSON) and validates it whole when the choice
finishes or a tool call starts; `responses.parse`/`.stream` and the anthropic SDK's `messages.parse` the same.
OpenAI's and Anthropic's APIs constrain sampling to the schema; a local server without a grammar, or a model
that wraps the JSON in prose or a Markdown fence, does not.

So an answer that breaks the contract is the upstream's failure, class `invalid_output` (as strict tools' broken
arguments are, wire/strict_tools.py, whose design this follows): the route moves on to its next target, the
breaker does not count it, and a stream whose client already read part of the answer ends with its API's error
event, never with a piece its parser rejects. What is checked is what the client's API guarantees:

| asked for | the text must be |
|---|---|
| `json_schema` with `strict: true` (OpenAI Chat, Responses); Anthropic `output_config.format` (always constrained) | one JSON value that conforms to the schema |
| `json_schema` not strict; `json_object` | one JSON value (an object for `json_object`, and for a schema whose root is `type: object`) |

An answer cut by `max_tokens` is not judged (the SDKs raise their own `LengthFinishReasonError`), nor one that
called a tool instead of answering.

Streams: the pieces are checked as they come (wire/json_prefix.py), and two stretches are held back so the client
never reads what would be retracted: the stream's opening, until its first non-blank text piece has passed (a
model that starts with prose or a fence then fails before anything went up, and a route moves on to its next
target silently), and the text's end (OpenAI's finish chunk, which makes the SDK validate), until the stop reason
is known and the whole text has passed its schema. A thinking or tool block releases the opening (a reasoning
model's thoughts are not held).

The schema is the client's and the text the model's: the check runs off the event loop, bounded in work, with
cached validators (strict_tools._check, verifiers/json_check.py); string `format`s (`date-time`, `uuid`, …) are
checked as pydantic's JSON mode parses them, which is what `.parse` does (verifiers/json_formats.py). A schema
that is not JSON Schema, or a check that cannot finish, leaves the JSON check only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tierwise.canonical import Request, Response, StreamEvent, TextBlock, ToolUseBlock
from tierwise.errors import UpstreamError
from tierwise.wire.json_prefix import MAX_CHECKED, ObjectPrefix
from tierwise.wire.strict_tools import _schema_reason

_ANTHROPIC = "anthropic"  # wire/anthropic_messages/response.FORMAT (its structured outputs are always constrained)
_JUDGED = (None, "end_turn")  # stop reasons whose text is the whole answer


@dataclass(slots=True, frozen=True)
class Contract:
    """What a structured answer's text must be: an object (else any JSON value); `schema`: checked whole."""

    what: str  # for messages: "JSON Schema 'name'", "a JSON object", …
    object: bool
    schema: dict[str, Any] | None


def contract(req: Request) -> Contract | None:
    """The request's structured-output contract, or None (no response format, or `text`)."""
    rf = req.response_format
    if rf is None or rf.type == "text" or req.source_format is None:
        # (No client's SDK behind a request the gateway made itself: an ensemble agent's `output_schema` is checked
        # by its executor, which keeps the rejected answer in the run's artifact.)
        return None
    if rf.type == "json_object":
        return Contract("a JSON object", True, None)
    schema = rf.schema or None
    strict = rf.strict is True or req.source_format == _ANTHROPIC
    name = f"JSON Schema {rf.name[:64]!r}" if rf.name else "its JSON Schema"
    return Contract(name if strict else "JSON", schema is None or schema.get("type") == "object",
                    schema if strict else None)


def violation(provider: str, c: Contract, why: str) -> UpstreamError:
    return UpstreamError(f"provider {provider!r} wrote an answer that {why} (the request asked for structured "
                         f"output: {c.what})", retryable=False, error_class="invalid_output")


async def whole_reason(c: Contract, text: str) -> str | None:
    """Why a whole answer's text breaks the contract, or None."""
    if not text.strip():
        return "is empty"
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "is not JSON"
    if c.object and not isinstance(value, dict):
        return "is not a JSON object"
    if not c.schema:
        return None
    why = await _schema_reason(c.schema, value)
    return None if why is None else why.replace("do not match its schema", "does not match the schema")


async def answer_violation(provider: str, req: Request, resp: Response) -> UpstreamError | None:
    """A whole (non-streamed) answer's failure to honour the request's structured output, every choice."""
    c = contract(req)
    if c is None:
        return None
    choices = [(resp.content, resp.stop_reason), *((ch.content, ch.stop_reason) for ch in resp.extra_choices)]
    for content, stop in choices:
        if stop not in _JUDGED or any(isinstance(b, ToolUseBlock) for b in content):
            continue  # cut (the SDK raises LengthFinishReasonError), or a tool called instead of an answer
        why = await whole_reason(c, "".join(b.text for b in content if isinstance(b, TextBlock)))
        if why is not None:
            return violation(provider, c, why)
    return None


class _Other:
    """A choice past the first of an `n > 1` stream (no stream decoder makes events of it)."""

    __slots__ = ("prefix", "parts", "begun", "done")

    def __init__(self, any_value: bool, budget: list[int]) -> None:
        self.prefix = ObjectPrefix(any_value=any_value, budget=budget)
        self.parts: list[str] = []
        self.begun = self.done = False


class StructuredText:
    """Fed a stream's canonical events chunk by chunk (choice 0's: the ones a stream decoder makes), and, for
    `n > 1`, the other choices' pieces the OpenAI decoder puts in `side`: every choice is the client's answer
    (the SDK's stream helper parses each as it comes and validates each at its finish)."""

    def __init__(self, c: Contract, n: int = 1) -> None:
        self.contract = c
        self.checked = [MAX_CHECKED]  # the characters every choice's check may still read, this stream
        self.prefix = ObjectPrefix(any_value=not c.object, budget=self.checked)
        self.parts: list[str] = []
        self.text_blocks: set[int] = set()
        self.begun = False  # a non-blank text piece passed, or another kind of block began: the opening is released
        self.pending = False  # the text ended; judged once the stop reason is known
        self.judged = False
        self.side: list[tuple[Any, str, Any, bool]] = []
        self.others = {i: _Other(not c.object, self.checked) for i in range(1, min(n, 129))}
        self.waiting = len(self.others)  # other choices whose opening has not passed yet

    @property
    def holding(self) -> bool:
        """Must what came so far stay back from the client?"""
        return not self.begun or self.pending or self.waiting > 0

    def feed(self, events: list[StreamEvent]) -> tuple[str | None, list[tuple[str, str]]]:
        """(why a piece cannot begin the answer, or None; the whole texts to judge now, each with what names its
        choice in a reason: "" for the first)."""
        wholes: list[tuple[str, str]] = []
        why = self._feed(events, wholes)
        if why is None and self.side:
            why = self._feed_others(wholes)
        return why, wholes

    def _feed(self, events: list[StreamEvent], wholes: list[tuple[str, str]]) -> str | None:
        for ev in events:
            k = ev.kind
            if k == "block_delta":
                if ev.delta_type == "text":  # type: ignore[union-attr]
                    if self.judged:  # text after a tool call: not the structured answer
                        continue
                    v = ev.value  # type: ignore[union-attr]
                    if not self.prefix.feed(v):
                        return "is not " + ("a JSON object" if self.contract.object else "JSON")
                    self.parts.append(v)
                    if not self.begun and v.strip():
                        self.begun = True
                else:
                    self.begun = True
            elif k == "block_start":
                if isinstance(ev.block, TextBlock):  # type: ignore[union-attr]
                    self.text_blocks.add(ev.index)  # type: ignore[union-attr]
                    self.pending = False  # the answer's text goes on
                else:
                    self.begun = True
                    if isinstance(ev.block, ToolUseBlock) and not self.judged:  # type: ignore[union-attr]
                        # A tool call: the SDK validates the text so far (none: a call instead of an answer).
                        self.judged, self.pending = True, False
                        if self.parts:
                            wholes.append(("", "".join(self.parts)))
            elif k == "block_stop":
                if ev.index in self.text_blocks and self.parts:  # type: ignore[union-attr]
                    self.pending = not self.judged
            elif k == "message_delta" or k == "message_stop":
                self.begun, self.pending, self.waiting = True, False, 0
                if not self.judged:
                    self.judged = True
                    if k == "message_stop" or ev.stop_reason in _JUDGED:  # type: ignore[union-attr]
                        wholes.append(("", "".join(self.parts)))
        return None

    def _feed_others(self, wholes: list[tuple[str, str]]) -> str | None:
        side = self.side[:]
        self.side.clear()  # in place: the decoder holds this list
        for index, piece, finish, tool in side:
            o = self.others.get(index) if type(index) is int else None
            if o is None or o.done:
                continue
            if piece:
                if not o.prefix.feed(piece):
                    return f"is not {'a JSON object' if self.contract.object else 'JSON'} (choice {index})"
                o.parts.append(piece)
            if tool or finish is not None or (piece.strip() and not o.begun):
                if not o.begun:
                    o.begun, self.waiting = True, self.waiting - 1
                if tool:
                    o.done = True  # a tool called instead of an answer
                elif finish is not None:
                    o.done = True
                    if finish == "stop":  # "length": the SDK raises its own LengthFinishReasonError
                        wholes.append((f" (choice {index})", "".join(o.parts)))
        return None
