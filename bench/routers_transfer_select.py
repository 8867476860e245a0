"""Choosing what transfers without looking at the test benchmark (issue 22, part 4).

Leave-one-benchmark-out (LOBO) on RouteLLM's GPT-4 / Mixtral data: for each held-out benchmark T, the
training data are the other two, A and B. Every candidate scorer (a learning target × a model family,
below) is fitted on A+B and scored on T — the *outer* figure, which no choice may look at — and,
for the choice, fitted on A alone and scored on B and vice versa (the *inner* LOBO inside the training
benchmarks; exactly what a user with two data sets could run). Selection rules then read only the inner
figures:
- `best-mean`: the single candidate with the best mean inner APGR;
- `best-min`: the single candidate with the best worst inner APGR;
- `blend-min`: standardised scores averaged with weights ∝ max(0, worst inner APGR − 0.5) (∝ the mean's
  when no candidate is above 0.5 in both directions; equal weights when none is above 0.5 at all);
- `blend-mean`: weights ∝ mean over the inner directions of max(0, inner APGR − 0.5) (what the
  `transfer` router does today, over its four members).

    TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/routers_transfer_select.py \
        --emb-cache /tmp/tw-emb-cache [--no-embedding] [--ci 300]

Candidates (each training benchmark weighted equally; outcomes on one [0, 1] scale; `wf` = "the weak
model fails" (weak outcome < 0.5), `gain` = strong − weak):
- `tfidf-logit-wf`, `tfidf-ridge-gain`: hashed TF-IDF (word 1–2-grams, character 4-grams);
- `emb-logit-wf`, `emb-ridge-gain`: a linear probe on the all-MiniLM-L6-v2 sentence embedding;
- `knn-emb-wf`, `knn-emb-gain`: similarity-weighted labels of the 50 nearest training prompts (embedding);
- `knn-lsa-wf`, `knn-lsa-gain`: the same in the LSA space of the training prompts;
- `trees-wf`, `trees-gain`: gradient-boosted trees over the prompt-shape features (no words);
- `inv-shape-wf`, `inv-shape-gain`: only the prompt-shape features whose relation to the target holds
  across domains: the environments are the training data's subjects (MMLU subjects, MT-Bench categories,
  GSM8K; those with ≥ 30 queries, else the whole benchmark); a feature (sign-preserving log) is kept when its
  Spearman correlation with the target has one sign in ≥ 2/3 of the environments and the median of every
  training benchmark's environments has that sign too; score = Σ median correlation × standardised feature.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.sparse import vstack
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression, Ridge

from tierwise.evaluation.baselines import prompt_length_scores, random_scores
from tierwise.evaluation.dataset import concat, unit_scale
from tierwise.evaluation.loaders import MMLU_PARSING_ARTEFACT, load_benchmark
from tierwise.evaluation.metrics import apgr, bootstrap_apgr, routing_curve
from tierwise.routers.dense import LsaVectors
from tierwise.routers.features import HashingTfidf, shape_features
from tierwise.routers.stack import TreeEnsemble, _counts, _idf, _weigh
from tierwise.routers.transfer import _knn, balanced_weights, sources

NAMES = ("mmlu", "gsm8k", "mt-bench")
RULES = ("best-mean", "best-min", "blend-min", "blend-mean")


def _apgr(s: np.ndarray, d) -> float:
    s = np.asarray(s, float)
    return apgr(routing_curve(s, d.strong, d.weak)) if np.ptp(s) > 0 else 0.5


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() or 1.0)


class Features:
    def __init__(self, raw: dict, emb: dict | None) -> None:
        self.raw = raw
        self.unit = {n: unit_scale(d) for n, d in raw.items()}
        tf = HashingTfidf(1 << 18)
        self.counts = {n: _counts(tf, d.prompts) for n, d in raw.items()}
        self.shape = {n: np.stack([shape_features(p) for p in d.prompts]) for n, d in raw.items()}
        self.emb = emb

    def candidates(self, train_names: list[str], test: str) -> dict[str, np.ndarray]:
        """Every candidate fitted on `train_names` (each weighted equally), scores of the `test` benchmark."""
        train = concat([self.unit[n] for n in train_names], "+".join(train_names))
        w = balanced_weights(sources(train))
        fails = (train.weak < 0.5).astype(float)
        gain = train.gain
        c = vstack([self.counts[n] for n in train_names]).tocsr()
        idf = _idf(c)
        x, xt = _weigh(c, idf), _weigh(self.counts[test], idf)
        out: dict[str, np.ndarray] = {}

        def logit(a, at) -> np.ndarray:
            if fails.min() == fails.max():
                return np.zeros(at.shape[0])
            return np.asarray(at @ LogisticRegression(C=1.0, max_iter=3000).fit(a, fails.astype(int),
                                                                                sample_weight=w).coef_[0])

        out["tfidf-logit-wf"] = logit(x, xt)
        out["tfidf-ridge-gain"] = Ridge(alpha=30).fit(x, gain, sample_weight=w).predict(xt)
        if self.emb is not None:
            e = np.vstack([self.emb[n] for n in train_names])
            et = self.emb[test]
            out["emb-logit-wf"] = logit(e, et)
            out["emb-ridge-gain"] = Ridge(alpha=3.0).fit(e, gain, sample_weight=w).predict(et)
            out["knn-emb-wf"] = _knn(et, e, fails.astype(np.float32))
            out["knn-emb-gain"] = _knn(et, e, gain.astype(np.float32))
        lsa = LsaVectors(128).fit(train.prompts)
        v, vt = lsa.encode(train.prompts).astype(np.float32), lsa.encode(self.raw[test].prompts).astype(np.float32)
        out["knn-lsa-wf"] = _knn(vt, v, fails.astype(np.float32))
        out["knn-lsa-gain"] = _knn(vt, v, gain.astype(np.float32))
        s = np.vstack([self.shape[n] for n in train_names])
        out["trees-wf"] = TreeEnsemble.fit(s, fails, sample_weight=w).predict(self.shape[test])
        out["trees-gain"] = TreeEnsemble.fit(s, gain, sample_weight=w).predict(self.shape[test])
        logged = {n: np.sign(self.shape[n]) * np.log1p(np.abs(self.shape[n])) for n in [*train_names, test]}
        pooled = np.vstack([logged[n] for n in train_names])
        mu, sd = pooled.mean(0), np.where(pooled.std(0) > 0, pooled.std(0), 1.0)
        for target in ("wf", "gain"):
            parts = [(logged[n], (self.unit[n].weak < 0.5).astype(float) if target == "wf" else self.unit[n].gain,
                      _environments(self.raw[n])) for n in train_names]
            out[f"inv-shape-{target}"] = ((logged[test] - mu) / sd) @ invariant_weights(parts)
        return out


def _environments(d) -> list[np.ndarray]:
    subj = np.array(d.subjects)
    out = [np.flatnonzero(subj == s) for s in sorted(set(subj))]
    out = [ix for ix in out if len(ix) >= 30]
    return out or [np.arange(len(d))]


def invariant_weights(parts: list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]) -> np.ndarray:
    """Per feature: the median within-environment Spearman correlation with the target, 0 where its sign does not
    hold in ≥ 2/3 of the environments or in every part's own median. `parts`: (features, target, environments)."""
    rows, per_part = [], []
    for x, y, envs in parts:
        r = [[spearmanr(x[ix, j], y[ix]).correlation if np.ptp(x[ix, j]) > 0 and np.ptp(y[ix]) > 0 else 0.0
              for j in range(x.shape[1])] for ix in envs]
        r = np.nan_to_num(np.asarray(r, float))
        rows.append(r)
        per_part.append(np.median(r, axis=0))
    allr = np.vstack(rows)
    med = np.median(allr, axis=0)
    agree = np.maximum((allr > 0).mean(0), (allr < 0).mean(0)) >= 2 / 3
    agree &= (np.sign(np.asarray(per_part)) == np.sign(med)).all(axis=0)
    return np.where(agree, med, 0.0)


def weights_for(rule: str, inner: dict[str, list[float]]) -> dict[str, float]:
    names = list(inner)
    lo = np.array([max(0.0, min(inner[k]) - 0.5) for k in names])
    mean = np.array([np.mean([max(0.0, a - 0.5) for a in inner[k]]) for k in names])
    if rule == "best-mean":
        w = np.eye(len(names))[int(np.argmax([np.mean(inner[k]) for k in names]))]
    elif rule == "best-min":
        w = np.eye(len(names))[int(np.argmax([min(inner[k]) for k in names]))]
    elif rule == "blend-min":
        w = lo if lo.sum() > 0 else (mean if mean.sum() > 0 else np.ones(len(names)))
    else:
        w = mean if mean.sum() > 0 else np.ones(len(names))
    return {k: float(v) for k, v in zip(names, w / w.sum(), strict=True) if v > 0}


def load_embeddings(raw: dict, folder: Path | None) -> dict[str, np.ndarray]:
    from tierwise.routers.dense import EmbeddingVectors
    from tierwise.routers.embedding_cache import EmbeddingCache

    vec = EmbeddingVectors(cache=EmbeddingCache(folder))
    return {n: vec.encode(d.prompts).astype(np.float32) for n, d in raw.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--emb-cache", type=Path, default=None)
    ap.add_argument("--no-embedding", action="store_true")
    ap.add_argument("--ci", type=int, default=300)
    args = ap.parse_args()
    raw = {n: load_benchmark(n) for n in NAMES}
    f = Features(raw, None if args.no_embedding else load_embeddings(raw, args.emb_cache))
    pair = {(a, b): f.candidates([a], b) for a in NAMES for b in NAMES if a != b}  # train a, test b
    print("<!-- pairwise fits done -->", flush=True)
    outer = {t: f.candidates([n for n in NAMES if n != t], t) for t in NAMES}
    cands = list(outer[NAMES[0]])
    print("\n#### Single-benchmark transfer of every candidate (train → test; the inner figures)\n")
    heads = [(a, b) for a in NAMES for b in NAMES if a != b]
    print("| candidate | " + " | ".join(f"{b} ← {a}" for a, b in heads) + " |")
    print("|---|" + "---|" * len(heads))
    for k in cands:
        print(f"| {k} | " + " | ".join(f"{_apgr(pair[h][k], raw[h[1]]):.3f}" for h in heads) + " |")
    print("\n#### Outer LOBO of every candidate (for reading only: no rule below sees these)\n")
    keep = np.array([s != MMLU_PARSING_ARTEFACT for s in raw["mmlu"].subjects])  # GPT-4's 3%: a parsing artefact
    no_hsm = raw["mmlu"].where(keep)
    print("| candidate | " + " | ".join(f"{t} ← {'+'.join(n for n in NAMES if n != t)}" for t in NAMES)
          + " | (mmlu without high-school mathematics) |")
    print("|---|" + "---|" * (len(NAMES) + 1))
    pl = {t: prompt_length_scores(raw[t]) for t in NAMES}
    print("| prompt-length | " + " | ".join(f"{_apgr(pl[t], raw[t]):.3f}" for t in NAMES)
          + f" | {_apgr(pl['mmlu'][keep], no_hsm):.3f} |")
    for k in cands:
        print(f"| {k} | " + " | ".join(f"{_apgr(outer[t][k], raw[t]):.3f}" for t in NAMES)
              + f" | {_apgr(outer['mmlu'][k][keep], no_hsm):.3f} |")
    print("\n#### Selection rules on the inner LOBO only, applied to the held-out benchmark "
          f"(95% bootstrap interval, {args.ci} resamples; ~ = not above random with confidence)\n")
    print("| rule | " + " | ".join(f"{t} ← {'+'.join(n for n in NAMES if n != t)}" for t in NAMES) + " |")
    print("|---|" + "---|" * len(NAMES))
    chosen: dict[str, dict[str, dict[str, float]]] = {}
    for rule in RULES:
        cells = []
        for t in NAMES:
            a, b = (n for n in NAMES if n != t)
            inner = {k: [_apgr(pair[(a, b)][k], raw[b]), _apgr(pair[(b, a)][k], raw[a])] for k in cands}
            w = weights_for(rule, inner)
            chosen.setdefault(rule, {})[t] = w
            s = sum(wt * _z(outer[t][k]) for k, wt in w.items())
            d = raw[t]
            ci = bootstrap_apgr(s, d.strong, d.weak, rounds=args.ci)
            lead = bootstrap_apgr(s, d.strong, d.weak, against=random_scores(d, 0), rounds=args.ci)
            star = "" if lead.low > 0 else (" ↓" if lead.high < 0 else " ~")
            cells.append(f"{_apgr(s, d):.3f} ({ci.low:.3f}–{ci.high:.3f}){star}")
        print(f"| {rule} | " + " | ".join(cells) + " |", flush=True)
    print("\nWeights each rule chose (from the inner figures only):\n")
    for rule, per in chosen.items():
        for t, w in per.items():
            print(f"- {rule}, {t} held out: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(w.items(), key=lambda x: -x[1])))


if __name__ == "__main__":
    main()
