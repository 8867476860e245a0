"""Read what a client receives from the gateway, event by event, over raw HTTP.

The SDKs hide the wire: they merge events into a final message. The suite checks both: the raw
events here (order, indexes, pieces), and the SDKs' own accumulation in the tests.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SSEEvent:
    event: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def parse_sse(raw: bytes) -> list[SSEEvent]:
    out: list[SSEEvent] = []
    for block in raw.decode("utf-8").replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
        out.append(SSEEvent(name, "\n".join(data)))
    return out


def post_stream(url: str, path: str, body: dict[str, Any], kind: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"authorization": "Bearer test"} if kind == "openai" else \
        {"x-api-key": "test", "anthropic-version": "2023-06-01"}
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={**headers, "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@dataclass
class AnthropicBlock:
    type: str
    start: dict[str, Any]
    thinking: str = ""
    signatures: list[str] = field(default_factory=list)
    text: str = ""
    json_pieces: list[str] = field(default_factory=list)


@dataclass
class AnthropicStream:
    """An Anthropic Messages stream checked for well-formedness while it is read."""

    events: list[SSEEvent]
    blocks: list[AnthropicBlock] = field(default_factory=list)
    message_start: dict[str, Any] = field(default_factory=dict)
    message_delta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, raw: bytes) -> AnthropicStream:
        s = cls(parse_sse(raw))
        open_index: int | None = None
        names = [e.event for e in s.events]
        assert names[0] == "message_start" and names[-1] == "message_stop", names
        for e in s.events:
            d = e.json()
            assert d["type"] == e.event, (e.event, d)  # the event line and the payload agree
            if e.event == "message_start":
                s.message_start = d["message"]
            elif e.event == "content_block_start":
                assert open_index is None, f"block {d['index']} started while {open_index} is open"
                assert d["index"] == len(s.blocks), (d["index"], len(s.blocks))
                open_index = d["index"]
                s.blocks.append(AnthropicBlock(d["content_block"]["type"], d["content_block"]))
            elif e.event == "content_block_delta":
                assert d["index"] == open_index, f"delta for block {d['index']} while {open_index} is open"
                b, delta = s.blocks[d["index"]], d["delta"]
                kind = delta["type"]
                if kind == "thinking_delta":
                    b.thinking += delta["thinking"]
                elif kind == "signature_delta":
                    b.signatures.append(delta["signature"])
                elif kind == "text_delta":
                    b.text += delta["text"]
                elif kind == "input_json_delta":
                    b.json_pieces.append(delta["partial_json"])
                else:
                    raise AssertionError(f"unknown delta {kind}")
                expected = {"thinking_delta": "thinking", "signature_delta": "thinking", "text_delta": "text",
                            "input_json_delta": "tool_use"}[kind]
                assert b.type == expected, (kind, b.type)
            elif e.event == "content_block_stop":
                assert d["index"] == open_index, (d, open_index)
                open_index = None
            elif e.event == "message_delta":
                assert open_index is None, "message_delta with a block open"
                s.message_delta = d
            elif e.event not in ("ping", "message_stop"):
                raise AssertionError(f"unexpected event {e.event}")
        return s


@dataclass
class OpenAIStream:
    """An OpenAI chat.completion.chunk stream checked for well-formedness while it is read."""

    chunks: list[dict[str, Any]]
    reasoning: str = ""
    content: str = ""
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    arg_pieces: dict[int, list[str]] = field(default_factory=dict)
    finish: list[str] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)  # every usage object, in order
    empty_choice_chunks: int = 0

    @classmethod
    def read(cls, raw: bytes) -> OpenAIStream:
        events = parse_sse(raw)
        assert events[-1].data == "[DONE]", events[-1]
        s = cls([e.json() for e in events[:-1]])
        ids = {c["id"] for c in s.chunks}
        assert len(ids) == 1, ids  # one completion id throughout
        for i, c in enumerate(s.chunks):
            assert c["object"] == "chat.completion.chunk", c
            if c.get("usage"):
                s.usage.append(c["usage"])
            if c["choices"] == []:
                s.empty_choice_chunks += 1
                # OpenAI's include_usage chunk: usage and no choices, last. (DeepSeek instead puts
                # usage on its finish chunk; relayed as is, that is handled by the branch below.)
                assert c.get("usage") and i == len(s.chunks) - 1, "a chunk without choices must be the usage chunk, last"
                continue
            [choice] = c["choices"]
            assert choice["index"] == 0
            d = choice["delta"]
            # `reasoning` is vLLM's newer name: relayed untouched when client and upstream both speak OpenAI
            if d.get("reasoning_content") or d.get("reasoning"):
                s.reasoning += d.get("reasoning_content") or d["reasoning"]
            if d.get("content"):
                s.content += d["content"]
            for tc in d.get("tool_calls") or []:
                n = tc["index"]
                if n not in s.tool_calls:
                    assert tc.get("id") and tc.get("type") == "function" and tc["function"].get("name"), tc
                    assert n == len(s.tool_calls), (n, list(s.tool_calls))
                    s.tool_calls[n] = {"id": tc["id"], "name": tc["function"]["name"]}
                    s.arg_pieces[n] = []
                else:
                    assert "id" not in tc or tc["id"] == s.tool_calls[n]["id"], tc
                if tc["function"].get("arguments"):
                    s.arg_pieces[n].append(tc["function"]["arguments"])
            if choice.get("finish_reason"):
                s.finish.append(choice["finish_reason"])
        return s
