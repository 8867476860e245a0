"""The measured writing speed of a model (providers/output_rate.py) leaves out the time a non-streamed call waited in
the gateway's own pool of connections (session 38, costs10). Its seconds ran from before the wait: a tenant keeping
a deployment's `max_connections` busy made every queued call of that model look slow, and the rate they taught (kept
per deployment, for every caller) billed later cut calls' unseen output at that pace. Real gateway and OpenAI double
over loopback, the openai SDK."""

from __future__ import annotations

import threading
import time

from tests.doubles import Gate, Reply
from tests.gateway.conftest import gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import two_tier_config, wait_for

OUT = 400  # output tokens of the queued call's answer, written at once once it is sent
WAIT = 2.0  # seconds the queued call waits for the pool's one connection

MESSAGES = [{"role": "user", "content": "hi"}]


def test_a_wait_for_a_connection_does_not_teach_the_model_a_slow_rate(gateway, openai_up):  # noqa: F811
    cfg = two_tier_config(openai_up.url, openai_up.url, remote_kind="openai",
                          routes={"main": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    cfg["providers"]["cloud"]["max_connections"] = 1
    cfg["models"]["frontier"]["price"] = {"input": 3, "output": 15}
    cfg["budgets"] = {"limits": [{"name": "cap", "usd": 1.0}]}
    g = gateway(cfg)
    release = threading.Event()
    openai_up.script(Gate(release, Reply(text="ok", usage=(10, 10))), Reply(text="word " * 80, usage=(20, OUT)))

    def ask(max_tokens: int) -> None:
        oai(g).chat.completions.create(model="main", max_tokens=max_tokens, messages=MESSAGES)

    first = threading.Thread(target=ask, args=(10,))
    first.start()
    assert wait_for(lambda: len(openai_up.requests) == 1)
    second = threading.Thread(target=ask, args=(800,))
    second.start()
    time.sleep(WAIT)  # (the second call queued behind the first's connection all this while)
    release.set()
    first.join(30)
    second.join(30)
    rate = g.gateway.deployments["frontier"].rate
    assert len(openai_up.requests) == 2 and rate.seen == 1
    # Its time in the pool alone reads OUT / WAIT tokens a second; the upstream wrote the answer at once.
    assert rate.fastest > OUT / WAIT, f"learned {rate.fastest:.0f} tokens/s from an answer written at once"
