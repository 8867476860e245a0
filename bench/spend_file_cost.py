"""What `budgets/spend_file.py` costs per save and at a start after an emptying (a benchmark, not a test).

    PYTHONPATH=src .venv/bin/python bench/spend_file_cost.py            every counter written at each save (and the
                                                                        rows of 21 dead processes, then folded)
    PYTHONPATH=src .venv/bin/python bench/spend_file_cost.py --changed  50,000 counters saved, then one changed a save
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

from tierwise.budgets.spend_file import SpendFile
from tierwise.ledger.store import Ledger


def _written() -> int:
    with open("/proc/self/io") as f:
        return int(f.read().split("write_bytes: ")[1].split()[0])


def _offers(n: int, usd: float = 0.5) -> list[str]:
    return [f"p:b:k{i} 20430 {usd} 100 0.25 50 86400" for i in range(n)]


def main() -> None:
    d = tempfile.mkdtemp()
    path = os.path.join(d, "ledger.db")
    Ledger.open(path).close()  # (the ledger's own file)
    f = SpendFile(path, "p:")
    now = time.time()
    sizes = (50_000,) if "--changed" in sys.argv else (1_000, 50_000)
    for n in sizes:
        f.save("m0", "e1", _offers(n), now)
        times, wrote = [], []
        for j in range(5):
            w0, t0 = _written(), time.perf_counter()
            if "--changed" in sys.argv:
                f.save("m0", "e1", [f"p:b:k{j} 20430 0.75 150 0.5 60 86400"], now, False)
            else:
                f.save("m0", "e1", _offers(n, 0.5 + j), now)
            times.append(time.perf_counter() - t0)
            wrote.append(_written() - w0)
        print(f"{n} counters: save median {statistics.median(times) * 1000:.1f} ms, "
              f"{statistics.median(wrote) / 1e3:.0f} kB written")
    if "--changed" not in sys.argv:  # rows of processes no longer running: 20 restarts of 5,000 counters
        for m in range(20):
            f.save(f"dead{m}", "e1", _offers(5000), now)
        t0 = time.perf_counter()
        o = f.offers("e2", now)
        print(f"after 20 restarts x 5,000 counters: {sum(len(v) for v in o.values())} rows offered at an emptying, "
              f"read in {(time.perf_counter() - t0) * 1000:.0f} ms; file {os.path.getsize(path) / 1e6:.1f} MB")
        # session 34 (costs6): the next start folds the rows of the processes no longer running into one member's
        t0 = time.perf_counter()
        gone = f.fold("e1", "live", now)
        took = time.perf_counter() - t0
        t0 = time.perf_counter()
        o = f.offers("e2", now)
        print(f"folded {gone} rows in {took * 1000:.0f} ms: {sum(len(v) for v in o.values())} rows of "
              f"{len(o)} member(s) offered at an emptying, read in {(time.perf_counter() - t0) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
