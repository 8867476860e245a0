"""Ledger rows written by the gateway: complete, priced right, none for rejected requests."""

from __future__ import annotations

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.harness import two_tier_config


def test_rows_complete_and_costs_right(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={
        "main": ["frontier"], "cheap": {"policy": "fallback", "targets": ["local"], "reference": "frontier"}}))
    anthropic_up.default = Reply(text="priced", usage=(1000, 2000))
    openai_up.default = Reply(text="free", usage=(1000, 2000))
    raw = ant(g).messages.with_raw_response.create(model="main", max_tokens=4096,
                                                    messages=[{"role": "user", "content": "q"}],
                                                    extra_headers={"x-tierwise-feature": "chat"})
    rid = raw.headers["x-tierwise-request-id"]
    r2 = oai(g).chat.completions.with_raw_response.create(model="cheap", messages=[{"role": "user", "content": "q"}])
    g.flush()
    rec = g.ledger.get(rid)
    assert rec is not None
    assert rec.route == "main" and rec.client_format == "anthropic" and rec.stream is False
    assert rec.status == 200 and rec.decision == "frontier" and rec.locality == "remote"
    assert rec.model == "big-model" and rec.provider == "cloud" and rec.feature == "chat"
    assert rec.input_tokens == 1000 and rec.output_tokens == 2000
    # price: $3/M in, $15/M out
    assert rec.cost_usd == pytest.approx(1000 * 3e-6 + 2000 * 15e-6)
    assert rec.latency_ms > 0 and rec.ttft_ms is not None
    local = g.ledger.get(r2.headers["x-tierwise-request-id"])
    assert local.cost_usd == 0 and local.locality == "local"
    assert local.reference_model == "frontier"
    assert local.reference_cost_usd == pytest.approx(1000 * 3e-6 + 2000 * 15e-6)


def test_stream_row_has_usage_and_ttft(gateway, openai_up, anthropic_up):
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]}))
    anthropic_up.default = Reply(text="a b c", usage=(50, 3))
    with oai(g).chat.completions.with_streaming_response.create(
            model="main", stream=True, messages=[{"role": "user", "content": "q"}]) as resp:
        rid = resp.headers["x-tierwise-request-id"]
        for _ in resp.iter_lines():
            pass
    g.flush()
    rec = g.ledger.get(rid)
    assert rec.stream is True and rec.input_tokens == 50 and rec.output_tokens == 3
    assert rec.ttft_ms is not None and rec.ttft_ms <= rec.latency_ms


def test_rejected_requests_are_not_recorded(gateway, openai_up, anthropic_up):
    import httpx2 as httpx

    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]},
                                server={"default_route": None}))
    httpx.post(g.url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    httpx.post(g.url + "/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    httpx.post(g.url + "/v1/messages", json={"model": "main", "messages": "wrong"})
    g.flush()
    assert g.ledger.count() == 0
    assert openai_up.requests == [] and anthropic_up.requests == []


def test_a_clients_feature_tag_is_bounded_in_the_ledger(gateway, openai_up, anthropic_up):
    """`metadata.tierwise_feature` is the client's text, limited only by the body size: 32 MB a row."""
    g = gateway(two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ["frontier"]}))
    anthropic_up.default = Reply(text="ok")
    raw = ant(g).messages.with_raw_response.create(model="main", max_tokens=4096, messages=[{"role": "user", "content": "q"}],
                                                    metadata={"tierwise_feature": "f" * 200_000})
    g.flush()
    rec = g.ledger.get(raw.headers["x-tierwise-request-id"])
    assert rec.feature == "f" * 256
