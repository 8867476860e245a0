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
- an Anthropic stream: only `message_start` names the model (its `content` is still empty there).
"""

from __future__ import annotations

import re

import orjson

# A `"model": "<JSON string>"` member. Inside a JSON string every quote is escaped, so this matches
# only a real key named model and its string value (any escapes in the name included).
_MEMBER = re.compile(rb'"model"\s*:\s*"[^"\\]*(?:\\.[^"\\]*)*"')
_MESSAGE_START = b'"message_start"'
_EVENT_END = re.compile(rb"(?<=\n\n)|(?<=\r\n\r\n)|(?<=\r\r)")


def member(name: str) -> bytes:
    """`"model":"<name>"` as JSON, for the stream rewriters."""
    return b'"model":' + orjson.dumps(name)


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


def openai_events(raw: bytes, named: bytes) -> bytes:
    """OpenAI stream events with every event's `model` member set to `named` (from `member`)."""
    if b'"model"' not in raw:
        return raw
    return _MEMBER.sub(lambda _m: named, raw)


def anthropic_events(raw: bytes, named: bytes) -> bytes:
    """Anthropic stream events with the `message_start` event's model set to `named` (from `member`)."""
    if _MESSAGE_START not in raw:
        return raw
    events = _EVENT_END.split(raw)
    for i, ev in enumerate(events):
        if _MESSAGE_START in ev:
            events[i] = _MEMBER.sub(lambda _m: named, ev, count=1)
    return b"".join(events)
