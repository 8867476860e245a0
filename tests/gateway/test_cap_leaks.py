"""Every per-client count (`max_requests_per_client`, `max_streams_per_client`) is given back exactly once, however
the request ends: at its answer's last byte (App.give_back_caps) or in App.__call__'s `finally` (review30e).

A count given back twice would let a client hold more than its cap (and `give_back` would fail on a missing key);
one never given back would refuse the client for good. 1,200 mixed requests of three addresses over real HTTP, most
at once: chat (OpenAI, Anthropic, Responses), streamed or not, `n` up to 3, count_tokens, embeddings, fallbacks,
failing upstreams, bodies that are not JSON, and clients that leave before the answer, mid-stream or at its end.
Afterwards nothing is counted (`calls.open`, `streams.open` empty) and the cap still admits as many as before."""

from __future__ import annotations

import asyncio
import random

import aiohttp

from tests.doubles.script import Delay, Fail, Reply, SlowStream
from tests.harness import wait_for

MSG = [{"role": "user", "content": "hi"}]
CAP = 6


def _gw(gateway, openai_up, anthropic_up):
    return gateway({
        "server": {"default_route": "local",
                   "limits": {"max_requests_per_client": CAP, "max_streams_per_client": CAP - 2}},
        "ledger": {"enabled": False}, "breaker": {"failures": 3, "cooldown": 0.3},
        "providers": {"loc": {"kind": "openai", "base_url": openai_up.url + "/v1", "locality": "local"},
                      "ant": {"kind": "anthropic", "base_url": anthropic_up.url, "locality": "remote"}},
        "models": {"local": {"provider": "loc", "model": "m"}, "remote": {"provider": "ant", "model": "big"}},
        "routes": {"both": {"policy": "fallback", "targets": ["local", "remote"], "retries": 0}}})


async def _one(s: aiohttp.ClientSession, url: str, rnd: random.Random, source: str) -> None:
    """One request of a random kind; the client may leave early (a cancelled task closes its connection)."""
    kind = rnd.choice(["chat", "chat", "stream", "stream", "messages", "responses", "count", "embed", "bad"])
    model = rnd.choice(["local", "both", "remote"])
    headers = {"x-forwarded-for": source}  # (not trusted: every request is 127.0.0.1's; the header is ignored)
    if kind in ("chat", "stream"):
        path, body = "/v1/chat/completions", {"model": model, "messages": MSG, "stream": kind == "stream",
                                              "n": rnd.choice([1, 1, 2, 3])}
    elif kind == "messages":
        path, body = "/v1/messages", {"model": model, "max_tokens": 20, "messages": MSG,
                                      "stream": rnd.random() < 0.5}
    elif kind == "responses":
        path, body = "/v1/responses", {"model": model, "input": "hi", "stream": rnd.random() < 0.5}
    elif kind == "count":
        path, body = "/v1/messages/count_tokens", {"model": "remote", "messages": MSG}
    elif kind == "embed":
        path, body = "/v1/embeddings", {"model": "local", "input": "x"}
    else:
        path, body = "/v1/chat/completions", None
    leave = rnd.choice([None, None, "before", "first", "end"])

    async def run() -> None:
        kw = {"json": body} if body is not None else {"data": b"{not json"}
        async with s.post(url + path, headers=headers, **kw) as r:
            if leave == "first":
                await r.content.readany()
                return  # the connection is closed with the answer unread
            if leave == "end":
                while await r.content.readany():
                    await asyncio.sleep(0)
                return
            await r.read()

    task = asyncio.ensure_future(run())
    if leave == "before":
        await asyncio.sleep(rnd.random() * 0.03)
        task.cancel()
    try:
        await task
    except (asyncio.CancelledError, aiohttp.ClientError):
        pass


async def _storm(url: str, total: int, seed: int) -> None:
    rnd = random.Random(seed)
    sem = asyncio.Semaphore(40)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True)) as s:
        async def one(i: int) -> None:
            async with sem:
                await _one(s, url, rnd, f"10.0.0.{i % 3}")

        await asyncio.gather(*(one(i) for i in range(total)))


def test_counts_come_back_exactly_once_after_a_storm_of_mixed_requests(gateway, openai_up, anthropic_up):
    g = _gw(gateway, openai_up, anthropic_up)
    openai_up.default = Delay(0.005, SlowStream(0.002, Reply(text="one two three four five six seven eight")))
    anthropic_up.default = Reply(text="frontier answer")
    openai_up.script(*[Fail(500, "down")] * 40)  # the first 40 local calls fail: fallbacks, errors
    asyncio.run(_storm(g.url, 1200, 30))

    def held() -> tuple[dict[str, int], dict[str, int]]:
        return g.on_loop(lambda: (dict(g.app.calls.open), dict(g.app.streams.open)))

    assert wait_for(lambda: g.app.in_flight == 0 and held() == ({}, {}), timeout=30), held()

    async def at_cap() -> list[int]:  # the cap admits as many as before: nothing was given back twice either
        anthropic_up.default = Delay(1.0, Reply(text="held"))
        async with aiohttp.ClientSession() as s:
            async def ask() -> int:
                async with s.post(g.url + "/v1/chat/completions", json={"model": "remote", "messages": MSG}) as r:
                    await r.read()
                    return r.status

            return sorted(await asyncio.gather(*(ask() for _ in range(CAP + 2))))

    assert asyncio.run(at_cap()) == [200] * CAP + [429, 429]
    assert wait_for(lambda: held() == ({}, {}))
