"""CPU time per decision of `transfer-lsa-options` against `transfer-lsa` alone (issue 22, session 26, transfer7):
fitted on 2,000 MMLU questions (high-school mathematics left out), scored on 300 others, 2 rounds, interleaved
request by request; every request embeds its options anew (bench/RESULTS.md, transfer7)."""

from __future__ import annotations

import time

import numpy as np

from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers import make_router


def main() -> None:
    m = load_benchmark("mmlu").without_subjects(["high_school_mathematics"], name="mmlu")
    ix = np.random.default_rng(0).permutation(len(m))
    r = make_router("transfer-lsa-options").fit(m.where(np.isin(np.arange(len(m)), ix[:2000]), "train"))
    print("member weight in force", r.used, flush=True)
    test = [m.prompts[i] for i in ix[2000:2300]]
    base: list[int] = []
    full: list[int] = []
    for _ in range(2):
        for p in test:
            t = time.process_time_ns()
            r.base.score_text(p)
            base.append(time.process_time_ns() - t)
            t = time.process_time_ns()
            r.score_text(p)  # a request's options bypass the training cache: embedded anew every time
            full.append(time.process_time_ns() - t)
    for k, v in (("transfer-lsa", base), ("transfer-lsa-options", full)):
        print(f"{k}: CPU ms per decision p50 {np.median(v) / 1e6:.2f}, p90 {np.quantile(v, 0.9) / 1e6:.2f} "
              f"({len(v)} decisions)")


if __name__ == "__main__":
    main()
