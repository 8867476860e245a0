"""What a gateway writes of its spend mirror into its ledger's file (`budgets/spend_file.py`) each look: the counters
that changed since the last save. Before session 33's review (review33b) every counter was written again at each
save after a single settlement: 50,000 counters (`spend_mirror.MAX_COUNTERS`) took 1.2 s of a thread and 9.7 MB of
writes a second under steady traffic (bench/RESULTS.md). Real gateway, the openai SDK, Redis db 12."""

from __future__ import annotations

import sqlite3
import time

from tests.budgets.test_spend_file_hostile import _gateway, prefix  # noqa: F401 (the same fixture)
from tests.budgets.test_store_emptied import _spend
from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import wait_for


def test_a_save_writes_only_the_counters_that_changed(openai_up, anthropic_up, prefix, tmp_path):  # noqa: F811
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    g = _gateway(openai_up, anthropic_up, prefix, tmp_path)
    try:
        store = g.gateway.spend.store
        saves: list[int] = []
        save = store.file.save

        def counted(member, epoch, offers, now, *a):
            saves.append(len(offers))
            return save(member, epoch, offers, now, *a)

        store.file.save = counted
        assert _spend([oai(g)], 1) == 1
        wait_for(lambda: saves and saves[-1] >= 1)

        def plant() -> None:  # (2,000 other counters this gateway mirrors: other keys' and sessions' buckets)
            now = time.time()
            for i in range(2000):
                store.mirror.own(f"{prefix}b:planted{i}", 0, 0.01, 10, 0.0, 3600, now)

        g.loop.call_soon_threadsafe(plant)
        wait_for(lambda: saves[-1] >= 2000)
        n = len(saves)
        assert _spend([oai(g)], 1) == 1
        wait_for(lambda: len(saves) > n)
        # Before (review33b): 2,001, every counter written again for one settlement
        assert saves[-1] == 1, f"{saves[-1]} counters written for one settlement"
    finally:
        g.stop()
    db = sqlite3.connect(tmp_path / "ledger.db")  # (every counter is still in the file)
    assert db.execute("SELECT count(*) FROM budget_spend").fetchone()[0] == 2001
    db.close()
