"""`budgets.on_exhausted: downgrade` (the section's default for every route) on a route that reaches no local
model: a remote model named directly (`model: frontier`, on by default through `server.direct_models`), or a route
of remote models only. Before session 34 (newuser34) every request to such a route was an HTTP 500 naming a config
key (`budgets.routes.<route>: ... reaches no local model`), budget spent or not, while `serve` and `doctor` had
called the config valid. Such a route has nowhere to go down to: it refuses once spent, as under `refuse`."""

from __future__ import annotations

import openai
import pytest

from tests.doubles import Reply
from tests.gateway.conftest import oai

USAGE = (40, 400)  # $0.00012 + $0.006 a request at $3/$15 per million
COST = USAGE[0] * 3 / 1e6 + USAGE[1] * 15 / 1e6


def ask(g, model: str) -> str:
    return oai(g).chat.completions.create(model=model, max_tokens=500,
                                          messages=[{"role": "user", "content": "hello"}]).choices[0].message.content


def test_a_remote_only_route_refuses_when_spent_instead_of_failing_every_request(two_tier, anthropic_up, openai_up):
    anthropic_up.default = Reply(text="paid answer", usage=USAGE)
    openai_up.default = Reply(text="local answer")
    g = two_tier(budgets={"on_exhausted": "downgrade", "limits": [{"name": "cap", "usd": COST * 1.5}]},
                 routes={"main": {"policy": "fallback", "targets": ["frontier", "local"], "retries": 0},
                         "cloud-only": {"policy": "fallback", "targets": ["frontier"], "retries": 0}})
    assert ask(g, "frontier") == "paid answer"  # the model by its name: was a 500
    assert ask(g, "cloud-only") == "paid answer"  # the cap is passed now ("remaining" admission)
    for name in ("frontier", "cloud-only"):
        with pytest.raises(openai.RateLimitError) as e:
            ask(g, name)
        assert "budget 'cap'" in e.value.body["message"], e.value.body
    assert ask(g, "main") == "local answer"  # a route with a local model still goes down to it
