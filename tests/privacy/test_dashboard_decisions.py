"""The dashboard's per-route decisions name the privacy boundary's step as `privacy`.

A request on a rules route that crossed the boundary showed two decisions on the dashboard, `default` and
`other`: the boundary's step (`redacted 1 value(s) for frontier`) read as a policy decision of an unknown kind.
Real HTTP, the official SDK, an Anthropic double upstream."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import ant
from tests.privacy.support import privacy_config


def test_privacy_steps_are_their_own_decision_kind(gateway, openai_up, anthropic_up):
    routes = {"main": {"policy": "rules", "rules": [{"name": "long", "match": {"min_input_tokens": 100000},
                                                     "target": "local"}], "default": "frontier"}}
    cfg = privacy_config(openai_up.url, anthropic_up.url, routes)
    cfg["observability"] = {"dashboard": {"enabled": True}}
    g = gateway(cfg)
    ant(g).messages.create(model="main", max_tokens=20,
                           messages=[{"role": "user", "content": "Write to jane.doe@example.com please."}])
    assert b"jane.doe@example.com" not in anthropic_up.requests[0].raw
    summary = httpx.get(g.url + "/dashboard/api/summary", params={"seconds": 60}).json()
    decisions: dict[str, int] = {}
    for sec in summary["series"]:
        for label, n in sec["decisions"].get("main", {}).items():
            decisions[label] = decisions.get(label, 0) + n
    assert decisions == {"default": 1, "privacy": 1}, decisions
