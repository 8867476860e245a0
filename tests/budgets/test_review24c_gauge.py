"""Review of team-ops (session 24, review24c): the budgets gauge reads the global budgets' buckets by their keys.
It read them with `status()`, a SCAN of the store's whole database per budget (per-key budgets included, which
the gauge does not show): on a Redis shared with an application holding 200,000 keys a scrape took 0.8-1.4 s of
SCAN round trips, and past `BUDGETS_WAIT` the gauge was never set at all."""

from __future__ import annotations

import httpx
import pytest
import redis

from tests.budgets.test_store_health import ADMIN, ask, keys, team_gateway  # noqa: F401  (keys: the fixture)
from tests.harness import wait_for


def _scans(c: redis.Redis) -> int:
    return int(c.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


def test_a_scrape_reads_the_budget_gauge_without_scanning_the_store(own_redis, two_tier, keys):  # noqa: F811
    r = own_redis()
    c = redis.Redis(port=r.port)
    c.mset({f"other:app:{i}": "x" for i in range(2_000)})  # another application's keys in the same database
    g = team_gateway(two_tier, r.url)
    assert ask(g)
    # The answer is settled after the client has it (off the hot path): until then the gauge reads the request's
    # reservation and the status, read later, its settled cost (4.999127 against 4.999952 on a loaded machine).
    assert wait_for(lambda: httpx.get(g.url + "/v1/tierwise/budgets", headers={"authorization": f"Bearer {ADMIN}"},
                                      timeout=30).json()["reservations_in_flight"] == 0, timeout=60)
    before = _scans(c)
    text = httpx.get(g.url + "/metrics", headers={"authorization": f"Bearer {ADMIN}"}, timeout=30).text
    gauge = [ln for ln in text.splitlines() if ln.startswith("tierwise_budget_remaining_usd{")]
    assert [ln.split(" ")[0] for ln in gauge] == ['tierwise_budget_remaining_usd{budget="team"}']
    assert 0 < float(gauge[0].split(" ")[1]) < 5.0
    assert _scans(c) == before  # no SCAN
    # the status a person asks for still lists every bucket, the per-key ones found by SCAN
    rows = httpx.get(g.url + "/v1/tierwise/budgets", headers={"authorization": f"Bearer {ADMIN}"},
                     timeout=30).json()["budgets"]
    assert {(b["budget"], b["value"]) for b in rows} == {("team", "*"), ("per-person", "alice")}
    assert next(b for b in rows if b["budget"] == "team")["usd_remaining"] == pytest.approx(float(gauge[0].split(" ")[1]))
    c.close()
