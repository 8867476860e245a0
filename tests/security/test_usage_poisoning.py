"""An upstream that lies about its usage (cost poisoning): the ledger's cost is what budgets charge and its
tokens what rate limits count, so an upstream reporting 10**12 tokens for a two-word answer charged one
request $32,212 (2**31 output tokens at $15/M). The gateway takes no more output than the call's
max_tokens and no count past the provider's `max_usage_tokens`."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from tests.doubles.script import Reply
from tests.harness import two_tier_config

CAP = 100_000  # max_usage_tokens in this test
MAX_TOKENS = 50
PRICE_IN, PRICE_OUT = 3.0, 15.0  # $/M of the frontier model in two_tier_config


@pytest.mark.parametrize("upstream", ["anthropic", "openai"])
@pytest.mark.parametrize("api,stream", [("openai", False), ("openai", True), ("anthropic", False),
                                        ("anthropic", True)])
def test_absurd_usage_from_an_upstream_is_cut_to_what_it_can_have_counted(gateway, openai_up, anthropic_up,
                                                                           upstream, api, stream):
    up = anthropic_up if upstream == "anthropic" else openai_up
    cfg = two_tier_config(up.url, up.url, local_kind=upstream, remote_kind=upstream,
                          routes={"main": ["frontier"]}, ledger={"path": "ledger.db"})
    cfg["providers"]["cloud"]["max_usage_tokens"] = CAP
    g = gateway(cfg)
    up.default = Reply(text="two words", usage=(10**12, 10**12), cache_read_tokens=10**12)
    msgs = [{"role": "user", "content": "q"}]
    if api == "openai":
        r = httpx.post(g.url + "/v1/chat/completions", timeout=30,
                       json={"model": "main", "max_tokens": MAX_TOKENS, "stream": stream, "messages": msgs})
    else:
        r = httpx.post(g.url + "/v1/messages", timeout=30,
                       json={"model": "main", "max_tokens": MAX_TOKENS, "stream": stream, "messages": msgs})
    assert r.status_code == 200
    g.flush()
    rec = g.ledger.get(r.headers["x-tierwise-request-id"])
    assert rec.output_tokens <= MAX_TOKENS
    assert rec.input_tokens <= CAP and rec.cache_read_tokens <= CAP
    assert rec.cost_usd is not None
    assert rec.cost_usd <= (2 * CAP * PRICE_IN + MAX_TOKENS * PRICE_OUT) / 1e6
