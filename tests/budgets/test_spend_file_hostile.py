"""A ledger file whose `budget_spend` rows were tampered with or corrupted (hostile values as review32a planted in
Redis: a word, `nan`, `inf`, a huge or a negative number) offered into an emptied store. Before session 33's review
(review33b) one such row failed the start's RESTORE call or its read, and every later admission of the gateway tried
the file again and failed with it: a 503 for every request until the row's counter expired (up to a month); a word
made the whole file unreadable (nothing restored). Now such a row is left out and the others are restored.
Real Redis (db 12), real gateways on loopback, the official openai SDK.
"""

from __future__ import annotations

import sqlite3

import openai
import pytest

from tests.budgets.test_store_emptied import COST, _config, _spend  # noqa: F401
from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import (
    GatewayServer,
    drop_redis_keys,
    make_config,
    own_keys,
    redis_up,
    unavailable,
    wait_for,
)

REDIS_URL = "redis://127.0.0.1:6379/12"


@pytest.fixture
def prefix():
    if not redis_up():
        unavailable("no Redis on 127.0.0.1:6379")
    yield from own_keys(REDIS_URL, "tierwise-test:")


def _gateway(openai_up, anthropic_up, prefix, tmp_path, **limit):  # noqa: F811
    cfg = _config(openai_up, anthropic_up, prefix, **limit)
    cfg["budgets"]["store"]["redis_url"] = REDIS_URL
    cfg["ledger"] = {"path": str(tmp_path / "ledger.db")}
    return GatewayServer(make_config(cfg, tmp_path)).start()


def _three_answers_saved(openai_up, anthropic_up, prefix, tmp_path, **kw) -> None:  # noqa: F811
    """A gateway answers three requests and its spend mirror holds them (saved into the ledger file at its stop)."""
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    g = _gateway(openai_up, anthropic_up, prefix, tmp_path, **kw)
    try:
        assert _spend([oai(g)], 3) == 3
        wait_for(lambda: g.gateway.spend.store.mirror.counters)
    finally:
        g.stop()


@pytest.mark.parametrize("column,value", [("own_usd", "1e400"), ("usd", "1e400"), ("own_usd", "'nan'"),
                                          ("usd", "'a word'"), ("tok", "'a word'"), ("own_tok", "1e400"),
                                          ("own_usd", "1e308"), ("expires", "'a word'"), ("slot", "'x'")])
def test_a_hostile_row_in_the_ledger_file_is_left_out(openai_up, anthropic_up, prefix, tmp_path,  # noqa: F811
                                                      column, value):
    _three_answers_saved(openai_up, anthropic_up, prefix, tmp_path)
    db = sqlite3.connect(tmp_path / "ledger.db")
    with db:
        (member, key, slot, expires) = db.execute("SELECT member, key, slot, expires FROM budget_spend").fetchone()
        # a second process's row for the same counter, tampered with (two rows of 1e308 sum to inf in Lua)
        db.execute("INSERT INTO budget_spend SELECT 'planted', epoch, key, slot, usd, tok, own_usd, own_tok, "
                   "expires FROM budget_spend WHERE member = ?", (member,))
        db.execute(f"UPDATE budget_spend SET {column} = {value} WHERE member = 'planted'")
        db.execute("INSERT INTO budget_spend SELECT 'planted2', epoch, key, slot, usd, tok, own_usd, own_tok, "
                   "expires FROM budget_spend WHERE member = 'planted'")
    db.close()
    drop_redis_keys(REDIS_URL, prefix)
    g = _gateway(openai_up, anthropic_up, prefix, tmp_path)
    try:
        answered, errors = 0, []
        for i in range(8):
            try:
                oai(g).chat.completions.create(model="main", max_tokens=400,
                                               messages=[{"role": "user", "content": f"again {i}"}])
                answered += 1
            except openai.RateLimitError:
                pass
            except openai.APIStatusError as e:
                errors.append(e.status_code)
        # Before: every request a 503 (the RESTORE call failed on inf, at every admission) or 8 answered (a word:
        # nothing restored). The honest row's 3 answers are back: 5 more fit under $0.05 (8 answers).
        assert not errors, f"{len(errors)} errors: {sorted(set(errors))}"
        assert answered == 5, f"{answered} answered after the restart (3 were spent before it)"
    finally:
        g.stop()


def test_an_older_row_does_not_shorten_a_restored_counters_life(openai_up, anthropic_up, prefix, tmp_path):  # noqa: F811
    """A row saved long ago (a process that stopped 55 minutes into a `{rolling: 1h}` window) expires sooner than the
    newer rows of the same counter. Before session 33's review (review33b) the restore set the counter's expiry to
    each offer's in turn, so the oldest one offered last left the restored hour's spend minutes to live: a budget
    nobody used meanwhile was then whole again. Now a restore only lengthens a counter's life."""
    import redis

    _three_answers_saved(openai_up, anthropic_up, prefix, tmp_path, window={"rolling": "1h"})
    db = sqlite3.connect(tmp_path / "ledger.db")
    with db:  # (a process stopped long ago: a smaller sample, its row's counter expiring in 2 minutes)
        db.execute("INSERT INTO budget_spend SELECT 'stopped-long-ago', epoch, key, slot, usd / 3, 0, usd / 3, 0, "
                   "unixepoch('now') + 120 FROM budget_spend")
        [key] = {k for (k,) in db.execute("SELECT key FROM budget_spend")}
    db.close()
    drop_redis_keys(REDIS_URL, prefix)
    g = _gateway(openai_up, anthropic_up, prefix, tmp_path, window={"rolling": "1h"})
    try:
        r = redis.Redis.from_url(REDIS_URL)
        wait_for(lambda: r.exists(key))
        ttl = r.ttl(key)
        r.close()
        # Before: 120 (the stopped process's row offered last)
        assert ttl > 3000, f"the restored counter lives {ttl} s"
    finally:
        g.stop()


def test_a_deployment_whose_prefix_begins_anothers_does_not_restore_its_rows(openai_up, anthropic_up, prefix,  # noqa: F811
                                                                             tmp_path):
    """Two deployments on one Redis and one ledger file (`tw:` and `tw:eu:`). Before session 33's review (review33b)
    the file's rows were chosen by `key` beginning with the prefix: a gateway of `tw:` starting offered the `tw:eu:`
    deployment's rows (saved under its epoch, never `tw:`'s) into `tw:eu:`'s live counters: its spend counted twice.
    Now a row is this deployment's only when its key is one of its budget counters (`<prefix>b:`)."""
    from tests.budgets.test_store_emptied import _used

    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    eu = _gateway(openai_up, anthropic_up, prefix + "eu:", tmp_path)
    try:
        assert _spend([oai(eu)], 3) == 3
        wait_for(lambda: eu.gateway.spend.store.mirror.counters)
        db = sqlite3.connect(tmp_path / "ledger.db")
        wait_for(lambda: db.execute("SELECT count(*) FROM budget_spend").fetchone()[0] >= 1)
        db.close()
        main = _gateway(openai_up, anthropic_up, prefix, tmp_path)
        try:
            assert _spend([oai(main)], 1) == 1
        finally:
            main.stop()
        # Before (review33b): 6 answers' worth, the eu deployment's 3 offered into its own live counters again
        assert _used(eu) == pytest.approx(3 * COST)
    finally:
        eu.stop()
        drop_redis_keys(REDIS_URL, prefix + "eu:")
