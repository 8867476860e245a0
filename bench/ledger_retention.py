"""The ledger file's size day after day, with and without `ledger.keep_days` / `ledger.max_rows`.

Simulated days on a clock of this script's (ledger/retention.py reads it): each day `--per-day` records of a
typical answered request (one call step, a decision, ~0.6 KB a row) are submitted through `Ledger.submit`, the
writer's own path, and the file's size (database + WAL) is read at the end of each day.

    PYTHONPATH=src .venv/bin/python bench/ledger_retention.py --days 10 --per-day 20000
    PYTHONPATH=src .venv/bin/python bench/ledger_retention.py --days 10 --per-day 20000 --keep-days 3
    PYTHONPATH=src .venv/bin/python bench/ledger_retention.py --days 10 --per-day 20000 --max-rows 50000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from tierwise.ledger import retention
from tierwise.ledger.records import LedgerRecord
from tierwise.ledger.store import Ledger


class Clock:
    """`time` as ledger/retention.py sees it: wall and monotonic clocks that this script moves a day at a time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def record(i: int, ts: float) -> LedgerRecord:
    return LedgerRecord(
        request_id=f"req-{i:012d}", ts=ts, route="main", client_format="openai", decision="local-qwen",
        reason="rule 'short' -> local-qwen", locality="local", model="qwen2.5:7b", provider="ollama",
        input_tokens=412, output_tokens=187, cost_usd=0.0, reference_model="claude-sonnet-4-5",
        reference_cost_usd=0.004041, latency_ms=812.4, ttft_ms=95.1, requested_model="main",
        steps=[{"kind": "decision", "name": "main", "reason": "rule 'short' -> local-qwen", "detail": {"rule": "short"}},
               {"kind": "call", "name": "local-qwen", "ok": True, "model": "qwen2.5:7b", "provider": "ollama",
                "locality": "local", "status": 200, "latency_ms": 811.9, "ttft_ms": 95.0,
                "usage": {"input_tokens": 412, "output_tokens": 187, "cache_read_tokens": 0,
                          "cache_write_tokens": 0, "estimated": False}, "cost": 0.0}])


def size_mb(path: str) -> float:
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--per-day", type=int, default=20_000)
    ap.add_argument("--keep-days", type=float)
    ap.add_argument("--max-rows", type=int)
    a = ap.parse_args()
    clock = Clock()
    retention.time = clock  # type: ignore[assignment]
    path = str(Path(tempfile.mkdtemp(prefix="ledger-retention-")) / "ledger.db")
    led = Ledger.open(path, keep_days=a.keep_days, max_rows=a.max_rows, max_queued=2 * a.per_day + 10)
    print(f"keep_days {a.keep_days}, max_rows {a.max_rows}, {a.per_day} records a day")
    n = 0
    try:
        for day in range(1, a.days + 1):
            for _ in range(a.per_day):
                led.submit(record(n, clock.time()))
                n += 1
            assert led.flush(120)
            clock.offset += 86_400  # the next day: the writer's next batch prunes
            led.submit(record(n, clock.time()))  # (the day's first record wakes the writer, which prunes)
            n += 1
            assert led.flush(120)
            seen = -1
            while seen != led.retention.deleted:  # the pruning runs after the batch: until it settles
                seen = led.retention.deleted
                time.sleep(0.5)
            print(f"  day {day:>2}: rows {led.count():>8,}  file {size_mb(path):7.1f} MB  deleted {led.retention.deleted:,}")
    finally:
        led.close()


if __name__ == "__main__":
    main()
