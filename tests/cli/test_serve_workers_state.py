"""`tierwise serve --workers N` says at start what the config keeps per process: N processes each
counting a rate limit or budget in memory let N times the limit through (seen: 4 requests per
minute let 8 through with `--workers 2`, without a word)."""

from __future__ import annotations

from tests.harness import make_config
from tierwise.commands.workers import per_process_state

BASE = {"providers": {"up": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}},
        "models": {"m": {"provider": "up", "model": "m"}}, "routes": {"main": "m"}}
RATE = {"limits": [{"name": "per-key", "per": "key", "requests_per_minute": 4}]}


def test_memory_counters_are_named(tmp_path):
    warned = per_process_state(make_config({**BASE, "rate_limits": RATE}, tmp_path))
    assert len(warned) == 1 and "rate_limits count in each worker process" in warned[0]
    both = per_process_state(make_config({**BASE, "rate_limits": RATE,
                                          "budgets": {"limits": [{"name": "d", "usd": 1}]}}, tmp_path))
    assert "budgets and rate_limits count in each worker process" in both[0]


def test_shared_or_absent_state_is_not_warned(tmp_path):
    assert per_process_state(make_config(BASE, tmp_path)) == []
    shared = {**BASE, "rate_limits": RATE,
              "budgets": {"store": {"backend": "redis", "redis_url": "redis://127.0.0.1:9/0"}}}
    assert per_process_state(make_config(shared, tmp_path)) == []


def test_approvals_in_memory_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("ADMIN_KEY_NU", "a" * 32)
    cfg = {**BASE, "server": {"admin_keys_env": ["ADMIN_KEY_NU"]}, "approvals": {"routes": {"main": {"timeout": "10m"}}}}
    warned = per_process_state(make_config(cfg, tmp_path))
    assert len(warned) == 1 and "approvals are held in one worker process" in warned[0]
