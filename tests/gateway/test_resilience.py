"""Fallback, retries and breakers through a real gateway against misbehaving doubles."""

from __future__ import annotations

import time

import anthropic
import openai
import pytest

from tests.doubles import CutStream, Delay, Fail, Reply, SlowStream
from tests.gateway.conftest import ant, oai
from tests.harness import free_port, two_tier_config


def chain_config(openai_up, anthropic_up, **route):
    r = {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0, **route}
    return two_tier_config(openai_up.url, anthropic_up.url, routes={"main": r})


def steps(g, rid):
    g.flush()
    return g.ledger.get(rid)


def test_5xx_falls_back(gateway, openai_up, anthropic_up):
    g = gateway(chain_config(openai_up, anthropic_up))
    anthropic_up.script(Fail(503, "down for maintenance"))
    openai_up.default = Reply(text="local answer")
    raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": "q"}])
    assert raw.parse().choices[0].message.content == "local answer"
    assert "call:frontier:fail" in raw.headers["x-tierwise-steps"]
    assert "call:local:ok" in raw.headers["x-tierwise-steps"]
    rec = steps(g, raw.headers["x-tierwise-request-id"])
    assert rec.decision == "local" and rec.status == 200
    calls = [s for s in rec.steps if s["kind"] == "call"]
    assert calls[0]["name"] == "frontier" and calls[0]["status"] == 503 and calls[0]["ok"] is False


def test_429_moves_on_and_a_client_that_waits_its_retry_after_is_answered(gateway, openai_up, anthropic_up):
    # Not retried by the route (the client's SDK does, on the gateway's 429: two layers retrying multiplied the
    # calls to a rate-limited upstream, review26b): the next target answers.
    g = gateway(chain_config(openai_up, anthropic_up, retries=1))
    anthropic_up.script(Fail(429, "slow down", retry_after=1))
    openai_up.default = Reply(text="local instead")
    r = ant(g).messages.create(model="main", max_tokens=20, messages=[{"role": "user", "content": "q"}])
    assert r.content[0].text == "local instead"
    assert len(anthropic_up.requests) == 1 and len(openai_up.requests) == 1
    # Alone on its route, the 429 reaches the client with the upstream's Retry-After; the SDK waits it and retries.
    g1 = gateway(chain_config(openai_up, anthropic_up, targets=["frontier"], retries=1))
    anthropic_up.script(Fail(429, "slow down", retry_after=1), Reply(text="frontier after wait"))
    t0 = time.monotonic()
    sdk = g1.keep(anthropic.Anthropic(base_url=g1.url, api_key="test", max_retries=1))
    r = sdk.messages.create(model="main", max_tokens=20, messages=[{"role": "user", "content": "q"}])
    waited = time.monotonic() - t0
    assert r.content[0].text == "frontier after wait"
    assert len(anthropic_up.requests) == 3 and len(openai_up.requests) == 1
    assert waited >= 0.9  # the Retry-After was honoured (a behaviour check, not a speed limit)


def test_connection_refused_falls_back(gateway, openai_up, anthropic_up):
    cfg = chain_config(openai_up, anthropic_up)
    cfg["providers"]["cloud"]["base_url"] = f"http://127.0.0.1:{free_port()}"
    g = gateway(cfg)
    openai_up.default = Reply(text="still answered")
    r = ant(g).messages.create(model="main", max_tokens=20, messages=[{"role": "user", "content": "q"}])
    assert r.content[0].text == "still answered"


def test_read_timeout_falls_back(gateway, openai_up, anthropic_up):
    cfg = chain_config(openai_up, anthropic_up)
    cfg["providers"]["cloud"]["timeouts"] = {"connect": 1, "read": 2}  # the harness's default is far longer
    g = gateway(cfg)
    anthropic_up.script(Delay(5, then=Reply(text="too late")))
    openai_up.default = Reply(text="in time")
    r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "q"}])
    assert r.choices[0].message.content == "in time"


def test_stream_cut_before_first_byte_falls_back(gateway, openai_up, anthropic_up):
    g = gateway(chain_config(openai_up, anthropic_up))
    anthropic_up.script(CutStream(after_chunks=0, then=Reply(text="never")))
    openai_up.default = Reply(text="fallback stream")
    stream = oai(g).chat.completions.create(model="main", stream=True,
                                            messages=[{"role": "user", "content": "q"}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "fallback stream"


def test_stream_cut_after_first_byte_gives_clean_error_event(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]}))
    anthropic_up.script(CutStream(after_chunks=4, then=Reply(text="a b c d e f g h i j")))
    with pytest.raises(anthropic.APIError) as e:  # noqa: PT012
        with ant(g).messages.stream(model="main", max_tokens=50, messages=[{"role": "user", "content": "q"}]) as s:
            for _ in s:
                pass
    assert "stream" in str(e.value).lower() or "cut" in str(e.value).lower()
    g.flush()
    rows = g.ledger.query()
    assert len(rows) == 1 and rows[0].status >= 500


def test_all_down_is_503_in_client_schema(gateway, openai_up, anthropic_up):
    g = gateway(chain_config(openai_up, anthropic_up))
    anthropic_up.default = Fail(500)
    openai_up.default = Fail(502)
    with pytest.raises(openai.InternalServerError) as e:
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "q"}])
    assert e.value.status_code == 503
    assert "every target failed" in e.value.message
    with pytest.raises(anthropic.APIStatusError) as e2:
        ant(g).messages.create(model="main", max_tokens=5, messages=[{"role": "user", "content": "q"}])
    assert e2.value.status_code == 503 and e2.value.body["type"] == "error"


def test_breaker_opens_and_recovers(gateway, openai_up, anthropic_up):
    """With a 0.3 s cooldown the fourth request had to come within 0.3 s of the third failure to find the breaker
    open: on a busy machine it came later, the breaker was half-open and the frontier was called a fourth time.
    The cooldown is long now, and its end is the breaker's clock moved past it, not a sleep."""
    cfg = chain_config(openai_up, anthropic_up)
    cfg["breaker"] = {"failures": 3, "cooldown": 600}
    g = gateway(cfg)
    anthropic_up.default = Fail(503)
    openai_up.default = Reply(text="local")
    c = oai(g)
    for _ in range(3):
        c.chat.completions.create(model="main", messages=[{"role": "user", "content": "q"}])
    assert len(anthropic_up.requests) == 3
    # Open: the frontier is skipped without a call.
    raw = c.chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": "q"}])
    assert len(anthropic_up.requests) == 3
    assert raw.parse().choices[0].message.content == "local"
    g.flush()
    rec = g.ledger.get(raw.headers["x-tierwise-request-id"])
    assert any(s.get("reason") == "circuit open" for s in rec.steps)
    # After the cooldown one probe goes through; it succeeds and closes the breaker.
    breaker = g.gateway.deployments["frontier"].breaker
    assert breaker.state == "open"
    breaker.opened_at -= breaker.cooldown  # the cooldown is over
    anthropic_up.default = Reply(text="frontier is back")
    r = c.chat.completions.create(model="main", messages=[{"role": "user", "content": "q"}])
    assert r.choices[0].message.content == "frontier is back"
    r = c.chat.completions.create(model="main", messages=[{"role": "user", "content": "q"}])
    assert r.choices[0].message.content == "frontier is back"
    assert len(anthropic_up.requests) == 5


def test_dead_local_does_not_block_frontier_routes(gateway, openai_up, anthropic_up):
    cfg = two_tier_config(openai_up.url, anthropic_up.url,
                          routes={"main": ["frontier"], "local-only": ["local"]})
    cfg["providers"]["localsrv"]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"
    g = gateway(cfg)
    anthropic_up.default = Reply(text="fine")
    with pytest.raises(openai.APIStatusError):
        oai(g).chat.completions.create(model="local-only", messages=[{"role": "user", "content": "q"}])
    r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": "q"}])
    assert r.choices[0].message.content == "fine"


def test_slow_stream_still_completes(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["local"]}))
    openai_up.default = SlowStream(interval=0.05, then=Reply(text="s l o w"))
    stream = oai(g).chat.completions.create(model="main", stream=True, messages=[{"role": "user", "content": "q"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "s l o w"
