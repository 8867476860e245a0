"""A settlement reaches the gateway's ledger file (`budgets/spend_file.py`) within `SAVE_SOON` (0.1 s), not only at
the next look (about once a second). A deployment SIGKILLed whole with its Redis emptied gets its spend back from
those files, and what was settled after the last save is lost: bench/team_chaos.py `--scenario killdeploy`, whose
50 clients come in waves, served 46-50 answers past a $2 cap in half of its runs (1.29x paid) before session 36
(costs8): the first wave's answers, settled a tenth of a second before the kill, waited for a look that never came.
Real gateway, the openai SDK, the Anthropic double, Redis db 9; the looks are put off for this test, so only the
settlement's own save can write the file."""

from __future__ import annotations

import sqlite3

import pytest

from tests.budgets.test_store_emptied import COST, _config, _spend
from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import GatewayServer, make_config, own_keys, wait_for

REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.fixture
def prefix():
    yield from own_keys(REDIS_URL, "tierwise-test-soon:")


def _own(path) -> float:
    try:
        with sqlite3.connect(path) as db:
            return float(db.execute("SELECT coalesce(sum(own_usd), 0) FROM budget_spend").fetchone()[0])
    except sqlite3.OperationalError:  # (not made yet)
        return 0.0


def test_a_settlement_is_in_the_ledger_file_before_the_next_look(openai_up, anthropic_up, prefix, tmp_path,  # noqa: F811
                                                                monkeypatch):
    monkeypatch.setattr("tierwise.budgets.store_redis.WATCH_EVERY", 3600.0)
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    cfg = _config(openai_up, anthropic_up, prefix)
    cfg["budgets"]["store"]["redis_url"] = REDIS_URL
    cfg["ledger"] = {"path": str(tmp_path / "ledger.db")}
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    try:
        assert _spend([oai(g)], 2) == 2
        assert wait_for(lambda: _own(tmp_path / "ledger.db") == pytest.approx(2 * COST), timeout=20), \
            f"${_own(tmp_path / 'ledger.db')} of ${2 * COST} settled is in the ledger's file"
    finally:
        g.stop()
