"""The side endpoints (`POST /v1/messages/count_tokens`, `POST /v1/embeddings`) against a provider's pool.

Each call held one of the provider's `max_connections` for as long as the upstream took: a key sent
as many count_tokens calls at once as it liked, filled the pool of the provider every chat request needs,
and the other keys' requests waited `timeouts.pool` for a connection, then got 503. Now count_tokens takes at
most an eighth of a provider's pool (at least one connection) and answers the estimate beyond it, and
embeddings calls of one key hold at most half of it (429 beyond)."""

from __future__ import annotations

import asyncio
import threading

import httpx2 as httpx
import openai
import pytest
from aiohttp import web

from tests.doubles import AnthropicDouble, OpenAIDouble
from tests.gateway.conftest import ant, oai
from tests.harness import wait_for

KEYS = {"TW_POOL_A": "sk-gw-pool-aaaaaaaaaaaaaaaaaaaa", "TW_POOL_B": "sk-gw-pool-bbbbbbbbbbbbbbbbbbbb"}
POOL = 4


class SlowCounts(AnthropicDouble):
    """An Anthropic upstream whose token counting takes until the test releases it (a slow or hostile one)."""

    counting = 0

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        self.release = asyncio.Event()

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        self.counting += 1
        try:
            await asyncio.wait_for(self.release.wait(), 60)
        except TimeoutError:
            pass
        finally:
            self.counting -= 1
        return await super()._count_tokens(request)


class SlowEmbeddings(OpenAIDouble):
    embedding = 0

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        self.release = asyncio.Event()

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        self.embedding += 1
        try:
            await asyncio.wait_for(self.release.wait(), 60)
        except TimeoutError:
            pass
        finally:
            self.embedding -= 1
        return await super()._embeddings(request)


@pytest.fixture
def keys(monkeypatch):
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)


def _config(kind: str, url: str) -> dict:
    base = url + "/v1" if kind == "openai" else url
    return {
        "server": {"default_route": "main", "api_keys_env": ["TW_POOL_A", "TW_POOL_B"]},
        "ledger": {"enabled": False},
        "breaker": {"failures": 100, "cooldown": 1},
        # (they count in it since wire3: high enough for the floods; test_side_endpoint_limits.py holds it)
        "rate_limits": {"limits": [{"name": "each-key", "per": "key", "requests_per_minute": 100}]},
        "providers": {"cloud": {"kind": kind, "base_url": base, "locality": "remote", "max_connections": POOL,
                                "timeouts": {"connect": 2, "read": 60, "pool": 0.5}}},
        "models": {"frontier": {"provider": "cloud", "model": "big-model"}},
        "routes": {"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}},
    }


def test_a_count_tokens_flood_leaves_the_pool_to_chat_requests(gateway, keys):
    up = SlowCounts()
    up.start()
    try:
        g = gateway(_config("anthropic", up.url))
        msgs = [{"role": "user", "content": "how many tokens is this?"}]
        counts: list[int] = []

        def count() -> None:
            counts.append(ant(g, api_key=KEYS["TW_POOL_B"], timeout=90).messages.count_tokens(
                model="main", messages=msgs).input_tokens)

        flood = [threading.Thread(target=count, daemon=True) for _ in range(2 * POOL)]
        for t in flood:
            t.start()
        # Key B's count_tokens calls are either waiting upstream or answered with the estimate already.
        assert wait_for(lambda: up.counting + len(counts) == 2 * POOL, 20)
        assert up.counting < POOL, "count_tokens took every connection of the provider's pool"
        # Another key's chat request still gets a connection (it waited timeouts.pool, then got 503).
        answer = ant(g, api_key=KEYS["TW_POOL_A"]).messages.create(model="main", max_tokens=5, messages=msgs)
        assert answer.content[0].text
        up._loop.call_soon_threadsafe(up.release.set)
        for t in flood:
            t.join(30)
        assert len(counts) == 2 * POOL and all(n > 0 for n in counts)  # every count answered, exact or estimated
    finally:
        up._loop.call_soon_threadsafe(up.release.set)
        up.stop()


def test_one_keys_embeddings_leave_the_pool_to_other_keys(gateway, keys):
    up = SlowEmbeddings()
    up.start()
    try:
        g = gateway(_config("openai", up.url))
        statuses: list[int] = []

        def embed() -> None:
            r = httpx.post(g.url + "/v1/embeddings", json={"model": "main", "input": "x"}, timeout=90,
                           headers={"authorization": "Bearer " + KEYS["TW_POOL_B"]})
            statuses.append(r.status_code)

        flood = [threading.Thread(target=embed, daemon=True) for _ in range(2 * POOL)]
        for t in flood:
            t.start()
        assert wait_for(lambda: up.embedding + len(statuses) == 2 * POOL, 20)
        assert up.embedding < POOL, "one key's embeddings took every connection of the provider's pool"
        assert set(statuses) <= {429}
        answer = oai(g, api_key=KEYS["TW_POOL_A"]).chat.completions.create(
            model="main", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content
        with pytest.raises(openai.RateLimitError) as e:  # the refusal, in OpenAI's schema
            oai(g, api_key=KEYS["TW_POOL_B"]).embeddings.create(model="main", input="x")
        assert "embeddings" in e.value.message
        up._loop.call_soon_threadsafe(up.release.set)
        for t in flood:
            t.join(30)
        assert statuses.count(200) == POOL // 2 and statuses.count(429) == 2 * POOL - POOL // 2
    finally:
        up._loop.call_soon_threadsafe(up.release.set)
        up.stop()
