"""The saves of the spend mirror that settlements ask for (`store_redis.SAVE_SOON`) are one at a time and never
queue up: while the ledger's file is held by another writer (a backup, `sqlite3` at a prompt, a long report; SQLite
waits up to 30 s for it), each settlement 0.1 s after the last added one more task waiting for the save lock before
review36c: ten a second under traffic for as long as the file stayed locked, without bound. Real gateway, the
openai SDK, the Anthropic double, Redis db 8, a real SQLite lock on the ledger's file; the looks are put off."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from tests.budgets.test_store_emptied import _config, _spend
from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import GatewayServer, make_config, own_keys, wait_for

REDIS_URL = "redis://127.0.0.1:6379/8"


@pytest.fixture
def prefix():
    yield from own_keys(REDIS_URL, "tierwise-test-soon-bounded:")


def _pending(g) -> int:
    async def count() -> int:
        return sum(1 for t in g.gateway.spend.store._tasks if not t.done())

    return asyncio.run_coroutine_threadsafe(count(), g.loop).result(10)


def test_saves_asked_while_the_file_is_locked_do_not_queue_up(openai_up, anthropic_up, prefix, tmp_path,  # noqa: F811
                                                              monkeypatch):
    monkeypatch.setattr("tierwise.budgets.store_redis.WATCH_EVERY", 3600.0)
    anthropic_up.default = Reply(text="answer", usage=(100, 40))
    cfg = _config(openai_up, anthropic_up, prefix, usd=100.0)
    cfg["budgets"]["store"]["redis_url"] = REDIS_URL
    path = tmp_path / "ledger.db"
    cfg["ledger"] = {"path": str(path)}
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    client = oai(g)
    try:
        assert _spend([client], 1) == 1
        wait_for(lambda: _pending(g) == 0)
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another writer holds the file
        try:
            for _ in range(10):
                assert _spend([client], 1) == 1
                time.sleep(0.3)  # (past SAVE_SOON: each settlement asks a save of its own)
            pending = _pending(g)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert pending <= 1, f"{pending} saves of the spend mirror queued behind a locked ledger file"
        wait_for(lambda: _pending(g) == 0, timeout=60)
    finally:
        g.stop()
