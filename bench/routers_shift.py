"""Shift detection (issue 22): how far each RouteLLM benchmark lies from a router trained on another,
how fast a `learned` route's guard demotes itself when traffic changes, how often it would demote
on traffic like its training data, and what the guard costs per request.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/routers_shift.py [--rounds 5]

Routers are `linear`, trained with their training profile on 80% of a benchmark (the other 20%
is its in-distribution traffic). Far share = share of queries beyond the 95th percentile of the
training prompts' neighbour distances (LSA space; about 5% for data like the training data).
Guard settings: the `shift` defaults (window 200, demote above 25%, promote below 15%).
Cost: `score_text` alone against `score_text` + `RouteGuard.observe`, interleaved rounds in one
process, p50 per request. Prints markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers import make_router
from tierwise.routers.guard import RouteGuard
from tierwise.routers.shift import attach_profile

NAMES = ("mmlu", "gsm8k", "mt-bench")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    data = {n: load_benchmark(n) for n in NAMES}
    split = {}
    for n, d in data.items():
        idx = np.random.default_rng(0).permutation(len(d))
        cut = int(0.8 * len(d))
        split[n] = (d.take(np.sort(idx[:cut])), d.take(np.sort(idx[cut:])))
    routers = {n: attach_profile(make_router("linear").fit(split[n][0]), split[n][0].prompts) for n in NAMES}

    print("### Far share of each benchmark against a router trained on another (LSA space)\n")
    print("| router trained on | " + " | ".join(f"{n} (held-out 20%)" for n in NAMES) + " |")
    print("|---|" + "---|" * len(NAMES))
    for tr in NAMES:
        cells = []
        for te in NAMES:
            p = routers[tr].profile.percentiles(split[te][1].prompts)["lsa"]
            cells.append(f"{np.mean(p > 0.95):.1%}")
        print(f"| {tr} | " + " | ".join(cells) + " |")

    print("\n### Requests until demotion, and false demotions (guard defaults)\n")
    print("| router trained on | traffic | far share | demoted after (requests of the new traffic) | "
          "demotions on its own held-out traffic (replayed 3×) |\n|---|---|---|---|---|")
    for tr in NAMES:
        own = split[tr][1].prompts * 3
        g = RouteGuard(routers[tr].profile)
        false = sum(g.observe(p, 0.0).changed and g.demoted for p in own)
        for te in NAMES:
            if te == tr:
                continue
            g = RouteGuard(routers[tr].profile)
            for p in split[tr][1].prompts[:200]:  # a full window of in-distribution traffic first
                g.observe(p, 0.0)
            after = next((i + 1 for i, p in enumerate(split[te][1].prompts) if g.observe(p, 0.0).demoted), None)
            share = np.mean(routers[tr].profile.percentiles(split[te][1].prompts)["lsa"] > 0.95)
            print(f"| {tr} | {te} | {share:.1%} | {after if after else 'not demoted'} | {false} |")

    print("\n### Cost of the guard per request (p50 ms, interleaved rounds)\n")
    r = routers["gsm8k"]
    prompts = split["mmlu"][1].prompts[:400] + split["gsm8k"][1].prompts[:100]
    plain, guarded = [], []
    for _ in range(args.rounds):
        g = RouteGuard(r.profile)
        for p in prompts:
            t0 = time.perf_counter()
            r.score_text(p)
            plain.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            g.observe(p, r.score_text(p))
            guarded.append((time.perf_counter() - t0) * 1000)
    a, b = statistics.median(plain), statistics.median(guarded)
    print(f"- linear `score_text`: {a:.3f} ms; `score_text` + guard: {b:.3f} ms (guard adds {b - a:.3f} ms, "
          f"×{b / a:.2f}); {args.rounds} rounds × {len(prompts)} prompts")


if __name__ == "__main__":
    main()
