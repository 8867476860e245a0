"""Rows of failed requests that used a model (tokens in, tokens out) are not "refused": the retention's pile of
refused rows (at most a quarter of `ledger.max_rows`, `ledger/retention.py`) holds only rows that failed before any
model call. Before session 33's review (review33b) a row was refused when its status was 400 or above and its cost
0; a request to a model with no price whose stream broke after tokens were billed (502), or whose client went away
(499), is recorded so (a failed call of an unknown price adds nothing to the sum), and a flood of 429s pushed those
rows out as its own. Their tokens were billed: they stay with the requests."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from tierwise.ledger.records import LedgerRecord
from tierwise.ledger.retention import Retention
from tierwise.ledger.store import Ledger


def _prune(path: Path, r: Retention) -> int:
    with closing(sqlite3.connect(str(path))) as db:
        return r.prune(db)


def test_failed_requests_that_used_tokens_are_not_pushed_out_by_refusals(tmp_path):
    path = tmp_path / "ledger.db"
    now = time.time()
    led = Ledger.open(str(path))
    for i in range(8):  # (an unpriced model's broken streams and cut clients: tokens billed, cost unknown -> 0)
        led.submit(LedgerRecord(request_id=f"req_used{i}", ts=now - 1000 + i, route="main", status=(502, 499)[i % 2],
                                cost_usd=0.0, input_tokens=1000, output_tokens=300))
    for i in range(120):  # a client refused at admission (429), no model called
        led.submit(LedgerRecord(request_id=f"req_refused{i}", ts=now - 900 + i, route="main", status=429,
                                cost_usd=0.0))
    led.close()
    _prune(path, Retention(None, 40))
    with closing(sqlite3.connect(str(path))) as db:
        used = db.execute("SELECT count(*) FROM requests WHERE request_id LIKE 'req_used%'").fetchone()[0]
        total = db.execute("SELECT count(*) FROM requests").fetchone()[0]
    assert total <= 40, total
    # Before (review33b): 0 of 8 left, cut with the refusals' own pile (10 rows, a quarter of 40)
    assert used == 8, f"{used} of the 8 rows whose tokens were billed left among {total}"
