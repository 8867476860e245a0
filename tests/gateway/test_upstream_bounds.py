"""A hostile upstream against the gateway's reading of answers (issue 15, item 4): a body far past
the size the operator allows, a stream event that never ends, a stream that never ends. The
gateway must stop reading (and say so in the client's schema), not buffer without bound."""

from __future__ import annotations

import asyncio

import httpx2 as httpx
import openai
import orjson
import pytest
from aiohttp import web

from tests.doubles.base import DoubleServer
from tests.gateway.conftest import oai

CAP = 1024 * 1024  # max_response_bytes in these tests
EVENT_CAP = 64 * 1024  # max_stream_event_bytes
SENT_AT_MOST = 40 * 1024 * 1024  # what the hostile upstream sends before giving up (so old code ends too)


class HostileUpstream(DoubleServer):
    """An OpenAI-compatible server that misbehaves in the way `mode` says, and counts what it sent."""

    mode = "big_body"
    sent = 0
    finished = False

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.sent, self.finished = 0, False
        if self.mode == "big_body":
            resp = web.StreamResponse(headers={"content-type": "application/json"})  # chunked, no length
            await resp.prepare(request)
            head = b'{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,' \
                   b'"message":{"role":"assistant","content":"'
            await self._send(resp, head)
            while self.sent < SENT_AT_MOST:
                await self._send(resp, b"a" * 65536)
            await self._send(resp, b'"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,'
                                   b'"total_tokens":2}}')
        else:
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            first = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]}
            await self._send(resp, b"data: " + orjson.dumps(first) + b"\n\n")
            if self.mode == "endless_event":
                await self._send(resp, b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"')
                while self.sent < SENT_AT_MOST:
                    await self._send(resp, b"b" * 65536)
            else:  # endless_stream: complete events, for ever (until SENT_AT_MOST)
                ev = dict(first, choices=[{"index": 0, "delta": {"content": "c" * 4000}, "finish_reason": None}])
                data = b"data: " + orjson.dumps(ev) + b"\n\n"
                while self.sent < SENT_AT_MOST:
                    await self._send(resp, data * 16)
            await self._send(resp, b"data: [DONE]\n\n")
        self.finished = True
        return resp

    async def _send(self, resp: web.StreamResponse, data: bytes) -> None:
        await resp.write(data)
        self.sent += len(data)
        await asyncio.sleep(0)


@pytest.fixture
def hostile():
    d = HostileUpstream()
    d.start()
    yield d
    d.stop()


@pytest.fixture
def g(gateway, hostile):
    return gateway({
        "server": {"default_route": "bad"},
        "ledger": {"enabled": False},
        "providers": {"up": {"kind": "openai", "base_url": hostile.url + "/v1",
                             "max_response_bytes": CAP, "max_stream_event_bytes": EVENT_CAP,
                             "timeouts": {"connect": 2, "read": 30}}},
        "models": {"bad": {"provider": "up", "model": "m"}},
    })


def test_an_answer_past_max_response_bytes_is_cut_off(g, hostile):
    hostile.mode = "big_body"
    with pytest.raises(openai.APIStatusError) as e:
        oai(g).chat.completions.create(model="bad", messages=[{"role": "user", "content": "q"}])
    assert e.value.status_code == 502
    assert "max_response_bytes" in e.value.response.json()["error"]["message"]
    assert hostile.wait_until(lambda: hostile.finished or hostile.sent > 0)
    assert not hostile.finished and hostile.sent < SENT_AT_MOST, "the gateway read the whole oversized answer"


@pytest.mark.parametrize("mode,key", [("endless_event", "max_stream_event_bytes"),
                                      ("endless_stream", "max_response_bytes")])
def test_a_stream_that_never_ends_is_cut_off_with_an_error_event(g, hostile, mode, key):
    hostile.mode = mode
    body = {"model": "bad", "stream": True, "messages": [{"role": "user", "content": "q"}]}
    with httpx.stream("POST", g.url + "/v1/chat/completions", json=body, timeout=60) as r:
        text = b"".join(r.iter_bytes())
    if r.status_code == 200:  # cut mid-stream: the stream ends with an error event
        events = [e for e in text.split(b"\n\n") if e.startswith(b"data: ")]
        last = orjson.loads(events[-1][6:])
    else:  # cut before the first event reached the client: a plain error
        assert r.status_code == 502
        last = orjson.loads(text)
    assert "error" in last and key in last["error"]["message"]
    assert not hostile.finished and hostile.sent < SENT_AT_MOST, "the gateway kept reading the endless stream"
    assert httpx.get(g.url + "/health", timeout=5).status_code == 200
