"""A killed gateway's reservation counted as spent (`dead_reservations: count`, the default) comes back when Redis
comes back empty. It sits in the counter's `u`/`d` fields; the gateways mirrored the settled `s` fields only, so a
Redis restarted without persistence forgot it, and the budget admitted its worst case again (review35c, "found, not
fixed" (1)). Now the mirror samples settled + dead (the sweep marks the counter for the next look, redis_scripts.py
LOOK). Two `tierwise serve` processes, one SIGKILLed with a call in flight, real Redis, the Anthropic double."""

from __future__ import annotations

import sqlite3

import openai
import pytest

from tests.budgets.test_race import MAX_TOKENS, USAGE, Serve, config, kill_with_a_reservation_counted, spent
from tests.doubles import AnthropicDouble, Delay, Reply
from tests.harness import REDIS_URL, drop_redis_keys, free_port, own_keys, wait_for


@pytest.fixture
def prefix():
    yield from own_keys(REDIS_URL, "tierwise-test-dead:")


def _mirrored(ledger: str) -> float:
    """The most USD the gateway's saved mirror holds for one counter (its ledger's `budget_spend` rows)."""
    try:
        with sqlite3.connect(ledger) as db:
            return max((r[0] for r in db.execute("SELECT usd FROM budget_spend")), default=0.0)
    except sqlite3.OperationalError:  # (not made yet)
        return 0.0


def test_a_dead_reservation_counted_spent_survives_an_emptied_redis(tmp_path, prefix):
    up = AnthropicDouble()
    up.default = Delay(60, Reply(text="late", usage=USAGE))
    up.start()
    store = f'{{backend: redis, redis_url: "{REDIS_URL}", key_prefix: "{prefix}"}}'
    p1, p2 = free_port(), free_port()
    g1 = Serve(config(p1, tmp_path, up.url, store, ttl=10, usd=0.005), p1, tmp_path)
    g2 = Serve(config(p2, tmp_path, up.url, store, ttl=10, usd=0.005), p2, tmp_path)
    try:
        reserved = kill_with_a_reservation_counted(g1, g2, up)
        # the live gateway's mirror has it (saved to its ledger at its look), then Redis comes back empty
        assert wait_for(lambda: _mirrored(str(tmp_path / f"ledger-{p2}.db")) == pytest.approx(reserved), timeout=30), \
            f"the live gateway's mirror never held the dead share: {_mirrored(str(tmp_path / f'ledger-{p2}.db'))}"
        drop_redis_keys(REDIS_URL, prefix)
        up.default = Reply(text="fresh", usage=USAGE)
        client = g2.keep(openai.OpenAI(base_url=g2.url + "/v1", api_key="k", max_retries=0, timeout=30))
        with pytest.raises(openai.RateLimitError):  # still spent once added back: nothing more goes upstream
            client.chat.completions.create(model="main", max_tokens=MAX_TOKENS,
                                           messages=[{"role": "user", "content": "x"}])
        assert len(up.requests) == 1
        assert spent(g2.url)["budgets"][0]["usd_used"] == pytest.approx(reserved)
    finally:
        g1.stop()
        g2.stop()
        up.stop()
