"""Time and peak memory of `flywheel.failure_modes` over N poor verdicts (30 random words of 5,000 each as reasons).

    (ulimit -v 8000000; PYTHONPATH=src .venv/bin/python bench/flywheel_cluster_cost.py 2000)
"""

from __future__ import annotations

import random
import resource
import sys
import time

from tierwise.learning.evidence import Verdict
from tierwise.learning.flywheel import failure_modes


def main() -> None:
    n = int(sys.argv[1])
    rng = random.Random(0)
    words = [f"w{i}" for i in range(5000)]
    poor = [Verdict(f"r{i}", "main", "chat", "poor", False, True, "s", " ".join(rng.choice(words) for _ in range(30)),
                    0.0, 0.0, None, None, None) for i in range(n)]
    t = time.perf_counter()
    groups = failure_modes(poor)
    print(f"n={n}: {time.perf_counter() - t:.1f} s, max RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB, {len(groups)} groups")


if __name__ == "__main__":
    main()
