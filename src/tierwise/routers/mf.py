"""Matrix-factorisation router in the spirit of RouteLLM's `mf`: prompts and models share a
latent space; a model's chance of a good answer is a sigmoid of the product of its latent
vector with the projected prompt. Trained on both tiers' outcomes at once (graded outcomes are
scaled to [0, 1] and used as soft labels); the score is P(strong good) − P(weak good).

Training is full-batch Adam in numpy over dense prompt vectors (LSA or embeddings).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers.base import register_kind, remember_quantiles
from tierwise.routers.dense import Vectors, make_vectors, restore_vectors


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


class MatrixFactorisationRouter:
    IN_SAMPLE_CALIBRATION = True  # fit() keeps its training prompts' own scores; `tierwise eval --save`
    # replaces them by out-of-fold ones (evaluation/deployment.calibrate_out_of_fold)

    def __init__(self, vectors: Vectors, *, dims: int = 32, epochs: int = 300, lr: float = 0.01,
                 weight_decay: float = 1e-3, seed: int = 0) -> None:
        self.kind = "mf"
        self.vectors = vectors
        self.dims = dims
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.proj = np.zeros((dims, 1), dtype=np.float32)  # prompt vector -> latent
        self.models = np.zeros((2, dims), dtype=np.float32)  # latent vectors of (strong, weak)
        self.bias = np.zeros(2, dtype=np.float32)
        self.train_quantiles: np.ndarray | None = None

    def fit(self, data: OutcomeDataset) -> MatrixFactorisationRouter:
        self.vectors.fit(data.prompts)
        x = self.vectors.encode(data.prompts).astype(np.float64)
        y = np.stack([data.strong, data.weak], axis=1)
        lo, hi = float(y.min()), float(y.max())
        y = (y - lo) / (hi - lo) if hi > lo else np.full_like(y, 0.5)
        rng = np.random.default_rng(self.seed)
        params = [rng.normal(0, 0.1, (self.dims, x.shape[1])), rng.normal(0, 0.1, (2, self.dims)),
                  np.log(np.clip(y.mean(0), 1e-3, 1 - 1e-3) / np.clip(1 - y.mean(0), 1e-3, 1))]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        n = len(x)
        for t in range(1, self.epochs + 1):
            w, u, b = params
            h = x @ w.T
            z = h @ u.T + b
            dz = (_sigmoid(z) - y) / n
            grads = [(dz @ u).T @ x + self.weight_decay * w, dz.T @ h + self.weight_decay * u, dz.sum(0)]
            for i, g in enumerate(grads):
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                params[i] = params[i] - self.lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)
        self.proj, self.models, self.bias = (p.astype(np.float32) for p in params)
        remember_quantiles(self, self._from_vectors(x.astype(np.float32)))
        return self

    def _from_vectors(self, x: np.ndarray) -> np.ndarray:
        p = _sigmoid((x @ self.proj.T) @ self.models.T + self.bias)
        return np.asarray(p[..., 0] - p[..., 1], dtype=float)

    def score(self, data: OutcomeDataset) -> np.ndarray:
        return self._from_vectors(self.vectors.encode(data.prompts).astype(np.float32))

    def score_text(self, prompt: str, answer: str | None = None) -> float:
        return float(self._from_vectors(self.vectors.encode_one(prompt).astype(np.float32)[None, :])[0])

    def meta(self) -> dict[str, Any]:
        return {"dims": self.dims, "epochs": self.epochs, "lr": self.lr, "weight_decay": self.weight_decay,
                "vectors": self.vectors.meta()}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"proj": self.proj, "models": self.models, "bias": self.bias, **self.vectors.arrays()}

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> MatrixFactorisationRouter:
        r = cls(restore_vectors(meta["vectors"], arrays), dims=int(meta["dims"]), epochs=int(meta["epochs"]),
                lr=float(meta["lr"]), weight_decay=float(meta["weight_decay"]))
        r.proj, r.models, r.bias = arrays["proj"], arrays["models"], arrays["bias"]
        return r


def mf(vectors: str = "lsa", cache: Any = None, **kw: Any) -> MatrixFactorisationRouter:
    return MatrixFactorisationRouter(make_vectors(vectors, cache), **kw)


register_kind("mf", MatrixFactorisationRouter.restore)
