"""The stream renamers of a pass-through (wire/model_name.py): the client's name, written as JSON whatever
it holds, in every OpenAI event and in an Anthropic stream's `message_start` only, which ends the renaming."""

from __future__ import annotations

import orjson
import pytest

from tierwise.wire import model_name

# A quote, backslashes and a regex group reference: written as JSON, never read as a replacement template.
ODD = 'we"ird\\name\\g<0>\\1'


def sse(events: list[tuple[str, dict]], end: bytes = b"\n\n") -> bytes:
    nl = end[: len(end) // 2]
    return b"".join(b"event: " + e.encode() + nl + b"data: " + orjson.dumps(d) + end for e, d in events)


def data(raw: bytes) -> list[dict]:
    return [orjson.loads(line[6:]) for line in raw.splitlines() if line.startswith(b"data: {")]


@pytest.mark.parametrize("end", [b"\n\n", b"\r\n\r\n", b"\r\r"])
def test_an_anthropic_stream_names_the_client_model_in_message_start_then_stops(end):
    rename = model_name.renamer("anthropic", ODD)
    first = sse([("message_start", {"message": {"model": "/models/x.gguf", "content": []}, "type": "message_start"}),
                 ("content_block_delta", {"type": "content_block_delta", "delta": {"text": '"model":"y"'}})], end)
    out, more = rename(first)
    assert not more
    start, delta = data(out)
    assert start["message"]["model"] == ODD
    assert delta["delta"]["text"] == '"model":"y"'  # a string's content is not a key
    assert out.endswith(end)


def test_an_anthropic_chunk_before_message_start_is_left_alone():
    rename = model_name.renamer("anthropic", "main")
    ping = sse([("ping", {"type": "ping", "model": "kept"})])
    assert rename(ping) == (ping, True)


def test_an_openai_stream_names_the_client_model_in_every_event():
    rename = model_name.renamer("openai", ODD)
    raw = b"".join(b"data: " + orjson.dumps({"model": "/models/x.gguf", "choices": [{"delta": {"content": f"w{i}"}}]})
                   + b"\n\n" for i in range(3)) + b"data: [DONE]\n\n"
    out, more = rename(raw)
    assert more
    assert [d["model"] for d in data(out)] == [ODD] * 3
    assert out.endswith(b"data: [DONE]\n\n")
