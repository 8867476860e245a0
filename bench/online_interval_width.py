"""The online APGR estimate (`evaluation/online.py`) on few judged pairs: verdicts and interval widths over 20
seeds per size, for a router that leads (strong judged right 85%, weak 65%, score = half the gain + noise).

    PYTHONPATH=src .venv/bin/python bench/online_interval_width.py
"""

from __future__ import annotations

import collections

import numpy as np

from tierwise.evaluation.online import JudgedPair, estimate


def main() -> None:
    rng = np.random.default_rng(1)
    print("| pairs | verdicts (20 seeds) | median width | widest | intervals outside [0, 1] |")
    print("|---|---|---|---|---|")
    for n in (50, 100, 200, 500):
        verdicts: collections.Counter[str] = collections.Counter()
        widths, outside = [], 0
        for seed in range(20):
            strong = (rng.random(n) < 0.85).astype(float)
            weak = (rng.random(n) < 0.65).astype(float)
            score = (strong - weak) * 0.5 + rng.random(n)
            e = estimate([JudgedPair(100, float(a), 0.5, float(b), float(c))
                          for a, b, c in zip(score, strong, weak, strict=True)], min_pairs=50, seed=seed)
            verdicts[e.verdict] += 1
            if e.low is not None and e.high is not None:
                widths.append(e.high - e.low)
                outside += e.low < 0 or e.high > 1
        shown = ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()))
        print(f"| {n} | {shown} | {np.median(widths):.2f} | {max(widths):.2f} | {outside} of {len(widths)} |")


if __name__ == "__main__":
    main()
