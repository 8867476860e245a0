"""How much a router's APGR moves: across the fold assignment of the cross-validation and across
the queries drawn. Beside bench/routers_benchmark.py, whose table gives one figure per router.

    OMP_NUM_THREADS=1 .venv/bin/python bench/router_uncertainty.py [--router stack] [--seeds 0,1,2,3,4]
        [--benchmarks mmlu,gsm8k] [--emb-cache DIR]

For each benchmark, the router is cross-validated (5 folds by question) once per seed of the fold
assignment; seed 0 is the assignment of routers_benchmark.py. Printed per benchmark: APGR per seed
(mean, spread), a 95% bootstrap interval of the seed-0 APGR over resampled queries, and the paired
interval of its lead over the prompt-length baseline on the same resamples. Prints markdown.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial
from pathlib import Path

from routers_benchmark import embedding_cache, needs_embeddings

from tierwise.evaluation.baselines import prompt_length_scores
from tierwise.evaluation.cv import cross_val_scores
from tierwise.evaluation.loaders import load_benchmark
from tierwise.evaluation.metrics import apgr, bootstrap_apgr, routing_curve
from tierwise.routers import make_router


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--router", default="stack")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--benchmarks", default="mmlu,gsm8k")
    ap.add_argument("--rounds", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--emb-cache", type=Path, default=None)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    data = [load_benchmark(n) for n in args.benchmarks.split(",")]
    cache = None
    if needs_embeddings(args.router):
        bases = {d.name.split("-no-")[0] for d in data}
        cache = embedding_cache([load_benchmark(b) for b in sorted(bases)], args.emb_cache)

    print(f"| benchmark | {args.router} APGR, fold seeds {args.seeds} | mean (sd) | 95% interval, queries "
          "resampled (seed 0) | lead over prompt-length, paired 95% interval |\n|---|---|---|---|---|")
    for d in data:
        t0 = time.time()
        scores = [cross_val_scores(d, partial(make_router, args.router, embedding_cache=cache), 5, seed)
                  for seed in seeds]
        per_seed = [apgr(routing_curve(s, d.strong, d.weak)) for s in scores]
        first = scores[0]
        ci = bootstrap_apgr(first, d.strong, d.weak, rounds=args.rounds)
        length = prompt_length_scores(d)
        lead = per_seed[0] - apgr(routing_curve(length, d.strong, d.weak))
        lead_ci = bootstrap_apgr(first, d.strong, d.weak, against=length, rounds=args.rounds)
        sd = statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0
        print(f"| {d.name} (n={len(d)}) | {', '.join(f'{x:.4f}' for x in per_seed)} | "
              f"{statistics.mean(per_seed):.4f} ({sd:.4f}) | {ci.low:.3f} – {ci.high:.3f} | "
              f"{lead:+.3f} ({lead_ci.low:+.3f} – {lead_ci.high:+.3f}) |", flush=True)
        print(f"<!-- {d.name}: {time.time() - t0:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
