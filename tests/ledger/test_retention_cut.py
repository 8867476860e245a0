"""ledger/retention.py against a ledger file shared by several processes (`tierwise serve --workers N`: each has
its writer and its pruning) and a large one: where to cut is found once a pruning, in one snapshot."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from tierwise.ledger import retention
from tierwise.ledger.records import LedgerRecord
from tierwise.ledger.retention import Retention
from tierwise.ledger.store import Ledger


def _ledger(path: Path, rows: int, same_ts: int = 1, step: float = 1.0) -> None:
    """`rows` rows, oldest first, `same_ts` of them at each timestamp, `step` seconds apart, the newest now."""
    led = Ledger.open(str(path))
    now = time.time()
    for i in range(rows):
        led.submit(LedgerRecord(request_id=f"r{i:04d}", ts=now - (rows - 1 - i) // same_ts * step, route="main"))
    led.close()


def _connect(path: Path, on_statement: Callable[[str], None] | None = None) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=30)
    if on_statement is not None:
        db.set_trace_callback(on_statement)
    return db


def _ids(path: Path) -> list[str]:
    with closing(sqlite3.connect(str(path))) as db:
        return [r[0] for r in db.execute("SELECT request_id FROM requests ORDER BY ts, rowid")]


def test_two_processes_pruning_at_once_keep_max_rows(tmp_path):
    """Process A counts 30 rows for `max_rows: 20` and sets out to delete the 10 oldest; process B, pruning the
    same file at that moment, deletes them first. A must not then delete 10 more: the file kept 10 rows for a bound
    of 20 (review30a: each process deleted the excess it had counted)."""
    path = tmp_path / "ledger.db"
    _ledger(path, 30)
    b = Retention(None, 20)
    state = {"counted": False, "b_ran": False}

    def a_statement(sql: str) -> None:
        if state["counted"] and not state["b_ran"]:  # A's next statement after its count: B prunes now
            state["b_ran"] = True
            with closing(_connect(path)) as db_b:
                assert b.prune(db_b) == 10
        if "count(*)" in sql:
            state["counted"] = True

    a = Retention(None, 20)
    with closing(_connect(path, a_statement)) as db_a:
        a.prune(db_a)
    assert state["b_ran"]
    left = _ids(path)
    assert len(left) == 20, (len(left), a.deleted, b.deleted)
    assert left == [f"r{i:04d}" for i in range(10, 30)]  # the newest twenty


def _whole_table_counts(counts: list[str]) -> Callable[[str], None]:
    """Statements counting every row (the evidence rows' counts read their small partial index: loopsec)."""
    return lambda sql: counts.append(sql) if "count(" in sql.lower() and "where" not in sql.lower() else None


def test_the_row_count_is_read_once_a_pruning(tmp_path, monkeypatch):
    """`count(*)` reads the whole `ts` index (~0.3 s at ten million rows): a round of ROUNDS chunks read it once a
    chunk (review30a: 20 times, ~4.5 s of the writer a round at ten million rows; bench/ledger_retention_cost.py)."""
    monkeypatch.setattr(retention, "CHUNK", 3)
    monkeypatch.setattr(retention, "ROUNDS", 4)
    path = tmp_path / "ledger.db"
    _ledger(path, 40)
    counts: list[str] = []
    r = Retention(None, 10)
    with closing(_connect(path, _whole_table_counts(counts))) as db:
        assert r.prune(db) == 12  # one round: 4 chunks of 3
        assert len(counts) == 1, counts
        assert r.next_at <= time.monotonic()  # more to delete: the next batch resumes at once
        assert r.prune(db) == 12 and r.prune(db) == 6
    assert _ids(path) == [f"r{i:04d}" for i in range(30, 40)]


def test_rows_of_the_same_second_are_cut_by_rowid(tmp_path):
    """Rows at the bound that share a timestamp: the oldest written go, exactly `max_rows` stay."""
    path = tmp_path / "ledger.db"
    _ledger(path, 30, same_ts=10)
    with closing(_connect(path)) as db:
        assert Retention(None, 15).prune(db) == 15
    assert _ids(path) == [f"r{i:04d}" for i in range(15, 30)]


def test_both_bounds_the_further_cut_wins(tmp_path):
    path = tmp_path / "ledger.db"
    _ledger(path, 30, step=3600)  # one an hour, the newest now
    with closing(_connect(path)) as db:
        assert Retention(10.5 / 24, 25).prune(db) == 19  # keep_days: the rows older than 10.5 hours
    assert len(_ids(path)) == 11
    with closing(_connect(path)) as db:
        assert Retention(1.0, 5).prune(db) == 6  # max_rows
    assert _ids(path) == [f"r{i:04d}" for i in range(25, 30)]
