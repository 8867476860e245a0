"""`ledger.keep_days` / `ledger.max_rows`: the ledger stops growing with every request for ever (a client's
request rate, until the disk is full); the writer deletes the oldest rows past either bound."""

from __future__ import annotations

import time

import pytest

from tests.gateway.conftest import oai
from tierwise.config import LedgerConfig
from tierwise.ledger import retention
from tierwise.ledger.records import LedgerRecord
from tierwise.ledger.store import Ledger

DAY = 86_400


def _fill(path: str, old: int, recent: int) -> None:
    """A ledger a gateway wrote before: `old` rows of 10 days ago, `recent` of the last hour."""
    led = Ledger.open(path)
    now = time.time()
    for i in range(old):
        led.submit(LedgerRecord(request_id=f"old{i}", ts=now - 10 * DAY - i, route="main"))
    for i in range(recent):
        led.submit(LedgerRecord(request_id=f"recent{i}", ts=now - 3600 - i, route="main"))
    led.close()


def _ids_once_pruned(led: Ledger, expect: int) -> set[str]:
    """The rows left, once the writer's pruning (which runs after the batch it wrote) is done."""
    assert led.flush()
    deadline = time.monotonic() + 30
    while led.count() != expect and time.monotonic() < deadline:
        time.sleep(0.05)
    return {r.request_id for r in led.recent(limit=1000)}


def test_rows_older_than_keep_days_are_deleted_by_the_gateway_s_writer(two_tier, tmp_path):
    _fill(str(tmp_path / "ledger.db"), old=30, recent=5)
    g = two_tier(ledger={"path": "ledger.db", "keep_days": 7})
    r = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": "hi"}])
    rid = r.headers["x-tierwise-request-id"]
    ids = _ids_once_pruned(g.gateway.ledger, 6)
    assert ids == {rid, *(f"recent{i}" for i in range(5))}
    assert g.gateway.ledger.retention.deleted == 30


def test_max_rows_keeps_the_newest_rows(two_tier, tmp_path):
    _fill(str(tmp_path / "ledger.db"), old=30, recent=5)
    g = two_tier(ledger={"path": "ledger.db", "max_rows": 4})
    r = oai(g).chat.completions.with_raw_response.create(model="main", messages=[{"role": "user", "content": "hi"}])
    rid = r.headers["x-tierwise-request-id"]
    # the newest four: this request and the three latest of the last hour
    assert _ids_once_pruned(g.gateway.ledger, 4) == {rid, "recent0", "recent1", "recent2"}


def test_a_large_backlog_is_deleted_in_chunks_between_batches(tmp_path, monkeypatch):
    """A first pruning of many rows (an existing ledger, a lowered bound) goes in chunks of CHUNK rows, ROUNDS at
    a time, then resumes with the next batch: the writer does not hold the write lock for the whole of it."""
    monkeypatch.setattr(retention, "CHUNK", 4)
    monkeypatch.setattr(retention, "ROUNDS", 2)
    _fill(str(tmp_path / "l.db"), old=30, recent=0)
    led = Ledger.open(str(tmp_path / "l.db"), keep_days=7)
    try:
        now = time.time()
        led.submit(LedgerRecord(request_id="new0", ts=now, route="main"))
        assert led.flush()
        deadline = time.monotonic() + 30
        while led.retention.deleted < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert led.retention.deleted == 8 and led.count() == 23  # one round: 2 chunks of 4
        for i in range(1, 4):  # each batch written resumes the pruning at once
            led.submit(LedgerRecord(request_id=f"new{i}", ts=now, route="main"))
            assert led.flush()
            while led.retention.deleted < min(30, 8 * (i + 1)) and time.monotonic() < deadline:
                time.sleep(0.05)
        assert _ids_once_pruned(led, 4) == {"new0", "new1", "new2", "new3"}
    finally:
        led.close()


def test_unset_keeps_everything_and_bounds_are_validated():
    assert LedgerConfig().keep_days is None and LedgerConfig().max_rows is None
    with pytest.raises(ValueError):
        LedgerConfig(keep_days=0)
    with pytest.raises(ValueError):
        LedgerConfig(max_rows=0)
