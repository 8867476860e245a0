"""What one hostile `python_code` verification (`isolation: split`) costs the gateway's own process.

    PYTHONPATH=src .venv/bin/python bench/checker_relay_cost.py [--pad dicts|string] [--wall 10]

The answer is a correct `add` whose every reply carries ~1 MB of padding (`[{},{},...]` or one long
string) that the checker ignores; the tests call it in a loop until the wall clock ends. Prints the
gateway's CPU time (user + system of this process) and its peak RSS for the one verification, and
the verdict's reason. Long limits (`cpu_s` 60) so the wall clock, not a sandbox's CPU limit, ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.verifiers.padded_answers import PADDINGS, padded_add  # noqa: E402

TESTS = "for i in range(10 ** 6):\n    assert add(i, 1) == i + 1\n"


async def main(pad: str, wall: float) -> None:
    from tierwise.sandbox import SandboxLimits
    from tierwise.verifiers import checker

    limits = SandboxLimits(wall_s=wall, cpu_s=60, memory_mb=512)
    await checker.check("def add(a, b):\n    return a + b", "assert add(1, 2) == 3", limits)  # sandbox probe
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = await checker.check(padded_add(pad), TESTS, limits)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"pad={pad} wall {time.perf_counter() - start:.1f} s; gateway CPU {cpu:.2f} s; "
          f"gateway peak RSS {after.ru_maxrss / 1024:.0f} MB; passed={result.passed}: {result.reason[:120]}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--pad", choices=sorted(PADDINGS), default="dicts")
    p.add_argument("--wall", type=float, default=10.0)
    a = p.parse_args()
    asyncio.run(main(a.pad, a.wall))
