"""What one pruning costs the ledger's writer on a large ledger (`ledger.max_rows`, ledger/retention.py).

Builds (once, at `--db`) a ledger of `--rows` small rows spread over 29 days, copies it, and times the writer's
pruning on the copy: a round of a large first pruning (`--max-rows` half the rows: ROUNDS chunks of CHUNK rows)
twice, then a steady one (the file 1,000 rows past the bound) and one at the bound. `--retention FILE` times
another version of ledger/retention.py (e.g. `git show <commit>:src/tierwise/ledger/retention.py > FILE`).
`--evidence-every N` makes every N-th row an `eval` row (the learning loop's evidence, kept apart under the bound
since loopsec); the first pruning then also builds the evidence rows' partial index.

    PYTHONPATH=src .venv/bin/python bench/ledger_retention_cost.py --rows 10000000 --db /tmp/l10m.db
    PYTHONPATH=src .venv/bin/python bench/ledger_retention_cost.py --rows 10000000 --db /tmp/l10m.db \
        --retention /tmp/retention_before.py
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sqlite3
import time
from typing import Any

from tierwise.ledger.store import Ledger

STEPS = '[{"kind":"call","name":"local-qwen","ok":true,"status":200,"latency_ms":811.9}]'


def build(path: str, n: int, every: int = 0) -> None:
    Ledger.open(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    base = time.time() - 86_400 * 30
    for s in range(0, n, 200_000):
        with db:
            db.executemany("INSERT INTO requests (request_id, ts, route, kind, steps, extra) VALUES (?,?,?,?,?,?)",
                           ((f"req_{i:024x}", base + i * (86_400 * 29 / n), "main",
                             "eval" if every and i % every == 0 else "chat", STEPS, "{}")
                            for i in range(s, min(n, s + 200_000))))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def retention_module(path: str | None) -> Any:
    if path is None:
        from tierwise.ledger import retention
        return retention
    spec = importlib.util.spec_from_file_location("retention_other", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def timed(r: Any, db: sqlite3.Connection) -> str:
    t = time.perf_counter()
    n = r.prune(db)
    return f"{n:>7,} rows in {(time.perf_counter() - t) * 1000:7.0f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--db", required=True, help="where the built ledger is kept between runs")
    ap.add_argument("--retention", help="another ledger/retention.py to time")
    ap.add_argument("--evidence-every", type=int, default=0, help="every N-th row an eval row (0: none)")
    a = ap.parse_args()
    if not os.path.exists(a.db):
        t = time.perf_counter()
        build(a.db, a.rows, a.evidence_every)
        print(f"built {a.rows:,} rows in {time.perf_counter() - t:.0f} s")
    work = a.db + ".work"
    shutil.copy(a.db, work)
    mod = retention_module(a.retention)
    db = sqlite3.connect(work, timeout=30)
    try:
        rows = db.execute("SELECT count(*) FROM requests").fetchone()[0]
        print(f"{a.retention or 'ledger/retention.py'}: {rows:,} rows, {os.path.getsize(work) / 1e6:,.0f} MB")
        r = mod.Retention(None, rows // 2)
        print(f"  first pruning, round 1: {timed(r, db)}")
        print(f"  first pruning, round 2: {timed(r, db)}")
        left = db.execute("SELECT count(*) FROM requests").fetchone()[0]
        print(f"  steady, 1,000 past:     {timed(mod.Retention(None, left - 1000), db)}")
        print(f"  steady, at the bound:   {timed(mod.Retention(None, left - 1000), db)}")
    finally:
        db.close()
        os.remove(work)
        for ext in ("-wal", "-shm"):
            if os.path.exists(work + ext):
                os.remove(work + ext)


if __name__ == "__main__":
    main()
