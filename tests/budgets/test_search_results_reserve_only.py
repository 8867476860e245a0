"""The 10,000 input tokens a web search allowed reserves (`pricing.SEARCH_RESULT_TOKENS`, costs3) are a reservation,
not a bill: a client that leaves before the answer is counted the input the upstream read (its body's estimate), not
the results of searches that never ran. Before review31c the reservation's whole input estimate, searches included,
was what such a call was counted: a request allowing 100 searches, cut at once, spent $3 of its budget."""

from __future__ import annotations

import socket
import uuid

import pytest

from tests.budgets.frontier_spend import frontier_config, used
from tests.doubles import Reply
from tests.doubles.script import Delay
from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401 (the same fixtures)
from tests.gateway.test_connection_bounds import _request
from tests.harness import drop_redis_keys, wait_for

from .conftest import STORE_TIMEOUT_S

REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_cut_request_allowing_searches_is_not_counted_their_results(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                      backend):
    prefix = f"tierwise-test:{uuid.uuid4().hex[:12]}:"
    try:
        _cut_request_counted(gateway, openai_up, anthropic_up, backend, prefix)
    finally:
        drop_redis_keys(REDIS_URL, prefix)


def _cut_request_counted(gateway, openai_up, anthropic_up, backend, prefix):  # noqa: F811
    cfg = frontier_config(openai_up, anthropic_up)
    if backend == "redis":
        cfg["budgets"]["store"] = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix,
                                   "timeout": STORE_TIMEOUT_S}
    cfg["budgets"]["limits"][0]["usd"] = 100.0
    cfg["server"]["forwarding"] = {"server_tools": ["web_search_*"]}
    cfg["providers"]["cloud"]["timeouts"] = {"connect": 1, "read": 120}
    anthropic_up.default = Delay(60, Reply(text="late", usage=(1000, 10), web_searches=100))
    g = gateway(cfg)
    body = {"model": "main", "max_tokens": 10, "messages": [{"role": "user", "content": "lorem ipsum " * 400}],
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 100}]}
    s = socket.create_connection(("127.0.0.1", g.port))
    s.sendall(_request("/v1/messages", body))
    assert anthropic_up.wait_until(lambda: anthropic_up.active == 1, timeout=20)
    s.close()
    assert wait_for(lambda: g.app.in_flight == 0, timeout=20)
    g.flush()
    counted = used(g)
    # the body: ~4,800 characters, under 2,000 tokens ($0.006); 100 searches' results would be 1,000,000 ($3)
    assert 0 < counted < 0.01, f"${counted:.4f} counted for a request cut before any search ran"
