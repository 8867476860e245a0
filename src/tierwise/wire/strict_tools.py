"""Strict function tools (an OpenAI client's `"strict": true`): a call's arguments must be one JSON object that
conforms to the tool's schema, and the openai SDK's helpers hold the upstream to that. `chat.completions.stream`
parses a strict tool's arguments after every streamed piece and validates the whole when the call ends (with the
tool's pydantic model for `openai.pydantic_function_tool`), `chat.completions.parse` does the same to a whole
answer; either raises in the caller's code (`ValueError: expected value`, `ValidationError`) on arguments it
cannot parse. OpenAI's own API constrains the model's sampling to the schema; a local server without a grammar,
or a proxy that drops `strict`, does not.

So arguments that break the contract are the upstream's failure, class `invalid_output`
(providers/error_classes.py): the route moves on to its next target, the breaker does not count it (the
deployment is up; its model cannot honour strict tools), and a stream whose client already read part of the
answer ends with its API's error event (the SDK raises `APIError`), never with a piece its parser rejects. A
piece that can no longer begin a JSON object is caught as it comes (wire/json_prefix.py); the whole arguments
are checked against the schema when the call ends (the next block starts, or the message ends). A call cut by
`max_tokens` is not judged whole: the SDK raises its own `LengthFinishReasonError` for it, as with OpenAI.

Schemas come from the client and arguments from the model: the schema check runs off the event loop with a time
box, a bound on the keywords it applies, and its regular expressions with the `regex` module's timeout
(verifiers/json_check.py). A schema that is not valid JSON Schema, or a check that cannot finish, leaves the
object check only.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from tierwise.canonical import Response, StreamEvent, ToolUseBlock
from tierwise.errors import UpstreamError
from tierwise.wire.json_prefix import MAX_CHECKED, RAW_KEY, ObjectPrefix


def violation(provider: str, tool: str, why: str) -> UpstreamError:
    return UpstreamError(f"provider {provider!r} wrote arguments for strict tool {tool[:64]!r} that {why}",
                         retryable=False, error_class="invalid_output")


class StrictCalls:
    """Fed a stream's canonical events chunk by chunk: `feed` returns the reason a piece cannot begin a JSON
    object (the first such), else the calls that ended, as (tool, arguments), for `whole_reason`."""

    def __init__(self, schemas: dict[str, dict[str, Any]]) -> None:
        self.schemas = schemas
        self.open: dict[int, tuple[str, ObjectPrefix, list[str]]] = {}  # block index -> (tool, check, pieces)
        self.checked = [MAX_CHECKED]  # the characters the checks may still read, this stream
        self.stopped: list[int] = []  # tool blocks stopped: judged when the next block starts or the message ends
        self.begun = False  # anything but a strict call's opening came, or its first piece passed

    @property
    def holding(self) -> bool:
        """Must what came so far stay back from the client? The stream's opening, until something other than a strict
        call begins or a strict call's first piece has passed (a call that starts wrong then fails before anything
        went up, and a route moves on silently); and a stopped call until it is judged (OpenAI's finish chunk, at
        which the SDK validates the arguments)."""
        return not self.begun or bool(self.stopped)

    def feed(self, events: list[StreamEvent]) -> tuple[str | None, list[tuple[str, str]]]:
        """(the tool whose piece cannot begin a JSON object, or None; the calls that ended)."""
        ended: list[tuple[str, str]] = []
        for ev in events:
            k = ev.kind
            if k == "block_delta":
                if ev.delta_type == "input_json":  # type: ignore[union-attr]
                    call = self.open.get(ev.index)  # type: ignore[union-attr]
                    if call is not None:
                        if not call[1].feed(ev.value):  # type: ignore[union-attr]
                            return call[0], ended
                        call[2].append(ev.value)  # type: ignore[union-attr]
                        if not self.begun and ev.value.strip():  # type: ignore[union-attr]
                            self.begun = True
                        continue
                if not self.begun and ev.value.strip():  # type: ignore[union-attr]
                    self.begun = True
            elif k == "block_start":
                self._end(self.stopped, ended)  # the SDK judges a call whole when the next one starts
                b = ev.block  # type: ignore[union-attr]
                if isinstance(b, ToolUseBlock) and b.name in self.schemas:
                    self.open[ev.index] = (b.name, ObjectPrefix(budget=self.checked), [])  # type: ignore[union-attr]
                else:
                    self.begun = True
            elif k == "block_stop":
                if ev.index in self.open:  # type: ignore[union-attr]
                    self.stopped.append(ev.index)  # type: ignore[union-attr]
            elif k == "message_delta" or k == "message_stop":
                self.begun = True
                if k == "message_delta" and ev.stop_reason == "max_tokens":  # type: ignore[union-attr]
                    self.open.clear()  # cut: the SDK raises LengthFinishReasonError itself
                self._end(list(self.open), ended)
        return None, ended

    def _end(self, indices: list[int], ended: list[tuple[str, str]]) -> None:
        for i in indices:
            call = self.open.pop(i, None)
            if call is not None:
                ended.append((call[0], "".join(call[2])))
        self.stopped = [i for i in self.stopped if i in self.open]


def answer_calls(resp: Response, schemas: dict[str, dict[str, Any]]) -> list[tuple[str, Any]]:
    """A whole answer's calls of strict tools, every choice: (tool, its decoded input)."""
    blocks = [b for c in [resp.content, *(ch.content for ch in resp.extra_choices)] for b in c]
    return [(b.name, b.input) for b in blocks if isinstance(b, ToolUseBlock) and b.name in schemas]


def _load(arguments: str) -> tuple[Any, str | None]:
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return None, "are not JSON" if arguments.strip() else "are empty"
    return value, None if isinstance(value, dict) else "are not a JSON object"


async def whole_reason(schema: dict[str, Any], arguments: str | dict[str, Any]) -> str | None:
    """Why a call's whole arguments (the streamed text, or a decoded answer's input) break a strict tool's
    contract, or None."""
    if isinstance(arguments, str):
        value, why = _load(arguments)
        if why is not None:
            return why
    else:  # decoded by the codec: text that was not JSON, or JSON that was not an object, is wrapped
        value = arguments
        if RAW_KEY in value:
            return "are not JSON" if (value.get(RAW_KEY) or "").strip() else "are empty"
    if not schema:
        return None
    return await _schema_reason(schema, value)


async def _schema_reason(schema: dict[str, Any], value: Any) -> str | None:
    from tierwise.verifiers.offload import off_loop

    verdict = await off_loop(_check, schema, value, name="strict tool")
    if verdict.passed or "where" not in verdict.detail:  # passed, or the check could not run (timed out, …)
        return None
    # Where and which keyword, never the model's value (it may hold what the error must not carry).
    return f"do not match its schema (`{verdict.detail['keyword']}` at {verdict.detail['where']})"


def _check(schema: dict[str, Any], value: Any) -> Any:
    """In a worker thread: the schema's own check (`check_schema`, linear in the client's schema, which the request's
    size bounds) as well as the value's (bounded in steps: verifiers/json_check.py)."""
    from tierwise.verifiers.base import Verdict
    from tierwise.verifiers.json_check import JsonSchemaVerifier, schema_violation

    if _containers_past(schema, MAX_SCHEMA_CONTAINERS):
        return Verdict(False, "the schema is too big to check", None, "strict tool", {"error": "too big"})
    try:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        # A client sends the same tools on every request: their validators are kept (check_schema is ~6 ms of CPU
        # for a pydantic model's schema), those of small schemas only, so the cache stays bounded in memory.
        validator = _validator(key) if len(key) <= CACHED_SCHEMA_BYTES else JsonSchemaVerifier._make_validator(schema)
    except Exception:  # noqa: BLE001 - not JSON Schema (the client's own): the object check is all there is
        return Verdict(False, "not JSON Schema", None, "strict tool", {"error": "schema"})
    return schema_violation(validator, value, "strict tool")


CACHED_SCHEMA_BYTES = 64 * 1024
# The schema's own check (`check_schema`, against the 2020-12 metaschema with its dynamic references) costs about
# 0.3-0.7 ms of CPU per object or array in the schema, outside the value check's step count and deadline: a 2 MB
# schema of 20,000 properties held a worker thread for 21 s (the off-loop time box frees the request, not the
# thread), on every request whose schema is past the cache's size. Past this many objects and arrays a schema is
# not checked (the JSON / object check only). A pydantic model of a few dozen fields has well under 200; OpenAI's
# strict mode allows at most 5,000 properties.
MAX_SCHEMA_CONTAINERS = 2_000


def _containers_past(schema: Any, limit: int) -> bool:
    """Has `schema` more than `limit` objects and arrays? (Stops counting at the limit.)"""
    todo, seen = [schema], 0
    while todo:
        node = todo.pop()
        seen += 1
        if seen > limit:
            return True
        todo.extend(v for v in (node.values() if isinstance(node, dict) else node) if isinstance(v, (dict, list)))
    return False


@functools.lru_cache(maxsize=128)
def _validator(key: bytes) -> Any:
    from tierwise.verifiers.json_check import JsonSchemaVerifier

    return JsonSchemaVerifier._make_validator(orjson.loads(key))
