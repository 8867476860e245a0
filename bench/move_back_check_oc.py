"""The operating characteristic of `request_model.after_move_back: checked` (learning/drift.py `drop_odds`, the rule
of learning/loop.py `_model_back`): for a type moved back below the target whose true acceptance is p, how often the
check ends off the model (favours the drop), on it (favours the target) or undecided at `check_max`, and how many
verdicts (judge calls, when every verdict is the check's) it takes. Simulated verdicts, no data.

    PYTHONPATH=src .venv/bin/python bench/move_back_check_oc.py --target 0.8 --runs 20000 [--margin 0.2]
"""

from __future__ import annotations

import argparse
import math
import random

from tierwise.learning.drift import drop_odds


def run(p: float, target: float, odds: float, most: int, rng: random.Random,
        margin: float | None = None) -> tuple[str, int]:
    h = math.log(odds)
    good = judged = 0
    while True:
        llr = drop_odds(good, judged, target, margin)
        if llr >= h:
            return "drop", judged
        if llr <= -h:
            return "target", judged
        if judged >= most:
            if margin is not None:  # (`check_margin`: at check_max the side the ratio favours decides)
                return ("target" if llr < 0.0 else "drop"), judged
            return "undecided", judged
        judged += 1
        good += rng.random() < p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", type=float, default=0.8)
    ap.add_argument("--odds", type=float, default=10.0)
    ap.add_argument("--most", type=int, default=50)
    ap.add_argument("--runs", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--margin", type=float, default=None, help="request_model.check_margin (unset: the drop 2t - 1)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    print(f"target {a.target}, check_odds {a.odds:g}, check_max {a.most}, check_margin {a.margin}, {a.runs} runs per p")
    print("   p   off(drop)  on(target)  undecided  mean verdicts  max")
    for p in (0.3, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        out = [run(p, a.target, a.odds, a.most, rng, a.margin) for _ in range(a.runs)]
        share = {k: sum(o == k for o, _ in out) / a.runs for k in ("drop", "target", "undecided")}
        n = [k for _, k in out]
        print(f"{p:5.2f}  {share['drop']:9.3f}  {share['target']:10.3f}  {share['undecided']:9.3f}  "
              f"{sum(n) / len(n):13.1f}  {max(n):3d}")


if __name__ == "__main__":
    main()
