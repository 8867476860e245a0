"""Cost per routing decision of re-fitting a `learned` route's threshold on recent traffic (issue 22, session 18),
and the strong share it gives on traffic unlike the router's training data.

Two `LearnedRoute`s over one router (`linear`, trained on GSM8K, threshold for `--share` from its training
quantiles): `refit` (routers/refit.py with the defaults: window 500, first re-fit after 100 scores, then every 10)
and `kept` (the training quantile). `choose()` — score, re-fit, trace the decision — is called for every MMLU
prompt on both routes, interleaved prompt by prompt (which route goes first alternates), timing this process's
CPU (time.process_time_ns: other jobs share the 2-core machine) and wall time. The re-fit's cost is spread
unevenly (a quantile every 10th decision), so the figure is the mean; p50 is shown too. Then `ThresholdRefit.add`
alone: blocks of 1,000 calls interleaved with blocks of 1,000 calls of an empty method (the reference).

    PYTHONPATH=src TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 .venv/bin/python bench/refit_cost.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

from tierwise.canonical import Message, Request, TextBlock
from tierwise.evaluation.loaders import load_benchmark
from tierwise.policies.base import Context
from tierwise.policies.learned import REFIT_MIN, REFIT_WINDOW, LearnedRoute
from tierwise.routers import make_router
from tierwise.routers.base import threshold_for_share
from tierwise.routers.refit import ThresholdRefit
from tierwise.trace import Trace


class Named:
    def __init__(self, name: str) -> None:
        self.name = name


def unresolved(name: str) -> Any:
    raise KeyError(name)


def decide(route: LearnedRoute, req: Request) -> tuple[int, int, str]:
    ctx = Context(Trace("bench", route.name), unresolved)
    c0, w0 = time.process_time_ns(), time.perf_counter_ns()
    _, tier, _, _ = route.choose(req, ctx)
    return time.process_time_ns() - c0, time.perf_counter_ns() - w0, tier


class Empty:
    def add(self, score: float) -> float:
        return score


def block(obj: Any, scores: np.ndarray) -> int:
    add = obj.add
    c0 = time.process_time_ns()
    for s in scores:
        add(s)
    return time.process_time_ns() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--share", type=float, default=0.3)
    ap.add_argument("--n", type=int, default=2000, help="MMLU prompts per round")
    args = ap.parse_args()
    router = make_router("linear").fit(load_benchmark("gsm8k"))
    trained = threshold_for_share(router.train_quantiles, args.share)
    mmlu = load_benchmark("mmlu")
    rng = np.random.default_rng(22)
    prompts = [mmlu.prompts[i] for i in rng.choice(len(mmlu.prompts), args.n, replace=False)]
    reqs = [Request(model="main", messages=[Message("user", [TextBlock(p)])]) for p in prompts]
    print(f"router linear (GSM8K), target share {args.share}, training threshold {trained:.4f}, "
          f"{args.n} MMLU prompts, window {REFIT_WINDOW}, min {REFIT_MIN}")
    print("round  kept mean/p50 us  refit mean/p50 us  diff mean us (CPU)  wall diff us  "
          "strong share kept / refit (after the window)")
    diffs = []
    for rnd in range(args.rounds):
        strong, weak = Named("strong"), Named("weak")
        routes = {"kept": LearnedRoute("kept", router, trained, strong, weak),  # type: ignore[arg-type]
                  "refit": LearnedRoute("refit", router, trained, strong, weak,  # type: ignore[arg-type]
                                        refit=ThresholdRefit(trained, args.share, window=REFIT_WINDOW,
                                                             min_scores=REFIT_MIN))}
        cpu: dict[str, list[int]] = {k: [] for k in routes}
        wall: dict[str, list[int]] = {k: [] for k in routes}
        tiers: dict[str, list[str]] = {k: [] for k in routes}
        for i, req in enumerate(reqs):
            for k in (("kept", "refit") if (i + rnd) % 2 == 0 else ("refit", "kept")):
                c, w, tier = decide(routes[k], req)
                cpu[k].append(c)
                wall[k].append(w)
                tiers[k].append(tier)
        mean = {k: statistics.fmean(v) / 1000 for k, v in cpu.items()}
        p50 = {k: statistics.median(v) / 1000 for k, v in cpu.items()}
        wdiff = (statistics.fmean(wall["refit"]) - statistics.fmean(wall["kept"])) / 1000
        share = {k: np.mean([t == "strong" for t in v[REFIT_WINDOW:]]) for k, v in tiers.items()}
        diffs.append(mean["refit"] - mean["kept"])
        print(f"{rnd:5d}  {mean['kept']:7.1f} / {p50['kept']:6.1f}  {mean['refit']:8.1f} / {p50['refit']:6.1f}  "
              f"{diffs[-1]:+18.2f}  {wdiff:+12.2f}  {share['kept']:.3f} / {share['refit']:.3f}")
    print(f"median over rounds of the CPU mean difference: {statistics.median(diffs):+.2f} us per decision")

    scores = rng.normal(size=100_000)
    per: dict[str, list[float]] = {"empty": [], "refit": []}
    for _ in range(args.rounds):
        refit, empty = ThresholdRefit(0.0, args.share, window=REFIT_WINDOW, min_scores=REFIT_MIN), Empty()
        for b in range(0, len(scores), 1000):
            chunk = scores[b:b + 1000]
            for name, obj in ((("empty", empty), ("refit", refit)) if b % 2000 == 0
                              else (("refit", refit), ("empty", empty))):
                per[name].append(block(obj, chunk) / 1000 / 1000)  # us per call
    e, r = statistics.median(per["empty"]), statistics.median(per["refit"])
    print(f"ThresholdRefit.add alone (window {REFIT_WINDOW}, every 10): {r:.2f} us per call, empty method {e:.2f} us; "
          f"added {r - e:.2f} us (median of {len(per['refit'])} blocks of 1,000)")


if __name__ == "__main__":
    main()
