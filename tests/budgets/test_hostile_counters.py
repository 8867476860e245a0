"""A budget's or rate limit's counter on Redis written from outside (another deployment on the same Redis without an
ACL user of its own, a hand at `redis-cli`): a value below zero, NaN or a word counts as nothing spent and is set to 0
where it stands, so the write does no more than deleting the counter would.

Before (session 32, obs4): `-1000000` in a spent $0.005 budget's counter was a credit every later admission was taken
from (20 of 20 requests admitted past the cap, and on until a million dollars); a word there made every request of
the budget a 503 "budget store unavailable" until the counter expired (a day or more).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest
import redis

from tests.budgets.conftest import STORE_TIMEOUT_S
from tests.doubles import Reply
from tests.gateway.conftest import oai
from tests.harness import drop_redis_keys

URL = "redis://127.0.0.1:6379/9"  # (databases 0-6 are other work's)
USAGE = (40, 400)


@pytest.fixture
def prefix() -> Iterator[str]:
    p = f"tierwise-test-counters:{uuid.uuid4().hex[:12]}:"
    yield p
    drop_redis_keys(URL, p)


def ask(c: openai.OpenAI, n: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(n):
        try:
            c.chat.completions.create(model="main", max_tokens=50, messages=[{"role": "user", "content": "x"}])
            out.append(200)
        except openai.APIStatusError as e:
            out.append(e.status_code)
    return out


def write(prefix: str, kind: str, value: str) -> int:
    """`value` into every `kind` field (u: USD, t: tokens, r: requests) of the counters under `prefix`."""
    r = redis.Redis.from_url(URL, decode_responses=True)
    n = 0
    try:
        for k in r.scan_iter(match=prefix + "*"):
            if r.type(k) == "hash" and (k.startswith(prefix + "b:") or k.startswith(prefix + "rl:")):
                for f in r.hkeys(k):
                    if f[0] == kind:
                        r.hset(k, f, value)
                        n += 1
    finally:
        r.close()
    return n


@pytest.mark.parametrize("window", ["day", {"rolling": "1h"}], ids=["day", "rolling"])
def test_a_counter_set_below_zero_lends_no_spend(two_tier, anthropic_up, prefix, window):
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    g = two_tier(budgets={"store": {"backend": "redis", "redis_url": URL, "key_prefix": prefix,
                                    "timeout": STORE_TIMEOUT_S},
                          "limits": [{"name": "team", "usd": 0.005, "window": window}]})
    c = oai(g)
    first = ask(c, 12)
    assert 429 in first  # the cap is reached
    paid = len(anthropic_up.requests)
    assert write(prefix, "u", "-1000000") >= 1
    after = ask(c, 20)
    # A write that deleted the counter would let one cap's worth through again: as many as at first, not 20.
    assert after.count(200) <= paid, after
    assert 429 in after


@pytest.mark.parametrize("value", ["nan", "junk"])
def test_a_counter_that_is_not_a_number_is_not_a_lasting_outage(two_tier, anthropic_up, prefix, value):
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    g = two_tier(budgets={"store": {"backend": "redis", "redis_url": URL, "key_prefix": prefix,
                                    "timeout": STORE_TIMEOUT_S},
                          "limits": [{"name": "team", "usd": 0.05}]})
    c = oai(g)
    assert ask(c, 1) == [200]
    assert write(prefix, "u", value) >= 1
    out = ask(c, 6)
    # (the request whose batch still carries the last settlement onto the word may be a 503 once)
    assert out[-4:] == [200] * 4, out


def test_a_rate_limit_counter_set_below_zero_lends_no_requests(two_tier, anthropic_up, prefix):
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    g = two_tier(budgets={"store": {"backend": "redis", "redis_url": URL, "key_prefix": prefix,
                                    "timeout": STORE_TIMEOUT_S}},
                 rate_limits={"limits": [{"name": "rpm", "per": "global", "requests_per_minute": 3}]})
    c = oai(g)
    first = ask(c, 5)
    assert first.count(200) == 3
    assert write(prefix, "r", "-1000") >= 1
    after = ask(c, 10)
    assert after.count(200) <= 3, after


@pytest.mark.parametrize("per", ["global", "key"])
def test_the_budgets_status_reads_on_past_a_word_a_negative_and_a_key_of_another_type(two_tier, anthropic_up, prefix,
                                                                                     per):
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    g = two_tier(budgets={"store": {"backend": "redis", "redis_url": URL, "key_prefix": prefix,
                                    "timeout": STORE_TIMEOUT_S},
                          "limits": [{"name": "team", "usd": 0.05, "per": per},
                                     {"name": "other", "usd": 0.05, "per": per}]})
    c = oai(g)
    assert ask(c, 1) == [200]
    r = redis.Redis.from_url(URL, decode_responses=True)
    try:
        team = [k for k in r.scan_iter(match=prefix + "b:team:*")]
        other = [k for k in r.scan_iter(match=prefix + "b:other:*")]
        assert len(team) == 1 and len(other) == 1
        u = next(f for f in r.hkeys(team[0]) if f[0] == "u")
        r.hset(team[0], u, "junk")
        r.hset(other[0], u, "-1000000")
        r.set(prefix + "b:team:planted", "not a hash")
    finally:
        r.close()
    resp = httpx.get(g.url + "/v1/tierwise/budgets", timeout=10)
    assert resp.status_code == 200, resp.text
    rows = {row["budget"]: row for row in resp.json()["budgets"]}
    assert rows["team"]["usd_used"] == 0 and rows["other"]["usd_used"] == 0  # as the admission counts them
    assert rows["other"]["usd_remaining"] <= 0.05
