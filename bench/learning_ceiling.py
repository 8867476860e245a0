"""How far can a per-task-type boundary get on the learning-loop replay, and what would it take?

    TIERWISE_DATA=../shared/data OMP_NUM_THREADS=1 .venv/bin/python bench/learning_ceiling.py --router-cache /tmp/lt_rcache

Same stream, verdicts, cost model and baselines as bench/learning_loop.py, per seed. Three ceilings, none
reachable by the loop (each uses knowledge of the whole stream), that bound what sampling changes can do:

1. oracle per-type boundary: every task type local iff its acceptance over the whole stream is at least
   the target (what the loop would converge to with unlimited free verdicts);
2. the same plus a within-type signal (the log of the prompt's length, standardised within the type), with a
   per-type logistic slope fitted on the whole stream; a request is local iff its fitted acceptance is at
   least the target (and one-sided: only the requests of the oracle's local types may move, to the frontier);
3. the evaluation budget: how many shadow + judge verdicts 10% of the oracle boundary's savings pays for,
   against the verdicts needed to put each task type on its side of the target with 95% confidence
   (normal approximation: (1.645 sd / |p - t|)^2).

Gaps are quality points in the last 2,000 requests against the `linear` router (5-fold cross-validation over
the whole stream) and the hindsight per-type choice at the same frontier share, as in learning_loop.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from learning_loop import (
    JUDGE,
    PF,
    PW,
    SHADOW,
    accepted,
    linear_cv_scores,
    load_stream,
    quality_at_share,
    type_scores,
)
from sklearn.linear_model import LogisticRegression


def gaps(front: np.ndarray, s: np.ndarray, w: np.ndarray, lin: np.ndarray,
         hind: np.ndarray) -> tuple[float, float, float]:
    """Frontier share of a routing and its quality gap to the `linear` router and the hindsight per-type choice."""
    sh = float(front.mean())
    q = float(np.where(front, s, w).mean())
    return sh, q - quality_at_share(lin, s, w, sh), q - quality_at_share(hind, s, w, sh)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--target", type=float, default=0.75)
    ap.add_argument("--tail", type=int, default=2000)
    ap.add_argument("--router-cache", default=None)
    args = ap.parse_args()
    t = args.target
    print("| seed | oracle boundary: frontier share | `linear` gap | hindsight gap | + within-type length (hindsight "
          "slopes): share | `linear` gap | the same, one-sided: share | `linear` gap | oracle boundary over the whole stream: `linear` gap | verdicts 10% of savings "
          "pays | verdicts to decide every type |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in range(args.seeds):
        data, types_l, _ = load_stream(seed)
        types = np.array(types_l)
        mt = np.array([g.startswith("mt-bench") for g in data.groups])
        y = np.array([accepted(s, w, m) for s, w, m in zip(data.strong, data.weak, mt, strict=True)])
        s, w = data.strong, data.weak
        n = len(data)
        tail = slice(n - args.tail, n)
        cache = Path(args.router_cache) / f"linear_cv_seed{seed}.npy" if args.router_cache else None
        lin = np.load(cache) if cache is not None and cache.exists() else linear_cv_scores(data)
        hind = type_scores(types_l, s, w)
        acc = {k: float(y[types == k].mean()) for k in set(types_l)}

        oracle = np.array([acc[k] < t for k in types_l])
        sh_o, lin_o, hind_o = gaps(oracle[tail], s[tail], w[tail], lin[tail], hind[tail])
        # the same boundary over the whole stream: the oracle does not depend on the order, only the tail does
        sh_all = float(oracle.mean())
        lin_all = float(np.where(oracle, s, w).mean()) - quality_at_share(lin, s, w, sh_all)
        length = np.log1p([len(p) for p in data.prompts])
        p_req = np.zeros(n)
        for k in acc:
            m = types == k
            z = (length[m] - length[m].mean()) / (length[m].std() or 1.0)
            if y[m].min() == y[m].max():
                p_req[m] = y[m].mean()
                continue
            p_req[m] = LogisticRegression(C=10.0).fit(z[:, None], y[m]).predict_proba(z[:, None])[:, 1]
        sh_w, lin_w, _ = gaps((p_req < t)[tail], s[tail], w[tail], lin[tail], hind[tail])
        # one-sided: only the hard requests of local types move (frontier types keep all their requests)
        sh_1, lin_1, _ = gaps((oracle | (p_req < t))[tail], s[tail], w[tail], lin[tail], hind[tail])
        savings = float(oracle.size * PF - np.where(oracle, PF, PW).sum())
        affordable = 0.10 * savings / (JUDGE + SHADOW)
        needed = sum(min(float((types == k).sum()), (1.645 * np.sqrt(p * (1 - p)) / max(abs(p - t), 1e-9)) ** 2)
                     for k, p in acc.items())
        print(f"| {seed} | {sh_o * 100:.1f}% | {lin_o * 100:+.2f} | {hind_o * 100:+.2f} | {sh_w * 100:.1f}% | "
              f"{lin_w * 100:+.2f} | {sh_1 * 100:.1f}% | {lin_1 * 100:+.2f} | {lin_all * 100:+.2f} | {affordable:.0f} | {needed:.0f} |")


if __name__ == "__main__":
    main()
