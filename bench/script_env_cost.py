"""What a trusted (host) ensemble script run pays for keeping the gateway's secrets from it (session 38): building
its minimal environment (`scripts.host_environment`) and making the gateway not dumpable (`weak.not_dumpable`), each
against one whole host script run (a Python script reading JSON and printing its answer).

    PYTHONPATH=src .venv/bin/python bench/script_env_cost.py --runs 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import timeit

from tierwise.ensembles import scripts
from tierwise.sandbox.weak import not_dumpable

SCRIPT = "import json, sys; json.load(sys.stdin); print(json.dumps({'success': True, 'data': 1}))"


async def _runs(path: str, k: int) -> float:
    t = time.perf_counter()
    for _ in range(k):
        await scripts.run_script([sys.executable, path], {}, 30)
    return (time.perf_counter() - t) / k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30, help="host script runs timed")
    ap.add_argument("--calls", type=int, default=2000, help="calls of each added step timed")
    a = ap.parse_args()
    env_s = timeit.timeit(lambda: scripts.host_environment(("MYTOOL_*",)), number=a.calls) / a.calls
    dump_s = timeit.timeit(not_dumpable, number=a.calls) / a.calls
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.py")
        with open(path, "w") as f:
            f.write(SCRIPT)
        run_s = asyncio.run(_runs(path, a.runs))
    print(f"environ entries: {len(os.environ)}; host_environment {env_s * 1e6:.1f} us, not_dumpable "
          f"{dump_s * 1e6:.1f} us, one host script run {run_s * 1e6:,.0f} us; added / run = "
          f"{(env_s + dump_s) / run_s:.4f}")


if __name__ == "__main__":
    main()
