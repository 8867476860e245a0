"""A call that waited in the gateway's own pool of connections (`providers.<p>.max_connections` all in use) and
whose client left before it got one was never sent: the upstream wrote nothing, so nothing unseen is billed. Before
review36c the unseen-output bound (providers/usage_bounds.py, 1,000 tokens a second) counted from before the wait:
a client that gave up on a call queued behind another tenant's slow calls was billed up to its whole cap of output
it was never given a chance to ask for. Real gateway, the openai SDK, the OpenAI double as the frontier
($3/$15 per million), memory store."""

from __future__ import annotations

import threading
import time

import openai
import pytest

from tests.budgets.frontier_spend import used
from tests.doubles import Gate, Reply
from tests.gateway.conftest import gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import two_tier_config, wait_for

CAP = 5000  # the queued call's max_tokens: its 2 s in the pool were 2,000 tokens ($0.03) at the bound's rate
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_left_while_waiting_for_a_connection_counts_no_unseen_output(gateway, openai_up, stream):  # noqa: F811
    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["providers"]["cloud"]["max_connections"] = 1
    cfg["models"]["frontier"].update(model="o3-mini", price={"input": 3, "output": 15})  # hides its reasoning
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": 1.0}]}
    g = gateway(cfg)
    release = threading.Event()
    openai_up.default = Gate(release, Reply(text="ok", usage=(10, 10)))
    first = threading.Thread(target=lambda: oai(g).chat.completions.create(model="main", max_tokens=10,
                                                                           messages=MESSAGES))
    first.start()
    try:
        wait_for(lambda: len(openai_up.requests) == 1)  # the pool's one connection is taken
        with pytest.raises(openai.APITimeoutError):
            s = oai(g, timeout=2.0).chat.completions.create(model="main", max_tokens=CAP, messages=MESSAGES,
                                                            stream=stream)
            if stream:
                next(iter(s))
        time.sleep(0.5)  # (the gateway sees its client gone)
    finally:
        release.set()
        first.join(10)
    spent = used(g)
    assert len(openai_up.requests) == 1, "the queued call reached the upstream"
    # The first call: 10 in, 10 out ($0.00018); the queued one: its input estimate at most.
    assert spent < 0.001, f"${spent} counted for a call that never left the gateway's pool (stream={stream})"
