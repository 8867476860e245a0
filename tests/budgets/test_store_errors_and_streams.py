"""Redis unreachable (fail_closed / fail_open), cancelled streams billed for what they relayed,
settlement once per request, and the usage a gateway reports."""

from __future__ import annotations

import asyncio
import logging

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.budgets.conftest import STORE_TIMEOUT_S
from tests.doubles import Reply, SlowStream
from tests.gateway.conftest import ant, oai
from tests.harness import free_port

from .conftest import REDIS_URL

USAGE = (40, 400)
COST = USAGE[0] * 3 / 1e6 + USAGE[1] * 15 / 1e6


def unreachable(mode: str) -> dict:
    return {"store": {"backend": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0",
                      "on_store_error": mode, "timeout": 0.5},
            "limits": [{"name": "cap", "usd": 1.0}]}


def status(g) -> dict:
    return asyncio.run_coroutine_threadsafe(g.gateway.spend.status(), g.loop).result(10)


def test_fail_closed_refuses_when_redis_is_unreachable(two_tier, anthropic_up):
    g = two_tier(budgets=unreachable("fail_closed"))
    with pytest.raises(openai.InternalServerError) as e:
        oai(g).chat.completions.create(model="main", max_tokens=50, messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 503 and "budget store unavailable" in e.value.body["message"]
    assert e.value.response.headers["retry-after"] == "5"
    with pytest.raises(anthropic.InternalServerError) as ea:
        ant(g).messages.create(model="main", max_tokens=50, messages=[{"role": "user", "content": "x"}])
    assert ea.value.body["error"]["type"] == "overloaded_error"
    assert not anthropic_up.requests


def test_fail_open_lets_requests_through_with_one_loud_warning(two_tier, anthropic_up, caplog):
    anthropic_up.default = Reply(text="through", usage=USAGE)
    g = two_tier(budgets=unreachable("fail_open"))
    with caplog.at_level(logging.WARNING, logger="tierwise.budgets"):
        for _ in range(4):
            r = oai(g).chat.completions.create(model="main", max_tokens=50, messages=[{"role": "user", "content": "x"}])
            assert r.choices[0].message.content == "through"
    warnings = [r for r in caplog.records if "STORE UNAVAILABLE" in r.getMessage()]
    assert len(warnings) == 1  # once per warn_interval, not once per request
    assert len(anthropic_up.requests) == 4


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_cancelled_stream_is_billed_for_what_it_relayed(two_tier, anthropic_up, backend, redis_prefix):
    words = " ".join(f"word{i:03d}" for i in range(400))  # 400 pieces of 8 characters (space included)
    anthropic_up.default = SlowStream(0.01, Reply(text=words, usage=(40, 4000)))
    store = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": redis_prefix, "timeout": STORE_TIMEOUT_S} if backend == "redis" else {}
    g = two_tier(budgets={"store": store, "limits": [{"name": "cap", "usd": 5.0, "tokens": 1_000_000}]})
    with httpx.stream("POST", g.url + "/v1/messages", timeout=10, json={
            "model": "main", "max_tokens": 4000, "stream": True,
            "messages": [{"role": "user", "content": "talk"}]}) as r:
        seen = 0
        for line in r.iter_lines():
            if '"text_delta"' in line:
                seen += 1
                if seen == 40:
                    break  # the client goes away after 40 words
    assert anthropic_up.wait_until(lambda: anthropic_up.disconnects >= 1)
    g.flush()
    rec = g.ledger.query()[-1]
    assert rec.status == 499
    row = None
    for _ in range(100):
        row = status(g)["budgets"][0]
        if row["tokens_used"] < 40 + 4000:  # the reservation (worst case) has been replaced
            break
        asyncio.run(asyncio.sleep(0.02))
    relayed = row["tokens_used"] - 40
    # Billed for about the words the gateway relayed (a few more may have been in flight), not for the
    # 1 output token the upstream's message_start reports, nor for the whole reservation.
    assert 40 * 8 / 4 - 2 <= relayed <= 120 * 8 / 4, row
    assert row["usd_used"] == pytest.approx((40 * 3 + relayed * 15) / 1e6)


def test_settlement_is_once_per_request_id(two_tier, anthropic_up):
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    g = two_tier(budgets={"limits": [{"name": "cap", "usd": 5.0}]})
    r = oai(g).chat.completions.with_raw_response.create(model="main", max_tokens=500,
                                                         messages=[{"role": "user", "content": "x"}])
    g.flush()
    assert status(g)["budgets"][0]["usd_used"] == pytest.approx(COST)
    spend = g.gateway.spend
    rid = r.headers["x-tierwise-request-id"]
    store = spend.store
    from tierwise.budgets.checks import Settlement

    key = spend.prefix + "b:cap:*"
    slot = int(__import__("time").time() // 86400)
    again = Settlement(key, slot, 0.0, 0, 1.0, 0, 3600)  # a second settlement of the same request
    assert store.settle_now(rid, [again], [], now=__import__("time").time(), settled_ttl=600) is False
    assert status(g)["budgets"][0]["usd_used"] == pytest.approx(COST)
