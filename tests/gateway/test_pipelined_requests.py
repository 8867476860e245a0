"""Requests pipelined on one connection are each answered, however long each runs (wire9).

When the answer before it was sent, uvicorn starts the request queued behind it; the guard (server/limits.py) marked
the connection idle as soon as the queue was empty, though that request was now running, and its sweep cut the
connection at the idle deadline (keep-alive + 1 s, 31 s in `tierwise serve`): a pipelined chat request whose model
took longer than that lost its answer, and the upstream call made for it was cancelled. Raw sockets (the SDKs do not
pipeline); the idle deadline is shortened on the test's guard so the cut, when there is one, comes within seconds."""

from __future__ import annotations

import json

from tests.doubles import Delay, Reply
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
