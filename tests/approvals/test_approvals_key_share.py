"""One gateway key's share of a gated route's pending places (`max_pending_per_key`).

A request of a gated route waits before rate limits are checked, and `max_pending` is the route's: one key
holding `max_pending` requests open got every other key's requests of the route refused (429). Now one key
may hold at most its share (half of `max_pending` by default), in the memory store and, across gateways,
in the Redis one; a gateway without keys is bounded by `max_pending` alone, as before.
"""

from __future__ import annotations

import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import anthropic
import openai
import pytest
import redis

from tests.doubles import Reply
from tests.gateway.conftest import ant, oai
from tests.harness import drop_redis_keys, make_config, two_tier_config, wait_for

from .conftest import ADMIN, admin_get, decide, needs_redis

MSG = [{"role": "user", "content": "wire 5000 EUR to account 42"}]
KEYS = {"TW_KEY_A": "key-of-team-a", "TW_KEY_B": "key-of-team-b"}
REDIS_DB15 = "redis://127.0.0.1:6379/15"


@pytest.fixture
def db15_prefix():
    """A key prefix of this test's own on Redis db 15; its keys are deleted afterwards."""
    prefix = f"tierwise-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    drop_redis_keys(REDIS_DB15, prefix)


def config(openai_up, anthropic_up, monkeypatch, store: dict[str, Any] | None = None, **gate: Any) -> dict[str, Any]:
    monkeypatch.setenv("TW_ADMIN", ADMIN)
    for env, value in KEYS.items():
        monkeypatch.setenv(env, value)
    anthropic_up.default = Reply(text="done", usage=(10, 5))
    approvals: dict[str, Any] = {"routes": {"main": {"timeout": "30s", **gate}}}
    if store is not None:
        approvals["store"] = store
    return two_tier_config(openai_up.url, anthropic_up.url, approvals=approvals,
                           server={"default_route": "main", "api_keys_env": list(KEYS), "admin_keys_env": ["TW_ADMIN"]})


def call(g: Any, env: str, sdk: str = "openai") -> Any:
    if sdk == "anthropic":
        return ant(g, api_key=KEYS[env]).messages.create(model="main", max_tokens=20, messages=MSG)
    return oai(g, api_key=KEYS[env]).chat.completions.create(model="main", messages=MSG)


def pending_of(url: str, key: str) -> list[dict[str, Any]]:
    return [p for p in admin_get(url).json()["pending"] if p["key"] == key]


def settled(futs: list[Future[Any]], url: str, key: str) -> bool:
    """Every flooding request either waits (listed) or was refused."""
    return len(pending_of(url, key)) + sum(f.done() for f in futs) == len(futs)


def refusals(futs: list[Future[Any]]) -> list[BaseException]:
    return [e for f in futs if f.done() and (e := f.exception()) is not None]


def release(url: str, futs: list[Future[Any]]) -> None:
    for p in admin_get(url).json()["pending"]:
        decide(url, p["id"], "reject", "test over")
    for f in futs:
        f.exception(timeout=10)


def test_one_key_cannot_hold_every_place_of_a_gated_route(gateway, openai_up, anthropic_up, monkeypatch):
    g = gateway(config(openai_up, anthropic_up, monkeypatch, max_pending=4))  # per key: 2 (half)
    with ThreadPoolExecutor(6) as pool:
        flood = [pool.submit(call, g, "TW_KEY_A", sdk) for sdk in ("openai", "anthropic", "openai", "anthropic")]
        assert wait_for(lambda: settled(flood, g.url, "TW_KEY_A"))
        assert len(pending_of(g.url, "TW_KEY_A")) == 2  # before: 4, the route's every place
        errors = refusals(flood)
        assert len(errors) == 2 and all(isinstance(e, (openai.RateLimitError, anthropic.RateLimitError))
                                        for e in errors)
        for e in errors:  # 429 in the schema of the API the client spoke, naming the per-key bound
            body = e.body if isinstance(e, anthropic.RateLimitError) else {"error": e.body}
            if isinstance(e, anthropic.RateLimitError):
                assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
            assert "max_pending_per_key: 2 per key" in body["error"]["message"]
            assert e.response.headers.get("retry-after")
            assert KEYS["TW_KEY_A"] not in str(body)
        # Another key still gets its requests of the route in line (before: 429 at once).
        other = [pool.submit(call, g, "TW_KEY_B"), pool.submit(call, g, "TW_KEY_B", "anthropic")]
        assert wait_for(lambda: len(pending_of(g.url, "TW_KEY_B")) == 2)
        assert not any(f.done() for f in other)
        # A decision frees the key's place.
        first = pending_of(g.url, "TW_KEY_A")[0]
        assert decide(g.url, first["id"], "approve").status_code == 200
        again = pool.submit(call, g, "TW_KEY_A")
        assert wait_for(lambda: len(pending_of(g.url, "TW_KEY_A")) == 2 and not again.done())
        release(g.url, flood + other + [again])


@needs_redis
def test_the_key_share_holds_across_two_gateways_on_one_redis(gateway, openai_up, anthropic_up, monkeypatch,
                                                                db15_prefix):
    store = {"backend": "redis", "redis_url": REDIS_DB15, "key_prefix": db15_prefix, "recheck": 600}
    a = gateway(config(openai_up, anthropic_up, monkeypatch, store=store, max_pending=4))
    b = gateway(config(openai_up, anthropic_up, monkeypatch, store=store, max_pending=4))
    with ThreadPoolExecutor(8) as pool:
        # Key A floods through both gateways at once: the share is taken atomically in Redis.
        flood = [pool.submit(call, gw, "TW_KEY_A") for gw in (a, b, a, b, a, b)]
        assert wait_for(lambda: settled(flood, a.url, "TW_KEY_A"))
        assert len(pending_of(b.url, "TW_KEY_A")) == 2  # before: 4 (and key B refused)
        errors = refusals(flood)
        assert len(errors) == 4 and all(isinstance(e, openai.RateLimitError) for e in errors)
        assert all("max_pending_per_key" in e.message for e in errors)
        # Key B is still admitted, through either gateway.
        other = [pool.submit(call, a, "TW_KEY_B", "anthropic"), pool.submit(call, b, "TW_KEY_B")]
        assert wait_for(lambda: len(pending_of(a.url, "TW_KEY_B")) == 2)
        assert not any(f.done() for f in other)
        # A decision taken through gateway B frees key A's place for a request through gateway A.
        first = pending_of(b.url, "TW_KEY_A")[0]
        assert decide(b.url, first["id"], "reject", "one less").status_code == 200
        again = pool.submit(call, a, "TW_KEY_A")
        assert wait_for(lambda: len(pending_of(a.url, "TW_KEY_A")) == 2 and not again.done())
        release(a.url, flood + other + [again])
    # Nothing of the key's share stays behind once its records are decided.
    r = redis.Redis.from_url(REDIS_DB15)
    try:
        assert list(r.scan_iter(match=db15_prefix + "subject:*:key:*")) == []
    finally:
        r.close()


def test_the_share_is_configurable_and_checked(openai_up, anthropic_up, monkeypatch, tmp_path):
    from tierwise.dispatch.approvals_config import ApprovalGate
    from tierwise.errors import ConfigError

    assert ApprovalGate().per_key == 10 and ApprovalGate(max_pending=1).per_key == 1
    assert ApprovalGate(max_pending=5).per_key == 2 and ApprovalGate(max_pending=5, max_pending_per_key=5).per_key == 5
    cfg = config(openai_up, anthropic_up, monkeypatch, max_pending=4, max_pending_per_key=5)
    with pytest.raises(ConfigError, match="max_pending_per_key .5. must be at most max_pending .4."):
        make_config(cfg, tmp_path)
