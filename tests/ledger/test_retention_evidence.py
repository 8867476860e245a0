"""ledger/retention.py and the learning loop's evidence: under `ledger.max_rows` the rows of kind `eval` and `shadow`
(verdicts, shadow pairs) are not pushed out by the requests' rows; and `ledger.keep_days` does not delete the
history a forward jump of the wall clock passed over."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from tierwise.ledger.records import LedgerRecord
from tierwise.ledger.retention import Retention
from tierwise.ledger.store import Ledger

DAY = 86_400.0


def _write(path: Path, rows: list[tuple[str, str, float]]) -> None:
    led = Ledger.open(str(path))
    for rid, kind, ts in rows:
        led.submit(LedgerRecord(request_id=rid, ts=ts, route="main", kind=kind))
    led.close()


def _kinds(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with closing(sqlite3.connect(str(path))) as db:
        for rid, kind in db.execute("SELECT request_id, kind FROM requests ORDER BY ts, rowid"):
            out.setdefault(kind, []).append(rid)
    return out


def _prune(path: Path, r: Retention) -> int:
    with closing(sqlite3.connect(str(path))) as db:
        return r.prune(db)


def test_requests_do_not_push_the_loops_verdicts_out_of_a_bounded_ledger(tmp_path):
    """Before: one pile cut by age. A route's 8 verdicts and 2 shadow pairs, then 60 requests, under `max_rows: 40`:
    the 30 rows deleted were the oldest, every piece of evidence with them (the flywheel, `tierwise boundary` and a
    local judge's training read nothing); now the requests' oldest rows go and the evidence stays."""
    path = tmp_path / "ledger.db"
    now = time.time()
    rows = [(f"req_{i}-eval", "eval", now - 1000 + i) for i in range(8)]
    rows += [(f"req_{i}-shadow", "shadow", now - 990 + i) for i in range(2)]
    rows += [(f"req_{100 + i}", "chat", now - 900 + i) for i in range(60)]
    _write(path, rows)
    assert _prune(path, Retention(None, 40)) == 30
    kinds = _kinds(path)
    assert len(kinds["eval"]) == 8 and len(kinds["shadow"]) == 2
    assert kinds["chat"] == [f"req_{100 + i}" for i in range(30, 60)]  # the newest 30 requests


def test_evidence_past_half_the_bound_pushes_out_only_its_own_oldest(tmp_path):
    """Evidence may hold up to half of `max_rows`; past it, its own oldest rows go (never the requests'), so a flood
    of judged requests cannot push every request out either. Rows interleaved in time."""
    path = tmp_path / "ledger.db"
    now = time.time()
    rows = []
    for i in range(40):
        rows.append((f"req_{i}", "chat", now - 1000 + 2 * i))
        rows.append((f"req_{i}-eval", "eval", now - 999 + 2 * i))
    _write(path, rows)
    assert _prune(path, Retention(None, 20)) == 60
    kinds = _kinds(path)
    assert kinds["eval"] == [f"req_{i}-eval" for i in range(30, 40)]
    assert kinds["chat"] == [f"req_{i}" for i in range(30, 40)]


def test_a_bounded_ledger_without_evidence_keeps_its_newest_rows(tmp_path):
    path = tmp_path / "ledger.db"
    now = time.time()
    _write(path, [(f"r{i:03d}", "chat", now - 500 + i) for i in range(50)])
    r = Retention(None, 10)
    assert _prune(path, r) == 40 and _prune(path, r) == 0
    assert _kinds(path)["chat"] == [f"r{i:03d}" for i in range(40, 50)]


def test_a_forward_jump_of_the_wall_clock_does_not_delete_the_history(tmp_path, monkeypatch):
    """Before: `keep_days: 1` cut at `time.time() - 1 day`; the wall clock jumping 30 days ahead while the gateway ran
    deleted every row (its evidence with it) at the next pruning. Now time since the first pruning is measured on
    the monotonic clock; rows age as it moves."""
    path = tmp_path / "ledger.db"
    now = time.time()
    _write(path, [(f"r{i}", "chat", now - 3600 * (i + 1)) for i in range(10)]  # the last ten hours
              + [("old", "chat", now - 2 * DAY)])
    r = Retention(1.0, None)
    assert _prune(path, r) == 1  # the row two days old
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 30 * DAY)
    assert _prune(path, r) == 0
    assert len(_kinds(path)["chat"]) == 10
    # time that really passes still ages the rows (the monotonic clock moved 19.5 hours)
    mono = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: mono() + 19.5 * 3600)
    assert _prune(path, r) == 6  # those over 24 hours old now


def test_a_backward_jump_keeps_rows_longer_never_deletes_early(tmp_path, monkeypatch):
    path = tmp_path / "ledger.db"
    now = time.time()
    _write(path, [(f"r{i}", "chat", now - 3600 * (i + 0.5)) for i in range(30)])
    r = Retention(1.0, None)
    assert _prune(path, r) == 6
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 30 * DAY)
    assert _prune(path, r) == 0
