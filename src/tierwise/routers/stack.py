"""Stacked router: several pre-routing scorers of the prompt, combined with weights learnt by an
inner cross-validation on the training prompts only.

Members (each sees the prompt text, never an answer):
- `tfidf-ridge`: ridge regression of the gain (strong − weak outcome) on hashed TF-IDF;
- `tfidf-logit`: two logistic regressions on the same features, P(strong good) − P(weak good);
- `knn`: mean gain of the k most similar training prompts (cosine after centring the prompt vectors
  and projecting them on their top `KNN_DIMS` principal axes: a third of the memory traffic per
  request, and no worse in our runs);
- `trees`: gradient-boosted trees (scikit-learn's HistGradientBoosting, exported to numpy arrays)
  over hand-made prompt features (`features.shape_features`) and the dense prompt vector.

`fit` splits the training prompts into `inner_folds` folds by question, scores every training
prompt with members fitted on the other folds, and from those out-of-fold scores picks each
member's hyper-parameter (ridge alpha, logistic C, k: the grid value with the best out-of-fold
APGR), then the stacking weights (non-negative least squares of the gain on the standardised
scores, shrunk towards equal weights by a share chosen by cross-validating the weights over the
same inner folds). Members are then refitted on all training prompts. Nothing of the prompts
scored later is used. The gradient-boosting settings and the `KNN_DIMS` projection are fixed.
Graded outcomes (MT-Bench-like) are split at the middle of their range for the logistic member.

Scoring is numpy-only: sparse gathers for TF-IDF, one matrix-vector product for kNN, and a
level-by-level walk of all trees at once. Saved as JSON + .npz like every router.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers.base import register_kind, remember_quantiles
from tierwise.routers.dense import LsaVectors, Vectors, make_vectors, restore_vectors
from tierwise.routers.features import SHAPE_NAMES, HashingTfidf, shape_features, shape_groups

MEMBERS = ("tfidf-ridge", "tfidf-logit", "knn", "trees")
ALPHAS = (3.0, 10.0, 30.0)
CS = (0.3, 1.0)
KS = (30, 100, 300)
KNN_DIMS = 128  # fixed, for the per-request time budget
BLEND = (0.0, 0.5, 1.0)  # stacking weights: NNLS (0) … equal (1), chosen by inner CV
# Gradient-boosting settings, fixed a priori (not tuned): small trees, slow learning rate.
TREE_PARAMS = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 40,
               "random_state": 0}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


class TreeEnsemble:
    """A fitted HistGradientBoostingRegressor as padded node arrays; prediction is numpy-only."""

    def __init__(self, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray, right: np.ndarray,
                 value: np.ndarray, leaf: np.ndarray, base: float) -> None:
        self.feature, self.threshold, self.left, self.right = feature, threshold, left, right
        self.value, self.leaf, self.base = value, leaf, base
        self.depth = int(feature.shape[1])  # a walk of n_nodes steps always reaches a leaf
        self.used = np.unique(feature[~leaf])  # the features some split reads
        # One request's walk (`predict_one`): the node arrays flattened, children's indices made global, and a
        # leaf its own child (where `predict` keeps a tree that has reached its leaf).
        roots = np.arange(feature.shape[0], dtype=np.int64) * feature.shape[1]
        here = np.arange(feature.size, dtype=np.int64)
        self._roots, self._feature, self._threshold, self._value = roots, feature.ravel(), threshold.ravel(), value.ravel()
        self._left = np.where(leaf.ravel(), here, (left + roots[:, None]).ravel())
        self._right = np.where(leaf.ravel(), here, (right + roots[:, None]).ravel())

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> TreeEnsemble:
        from sklearn.ensemble import HistGradientBoostingRegressor

        model = HistGradientBoostingRegressor(**TREE_PARAMS).fit(x, y, sample_weight=sample_weight)
        trees = [p[0].nodes for p in model._predictors]
        n = max(len(t) for t in trees)
        shape = (len(trees), n)
        feature, left, right = (np.zeros(shape, np.int32) for _ in range(3))
        threshold, value = np.zeros(shape, np.float64), np.zeros(shape, np.float32)
        leaf = np.ones(shape, bool)
        depth = 0
        for i, t in enumerate(trees):
            k = len(t)
            feature[i, :k], threshold[i, :k] = t["feature_idx"], t["num_threshold"]
            left[i, :k], right[i, :k] = t["left"], t["right"]
            value[i, :k], leaf[i, :k] = t["value"], t["is_leaf"].astype(bool)
            depth = max(depth, int(t["depth"].max()))
        r = cls(feature, threshold, left, right, value, leaf, float(np.ravel(model._baseline_prediction)[0]))
        r.depth = depth
        return r

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        rows = np.arange(len(x))[:, None]
        trees = np.arange(self.feature.shape[0])[None, :]
        node = np.zeros((len(x), self.feature.shape[0]), dtype=np.int64)
        for _ in range(self.depth):
            go_left = x[rows, self.feature[trees, node]] <= self.threshold[trees, node]
            nxt = np.where(go_left, self.left[trees, node], self.right[trees, node])
            node = np.where(self.leaf[trees, node], node, nxt)
        return self.base + self.value[trees, node].sum(axis=1, dtype=np.float64)

    def predict_one(self, x: np.ndarray) -> float:
        """`predict(x[None, :])[0]` for one row of float64 features, exactly: every node's split is compared
        at once, which makes one step of the walk a map from node to node; `depth` steps of it are composed
        by repeated squaring (log2(depth) gathers over all nodes instead of `depth` rounds of the walk)."""
        step = np.where(x[self._feature] <= self._threshold, self._left, self._right)
        node, d = self._roots, self.depth
        while d:
            if d & 1:
                node = step[node]
            d >>= 1
            if d:
                step = step[step]
        return float(self.base + self._value[node][None, :].sum(axis=1, dtype=np.float64)[0])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"tree_feature": self.feature, "tree_threshold": self.threshold, "tree_left": self.left,
                "tree_right": self.right, "tree_value": self.value, "tree_leaf": self.leaf}

    @classmethod
    def restore(cls, base: float, depth: int, a: dict[str, np.ndarray]) -> TreeEnsemble:
        r = cls(a["tree_feature"], a["tree_threshold"], a["tree_left"], a["tree_right"], a["tree_value"],
                a["tree_leaf"].astype(bool), base)
        r.depth = depth
        return r


def _counts(tfidf: HashingTfidf, texts: Sequence[str]) -> Any:
    """CSR of sublinear term frequencies (1 + log count) per hashed bucket, before IDF."""
    from scipy.sparse import csr_matrix

    rows = [tfidf._counts(t) for t in texts]
    indptr = np.concatenate([[0], np.cumsum([len(r[0]) for r in rows])])
    return csr_matrix((np.concatenate([1.0 + np.log(r[1]) for r in rows]), np.concatenate([r[0] for r in rows]),
                       indptr), shape=(len(rows), tfidf.n_buckets), dtype=np.float32)


def _idf(counts: Any) -> np.ndarray:
    """IDF exactly as `HashingTfidf.fit` computes it."""
    n = max(1, counts.shape[0])
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    return (np.log((1 + n) / (1 + df)) + 1.0).astype(np.float32)


def _weigh(counts: Any, idf: np.ndarray) -> Any:
    from sklearn.preprocessing import normalize

    return normalize(counts.multiply(idf[None, :]).tocsr().astype(np.float32))


def _apgr(scores: np.ndarray, data: OutcomeDataset) -> float:
    from tierwise.evaluation.metrics import summarize

    return summarize("inner", scores, data.strong, data.weak).apgr


def _nnls(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    w, _ = nnls(np.hstack([z, np.ones((len(z), 1))]), y - y.mean())  # the constant column absorbs the offset
    return np.asarray(w[:-1])


def _logistic(x: Any, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Weights and intercept of an L2 logistic regression; a constant model when only one class occurs."""
    from sklearn.linear_model import LogisticRegression

    if y.min() == y.max():
        p = np.clip(y.mean(), 1e-3, 1 - 1e-3)
        return np.zeros(x.shape[1]), float(np.log(p / (1 - p)))
    import scipy.sparse as sp

    if not sp.issparse(x):
        m = LogisticRegression(C=c, max_iter=2000).fit(x, y)
        return m.coef_[0], float(m.intercept_[0])
    # Hashed TF-IDF has 2^18+ columns and a few hundred prompts fill a tiny share of them; L-BFGS works on every
    # column each step (80 prompts: 0.7 s a fit, ~90% of a `stack-lsa` cross-validation). A column no prompt
    # uses has a zero gradient and stays at zero from the zero start, so fitting on the used ones gives the
    # same weights.
    x = sp.csr_matrix(x)
    used = np.unique(x.indices)
    m = LogisticRegression(C=c, max_iter=2000).fit(x[:, used], y)
    coef = np.zeros(x.shape[1])
    coef[used] = m.coef_[0]
    return coef, float(m.intercept_[0])


def _top_mean(sims: np.ndarray, gain: np.ndarray, k: int) -> np.ndarray:
    k = min(k, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return np.asarray(gain[top].mean(axis=1), dtype=float)


class BlendedRouter:
    """What the stacked and the transfer router (routers/transfer.py) share: members named from a fixed set,
    a hashed TF-IDF, a dense vectors object, optional trees, and the members' scores standardised by their
    out-of-fold centre and spread and averaged with weights; saved as the same meta fields and arrays."""

    kind = ""
    KNOWN: tuple[str, ...] = ()
    N_INTERCEPTS = 0

    def __init__(self, vectors: Vectors, members: Sequence[str], n_buckets: int, seed: int) -> None:
        unknown = set(members) - set(self.KNOWN)
        if unknown or not members:
            raise ValueError(f"unknown {self.kind} members {sorted(unknown)}; choose from {', '.join(self.KNOWN)}")
        self.vectors = vectors
        self.members = tuple(members)
        self.seed = seed
        self.tfidf = HashingTfidf(n_buckets)
        self.intercepts = np.zeros(self.N_INTERCEPTS)
        self.trees: TreeEnsemble | None = None
        self.weights = np.ones(len(self.members))
        self.centre = np.zeros(len(self.members))
        self.scale = np.ones(len(self.members))
        self.train_quantiles: np.ndarray | None = None

    def _fit_vectors(self, prompts: Sequence[str]) -> None:
        self.vectors.fit(prompts)
        if isinstance(self.vectors, LsaVectors):  # saved as float16: train on exactly what a restore reads
            self.vectors.components = self.vectors.components.astype(np.float16).astype(np.float32)

    def _standardise(self, s: np.ndarray) -> None:
        self.centre = s.mean(axis=0)
        self.scale = np.where(s.std(axis=0) > 0, s.std(axis=0), 1.0)

    def _combine(self, s: np.ndarray) -> np.ndarray:
        z = (s - self.centre) / self.scale
        return np.asarray(z @ self.weights / self.weights.sum(), dtype=float)

    def _blend_meta(self) -> dict[str, Any]:
        return {"members": list(self.members), "seed": self.seed, "n_buckets": self.tfidf.n_buckets,
                "weights": self.weights.tolist(), "centre": self.centre.tolist(), "scale": self.scale.tolist(),
                "intercepts": self.intercepts.tolist(), "vectors": self.vectors.meta(),
                "tree_base": self.trees.base if self.trees else 0.0, "tree_depth": self.trees.depth if self.trees else 0}

    def _blend_arrays(self) -> dict[str, np.ndarray]:
        return {**self.vectors.arrays(), **(self.trees.arrays() if self.trees is not None else {})}

    def _restore_blend(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.weights, self.centre, self.scale, self.intercepts = (
            np.asarray(meta[k], dtype=float) for k in ("weights", "centre", "scale", "intercepts"))
        if "idf" in arrays:
            self.tfidf.idf = arrays["idf"].astype(np.float32)
        if "tree_feature" in arrays:
            self.trees = TreeEnsemble.restore(float(meta["tree_base"]), int(meta["tree_depth"]), arrays)


class StackRouter(BlendedRouter):
    kind = "stack"
    KNOWN = MEMBERS
    N_INTERCEPTS = 3  # ridge; logit strong, weak

    def __init__(self, vectors: Vectors, *, members: Sequence[str] = MEMBERS, inner_folds: int = 5,
                 n_buckets: int = 1 << 18, seed: int = 1) -> None:
        super().__init__(vectors, members, n_buckets, seed)
        self.inner_folds = inner_folds
        self.params: dict[str, float] = {}
        self.ridge = np.zeros(0, np.float32)
        self.logit = np.zeros((2, 0), np.float32)
        self.knn_mean = np.zeros(0, np.float32)
        self.knn_axes = np.zeros((0, 0), np.float32)
        self.bank = np.zeros((0, 1), np.float32)
        self.gain = np.zeros(0, np.float32)
        self.inner_apgr: dict[str, float] = {}
        self.blend = 1.0
        self._groups_of: TreeEnsemble | None = None  # the trees `_groups` was read from
        self._groups: frozenset[str] = frozenset()

    # --- training -------------------------------------------------------------------------
    def _dense(self, texts: Sequence[str]) -> np.ndarray:
        """Hand-made features (when the trees need them) followed by the prompt vector."""
        v = self.vectors.encode(texts).astype(np.float32)
        if "trees" not in self.members:
            return v
        return np.hstack([np.stack([shape_features(t) for t in texts]).reshape(len(texts), -1), v])

    def _vec(self, dense: np.ndarray) -> np.ndarray:
        return dense[:, len(SHAPE_NAMES):] if "trees" in self.members else dense

    def _member_scores(self, member: str, grid: Sequence[float], tr: np.ndarray, te: np.ndarray,
                       data: OutcomeDataset, counts: Any, dense: np.ndarray) -> list[np.ndarray]:
        """Scores of `te` by `member` fitted on `tr`, one array per grid value."""
        from sklearn.linear_model import Ridge

        gain = data.gain[tr]
        if member in ("tfidf-ridge", "tfidf-logit"):
            idf = _idf(counts[tr])
            xtr, xte = _weigh(counts[tr], idf), _weigh(counts[te], idf)
            if member == "tfidf-ridge":
                return [Ridge(alpha=a).fit(xtr, gain).predict(xte) for a in grid]
            out = []
            for c in grid:
                p = [_sigmoid(xte @ w + b) for w, b in (_logistic(xtr, y[tr], c) for y in self._labels(data))]
                out.append(p[0] - p[1])
            return out
        vec = self._vec(dense)
        if member == "knn":
            sims = self._knn_space(vec[te]) @ self._knn_space(vec[tr]).T
            return [_top_mean(sims, gain, int(k)) for k in grid]
        return [TreeEnsemble.fit(dense[tr], gain).predict(dense[te])]

    @staticmethod
    def _labels(data: OutcomeDataset) -> tuple[np.ndarray, np.ndarray]:
        """Good (1) or not (0) per tier: 0/1 outcomes as they are, graded ones scaled to [0, 1] and split at 0.5."""
        y = np.stack([data.strong, data.weak])
        lo, hi = float(y.min()), float(y.max())
        y = (y - lo) / (hi - lo) if hi > lo else np.zeros_like(y)
        good = (y >= 0.5).astype(int)
        return good[0], good[1]

    def _grid(self, member: str) -> Sequence[float]:
        return {"tfidf-ridge": ALPHAS, "tfidf-logit": CS, "knn": KS, "trees": (0.0,)}[member]

    def fit(self, data: OutcomeDataset) -> StackRouter:
        from tierwise.evaluation.cv import group_folds

        n = len(data)
        self._fit_vectors(data.prompts)
        counts = _counts(self.tfidf, data.prompts)
        dense = self._dense(data.prompts)
        if "knn" in self.members:  # principal axes of the training prompts' vectors (unsupervised)
            vec = self._vec(dense)
            self.knn_mean = vec.mean(axis=0)
            axes = np.linalg.svd(vec - self.knn_mean, full_matrices=False)[2][:KNN_DIMS]
            self.knn_axes = axes.astype(np.float32)
        enough = n >= 4 * self.inner_folds and len(set(data.groups)) >= self.inner_folds
        folds = group_folds(data, self.inner_folds, self.seed, merge_prompts=True) if enough else None  # else: defaults
        oof = {m: [np.zeros(n) for _ in self._grid(m)] for m in self.members}
        if folds is not None:
            for te in folds:
                tr = np.setdiff1d(np.arange(n), te)
                for m in self.members:
                    for g, s in enumerate(self._member_scores(m, self._grid(m), tr, te, data, counts, dense)):
                        oof[m][g][te] = s
        chosen = np.zeros((n, len(self.members)))
        for j, m in enumerate(self.members):
            grid = self._grid(m)
            apgrs = [_apgr(s, data) if folds is not None and np.ptp(s) > 0 else 0.0 for s in oof[m]]
            best = int(np.argmax(apgrs))
            self.params[m] = float(grid[best])
            self.inner_apgr[m] = float(apgrs[best])
            chosen[:, j] = oof[m][best]
        if folds is not None:
            self._standardise(chosen)
            self.weights = self._stacking_weights((chosen - self.centre) / self.scale, data, folds)
        self._refit(data, counts, dense)
        if folds is None:  # too few prompts for an inner split: equal weights, spread of the fitted scores
            s = self._member_matrix(_weigh(counts, self.tfidf.idf), dense)
            self._standardise(s)
            remember_quantiles(self, self._combine(s))
        else:  # calibrate on the out-of-fold scores: what unseen prompts get
            remember_quantiles(self, self._combine(chosen))
        return self

    def _stacking_weights(self, z: np.ndarray, data: OutcomeDataset, folds: list[np.ndarray]) -> np.ndarray:
        """Non-negative least squares of the gain on the members' out-of-fold scores, shrunk towards equal
        weights by the share (of `BLEND`) that scores best when the weights are themselves cross-validated
        over the same inner folds (so the choice sees no prompt it is judged on)."""
        equal = np.full(z.shape[1], 1.0 / z.shape[1])

        def fit(rows: np.ndarray) -> np.ndarray:
            w = _nnls(z[rows], data.gain[rows])
            return w / w.sum() if w.sum() > 0 else equal

        blended = {lam: np.zeros(len(z)) for lam in BLEND}
        for te in folds:
            w = fit(np.setdiff1d(np.arange(len(z)), te))
            for lam in BLEND:
                blended[lam][te] = z[te] @ ((1 - lam) * w + lam * equal)
        lam = max(BLEND, key=lambda b: _apgr(blended[b], data))
        self.blend = float(lam)
        return (1 - lam) * fit(np.arange(len(z))) + lam * equal

    def _refit(self, data: OutcomeDataset, counts: Any, dense: np.ndarray) -> None:
        from sklearn.linear_model import Ridge

        self.tfidf.idf = _idf(counts)
        x = _weigh(counts, self.tfidf.idf)
        self.ridge = np.zeros(0, np.float32)
        self.logit = np.zeros((2, 0), np.float32)
        if "tfidf-ridge" in self.members:
            r = Ridge(alpha=self.params["tfidf-ridge"]).fit(x, data.gain)
            self.ridge, self.intercepts[0] = np.asarray(r.coef_, np.float32), float(r.intercept_)
        if "tfidf-logit" in self.members:
            fits = [_logistic(x, y, self.params["tfidf-logit"]) for y in self._labels(data)]
            self.logit = np.stack([w for w, _ in fits]).astype(np.float32)
            self.intercepts[1:3] = [b for _, b in fits]
        vec = self._vec(dense)
        if "knn" in self.members:
            # The bank is saved as float16; keep the rounded copy so a restored router scores identically.
            self.bank = self._knn_space(vec).astype(np.float16).astype(np.float32)
            self.gain = data.gain.astype(np.float32)
        if "trees" in self.members:
            self.trees = TreeEnsemble.fit(dense, data.gain)

    # --- scoring --------------------------------------------------------------------------
    def _member_matrix(self, x: Any, dense: np.ndarray) -> np.ndarray:
        """Member scores for a batch: `x` is the weighted TF-IDF matrix (None when no member needs it)."""
        vec = self._vec(dense)
        cols = []
        for m in self.members:
            if m == "tfidf-ridge":
                cols.append(np.asarray(x @ self.ridge, dtype=float) + self.intercepts[0])
            elif m == "tfidf-logit":
                p = _sigmoid(np.asarray(x @ self.logit.T, dtype=float) + self.intercepts[1:3])
                cols.append(p[:, 0] - p[:, 1])
            elif m == "knn":
                out = np.empty(len(vec))
                q = self._knn_space(vec)
                for s in range(0, len(vec), 512):
                    out[s:s + 512] = _top_mean(q[s:s + 512] @ self.bank.T, self.gain, int(self.params["knn"]))
                cols.append(out)
            else:
                assert self.trees is not None
                cols.append(self.trees.predict(dense))
        return np.stack(cols, axis=1)

    def _knn_space(self, vec: np.ndarray) -> np.ndarray:
        z = (vec - self.knn_mean) @ self.knn_axes.T
        n = np.linalg.norm(z, axis=1, keepdims=True)
        return np.asarray(z / np.where(n == 0, 1.0, n), dtype=np.float32)

    def _needs_tfidf(self) -> bool:
        return any(m.startswith("tfidf") for m in self.members)

    def score(self, data: OutcomeDataset) -> np.ndarray:
        x = _weigh(_counts(self.tfidf, data.prompts), self.tfidf.idf) if self._needs_tfidf() else None
        return self._combine(self._member_matrix(x, self._dense(data.prompts)))

    def _tree_groups(self) -> frozenset[str]:
        """The shape features some split of the trees reads (the others are never looked at)."""
        assert self.trees is not None
        if self._groups_of is not self.trees:
            self._groups = shape_groups(int(c) for c in self.trees.used if c < len(SHAPE_NAMES))
            self._groups_of = self.trees
        return self._groups

    def score_text(self, prompt: str, answer: str | None = None) -> float:
        v = self.vectors.encode_one(prompt).astype(np.float32)
        dense = np.concatenate([shape_features(prompt, self._tree_groups()), v]) if "trees" in self.members else v
        cols = []
        if self._needs_tfidf():
            idx, val = self.tfidf.row(prompt)
        for m in self.members:
            if m == "tfidf-ridge":
                cols.append(float(np.dot(self.ridge[idx], val)) + self.intercepts[0])
            elif m == "tfidf-logit":
                p = _sigmoid(self.logit[:, idx] @ val + self.intercepts[1:3])
                cols.append(float(p[0] - p[1]))
            elif m == "knn":
                sims = self.bank @ self._knn_space(v[None, :])[0]
                cols.append(float(_top_mean(sims[None, :], self.gain, int(self.params["knn"]))[0]))
            else:
                assert self.trees is not None
                cols.append(self.trees.predict_one(dense.astype(np.float64)))
        return float(self._combine(np.asarray(cols)[None, :])[0])

    # --- persistence ----------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {**self._blend_meta(), "inner_folds": self.inner_folds, "params": self.params,
                "inner_apgr": self.inner_apgr, "blend": self.blend}

    def arrays(self) -> dict[str, np.ndarray]:
        out = self._blend_arrays()
        if self._needs_tfidf():
            out["idf"] = self.tfidf.idf
        if "tfidf-ridge" in self.members:
            out["ridge"] = self.ridge
        if "tfidf-logit" in self.members:
            out["logit"] = self.logit
        if "knn" in self.members:
            out["bank"], out["gain"] = self.bank.astype(np.float16), self.gain
            out["knn_mean"], out["knn_axes"] = self.knn_mean, self.knn_axes
        return out

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> StackRouter:
        r = cls(restore_vectors(meta["vectors"], arrays), members=meta["members"],
                inner_folds=int(meta["inner_folds"]), n_buckets=int(meta["n_buckets"]), seed=int(meta["seed"]))
        r._restore_blend(meta, arrays)
        r.params = {k: float(v) for k, v in meta["params"].items()}
        r.inner_apgr = {k: float(v) for k, v in meta.get("inner_apgr", {}).items()}
        r.blend = float(meta.get("blend", 1.0))
        if "tfidf-ridge" in r.members:
            r.ridge = arrays["ridge"].astype(np.float32)
        if "tfidf-logit" in r.members:
            r.logit = arrays["logit"].astype(np.float32)
        if "knn" in r.members:
            r.bank, r.gain = arrays["bank"].astype(np.float32), arrays["gain"].astype(np.float32)
            r.knn_mean, r.knn_axes = arrays["knn_mean"].astype(np.float32), arrays["knn_axes"].astype(np.float32)
        return r


def stack(vectors: str = "embedding", cache: Any = None, **kw: Any) -> StackRouter:
    return StackRouter(make_vectors(vectors, cache), **kw)


register_kind("stack", StackRouter.restore)
