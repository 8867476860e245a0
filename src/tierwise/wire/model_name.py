"""The `model` a client reads in an answer: the name it asked for (a route, an alias, a model name),
never the upstream's own.

An upstream names itself in every answer, and a local server's name can be a file path
(llama.cpp's server answers `"model": "/home/user/models/x.gguf"`) or an internal deployment
name. Answers tierwise re-encodes already carry the client's name; the same-format pass-through
relays the upstream's bytes, so there the `model` field is rewritten:

- a whole body (both APIs): parsed, the top-level `model` set, dumped again (a tool's input in an
  Anthropic body is an object and may hold a `model` key of its own: only the top level changes);
- an OpenAI stream: every event names the model at its top level; tool-call arguments and text
  are JSON strings, in which a quote is escaped, so `"model":` outside a string is only ever a key;
- an Anthropic stream: only `message_start` names the model (its `content` is still empty there), so
  the relay stops looking once that event has passed (a stream is often one chunk: only the event
  itself is searched, not split out of the rest).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson

# A `"model": "<JSON string>"` member. Inside a JSON string every quote is escaped, so this matches
# only a real key named model and its string value (any escapes in the name included).
_MEMBER = re.compile(rb'"model"\s*:\s*"[^"\\]*(?:\\.[^"\\]*)*"')
_MESSAGE_START = b'"message_start"'
_EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")  # a server-sent event ends with a blank line ...
_EVENT_END = re.compile(rb"\n\n|\r\n\r\n|\r\r")  # ... which this finds (no separator ends inside another)


def body(raw: bytes, name: str) -> bytes:
    """A whole JSON answer with its top-level `model` set to `name` (as it is when it has none or is not an object)."""
    if _MEMBER.search(raw) is None:  # no model named anywhere: nothing to rewrite
        return raw
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    if not isinstance(obj, dict) or "model" not in obj or obj["model"] == name:
        return raw
    obj["model"] = name
    return orjson.dumps(obj)


def renamer(api: str, name: str) -> Callable[[bytes], tuple[bytes, bool]]:
    """For a passed-through stream of `api` ("openai" or "anthropic"): a function of a chunk's raw events
    that returns them naming `name`, and whether the chunks after it still need renaming (an OpenAI
    stream names the model in every event; an Anthropic one in `message_start` only, so its relay can
    stop calling once that event has passed)."""
    named = b'"model":' + orjson.dumps(name)
    template = named.replace(b"\\", b"\\\\")  # as a re.sub replacement: backslashes (JSON escapes) doubled
    if api == "anthropic":
        def anthropic_events(raw: bytes) -> tuple[bytes, bool]:
            at = raw.find(_MESSAGE_START)
            if at < 0:
                return raw, True
            begin, end = _event_around(raw, at)
            return raw[:begin] + _MEMBER.sub(template, raw[begin:end], count=1) + raw[end:], False
        return anthropic_events

    def openai_events(raw: bytes) -> tuple[bytes, bool]:
        if b'"model"' not in raw:
            return raw, True
        return _MEMBER.sub(template, raw), True
    return openai_events


def _event_around(raw: bytes, at: int) -> tuple[int, int]:
    """Where the server-sent event that holds byte `at` of `raw` begins and ends (after its blank line)."""
    begin = 0
    for sep in _EVENT_ENDS:
        if (k := raw.rfind(sep, 0, at)) >= 0:
            begin = max(begin, k + len(sep))
    end = _EVENT_END.search(raw, at)  # a search, not a split: the scan stops at this event's end
    return begin, end.end() if end else len(raw)
