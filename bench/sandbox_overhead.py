"""Per-run cost of the code sandbox: N sequential runs of a trivial script, after the first-use probe.

    PYTHONPATH=src .venv/bin/python bench/sandbox_overhead.py [--runs 20] [--module tierwise.sandbox]

`--module tierwise.verifiers.sandbox` measures the old unshare jail on a checkout that still has it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import statistics
import time


async def main(module: str, runs: int) -> None:
    m = importlib.import_module(module)
    await m.run_python("pass")  # the probe runs once per process
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        r = await m.run_python("print(sum(range(10)))")
        times.append(time.perf_counter() - start)
        assert r.ok, r.stderr
    print(f"{module}: {runs} runs, median {statistics.median(times) * 1000:.0f} ms, "
          f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; layers {', '.join(r.layers)}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--module", default="tierwise.sandbox")
    a = p.parse_args()
    asyncio.run(main(a.module, a.runs))
