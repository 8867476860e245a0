"""CPU time per decision of the adaptation's request-time part (issue 22, session 25), on the 300 longest MMLU
prompts × 3, with 500 live pairs: A (`tfidf:1:300`: the prompt's TF-IDF row, a ridge dot product, two ranks among
500 sorted values) and B (`blend:300:50:1`: the LSA vector — computed by the shift guard anyway, so given here —
against 500 live vectors, top 50, weights). Prints p50/p90 and the state's bytes.

    PYTHONPATH=src TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 nice .venv/bin/python bench/routers_adapt_cost.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from sklearn.linear_model import Ridge

from tierwise.evaluation.loaders import load_benchmark
from tierwise.routers.features import HashingTfidf
from tierwise.routers.shift import TrainingProfile


def main() -> None:
    m = load_benchmark("mmlu")
    prompts = m.prompts
    longest = sorted(prompts, key=len)[-300:]
    live = prompts[:500]
    gain = np.asarray(m.strong[:500], float) - np.asarray(m.weak[:500], float)
    tf = HashingTfidf(1 << 16).fit(live)
    r = Ridge(alpha=1.0).fit(tf.matrix(live), gain)
    coef, b = r.coef_.astype(np.float32), float(r.intercept_)
    fitted = np.sort(r.predict(tf.matrix(live)))
    priors = np.sort(np.random.default_rng(0).random(500))
    prof = TrainingProfile.fit(prompts[500:3500])
    bank = prof.lsa_raw(live)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    lam = 500 / 800

    def a(p: str) -> float:
        idx, val = tf.row(p)
        s = float(np.dot(coef[idx], val)) + b
        live_rank = (np.searchsorted(fitted, s) + np.searchsorted(fitted, s, side="right")) / 1000
        prior_rank = (np.searchsorted(priors, 0.5) + np.searchsorted(priors, 0.5, side="right")) / 1000
        return (1 - lam) * prior_rank + lam * live_rank

    def bb(v: np.ndarray) -> float:
        sims = bank @ v
        top = np.argpartition(-sims, 49)[:50]
        w = np.exp(sims[top] - sims[top].max())
        return float(w @ gain[top] / w.sum())

    vs = {p: prof.lsa_raw_one(p) / np.linalg.norm(prof.lsa_raw_one(p)) for p in longest}
    ta, tb = [], []
    for _ in range(3):
        for p in longest:
            t0 = time.process_time_ns()
            a(p)
            ta.append(time.process_time_ns() - t0)
            t0 = time.process_time_ns()
            bb(vs[p])
            tb.append(time.process_time_ns() - t0)
    print(f"A tfidf-ridge adaptation: p50 {statistics.median(ta) / 1000:.0f} us, p90 {np.quantile(ta, .9) / 1000:.0f} us")
    print(f"B live-neighbour (LSA vector given): p50 {statistics.median(tb) / 1000:.0f} us, "
          f"p90 {np.quantile(tb, .9) / 1000:.0f} us")
    print(f"state: A {coef.nbytes + fitted.nbytes + priors.nbytes + 4 * (1 << 16)} bytes; B {bank.nbytes + gain.nbytes} bytes")


if __name__ == "__main__":
    main()
