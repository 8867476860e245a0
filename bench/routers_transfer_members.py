"""Which learning target transfers where (issue 22, part 4): leave-one-benchmark-out APGR of single
scorers on RouteLLM's GPT-4 / Mixtral data, by target and by whether the between-benchmark differences
are removed ("fe": the target centred within each training benchmark, or per-benchmark intercepts that are
dropped when scoring — so a scorer learns what makes a question hard *within* a benchmark, not which
benchmark is harder). Diagnostics for choosing a transfer router's members, not a router.

    OMP_NUM_THREADS=1 .venv/bin/python bench/routers_transfer_members.py

Scorers (each benchmark weighted equally in training):
- `wf` / `wf-fe`: logistic regression of "the weak model fails" on hashed TF-IDF;
- `gain` / `gain-fe`: ridge regression (alpha 30) of the gain strong − weak on the same features;
- `knn-wf` / `knn-wf-fe`: similarity-weighted weak failures of the 50 nearest training prompts (LSA, 128 dims);
- `trees-wf` / `trees-wf-fe`: gradient-boosted trees of weak failure over prompt-shape features;
- `a+b`: the mean of the scorers' standardised scores.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix, hstack, vstack
from sklearn.linear_model import LogisticRegression, Ridge

from tierwise.evaluation.baselines import prompt_length_scores
from tierwise.evaluation.dataset import concat, unit_scale
from tierwise.evaluation.loaders import load_benchmark
from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.routers.dense import LsaVectors
from tierwise.routers.features import HashingTfidf, shape_features
from tierwise.routers.stack import TreeEnsemble, _counts, _idf, _weigh
from tierwise.routers.transfer import _knn, balanced_weights, sources

NAMES = ("mmlu", "gsm8k", "mt-bench")
BLENDS = (("wf-fe", "gain-fe"), ("wf-fe", "knn-wf-fe"), ("wf-fe", "gain-fe", "knn-wf-fe"),
          ("wf-fe", "gain-fe", "trees-wf-fe"), ("wf-fe", "gain-fe", "knn-wf-fe", "trees-wf-fe"))


def _apgr(s: np.ndarray, d) -> float:
    return apgr(routing_curve(np.asarray(s, float), d.strong, d.weak))


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() or 1.0)


def main() -> None:
    raw = {n: load_benchmark(n) for n in NAMES}
    unit = {n: unit_scale(d) for n, d in raw.items()}
    tf = HashingTfidf(1 << 18)
    counts = {n: _counts(tf, raw[n].prompts) for n in NAMES}
    shape = {n: np.stack([shape_features(p) for p in raw[n].prompts]) for n in NAMES}
    rows: dict[str, dict[str, float]] = {}
    for t in NAMES:
        tr = [n for n in NAMES if n != t]
        d = raw[t]
        train = concat([unit[n] for n in tr], "+".join(tr))
        src = sources(train)
        w = balanced_weights(src)
        c = vstack([counts[n] for n in tr]).tocsr()
        idf = _idf(c)
        x, xt = _weigh(c, idf), _weigh(counts[t], idf)
        fails = (train.weak < 0.5).astype(float)
        gain = train.gain.copy()
        fails_c, gain_c = fails.copy(), gain.copy()
        for n in set(src):
            fails_c[src == n] -= fails[src == n].mean()
            gain_c[src == n] -= gain[src == n].mean()
        onehot = csr_matrix(np.stack([(src == n).astype(float) for n in sorted(set(src))], 1) * 10.0)
        m: dict[str, np.ndarray] = {}
        fe = LogisticRegression(C=1.0, max_iter=3000).fit(hstack([x, onehot]).tocsr(), fails.astype(int),
                                                          sample_weight=w)
        m["wf-fe"] = xt @ fe.coef_[0][: x.shape[1]]  # the benchmark intercepts are left out when scoring
        m["wf"] = xt @ LogisticRegression(C=1.0, max_iter=3000).fit(x, fails.astype(int), sample_weight=w).coef_[0]
        m["gain-fe"] = Ridge(alpha=30).fit(x, gain_c, sample_weight=w).predict(xt)
        m["gain"] = Ridge(alpha=30).fit(x, gain, sample_weight=w).predict(xt)
        lsa = LsaVectors(128).fit(train.prompts)
        v, vt = lsa.encode(train.prompts).astype(np.float32), lsa.encode(d.prompts).astype(np.float32)
        m["knn-wf"] = _knn(vt, v, fails.astype(np.float32))
        m["knn-wf-fe"] = _knn(vt, v, fails_c.astype(np.float32))
        s = np.vstack([shape[n] for n in tr])
        m["trees-wf-fe"] = TreeEnsemble.fit(s, fails_c, sample_weight=w).predict(shape[t])
        m["trees-wf"] = TreeEnsemble.fit(s, fails, sample_weight=w).predict(shape[t])
        rows.setdefault("prompt-length", {})[t] = _apgr(prompt_length_scores(d), d)
        for k, v_ in m.items():
            rows.setdefault(k, {})[t] = _apgr(v_, d)
        for blend in BLENDS:
            rows.setdefault("+".join(blend), {})[t] = _apgr(np.mean([_z(m[b]) for b in blend], 0), d)
        print(f"<!-- {t} done -->", flush=True)
    print("| scorer | " + " | ".join(f"{t} ← {'+'.join(n for n in NAMES if n != t)}" for t in NAMES) + " |")
    print("|---|" + "---|" * len(NAMES))
    for k, r in rows.items():
        print(f"| {k} | " + " | ".join(f"{r[t]:.3f}" for t in NAMES) + " |")


if __name__ == "__main__":
    main()
