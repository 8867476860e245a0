"""review36b: an upstream body opening with a UTF-8 byte order mark (proxies written on Windows, .NET's default
encoder). orjson refuses the mark, and the SSE parser read `\\ufeffdata:` as an unknown field: a stream's first event,
text and all, was dropped with a 200 (the SSE standard ignores one leading mark); a whole JSON body answering a
stream request was taken for a stream (`upstream stream ended early`), and a non-streamed answer was `not valid JSON`
(502). Real HTTP, the upstream double sending the bytes, the official openai SDK."""

from __future__ import annotations

import json

import pytest

from tests.doubles import Raw
from tests.gateway.conftest import oai
from tests.gateway.test_stream_answered_whole import COMPLETION, M, _g, _openai_text

BOM = b"\xef\xbb\xbf"
SSE = (b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
       b'[{"index":0,"delta":{"role":"assistant","content":"h\\u00e9llo"},"finish_reason":null}]}\n\n'
       b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
       b'[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')


def test_a_streams_first_event_after_a_mark_is_kept(two_tier, openai_up):
    g = _g(two_tier)
    openai_up.script(Raw(body=BOM + SSE, content_type="text/event-stream"))
    assert _openai_text(g, "loc") == "héllo"


def test_a_whole_body_after_a_mark_answers_a_stream_request(two_tier, openai_up):
    g = _g(two_tier)
    openai_up.script(Raw(body=BOM + b"\n " + json.dumps(COMPLETION).encode()))
    assert _openai_text(g, "loc") == "héllo"


def test_a_whole_answer_after_a_mark_is_json(two_tier, openai_up):
    g = _g(two_tier)
    openai_up.script(Raw(body=BOM + json.dumps(COMPLETION).encode()))
    r = oai(g).chat.completions.create(model="loc", messages=M)
    assert r.choices[0].message.content == "héllo" and r.usage.completion_tokens == 2


# wire14: the mark split across two reads (the upstream wrote its first byte or two alone; a proxy re-chunking).
# The opening read was `\xef` alone: not the whole mark, so not taken out; the stream decoder then read
# `\ufeffdata:` as an unknown field and dropped the first event (a 200 with empty text), and a whole JSON body was
# taken for a stream (`upstream stream ended early`).
@pytest.mark.parametrize("at", [(1,), (2,), (1, 2)])
def test_a_mark_split_across_reads_keeps_the_first_event(two_tier, openai_up, at):
    g = _g(two_tier)
    openai_up.script(Raw(body=BOM + SSE, content_type="text/event-stream", split=at))
    assert _openai_text(g, "loc") == "héllo"


@pytest.mark.parametrize("at", [(1,), (2,)])
def test_a_whole_body_after_a_split_mark_answers_a_stream_request(two_tier, openai_up, at):
    g = _g(two_tier)
    openai_up.script(Raw(body=BOM + json.dumps(COMPLETION).encode(), split=at))
    assert _openai_text(g, "loc") == "héllo"


def test_a_stream_split_at_every_byte_after_a_mark(two_tier, openai_up):
    g = _g(two_tier)
    body = BOM + SSE
    openai_up.script(Raw(body=body, content_type="text/event-stream", split=tuple(range(1, len(body))), pause=0.002))
    assert _openai_text(g, "loc") == "héllo"
