"""Requests pipelined on one connection are each answered, however long each runs (wire9).

When the answer before it was sent, uvicorn starts the request queued behind it; the guard (server/limits.py) marked
the connection idle as soon as the queue was empty, though that request was now running, and its sweep cut the
connection at the idle deadline (keep-alive + 1 s, 31 s in `tierwise serve`): a pipelined chat request whose model
took longer than that lost its answer, and the upstream call made for it was cancelled. Raw sockets (the SDKs do not
pipeline); the idle deadline is shortened on the test's guard so the cut, when there is one, comes within seconds."""

from __future__ import annotations

import json

from tests.doubles import Delay, Reply, SlowStream
from tests.harness import exchange, two_tier_config


def _chat(model: str = "local") -> bytes:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body))


def test_a_pipelined_request_running_past_the_idle_deadline_is_answered(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    g.guard.idle_timeout = 0.5  # (the sweep runs once a second: a cut would come 0.5-1.5 s after the first answer)
    openai_up.script(Delay(0.2, then=Reply(text="first answer")), Delay(3, then=Reply(text="second answer")))
    got = exchange(g.port, _chat() + _chat(), timeout=10)  # (ends when the idle connection is closed after both)
    answers = got.split(b"HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == [b"200"] * 2, got[:600]
    assert b"first answer" in answers[0] and b"second answer" in answers[1], got[:600]


def test_a_header_block_past_its_deadline_behind_a_running_request_is_answered_408_after_it(gateway, openai_up,
                                                                                             anthropic_up):
    """A pipelined request whose header block stops arriving behind one still running: the running one used to be
    dropped with the connection at `header_timeout`; now it is answered, then the 408, and the connection closes."""
    g = gateway({**two_tier_config(openai_up.url, anthropic_up.url), "server": {"limits": {"header_timeout": 1}}})
    openai_up.script(Delay(3, then=Reply(text="first answer")))  # (running past the next block's deadline)
    got = exchange(g.port, _chat() + b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n", timeout=10)
    answers = got.split(b"HTTP/1.1 ")[1:]
    assert len(answers) == 2 and answers[0].startswith(b"200") and b"first answer" in answers[0], got[:600]
    assert answers[1].startswith(b"408") and b"connection: close" in answers[1], got[:600]


def _stream_chat() -> bytes:
    body = json.dumps({"model": "local", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body))


def test_unparseable_http_behind_a_running_request_is_answered_400_after_it(gateway, openai_up, anthropic_up):
    """review32c: bytes that are not HTTP pipelined behind a request still running were answered 400 at once and the
    connection closed: a whole answer lost (the client read the 400 as its chat request's answer), or, behind a
    streamed answer, the 400's head written into the middle of its chunked body. Now after the answer, as the 431
    and the 408 above."""
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url))
    bad = b"BAD\x01 / HTTP/1.1\r\n\r\n"
    openai_up.script(Delay(0.5, then=Reply(text="first answer")))
    got = exchange(g.port, _chat(), then=(bad,), pause=0.2)
    answers = got.split(b"HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == [b"200", b"400"] and b"first answer" in answers[0], got[:600]
    openai_up.script(SlowStream(0.2, then=Reply(text="a b c d e f")))
    got = exchange(g.port, _stream_chat(), then=(bad,), pause=0.5)
    head, _, rest = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head, got[:600]
    stream, _, last = rest.partition(b"0\r\n\r\n")  # the chunked body's end, then the 400
    assert b"HTTP/1.1" not in stream and b"data: [DONE]" in stream, got
    assert last.startswith(b"HTTP/1.1 400") and b"connection: close" in last, got[-400:]


def test_a_refused_block_behind_a_queued_request_is_answered_after_both(gateway, openai_up, anthropic_up):
    """review32c: a block past the count read with a request queued behind the running one waits for their answers
    (wire9), but the queued request, reading its body, resumed reading: the bytes sent after the refused block were
    parsed, and where they made unparseable HTTP (the block's slices ending at the queued request's blank line) the
    400 closed the connection at once, the queued chat's answer lost. Now: both chats' answers, then one refusal."""
    g = gateway({**two_tier_config(openai_up.url, anthropic_up.url), "server": {"limits": {"max_header_count": 64}}})
    refused = b"GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n" + b"a:\r\n" * 1000
    later = b"\r\nGET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
    for pad in (56, 55, 0):  # (where the block's slices fall: 56 ended a queued chat's header block at a slice's end)
        openai_up.script(Delay(0.3, then=Reply(text="first answer")), Delay(1.2, then=Reply(text="second answer")))
        queued = _chat().replace(b"content-type", b"x:\r\n" * pad + b"content-type", 1)
        got = exchange(g.port, _chat() + queued + refused, then=(later,), pause=0.8)
        answers = got.split(b"HTTP/1.1 ")[1:]
        assert [a[:3] for a in answers] == [b"200", b"200", b"431"], (pad, got[:800])
        assert b"second answer" in answers[1], got[:800]
