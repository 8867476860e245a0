"""Bodies over BIG_BODY_BYTES are parsed and decoded one at a time (the big-body lane); other requests never
wait for it. The lane is held from the test, so nothing here depends on how fast anything runs."""

from __future__ import annotations

import asyncio
import threading

import orjson

from tests.gateway.conftest import oai
from tests.harness import wait_for
from tierwise.server.limits import BIG_BODY_BYTES


def test_a_big_body_waits_for_the_lane_and_a_small_one_does_not(two_tier):
    g = two_tier(routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})  # (no context window)
    turn = "lorem ipsum " * 100
    messages = [{"role": "user", "content": turn}] * (BIG_BODY_BYTES // len(turn) + 10)
    big = orjson.dumps({"model": "main", "messages": messages})
    assert len(big) > BIG_BODY_BYTES
    parsed: list[int] = []
    parse = g.app.parse_body
    g.app.parse_body = lambda body, headers, scope=None: (parsed.append(len(body)), parse(body, headers, scope))[1]  # type: ignore[method-assign]
    lane = g.app.big_bodies
    assert g.loop is not None
    asyncio.run_coroutine_threadsafe(lane.acquire(), g.loop).result(5)  # the lane is taken: a big body waits
    answers: list[int] = []

    def send_big() -> None:
        import httpx2 as httpx

        answers.append(httpx.post(g.url + "/v1/chat/completions", content=big,
                                  headers={"content-type": "application/json"}, timeout=30).status_code)

    t = threading.Thread(target=send_big)
    t.start()
    try:
        assert wait_for(lambda: g.app.budget.held >= len(big)), "the big body was not read"
        # It is read and waits; a small request meanwhile is parsed and answered.
        r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content
        assert parsed and all(n < BIG_BODY_BYTES for n in parsed), parsed
        assert not answers
    finally:
        g.loop.call_soon_threadsafe(lane.release)
        t.join(30)
    assert answers == [200]
    assert any(n == len(big) for n in parsed)
