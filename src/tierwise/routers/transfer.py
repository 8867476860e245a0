"""A router meant to be trained on public data and used on other traffic (issue 22, part 4).

Routers that regress the gain (strong − weak outcome) learn how each benchmark was run: on the
RouteLLM data GPT-4's MMLU answers were parsed from one token (its 3% on high-school mathematics
is a parsing artefact), GSM8K's step by step, so "the strong model adds most here" does not
travel. Whether the *weak* model fails is more a property of the question. This router blends:
- `tfidf-logit-wf`: logistic regression of "the weak model fails" on hashed TF-IDF;
- `knn-wf`: the similarity-weighted share of weak failures among the k nearest training prompts
  (LSA or sentence-embedding space): neighbour labels, which carry over to reworded questions;
- `trees-wf`: gradient-boosted trees of weak failure over prompt-shape features (numbers, options,
  negations, cue words; no words);
- `tfidf-ridge-gain`: the usual gain regression, for what the gain does carry.
Every member is fitted with each data source (the part before `:` of a query's group, e.g. the
benchmark) weighted equally, so the largest benchmark does not decide alone. The members'
standardised scores are blended with weights chosen by *leave-one-source-out* inside the training
data (train on all sources but one, score the one left out, weight ∝ APGR − 0.5, floored at 0;
equal weights when there is one source or no member transfers): transfer is what is selected for.
Calibration quantiles come from out-of-fold scores, as unseen prompts get them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers.base import register_kind, remember_quantiles
from tierwise.routers.dense import Vectors, make_vectors, restore_vectors
from tierwise.routers.features import shape_features
from tierwise.routers.stack import BlendedRouter, TreeEnsemble, _apgr, _counts, _idf, _sigmoid, _weigh

MEMBERS = ("tfidf-logit-wf", "knn-wf", "trees-wf", "tfidf-ridge-gain")
K = 50
TEMPERATURE = 0.05
LOGIT_C = 1.0
RIDGE_ALPHA = 30.0


def _unit_outcomes(data: OutcomeDataset) -> tuple[np.ndarray, np.ndarray]:
    y = np.stack([data.strong, data.weak])
    lo, hi = float(y.min()), float(y.max())
    y = (y - lo) / (hi - lo) if hi > lo else np.zeros_like(y)
    return y[0], y[1]


def sources(data: OutcomeDataset) -> np.ndarray:
    """The data source of each query: the part of its group before the first `:` (one source if none)."""
    return np.array([g.split(":", 1)[0] if ":" in g else "" for g in data.groups])


def balanced_weights(src: np.ndarray) -> np.ndarray:
    names, inv, counts = np.unique(src, return_inverse=True, return_counts=True)
    w = (len(src) / (len(names) * counts))[inv]
    return np.asarray(w, dtype=float)


class TransferRouter(BlendedRouter):
    kind = "transfer"
    KNOWN = MEMBERS
    N_INTERCEPTS = 2  # logit, ridge

    def __init__(self, vectors: Vectors, *, members: Sequence[str] = MEMBERS, n_buckets: int = 1 << 18,
                 seed: int = 0) -> None:
        super().__init__(vectors, members, n_buckets, seed)
        self.logit = np.zeros(0, np.float32)
        self.ridge = np.zeros(0, np.float32)
        self.bank = np.zeros((0, 1), np.float32)
        self.fails = np.zeros(0, np.float32)
        self.source_apgr: dict[str, float] = {}

    # --- fitting the members on a subset ---------------------------------------------------
    def _fit_members(self, data: OutcomeDataset, counts: Any, vec: np.ndarray, shape: np.ndarray,
                     rows: np.ndarray) -> dict[str, Any]:
        from sklearn.linear_model import LogisticRegression, Ridge

        sub = data.take(rows)
        _, weak = _unit_outcomes(sub)
        fails = 1.0 - weak
        w = balanced_weights(sources(sub))
        idf = _idf(counts[rows])
        x = _weigh(counts[rows], idf)
        fit: dict[str, Any] = {"idf": idf}
        if "tfidf-logit-wf" in self.members:
            y = (weak < 0.5).astype(int)
            if y.min() == y.max():
                fit["logit"] = (np.zeros(x.shape[1], np.float32), float(np.log(np.clip(y.mean(), 1e-3, 1 - 1e-3)
                                                                              / np.clip(1 - y.mean(), 1e-3, 1))))
            else:
                m = LogisticRegression(C=LOGIT_C, max_iter=2000).fit(x, y, sample_weight=w)
                fit["logit"] = (m.coef_[0].astype(np.float32), float(m.intercept_[0]))
        if "tfidf-ridge-gain" in self.members:
            r = Ridge(alpha=RIDGE_ALPHA).fit(x, sub.gain / max(1e-12, float(np.ptp(np.r_[sub.strong, sub.weak]))),
                                             sample_weight=w)
            fit["ridge"] = (np.asarray(r.coef_, np.float32), float(r.intercept_))
        if "knn-wf" in self.members:
            fit["bank"], fit["fails"] = vec[rows].astype(np.float16).astype(np.float32), fails.astype(np.float32)
        if "trees-wf" in self.members:
            fit["trees"] = TreeEnsemble.fit(shape[rows], fails, sample_weight=w)
        return fit

    def _member_scores(self, fit: dict[str, Any], counts: Any, vec: np.ndarray, shape: np.ndarray,
                       exclude_self: np.ndarray | None = None) -> np.ndarray:
        x = _weigh(counts, fit["idf"])
        cols = []
        for m in self.members:
            if m == "tfidf-logit-wf":
                w, b = fit["logit"]
                cols.append(_sigmoid(np.asarray(x @ w, dtype=float) + b))
            elif m == "tfidf-ridge-gain":
                w, b = fit["ridge"]
                cols.append(np.asarray(x @ w, dtype=float) + b)
            elif m == "knn-wf":
                cols.append(_knn(vec, fit["bank"], fit["fails"], exclude_self))
            else:
                cols.append(fit["trees"].predict(shape))
        return np.stack(cols, axis=1)

    def _features(self, prompts: Sequence[str]) -> tuple[Any, np.ndarray, np.ndarray]:
        counts = _counts(self.tfidf, prompts)
        vec = self.vectors.encode(prompts).astype(np.float32) if "knn-wf" in self.members else np.zeros((len(prompts), 1))
        shape = (np.stack([shape_features(p) for p in prompts]) if "trees-wf" in self.members
                 else np.zeros((len(prompts), 1)))
        return counts, vec, shape

    def fit(self, data: OutcomeDataset) -> TransferRouter:
        from tierwise.evaluation.cv import group_folds

        n = len(data)
        self._fit_vectors(data.prompts)
        counts, vec, shape = self._features(data.prompts)
        src = sources(data)
        names = sorted(set(src))
        # Out-of-fold member scores: for calibration and standardisation.
        oof = np.zeros((n, len(self.members)))
        enough = n >= 20 and len(set(data.groups)) >= 3
        folds = group_folds(data, 3, self.seed) if enough else [np.arange(n)]
        for te in folds:
            tr = np.setdiff1d(np.arange(n), te) if enough else te
            oof[te] = self._member_scores(self._fit_members(data, counts, vec, shape, tr), counts[te], vec[te],
                                          shape[te])
        self._standardise(oof)
        # Blend weights by leave-one-source-out: what carries from some sources to another.
        gains = np.zeros(len(self.members))
        if len(names) > 1:
            for name in names:
                te = np.flatnonzero(src == name)
                tr = np.flatnonzero(src != name)
                held = data.take(te)
                if np.ptp(held.gain) == 0 or len(te) < 10:
                    continue
                s = self._member_scores(self._fit_members(data, counts, vec, shape, tr), counts[te], vec[te], shape[te])
                for j, m in enumerate(self.members):
                    a = _apgr(s[:, j], held) if np.ptp(s[:, j]) > 0 else 0.5
                    self.source_apgr[f"{m}<-not-{name}"] = float(a)
                    gains[j] += max(0.0, a - 0.5) / len(names)
        self.weights = gains if gains.sum() > 0 else np.ones(len(self.members))
        fit = self._fit_members(data, counts, vec, shape, np.arange(n))
        self._keep(fit)
        remember_quantiles(self, self._combine(oof))
        return self

    def _keep(self, fit: dict[str, Any]) -> None:
        self.tfidf.idf = fit["idf"]
        if "logit" in fit:
            self.logit, self.intercepts[0] = fit["logit"]
        if "ridge" in fit:
            self.ridge, self.intercepts[1] = fit["ridge"]
        if "bank" in fit:
            self.bank, self.fails = fit["bank"], fit["fails"]
        self.trees = fit.get("trees")

    def _fit_dict(self) -> dict[str, Any]:
        return {"idf": self.tfidf.idf, "logit": (self.logit, self.intercepts[0]), "ridge": (self.ridge, self.intercepts[1]),
                "bank": self.bank, "fails": self.fails, "trees": self.trees}

    def score(self, data: OutcomeDataset) -> np.ndarray:
        counts, vec, shape = self._features(data.prompts)
        return self._combine(self._member_scores(self._fit_dict(), counts, vec, shape))

    def score_text(self, prompt: str, answer: str | None = None) -> float:
        cols = []
        idx, val = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if "tfidf-logit-wf" in self.members or "tfidf-ridge-gain" in self.members:
            idx, val = self.tfidf.row(prompt)
        for m in self.members:
            if m == "tfidf-logit-wf":
                cols.append(float(_sigmoid(np.asarray(np.dot(self.logit[idx], val) + self.intercepts[0]))))
            elif m == "tfidf-ridge-gain":
                cols.append(float(np.dot(self.ridge[idx], val)) + self.intercepts[1])
            elif m == "knn-wf":
                v = self.vectors.encode_one(prompt).astype(np.float32)
                cols.append(float(_knn(v[None, :], self.bank, self.fails)[0]))
            else:
                assert self.trees is not None
                cols.append(float(self.trees.predict(shape_features(prompt)[None, :])[0]))
        return float(self._combine(np.asarray(cols)[None, :])[0])

    # --- persistence ----------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {**self._blend_meta(), "source_apgr": self.source_apgr}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {**self._blend_arrays(), "idf": self.tfidf.idf}
        if "tfidf-logit-wf" in self.members:
            out["logit"] = self.logit
        if "tfidf-ridge-gain" in self.members:
            out["ridge"] = self.ridge
        if "knn-wf" in self.members:
            out["bank"], out["fails"] = self.bank.astype(np.float16), self.fails
        return out

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> TransferRouter:
        r = cls(restore_vectors(meta["vectors"], arrays), members=meta["members"], n_buckets=int(meta["n_buckets"]),
                seed=int(meta["seed"]))
        r._restore_blend(meta, arrays)
        r.source_apgr = {k: float(v) for k, v in meta.get("source_apgr", {}).items()}
        if "tfidf-logit-wf" in r.members:
            r.logit = arrays["logit"].astype(np.float32)
        if "tfidf-ridge-gain" in r.members:
            r.ridge = arrays["ridge"].astype(np.float32)
        if "knn-wf" in r.members:
            r.bank, r.fails = arrays["bank"].astype(np.float32), arrays["fails"].astype(np.float32)
        return r


def _knn(q: np.ndarray, bank: np.ndarray, fails: np.ndarray, exclude_self: np.ndarray | None = None) -> np.ndarray:
    """Similarity-weighted share of weak failures among the K nearest bank prompts (cosine)."""
    k = min(K, len(bank))
    out = np.empty(len(q))
    for s in range(0, len(q), 512):
        sims = q[s:s + 512] @ bank.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        ss = np.take_along_axis(sims, top, axis=1)
        w = np.exp((ss - ss.max(axis=1, keepdims=True)) / TEMPERATURE)
        out[s:s + 512] = (w * fails[top]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)
    return out


def transfer(vectors: str = "embedding", cache: Any = None, **kw: Any) -> TransferRouter:
    return TransferRouter(make_vectors(vectors, cache), **kw)


register_kind("transfer", TransferRouter.restore)
