"""A client whose requests are all refused (a spent budget's 429s) writes a ledger row for each; under
`ledger.max_rows` those rows pushed out the oldest rows, the paid ones first: the record of what was spent (for
`tierwise report`, the dashboard, an audit) was erased by requests that cost nothing. Now refused rows that cost
nothing are a pile of their own (at most a quarter of `max_rows`, pushed out only by each other:
`ledger/retention.py`). What the budgets' restore reads (`budget_spend`, `budgets/spend_file.py`) is not a ledger
row: no flood reaches it. Real gateway, the openai SDK, Redis db 10."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import openai

from tests.budgets.test_store_emptied import _config, _spend, prefix  # noqa: F401,F811 (the same fixture)
from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401 (the same fixtures)
from tests.harness import wait_for


def test_refused_requests_do_not_push_the_paid_rows_out_of_a_bounded_ledger(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                             prefix, tmp_path):  # noqa: F811
    anthropic_up.default = Reply(text="answer " * 50, usage=(100, 400))
    cfg = _config(openai_up, anthropic_up, prefix)
    cfg["ledger"] = {"path": str(tmp_path / "flood.db"), "max_rows": 40}
    g = gateway(cfg)
    assert _spend([oai(g)], 8) == 8  # the $0.05 day spent: 8 paid rows
    client = oai(g)
    for i in range(120):  # every one refused (429), each a ledger row of $0
        if i == 119:
            g.flush()
            g.gateway.ledger.retention.next_at = 0.0  # (the writer's next batch prunes: no 60 s wait)
        try:
            client.chat.completions.create(model="main", max_tokens=400, messages=[{"role": "user", "content": "x"}])
        except openai.RateLimitError:
            pass
    g.flush()
    assert wait_for(lambda: g.gateway.ledger.retention.deleted > 0)  # (the writer prunes after its batch)
    with closing(sqlite3.connect(str(tmp_path / "flood.db"))) as db:
        total = db.execute("SELECT count(*) FROM requests").fetchone()[0]
        paid = db.execute("SELECT count(*) FROM requests WHERE cost_usd > 0").fetchone()[0]
    assert total <= 40, total  # (the bound holds: 8 paid rows and the newest 10 refused ones, a quarter of it)
    # Before (session 33, costs5): 0 of the 8 paid rows left, 40 rows of 429s.
    assert paid == 8, f"{paid} of 8 paid rows left among {total}"

    def kept() -> int:  # (the restore's rows: not ledger rows, untouched; the watcher saves them within a second or two)
        with closing(sqlite3.connect(str(tmp_path / "flood.db"))) as db:
            return int(db.execute("SELECT count(*) FROM budget_spend").fetchone()[0])

    assert wait_for(lambda: kept() >= 1)
