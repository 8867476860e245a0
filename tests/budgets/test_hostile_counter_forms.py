"""Counter values written from outside that Lua reads as numbers but Redis will not add to, and keys of another type
where the script expects a hash or a sorted set (session 32, review32a).

obs4 set a counter below zero or not a number to 0 where it stands; but Lua's `tonumber` takes `1.5`, ` 5`, `0x10`,
`1e3` and `inf`, which `HINCRBY` (tokens, requests) or `HINCRBYFLOAT` (USD) refuse: the value was counted, the
increment after it failed, and the whole script call with it. Before: every request of the budget or rate limit a
503 "budget store unavailable" (and every admission riding in the same call, whatever its budget) until the counter
expired; a string planted at a budget's key the same for ever (no TTL); a reservation planted with a past deadline
and a word for an amount stopped every call of the store (the sweep runs in every call), for every budget. Now the
increment that meets such a value or key starts from 0 (the field) or from nothing (the key), as deletion would.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.budgets.conftest import STORE_TIMEOUT_S
from tests.budgets.test_hostile_counters import URL, USAGE, ask, write
from tests.doubles import Reply
from tests.gateway.conftest import oai
from tests.harness import drop_redis_keys


@pytest.fixture
def prefix() -> Iterator[str]:
    p = f"tierwise-test-forms:{uuid.uuid4().hex[:12]}:"
    yield p
    drop_redis_keys(URL, p)


def store(prefix: str) -> dict[str, object]:
    return {"backend": "redis", "redis_url": URL, "key_prefix": prefix, "timeout": STORE_TIMEOUT_S}


def team_budget_answered_once(two_tier, anthropic_up, prefix: str):
    """A gateway with a $5 `team` budget on the Redis store under `prefix`, one request answered: its SDK client."""
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    c = oai(two_tier(budgets={"store": store(prefix), "limits": [{"name": "team", "usd": 5.0}]}))
    assert ask(c, 1) == [200]
    return c


def assert_served(c) -> None:
    """Six more requests: at most the first two refused (the call that met the planted value), the last four served."""
    out = ask(c, 6)
    assert out[-4:] == [200] * 4, out


def plant(prefix: str, kind: str, value: str) -> int:
    """`value` in the `kind` field of every slot of the budget's counters (made if not there: `k` is settled tokens)."""
    r = redis.Redis.from_url(URL, decode_responses=True)
    try:
        keys = list(r.scan_iter(match=prefix + "b:team:*"))
        for k in keys:
            for f in [f for f in r.hkeys(k) if f[0] == "u"]:
                r.hset(k, kind + f[1:], value)
    finally:
        r.close()
    return len(keys)


@pytest.mark.parametrize(("kind", "value"), [("t", "1.5"), ("t", "1e3"), ("t", "99999999999999999999"),
                                             ("t", "9223372036854775807"), ("u", " 0.001"), ("u", "1e400"), ("u", "inf"),
                                             ("t", "inf"), ("s", "junk"), ("k", "1.5")])
def test_a_budget_counter_lua_reads_and_redis_cannot_add_to_is_no_outage(two_tier, anthropic_up, prefix, kind, value):
    c = team_budget_answered_once(two_tier, anthropic_up, prefix)
    assert plant(prefix, kind, value) >= 1
    # (a number Lua reads that is past the cap would refuse with a 429, as writing that number would; none here is)
    assert_served(c)
    r = redis.Redis.from_url(URL, decode_responses=True)
    try:  # the field holds a number Redis adds to again
        for k in r.scan_iter(match=prefix + "b:team:*"):
            for f, v in r.hgetall(k).items():
                if f[0] == kind:
                    float(v) if kind in "us" else int(v)
    finally:
        r.close()


@pytest.mark.parametrize("value", ["1.5", " 2", "0x1"])
def test_a_rate_counter_lua_reads_and_redis_cannot_add_to_is_no_outage(two_tier, anthropic_up, prefix, value):
    anthropic_up.default = Reply(text="ok", usage=USAGE)
    g = two_tier(budgets={"store": store(prefix)},
                 rate_limits={"limits": [{"name": "rpm", "per": "global", "requests_per_minute": 1000}]})
    c = oai(g)
    assert ask(c, 1) == [200]
    assert write(prefix, "r", value) >= 1
    assert_served(c)


def test_a_string_planted_at_a_budget_counter_is_no_lasting_outage(two_tier, anthropic_up, prefix):
    c = team_budget_answered_once(two_tier, anthropic_up, prefix)
    r = redis.Redis.from_url(URL, decode_responses=True)
    try:
        keys = list(r.scan_iter(match=prefix + "b:team:*"))
        assert keys
        for k in keys:
            r.delete(k)
            r.set(k, "not a hash")
    finally:
        r.close()
    assert_served(c)


@pytest.mark.parametrize("amount", ["junk", "1e400"])
def test_a_planted_dead_reservation_stops_no_budget(two_tier, anthropic_up, prefix, amount):
    c = team_budget_answered_once(two_tier, anthropic_up, prefix)
    r = redis.Redis.from_url(URL, decode_responses=True)
    try:
        key = next(iter(r.scan_iter(match=prefix + "b:team:*")))
        slot = next(f for f in r.hkeys(key) if f[0] == "u")[1:]
        r.hset(prefix + "res:planted", key, f"{slot} {amount} 0")
        r.zadd(prefix + "reservations", {"planted": time.time() - 3600})
        # and one whose record is not a hash
        r.set(prefix + "res:planted2", "x")
        r.zadd(prefix + "reservations", {"planted2": time.time() - 3600})
    finally:
        r.close()
    assert_served(c)


@pytest.mark.parametrize(("name", "kind"), [("reservations", "string"), ("epoch", "hash"),
                                            ("epoch:recent", "string")])
def test_a_store_key_of_another_type_fails_one_call_at_most(two_tier, anthropic_up, prefix, name, kind):
    c = team_budget_answered_once(two_tier, anthropic_up, prefix)
    r = redis.Redis.from_url(URL, decode_responses=True)
    try:
        epoch = r.get(prefix + "epoch")
        with r.pipeline(transaction=True) as t:  # (one step: the gateway's watcher puts a lost epoch back)
            t.delete(prefix + name)
            if kind == "string":
                t.set(prefix + name, "x")
            else:
                t.hset(prefix + name, "x", "1")
            t.execute()
    finally:
        r.close()
    assert_served(c)
    if name == "epoch":  # put back from its copy: no new epoch, nothing restored twice
        r = redis.Redis.from_url(URL, decode_responses=True)
        try:
            assert r.get(prefix + "epoch") == epoch
        finally:
            r.close()


def test_a_settled_field_that_is_not_a_number_stops_no_later_look():
    from tierwise.budgets.spend_mirror import SpendMirror

    m = SpendMirror()
    now = time.time()
    m.sample(now, ["p:b:x 7", "junk", "0", "100", "p:b:y 7", "inf", "0", "100", "p:b:z 7", "0.5", "1e400", "100",
                   "p:b:w 7", "0.25", "10", "100"], now)
    offers = m.offers(now)
    assert [o.split(" ")[:4] for o in offers] == [["p:b:w", "7", "0.25", "10"]]


def test_a_settled_counter_of_another_type_stops_no_later_look(prefix):
    from tierwise.budgets.redis_scripts import LOOK

    r = redis.Redis.from_url(URL, decode_responses=True)
    try:
        look = r.register_script(LOOK)
        now = time.time()
        r.zadd(prefix + "epoch:recent", {f"{prefix}b:x 7": now, f"{prefix}b:y 7": now})
        r.zadd(prefix + "epoch:recent:ends", {f"{prefix}b:x 7": now + 600, f"{prefix}b:y 7": now + 600})
        r.set(prefix + "b:x", "not a hash")
        r.hset(prefix + "b:y", mapping={"s7": "0.5", "k7": "10"})
        out = look(args=[prefix + "epoch", "fresh", "0"])
        assert out[3:7] == [f"{prefix}b:y 7", "0.5", "10", -1] and len(out) == 7
    finally:
        r.close()
