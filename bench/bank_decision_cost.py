"""CPU per decision of a `learned` route's scoring and placement on the library code (issue 22, round 23): a saved
`transfer-lsa-options` with its training bank (routers/bank.py), `score_text` then `RoutePlacement.place` as the
route runs them (routers/window.route_placement), with `placement_bank` 0 (today's default) and 0.25, the two placements of each request back to back. One
request at a time; each step timed with `time.process_time_ns`; p50 / p90 over the requests, the window warmed first.

    PYTHONPATH=$PWD/src:$PWD/bench HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 \\
        nice -n 5 .venv/bin/python bench/bank_decision_cost.py --router /tmp/transfer23/p16--fold0
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers import load_router
from tierwise.routers.window import route_placement


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--router", required=True)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--warm", type=int, default=1000)
    args = ap.parse_args()
    r = load_router(args.router)
    prompts = list(load_benchmark("mmlu").prompts)
    rng = np.random.default_rng(0)
    pick = [prompts[i] for i in rng.choice(len(prompts), args.warm + args.requests, replace=False)]
    print(f"bank {len(r.bank):,} rows × {r.bank.proj.shape[1]} axes; {args.requests} MMLU requests after "
          f"{args.warm} to fill the window")
    routes = {w: route_placement("window-tokens", r, "bench", bank_weight=w) for w in (0.0, 0.25)}
    for p in pick[:args.warm]:
        s = r.score_text(p)
        for route in routes.values():
            route.place(p, s)
    st: list[int] = []
    pl: dict[float, list[int]] = {w: [] for w in routes}
    for p in pick[args.warm:]:  # the two placements of each request back to back: paired under the same load
        t0 = time.process_time_ns()
        s = r.score_text(p)
        st.append(time.process_time_ns() - t0)
        for w, route in routes.items():
            t1 = time.process_time_ns()
            route.place(p, s)
            pl[w].append(time.process_time_ns() - t1)
    print("| placement_bank | score_text p50 | place p50 | decision p50 | decision p90 | (CPU ms) |\n|---|---|---|---|---|---|")
    for w in routes:
        tot = np.add(st, pl[w]) / 1e6
        print(f"| {w} | {np.median(st) / 1e6:.3f} | {np.median(pl[w]) / 1e6:.3f} | {np.median(tot):.3f} | "
              f"{np.quantile(tot, 0.9):.3f} | |")

if __name__ == "__main__":
    main()
