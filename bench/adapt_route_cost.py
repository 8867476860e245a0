"""The request-path cost of `learned.adapt` (session 26, adapt-wire): CPU time of one `LearnedRoute.choose`
(the route's whole decision: router score, threshold re-fit, adapted score and its threshold, the trace step)
with the adaptation on and off, on the same route object and prompts; and the refit's CPU time off the request
path. A linear router trained on a third of MMLU; the adaptation fitted on `--pairs` judged GSM8K pairs (the
recorded outcomes stand in for the judge); decisions on GSM8K and on the longest MMLU prompts, interleaved
on/off, `--rounds` times each.

    PYTHONPATH=src TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 nice .venv/bin/python bench/adapt_route_cost.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from tierwise.canonical import Message, Request, TextBlock
from tierwise.evaluation.loaders import load_benchmark
from tierwise.evaluation.online import JudgedPair, OnlineValidator
from tierwise.policies.base import Context
from tierwise.policies.learned import LearnedRoute
from tierwise.routers import make_router
from tierwise.routers.adapt import LiveAdapter
from tierwise.trace import Trace


class _Tier:
    def __init__(self, name: str) -> None:
        self.name = name


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    mmlu, gsm = load_benchmark("mmlu"), load_benchmark("gsm8k")
    router = make_router("linear").fit(mmlu.take(range(0, len(mmlu.prompts), 3)))
    v = OnlineValidator(window=args.pairs, min_pairs=50, rounds=300, prompts_kept=args.pairs)
    for i in range(args.pairs):
        p = gsm.prompts[i]
        v.add(JudgedPair(len(p), float(router.score_text(p)), 0.5, float(gsm.strong[i]), float(gsm.weak[i]), "", p))
    adapter = LiveAdapter(v, 0.5, min_pairs=100, window=args.pairs)
    t0 = time.process_time()
    assert adapter.refit()
    refit_cpu = time.process_time() - t0
    route = LearnedRoute("main", router, 0.5, _Tier("frontier"), _Tier("local"))  # type: ignore[arg-type]
    from tierwise.routers.refit import ThresholdRefit

    route.refit = ThresholdRefit(0.5, 0.5, window=500, min_scores=100)
    sets = {"gsm8k (rest)": gsm.prompts[args.pairs:], "mmlu (300 longest)": sorted(mmlu.prompts, key=len)[-300:]}

    def one(prompt: str) -> int:
        ctx = Context(Trace("r", "main"), lambda n: None)  # type: ignore[arg-type,return-value]
        req = Request(model="main", messages=[Message("user", [TextBlock(prompt)])])
        t = time.process_time_ns()
        route.choose(req, ctx)
        return time.process_time_ns() - t

    for name, prompts in sets.items():
        times: dict[str, list[int]] = {"off": [], "on": []}
        for r in range(args.rounds):
            for p in prompts:
                for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
                    route.adapter = adapter if mode == "on" else None
                    times[mode].append(one(p))
        q = {m: (statistics.median(t) / 1000, float(np.percentile(t, 90)) / 1000) for m, t in times.items()}
        print(f"{name}: {len(prompts)} prompts x {args.rounds}; choose() CPU µs p50/p90 off {q['off'][0]:.0f}/"
              f"{q['off'][1]:.0f}, on {q['on'][0]:.0f}/{q['on'][1]:.0f}; ratio p50 {q['on'][0] / q['off'][0]:.2f}, "
              f"added p50 {q['on'][0] - q['off'][0]:.0f} µs")
    a = adapter.live[0]  # type: ignore[index]
    state = a.coef.nbytes + a.tf.idf.nbytes + a.priors.nbytes + a.reference.nbytes + a.oof.nbytes
    print(f"refit on {args.pairs} pairs (1 + 5 ridge fits, out-of-fold estimate, threshold seeds): "
          f"{refit_cpu:.2f} s CPU, off the request path; frozen fit {state / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
