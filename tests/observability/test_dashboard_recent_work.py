"""`/dashboard/api/recent` for a gateway key (its own newest 50 requests): it built a row for every one of its
requests the dashboard kept, then kept 50. ~11 ms of the event loop a call at the default `recent: 2000`, 0.65 s at
100,000; any gateway key may call it (`dashboard.client_keys: own`, the default), as often as it likes. It now walks
back from the newest and builds the 50 it answers with. Counts rows built, not time."""

from __future__ import annotations

import httpx2 as httpx

from tests.gateway.conftest import oai
from tierwise.observability import live

OWN = 80


def test_a_gateway_key_s_recent_builds_only_the_rows_it_answers_with(two_tier, anthropic_up, monkeypatch):
    from tests.doubles import Reply

    monkeypatch.setenv("OPS", "key-ops")
    monkeypatch.setenv("OTHER", "key-other")
    anthropic_up.default = Reply(text="hi")
    g = two_tier(server={"api_keys_env": ["OPS", "OTHER"], "default_route": "main"},
                 observability={"dashboard": {"enabled": True, "recent": 500}})
    mine = []
    for i in range(OWN):
        r = oai(g, api_key="key-ops").chat.completions.with_raw_response.create(
            model="main", messages=[{"role": "user", "content": f"q{i}"}])
        mine.append(r.headers["x-tierwise-request-id"])
        if i % 10 == 0:  # another key's requests in between
            oai(g, api_key="key-other").chat.completions.create(model="main", messages=[{"role": "user", "content": "x"}])
    built = []
    real = live.row
    monkeypatch.setattr(live, "row", lambda rec, seq: built.append(seq) or real(rec, seq))
    got = httpx.get(g.url + "/dashboard/api/recent", headers={"authorization": "Bearer key-ops"})
    assert got.status_code == 200, got.text
    assert [r["id"] for r in got.json()["rows"]] == mine[-50:]  # its newest 50, oldest first
    assert len(built) == 50, f"{len(built)} rows built for an answer of 50"
