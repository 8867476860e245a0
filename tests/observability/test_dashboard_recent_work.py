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


def test_a_gateway_key_s_recent_reads_no_other_keys_requests(two_tier, anthropic_up, monkeypatch):
    """At `recent: 100,000`, a key with one request among 99,999 of another key's: the walk back to find its 50
    looked at every one of them (7.2 ms of the event loop a call, any gateway key, as often as it asked; session
    35's left item). Its rows now come from its own index: the other key's requests are not looked at."""
    from types import SimpleNamespace as NS

    from tests.doubles import Reply
    from tierwise.server import roles

    monkeypatch.setenv("OPS", "key-ops")
    monkeypatch.setenv("OTHER", "key-other")
    anthropic_up.default = Reply(text="hi")
    g = two_tier(server={"api_keys_env": ["OPS", "OTHER"], "default_route": "main"},
                 observability={"dashboard": {"enabled": True, "recent": 100_000}})
    mine = oai(g, api_key="key-ops").chat.completions.with_raw_response.create(
        model="main", messages=[{"role": "user", "content": "q"}]).headers["x-tierwise-request-id"]
    feed = g.app.routes[("GET", "/dashboard/api/recent")].__self__.obs.live
    other = feed.recent[-1][1]
    own_key = other.key
    for i in range(99_999):  # the other key's requests (its records' fields, another key name and id)
        feed.add(NS(**{**{k: getattr(other, k) for k in ("wall", "route", "api", "stream", "status", "error_type",
                                                           "latency_ms", "ttft_ms", "answered", "cost",
                                                           "reference_cost", "trace", "steps")},
                       "request_id": f"other-{i}", "key": "another-key"}))
    assert len(feed.recent) == 100_000 and feed.recent[0][1].request_id == mine
    looked = []
    real = roles.Reader.owns
    monkeypatch.setattr(roles.Reader, "owns", lambda self, k: looked.append(k) or real(self, k))
    got = httpx.get(g.url + "/dashboard/api/recent", headers={"authorization": "Bearer key-ops"})
    assert got.status_code == 200, got.text
    assert [r["id"] for r in got.json()["rows"]] == [mine]
    assert len(looked) <= 50, f"{len(looked)} requests looked at for an answer of 1"
    feed.add(NS(**{**vars(feed.recent[-1][1]), "request_id": "other-last"}))  # its request leaves the view
    got = httpx.get(g.url + "/dashboard/api/recent", headers={"authorization": "Bearer key-ops"})
    assert got.json()["rows"] == [] and own_key not in feed.by_key


def test_the_per_key_index_keeps_no_request_that_left_recent():
    """`recent` is the operator's bound on the requests the live view keeps. Each key's own index kept its newest
    50 for as long as its newest was still among `recent`, so with many keys all busy (a team gateway, a key per
    user) the requests kept alive were up to 50 per key, not `recent`: at `recent: 100` and 20 keys, 1,000 (session
    36, review36d). A key's oldest row now leaves its index when it leaves `recent`."""
    import time
    from types import SimpleNamespace as NS

    feed = live.LiveFeed(100)
    for i in range(1000):  # 20 keys taking turns
        feed.add(NS(request_id=f"r{i}", key=f"user-{i % 20}", wall=time.time(), status=200, cost=0.0,
                    reference_cost=None, latency_ms=1.0, answered=None, route="main", steps=[]))
    kept = {id(r) for _, r in feed.recent}
    indexed = [r for own in feed.by_key.values() for _, r in own]
    assert len(indexed) <= len(feed.recent) and {id(r) for r in indexed} <= kept, \
        f"{len(indexed)} requests held by the per-key index, {len(feed.recent)} in recent"
    assert [r.request_id for _, r in feed.by_key["user-7"]] == [f"r{i}" for i in range(907, 1000, 20)]
