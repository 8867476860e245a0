"""Cost of restoring a hostile learned-route state file (review27a): a 32 MB file of re-fit scores (under the 64 MiB
cap), restored into a window of 100,000; prints the file size, peak RSS and CPU time.
Run: PYTHONPATH=src .venv/bin/python bench/state_restore_cost.py"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from tierwise.routers.refit import ThresholdRefit
from tierwise.routers.route_memory import MAX_FILE_BYTES, RouteMemory


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "state.json"
        k = (MAX_FILE_BYTES - 400) // 8  # "0," per key and per score: half the cap
        with open(path, "w") as fh:
            fh.write('{"format": 1, "router": "fp", "target_share": 0.3, "refit": {"key_names": ["a"], "keys": [')
            fh.write(",".join(["0"] * k))
            fh.write('], "scores": [')
            fh.write(",".join(["0"] * k))
            fh.write("]}}")
        print(f"file {path.stat().st_size / 2**20:.1f} MB, {k:,} keys and scores")
        r = ThresholdRefit(0.5, 0.3, window=100_000, min_scores=10)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.process_time()
        ok = RouteMemory(path, "fp", 0.3, refit=r).restore()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"restored {ok}: peak RSS {peak:.0f} MB (before {before:.0f} MB), CPU {time.process_time() - t:.2f} s")


if __name__ == "__main__":
    main()
