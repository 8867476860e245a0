"""A rate limit is not an outage (session 26, review26b).

An upstream answering 429 with `Retry-After: 1` to one request that the openai SDK retried twice cost 6 upstream
calls (the route retried each try once more), and the five failures opened the deployment's breaker for its
whole 30 s cooldown: clients then heard 503 "circuit open" with `Retry-After: 29` although the upstream had asked
for one second. Now a 429 holds the deployment for the upstream's Retry-After (bounded) without counting toward
the breaker, the route does not retry it (the client does, on the gateway's 429), and a client that waits the
Retry-After it is told is answered."""

from __future__ import annotations

import time

import anthropic
import openai
import pytest

from tests.doubles import Fail
from tests.gateway.conftest import ant, oai

MSGS = [{"role": "user", "content": "hi"}]


def one_target(gateway, up, kind):
    base = up.url + "/v1" if kind == "openai" else up.url
    return gateway({
        "ledger": {"path": "ledger.db"},
        "providers": {"p": {"kind": kind, "base_url": base, "locality": "local"}},
        "models": {"m": {"provider": "p", "model": "local-model"}},
        # retries: 1 and the breaker's defaults (5 failures, 30 s): what newuser26 met
        "routes": {"main": {"policy": "fallback", "targets": ["m"], "retries": 1}},
    })


@pytest.mark.parametrize("stream", [False, True])
def test_openai_sdk_retries_make_one_call_each_and_the_breaker_stays_closed(gateway, openai_up, stream):
    g = one_target(gateway, openai_up, "openai")
    openai_up.default = Fail(429, retry_after=1)
    client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="test", max_retries=2))
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="main", messages=MSGS, stream=stream)
    assert len(openai_up.requests) == 3  # the client's three tries, one upstream call each (was 6)
    assert e.value.response.headers["retry-after"] == "1"  # the upstream's wait, not the breaker's 29
    # The upstream recovers; a client that waits what it was told is answered (was 503 "circuit open" for 30 s).
    openai_up.default = "recovered"
    client0 = oai(g)
    try:
        r = client0.chat.completions.create(model="main", messages=MSGS)
    except openai.RateLimitError as held:  # the hold may still have a moment left: a 429 that says how long
        time.sleep(float(held.response.headers["retry-after"]))
        r = client0.chat.completions.create(model="main", messages=MSGS)
    assert r.choices[0].message.content == "recovered"


def test_anthropic_client_hears_429_not_circuit_open(gateway, anthropic_up):
    g = one_target(gateway, anthropic_up, "anthropic")
    anthropic_up.default = Fail(429, retry_after=1)
    for _ in range(4):  # 8 route attempts before the fix: the breaker opened on the fifth failure
        with pytest.raises(anthropic.RateLimitError):
            ant(g).messages.create(model="main", max_tokens=10, messages=MSGS)
    assert len(anthropic_up.requests) <= 4


def test_a_held_deployment_is_not_called_and_the_route_moves_on(gateway, openai_up, anthropic_up):
    g = gateway({
        "ledger": {"path": "ledger.db"},
        "providers": {"o": {"kind": "openai", "base_url": openai_up.url + "/v1", "locality": "local"},
                      "a": {"kind": "anthropic", "base_url": anthropic_up.url}},
        "models": {"om": {"provider": "o", "model": "local-model"}, "am": {"provider": "a", "model": "claude"}},
        "routes": {"main": {"policy": "fallback", "targets": ["om", "am"]}},
    })
    openai_up.default = Fail(429, retry_after=20)
    anthropic_up.default = "from frontier"
    for _ in range(3):
        r = oai(g).chat.completions.create(model="main", messages=MSGS)
        assert r.choices[0].message.content == "from frontier"
    # One call met the 429; while its Retry-After runs the local target is skipped, not asked again and again.
    assert len(openai_up.requests) == 1 and len(anthropic_up.requests) == 3
