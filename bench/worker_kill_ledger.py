"""What a worker killed mid-task leaves in the ledgers: two `tierwise worker` processes (capacity 4, a remote priced
model on the OpenAI double, each its own SQLite ledger), N tasks from a Dispatcher; once both workers hold four calls
upstream, w1 is SIGKILLed, the held calls are released, every task is answered (w2 re-claims w1's). Then w1 is
started again (its crash journal replayed) and stopped. Prints upstream calls and their cost against what the
ledgers and the callers' results account for.

    PYTHONPATH=src .venv/bin/python bench/worker_kill_ledger.py [N]
Redis db 14 on 127.0.0.1:6379 (keys of the run's own prefix, deleted after).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402

from tests.dispatch.conftest import HoldAfter, WorkerProcess, worker_config  # noqa: E402
from tests.doubles import OpenAIDouble  # noqa: E402
from tierwise.dispatch.client import Dispatcher  # noqa: E402

URL = "redis://127.0.0.1:6379/14"
PRICE = {"input": 3.0, "output": 15.0}  # USD per million tokens
PER_CALL = (5 * PRICE["input"] + 2 * PRICE["output"]) / 1e6  # the double's usage: 5 in, 2 out


def ledger(path: Path) -> tuple[int, float]:
    if not path.exists():
        return 0, 0.0
    with sqlite3.connect(path) as db:
        n, cost = db.execute("SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM requests").fetchone()
    return int(n), float(cost)


async def main(n: int) -> None:
    prefix = f"wkl-{uuid.uuid4().hex[:8]}:"
    up = OpenAIDouble()
    up.start()
    upstream = HoldAfter(20)
    up.default = upstream
    tmp = Path(tempfile.mkdtemp(prefix="wkl-"))
    procs, paths = {}, {}
    for name in ("w1", "w2"):
        data = worker_config(up.url, prefix, worker_id=name, capacity=4, presence_ttl=1.0, redis_url=URL,
                             locality="remote", provider_locality="remote")
        data["models"]["small"]["price"] = PRICE
        paths[name] = tmp / name / "ledger.db"
        data["ledger"] = {"enabled": True, "path": str(paths[name])}
        procs[name] = WorkerProcess(data, tmp / name)
        procs[name].data = data  # type: ignore[attr-defined]
    for p in procs.values():
        p.wait_ready()
    async with Dispatcher(URL, tenant="acme", prefix=prefix, timeout=120) as d:
        tasks = [asyncio.create_task(d.dispatch("classify", f"task {i}")) for i in range(n)]
        await upstream.until_held(8)
        procs["w1"].kill9()
        upstream.release.set()
        results = await asyncio.gather(*tasks)
    procs["w2"].stop()
    calls = len(upstream.answered) + len(upstream.held)
    rows_before = {k: ledger(v) for k, v in paths.items()}
    again = WorkerProcess(procs["w1"].data, tmp / "w1")  # type: ignore[attr-defined]
    again.wait_ready()
    again.stop()
    rows_after = {k: ledger(v) for k, v in paths.items()}
    up.stop()
    r = redis.Redis.from_url(URL)
    for k in r.scan_iter(match=prefix + "*"):
        r.delete(k)
    caller_cost = sum(x.cost or 0.0 for x in results)
    print(f"tasks {n}, answered {sum(1 for x in results if x.text)}, re-claimed {sum(x.attempt > 1 for x in results)}")
    print(f"upstream calls {calls}, paid ${calls * PER_CALL:.6f} (${PER_CALL:.6f} a call)")
    print(f"results' cost (callers) ${caller_cost:.6f} = {caller_cost / PER_CALL:.1f} calls")
    for label, rows in (("ledgers after the kill", rows_before), ("after w1's restart (journal replayed)", rows_after)):
        total = sum(c for _, c in rows.values())
        print(f"{label}: " + ", ".join(f"{k} {m} rows ${c:.6f}" for k, (m, c) in rows.items())
              + f"; total {sum(m for m, _ in rows.values())} rows ${total:.6f}, unrecorded "
              f"{calls - sum(m for m, _ in rows.values())} calls ${calls * PER_CALL - total:.6f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 60))
