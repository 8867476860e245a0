"""The whole deployment restarted with its Redis emptied (every gateway restarted at once, a Redis without
persistence restarted with them): no live gateway holds the day's spend in its mirror, so the store's restore
(`test_store_emptied.py`) had nothing to add back, and a team's daily cap was spent twice.

Now each gateway keeps its spend mirror in its ledger's SQLite file (`budgets/spend_file.py`, table `budget_spend`)
and a gateway's first call offers what the file holds into a store whose epoch is not the one it was saved under,
once per (epoch, gateway); the store takes the larger of the largest sample and the sum of the gateways' own
settlements per counter, as with live gateways. Two gateways, each its own ledger file; real Redis (db 10).
"""

from __future__ import annotations

import pytest

from tests.budgets.test_store_emptied import COST, REDIS_URL, _config, _spend, _used, prefix  # noqa: F401,F811
from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import GatewayServer, drop_redis_keys, make_config, wait_for


def _pair(openai_up, anthropic_up, prefix, tmp_path, **limit):  # noqa: F811
    """Two gateways of one deployment, each with its own ledger file (two hosts)."""
    out = []
    for name in ("a", "b"):
        cfg = _config(openai_up, anthropic_up, prefix, **limit)
        cfg["ledger"] = {"path": str(tmp_path / f"ledger-{name}.db")}
        out.append(GatewayServer(make_config(cfg, tmp_path)).start())
    return out


def _stop(gs) -> None:
    for g in gs:
        g.stop()


@pytest.mark.parametrize("window", ["day", {"rolling": "1h"}])
def test_a_deployment_restarted_with_an_emptied_redis_does_not_spend_the_day_again(openai_up, anthropic_up,  # noqa: F811
                                                                                   prefix, tmp_path, window):  # noqa: F811
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    gs = _pair(openai_up, anthropic_up, prefix, tmp_path, window=window)
    try:
        assert _spend([oai(g) for g in gs], 20) == 8
        assert _used(gs[0]) == pytest.approx(8 * COST)
        wait_for(lambda: gs[0].gateway.spend.store.mirror.counters and gs[1].gateway.spend.store.mirror.counters)
    finally:
        _stop(gs)
    drop_redis_keys(REDIS_URL, prefix)  # Redis restarted without its data, with every gateway
    gs = _pair(openai_up, anthropic_up, prefix, tmp_path, window=window)
    try:
        second = _spend([oai(g) for g in gs], 20)
        # Before (session 33, costs5): 8 more answered, the day's $0.05 cap spent twice ($0.1008 of $0.05).
        assert second == 0, f"{second} answered after the restart: ${(8 + second) * COST:.4f} of $0.05"
        assert _used(gs[1]) == pytest.approx(8 * COST)
    finally:
        _stop(gs)


def test_a_gateway_restarted_while_the_store_kept_its_data_adds_nothing(openai_up, anthropic_up, prefix,  # noqa: F811
                                                                         tmp_path):
    """One gateway restarted alone (the store intact, the other still running): the file's spend is in the store
    already and is not added again."""
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    gs = _pair(openai_up, anthropic_up, prefix, tmp_path)
    try:
        assert _spend([oai(g) for g in gs], 4) == 4
        wait_for(lambda: gs[0].gateway.spend.store.mirror.counters)
        gs[0].stop()
        cfg = _config(openai_up, anthropic_up, prefix)
        cfg["ledger"] = {"path": str(tmp_path / "ledger-a.db")}
        gs[0] = GatewayServer(make_config(cfg, tmp_path)).start()
        assert _spend([oai(gs[0])], 1) == 1
        assert _used(gs[0]) == pytest.approx(5 * COST)
    finally:
        _stop(gs)


def test_each_gateways_file_is_offered_once_per_emptying(openai_up, anthropic_up, prefix, tmp_path):  # noqa: F811
    """Restarted twice after one emptying: the second start's offer of the same file is not taken again."""
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    gs = _pair(openai_up, anthropic_up, prefix, tmp_path)
    try:
        assert _spend([oai(g) for g in gs], 4) == 4
        wait_for(lambda: gs[0].gateway.spend.store.mirror.counters and gs[1].gateway.spend.store.mirror.counters)
    finally:
        _stop(gs)
    drop_redis_keys(REDIS_URL, prefix)
    for k in range(2):  # (the second restart finds the store as the first left it: nothing is offered again)
        gs = _pair(openai_up, anthropic_up, prefix, tmp_path)
        try:
            assert _spend([oai(gs[0])], 1) == 1
            assert _used(gs[0]) == pytest.approx((5 + k) * COST)
        finally:
            _stop(gs)
