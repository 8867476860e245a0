"""A gateway whose ledger writer is held: answers go on, memory holds at most `ledger.max_queued` records,
and /health and /metrics say where the rest went (the journal, or dropped when there is none)."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from tests.gateway.conftest import ant, oai
from tests.ledger.test_queue_bound import HeldWriter

BOUND = 5
SENT = 12  # 6 over the OpenAI API, 6 over the Anthropic API; plus the record that holds the writer


@pytest.mark.parametrize("journal", [True, False], ids=["journal", "no-journal"])
def test_a_held_ledger_writer_is_bounded_and_reported(two_tier, journal):
    g = two_tier(ledger={"path": "ledger.db", "max_queued": BOUND, "journal": {"enabled": journal}},
                 observability={"metrics": {"enabled": True}})
    led = g.gateway.ledger
    writer = HeldWriter(led)
    for i in range(SENT // 2):
        assert oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": f"q{i}"}])
        assert ant(g).messages.create(model="main", max_tokens=50, messages=[{"role": "user", "content": f"a{i}"}])
    over = SENT + 1 - BOUND
    health = httpx.get(g.url + "/health").json()["ledger"]
    assert health["in_memory"] == BOUND and health["max_in_memory"] == BOUND
    assert health.pop("journal_bytes") == (4 << 20 if journal else 0)  # one file, made at its size
    assert health == {"in_memory": BOUND, "max_in_memory": BOUND, "text_chars_in_memory": 0,
                      "max_text_chars_in_memory": 64 << 20, "in_journal_only": over if journal else 0,
                      "spilled": over if journal else 0, "dropped": 0 if journal else over,
                      "max_journal_bytes": 256 << 20 if journal else 0, "not_journaled": 0}
    metrics = httpx.get(g.url + "/metrics").text
    assert f"tierwise_ledger_queued_records {BOUND}.0" in metrics
    assert f"tierwise_ledger_records_dropped_total {0 if journal else over}.0" in metrics
    assert f"tierwise_ledger_records_spilled_total {over if journal else 0}.0" in metrics
    sizes = [line.split()[1] for line in metrics.splitlines() if line.startswith("tierwise_ledger_journal_bytes ")]
    assert [float(v) for v in sizes] == [4 << 20 if journal else 0]
    assert "tierwise_ledger_records_not_journaled_total 0.0" in metrics
    writer.release()
    assert led.flush()
    assert led.count() == (SENT + 1 if journal else BOUND)
    assert httpx.get(g.url + "/health").json()["ledger"]["in_journal_only"] == 0
