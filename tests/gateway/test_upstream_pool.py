"""An upstream that takes requests and never answers, against the provider's pool: the provider's
`max_connections` bounds the calls in flight to it, a call waits at most `timeouts.pool` for one to
come free (then 503 in the client's schema, at once instead of after the hung calls' read timeouts),
and other providers are served all along."""

from __future__ import annotations

import asyncio
import threading

import anthropic
import httpx2 as httpx
import openai
import pytest
from aiohttp import web

from tests.doubles import OpenAIDouble
from tests.doubles.base import DoubleServer
from tests.doubles.script import Gate, Reply
from tests.gateway.conftest import ant, oai
from tests.harness import wait_for

IN_FLIGHT = 2


class Hung(DoubleServer):
    """Reads each request, then answers nothing until released (counts requests at once)."""

    waiting = 0
    peak = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        self.release = asyncio.Event()

    async def _chat(self, request: web.Request) -> web.Response:
        await request.read()
        self.waiting += 1
        self.peak = max(self.peak, self.waiting)
        try:
            await asyncio.wait_for(self.release.wait(), 120)
        except TimeoutError:
            pass
        finally:
            self.waiting -= 1
        return web.json_response({"error": {"message": "released"}}, status=500)


@pytest.fixture
def hung():
    d = Hung()
    d.start()
    yield d
    d.stop()


@pytest.fixture
def frontier():
    d = OpenAIDouble()
    d.start()
    yield d
    d.stop()


def test_a_hung_upstream_holds_at_most_max_connections_and_the_rest_are_refused_soon(gateway, hung, frontier):
    g = gateway({
        "server": {"default_route": "local"},
        "ledger": {"enabled": False},
        "breaker": {"failures": 100, "cooldown": 1},
        "providers": {
            "loc": {"kind": "openai", "base_url": hung.url + "/v1", "locality": "local",
                    "max_connections": IN_FLIGHT, "timeouts": {"connect": 2, "read": 120, "pool": 0.5}},
            "cloud": {"kind": "openai", "base_url": frontier.url + "/v1"},
        },
        "models": {"local": {"provider": "loc", "model": "m"}, "frontier": {"provider": "cloud", "model": "m"}},
    })
    body = {"model": "local", "messages": [{"role": "user", "content": "q"}]}
    holders = [threading.Thread(target=httpx.post, args=(g.url + "/v1/chat/completions",),
                                kwargs={"json": body, "timeout": 150}, daemon=True) for _ in range(IN_FLIGHT)]
    for t in holders:
        t.start()
    assert wait_for(lambda: hung.waiting == IN_FLIGHT)
    try:
        with pytest.raises(openai.APIStatusError) as e:
            oai(g).chat.completions.create(**body)
        assert e.value.status_code == 503
        assert "max_connections" in e.value.response.json()["error"]["message"]
        with pytest.raises(anthropic.APIStatusError) as ea:
            ant(g).messages.create(model="local", max_tokens=5, messages=body["messages"])
        assert ea.value.status_code == 503
        err = ea.value.response.json()
        assert err["type"] == "error" and err["error"]["type"] == "overloaded_error"
        with httpx.stream("POST", g.url + "/v1/chat/completions", json={**body, "stream": True}, timeout=30) as r:
            r.read()
        assert r.status_code == 503 and "timeouts.pool" in r.json()["error"]["message"]
        # another provider is served while this one's pool is full
        answer = oai(g).chat.completions.create(model="frontier", messages=body["messages"])
        assert answer.choices[0].message.content
        assert hung.peak == IN_FLIGHT, "the gateway sent the upstream more calls than max_connections"
    finally:
        hung._loop.call_soon_threadsafe(hung.release.set)
        for t in holders:
            t.join(30)


def test_a_full_pool_does_not_open_the_breaker_for_every_client(gateway, openai_up):
    """One party's calls fill the provider's pool; others' calls that find no connection within `timeouts.pool`
    get 503 (the gateway's own saturation). Before (review29b), each such 503 counted as the upstream's failure:
    two of them opened the breaker, and after the party's call ended every client was refused `circuit open` for
    the whole cooldown (with `share_breakers`, on every replica). Now the breaker stays closed and the next call
    is served."""
    g = gateway({
        "server": {"default_route": "local"},
        "ledger": {"enabled": False},
        "breaker": {"failures": 2, "cooldown": 600},
        "providers": {"loc": {"kind": "openai", "base_url": openai_up.url + "/v1", "locality": "local",
                              "max_connections": 1, "timeouts": {"connect": 0.5, "pool": 0.5}}},
        "models": {"local": {"provider": "loc", "model": "m"}},
    })
    release = threading.Event()
    openai_up.script(Gate(release, Reply(text="held")))
    body = {"model": "local", "messages": [{"role": "user", "content": "q"}]}
    got: list[httpx.Response] = []
    holder = threading.Thread(target=lambda: got.append(httpx.post(g.url + "/v1/chat/completions", json=body,
                                                                   timeout=60)), daemon=True)
    holder.start()
    try:
        assert wait_for(lambda: len(openai_up.requests) == 1)
        for _ in range(3):  # more than `breaker.failures`
            r = httpx.post(g.url + "/v1/chat/completions", json=body, timeout=30)
            assert r.status_code == 503 and "timeouts.pool" in r.json()["error"]["message"]
    finally:
        release.set()
        holder.join(30)
    assert got and got[0].status_code == 200
    breaker = g.on_loop(lambda: g.app.gw.deployments["local"].breaker.state)
    assert breaker == "closed"
    answer = oai(g).chat.completions.create(**body)  # another client, once the pool has room again
    assert answer.choices[0].message.content == "ok"
