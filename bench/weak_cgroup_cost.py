"""What the run's cgroups cost a weak run (session 24): pairs of weak runs, one with the cgroups (where the gateway
can make them) and one without (`cgroup.places()` seen empty), alternating which goes first, in one process.

    PYTHONPATH=src .venv/bin/python bench/weak_cgroup_cost.py [PAIRS]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from tierwise import sandbox
from tierwise.sandbox import bwrap, cgroup, run_python


def no_places() -> tuple[tuple[cgroup.Place, ...], str | None]:
    return (), None


async def main(pairs: int) -> None:
    bwrap.bwrap_path = lambda: None
    sandbox.configure(allow_weak=True)
    real = cgroup.places
    await run_python("pass")  # the first run's checks
    ratios, with_t, without_t = [], [], []
    for i in range(pairs):
        took = {}
        order = [("with", real), ("without", no_places)]
        for name, places in order if i % 2 else order[::-1]:
            cgroup.places = places  # type: ignore[assignment]
            start = time.perf_counter()
            r = await run_python("print(sum(range(10)))")
            took[name] = time.perf_counter() - start
            assert r.ok, r.stderr
        ratios.append(took["with"] / took["without"])
        with_t.append(took["with"])
        without_t.append(took["without"])
    q = statistics.quantiles(ratios, n=4)
    print(f"{pairs} pairs: with cgroups median {statistics.median(with_t) * 1000:.0f} ms, without "
          f"{statistics.median(without_t) * 1000:.0f} ms; per-pair ratio median {statistics.median(ratios):.2f} "
          f"(quartiles {q[0]:.2f}-{q[2]:.2f})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 40))
