"""Median wall time of `tierwise.verifiers.code.compile_error` on a 2-line answer: the compiler's confined child
interpreter started, fed and read (bench/RESULTS.md, "Review of sandbox round 10").

    PYTHONPATH=src .venv/bin/python bench/compile_step_cost.py LABEL RUNS
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from tierwise.verifiers import code


async def main(label: str, runs: int) -> None:
    # warm: the filter, the Landlock rules and the user check are cached per process
    await code.compile_error("x = 1\n")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        said = await code.compile_error("def f(x):\n    return x + 1\n")
        times.append(time.perf_counter() - start)
        assert said is None, said
    print(f"{label}: median {statistics.median(times) * 1000:.1f} ms of {runs}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
