"""A `tierwise worker` SIGKILLed mid-task: its upstream calls in flight were paid and recorded in no ledger (a
worker writes a task's row when the task ends; its crash journal holds only finished tasks), neither its own nor
the worker's that re-ran the task, nor the callers' costs (session 35, review35d: 4 of 64 calls at capacity 4).
The re-running worker now records each lost delivery, at its own run's cost. Real processes on loopback."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.dispatch.conftest import REDIS_URL, HoldAfter, worker_config
from tierwise.dispatch.client import Dispatcher

pytestmark = pytest.mark.asyncio
N = 30
PRICE = {"input": 3.0, "output": 15.0}


def _rows(path: Path) -> list[tuple[str, int, float]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return db.execute("SELECT request_id, status, cost_usd FROM requests").fetchall()


async def test_the_calls_of_a_worker_killed_mid_task_reach_a_ledger(openai_up, redis_prefix, worker_processes,
                                                                    tmp_path):
    upstream = HoldAfter(20)  # the first 20 at once, then held until w1 is dead (both slots full)
    openai_up.default = upstream
    procs, ledgers, configs = {}, {}, {}
    for name in ("w1", "w2"):
        data = worker_config(openai_up.url, redis_prefix, worker_id=name, capacity=4, presence_ttl=1.0,
                             locality="remote", provider_locality="remote")
        data["models"]["small"]["price"] = PRICE
        ledgers[name] = tmp_path / f"{name}-ledger.db"
        data["ledger"] = {"enabled": True, "path": str(ledgers[name])}
        procs[name], configs[name] = worker_processes(data, name), data
    for p in procs.values():
        p.wait_ready()
    async with Dispatcher(REDIS_URL, tenant="acme", prefix=redis_prefix, timeout=120) as d:
        tasks = [asyncio.create_task(d.dispatch("classify", f"task {i}")) for i in range(N)]
        try:
            await upstream.until_held(8)
            procs["w1"].kill9()  # it holds four calls the upstream runs (and bills) for it
        finally:
            upstream.release.set()
        results = await asyncio.gather(*tasks)
    assert procs["w2"].stop() == 0  # its ledger written and closed
    again = worker_processes(configs["w1"], "w1")  # w1 restarted: what it had answered is replayed from its journal
    again.wait_ready()
    assert again.stop() == 0
    lost = sum(x.attempt - 1 for x in results)
    assert lost == 4  # w1's four
    rows = _rows(ledgers["w1"]) + _rows(ledgers["w2"])
    calls = len(upstream.answered) + len(upstream.held)
    assert calls == N + lost
    assert len(rows) == calls, f"{calls} upstream calls, {len(rows)} ledger rows"
    per_call = (5 * PRICE["input"] + 2 * PRICE["output"]) / 1e6  # the double's usage: 5 in, 2 out
    assert sum(c for _, _, c in rows) == pytest.approx(calls * per_call)
    assert sorted(r for r, s, _ in rows if s == 499) == sorted(f"{x.task_id}:lost-1" for x in results
                                                               if x.attempt > 1)
