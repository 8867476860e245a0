"""The SQLite ledger: batched off-thread writes, nothing lost on close, queries and reports."""

from __future__ import annotations

import threading
import time

import pytest

from tierwise.canonical import Usage
from tierwise.ledger.records import LedgerRecord
from tierwise.ledger.report import savings, totals
from tierwise.ledger.store import Ledger
from tierwise.pricing import Price, Pricer, cost


def rec(i: int, **kw: object) -> LedgerRecord:
    base: dict[str, object] = dict(request_id=f"req_{i}", ts=1_700_000_000 + i, route="main", decision="local",
                                   locality="local", input_tokens=100, output_tokens=10, cost_usd=0.0,
                                   reference_cost_usd=0.001, latency_ms=float(i))
    base.update(kw)
    return LedgerRecord(**base)  # type: ignore[arg-type]


def test_close_writes_everything_submitted(tmp_path):
    path = str(tmp_path / "l.db")
    led = Ledger.open(path)
    for i in range(1000):
        led.submit(rec(i, steps=[{"target": "local", "ok": True}], extra={"i": i}))
    led.close()
    again = Ledger.open(path)
    assert again.count() == 1000
    r = again.get("req_999")
    assert r is not None and r.steps == [{"target": "local", "ok": True}] and r.extra == {"i": 999}
    assert r.stream is False and r.shadow is None
    again.close()


def test_concurrent_submitters_lose_nothing(tmp_path):
    led = Ledger.open(str(tmp_path / "l.db"))

    def work(t: int) -> None:
        for i in range(200):
            led.submit(rec(t * 1000 + i))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert led.flush()
    assert led.count() == 800
    led.close()


def test_submit_does_not_wait_for_disk(tmp_path):
    # The writer thread is what touches SQLite: submitting returns before rows are visible.
    led = Ledger.open(str(tmp_path / "l.db"))
    led.submit(rec(1))
    led.flush()
    assert led.get("req_1") is not None
    led.close()
    led.submit(rec(2))  # after close: dropped with a warning, never raises
    assert Ledger.open(str(tmp_path / "l.db")).get("req_2") is None


def test_query_filters_and_annotate(tmp_path):
    led = Ledger.open(str(tmp_path / "l.db"))
    for i in range(10):
        led.submit(rec(i, route="a" if i % 2 else "b", kind="chat" if i < 8 else "shadow"))
    led.flush()
    assert [r.request_id for r in led.query(route="a")] == [f"req_{i}" for i in (1, 3, 5, 7, 9)]
    assert led.count(kind="shadow") == 2
    assert len(led.query(since=1_700_000_005, until=1_700_000_007)) == 2
    assert led.annotate("req_3", judged="good")
    assert led.get("req_3").extra == {"judged": "good"}  # type: ignore[union-attr]
    assert not led.annotate("nope", judged="bad")
    led.close()


def test_savings_report_by_route_and_totals(tmp_path):
    led = Ledger.open(str(tmp_path / "l.db"))
    led.submit(rec(1, route="a", cost_usd=0.0, reference_cost_usd=0.010))
    led.submit(rec(2, route="a", cost_usd=0.004, reference_cost_usd=0.004, decision="frontier", locality="remote"))
    led.submit(rec(3, route="b", cost_usd=0.002, reference_cost_usd=None, status=502))
    led.flush()
    rows = {r.key: r for r in savings(led, by="route")}
    assert rows["a"].requests == 2 and rows["a"].local_share == 0.5
    assert abs(rows["a"].savings_usd - 0.010) < 1e-12
    assert abs(rows["a"].savings_pct - 100 * 0.010 / 0.014) < 1e-9  # type: ignore[operator]
    # no reference price: it saved nothing
    assert rows["b"].savings_usd == 0 and rows["b"].errors == 1
    t = totals(list(rows.values()))
    assert t.requests == 3 and abs(t.cost_usd - 0.006) < 1e-12
    by_model = {r.key for r in savings(led, by="model")}
    assert by_model == {"local", "frontier"}
    day = savings(led, by="day")
    assert [r.key for r in day] == [time.strftime("%Y-%m-%d", time.gmtime(1_700_000_001))]
    led.close()


def test_shadow_runs_are_spend_but_not_requests_or_savings(tmp_path):
    led = Ledger.open(str(tmp_path / "l.db"))
    led.submit(rec(1, route="a", cost_usd=0.0, reference_cost_usd=0.010))  # answered locally
    led.submit(rec(2, route="a", kind="shadow", decision="frontier", locality="remote", cost_usd=0.010,
                   reference_cost_usd=None, latency_ms=900.0))  # the same prompt, shadowed on the frontier
    led.flush()
    for kind in ("chat", None):
        (row,) = savings(led, by="route", kind=kind)
        assert row.requests == 1 and row.local_share == 1.0 and row.p50_latency_ms == 1.0
        assert abs(row.cost_usd - 0.010) < 1e-12 and abs(row.savings_usd) < 1e-12
    led.close()


def test_cost_and_genai_prices_lookup():
    p = Price(input=3, output=15, cache_read=0.3, cache_write=3.75)
    u = Usage(input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=2_000_000)
    assert abs(cost(p, u) - (3 + 1.5 + 0.6)) < 1e-9  # type: ignore[operator]
    assert cost(None, u) is None
    assert cost(Price(input=2), Usage(cache_write_tokens=1_000_000)) == 2.0  # cache rates default to input
    sonnet = Pricer().price_for("claude-sonnet-4-5", "anthropic")
    assert sonnet is not None and (sonnet.input, sonnet.output) == (3.0, 15.0)
    assert Pricer().price_for("no-such-model-xyz-123") is None


def test_one_unwritable_record_neither_kills_the_writer_nor_loses_the_others(tmp_path):
    led = Ledger.open(str(tmp_path / "l.db"))
    led.submit(rec(1, extra={1: "non-string key"}, input_tokens=2**70))  # kept: key as text, count as a float
    led.submit(rec(2, steps=[{(1, 2): "a key no JSON can hold"}]))  # cannot be stored: dropped alone
    led.submit(rec(3))
    assert led.flush(timeout=10)
    assert led.get("req_1") is not None and led.get("req_1").extra == {"1": "non-string key"}
    assert led.get("req_2") is None and led.get("req_3") is not None
    led.submit(rec(4))  # the writer is still alive
    assert led.flush(timeout=10) and led.get("req_4") is not None
    led.close()



def test_a_ledger_written_before_requested_model_existed_still_opens_and_records(tmp_path):
    import sqlite3

    from tierwise.ledger.records import COLUMNS

    path = str(tmp_path / "old.db")
    old_columns = [c for c in COLUMNS if c != "requested_model"]
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE requests ({', '.join(old_columns)})")
        db.execute("INSERT INTO requests (request_id, ts, route, status) VALUES ('req_old', 1.0, 'main', 200)")
    led = Ledger.open(path)
    led.submit(rec(7, requested_model="claude-3-haiku"))
    led.flush()
    assert led.get("req_old").requested_model is None  # type: ignore[union-attr]
    assert led.get("req_7").requested_model == "claude-3-haiku"  # type: ignore[union-attr]
    led.close()


def _open_at_once(what: str, path: str, barrier, results) -> None:  # a child process of the test below
    from tierwise.cache.backends import SqliteStore

    barrier.wait()
    try:
        if what == "ledger":
            Ledger.open(path).close()
        else:
            SqliteStore(path, 1 << 20).db.close()
        results.put("ok")
    except Exception as e:  # the test reports what went wrong
        results.put(repr(e))


@pytest.mark.parametrize("what", ["ledger", "answer-cache"])
def test_processes_opening_one_new_ledger_at_once_all_get_it(tmp_path, what):
    # Before: `tierwise serve --workers 2` on a new ledger sometimes failed to start with "database is locked"
    # (SQLite refuses the second switch to WAL at once, without its busy timeout); 6 processes at once hit it in
    # about one start in five; the answer cache's SQLite store the same.
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for trial in range(20):
        path = str(tmp_path / f"ledger{trial}.db")
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(what, path, barrier, results)) for _ in range(6)]
        for p in procs:
            p.start()
        got = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert got == ["ok"] * 6, (trial, got)
