"""Similarity-weighted kNN router: a query's score is the similarity-weighted mean gain of the
k most similar training prompts (cosine over LSA or embedding vectors).

The weights are exp(sim / temperature), so near-duplicates dominate and far neighbours fade,
in the spirit of RouteLLM's similarity-weighted ranking but over outcome labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers.base import register_kind, remember_quantiles
from tierwise.routers.dense import Vectors, make_vectors, restore_vectors


class KnnRouter:
    def __init__(self, vectors: Vectors, *, k: int = 50, temperature: float = 0.05) -> None:
        self.kind = "knn"
        self.vectors = vectors
        self.k = k
        self.temperature = temperature
        self.bank = np.zeros((0, 1), dtype=np.float32)
        self.gain = np.zeros(0, dtype=np.float32)
        self.prior = 0.0
        self.train_quantiles: np.ndarray | None = None

    def fit(self, data: OutcomeDataset) -> KnnRouter:
        self.vectors.fit(data.prompts)
        self.bank = self.vectors.encode(data.prompts).astype(np.float32)
        self.gain = data.gain.astype(np.float32)
        self.prior = float(self.gain.mean())
        # Calibrate on leave-one-out scores, so the quantiles match what unseen prompts get.
        remember_quantiles(self, self._scores(self.bank, exclude_self=True))
        return self

    def _scores(self, q: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        out = np.empty(len(q))
        for start in range(0, len(q), 512):
            sims = q[start:start + 512] @ self.bank.T
            if exclude_self:
                rows = np.arange(sims.shape[0])
                sims[rows, start + rows] = -np.inf
            out[start:start + 512] = self._from_sims(sims)
        return out

    def _from_sims(self, sims: np.ndarray) -> np.ndarray:
        k = min(self.k, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(sims, top, axis=1)
        w = np.exp((s - s.max(axis=1, keepdims=True)) / self.temperature)
        w = np.where(np.isfinite(s), w, 0.0)
        return (w * self.gain[top]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)

    def score(self, data: OutcomeDataset) -> np.ndarray:
        return self._scores(self.vectors.encode(data.prompts).astype(np.float32))

    def score_text(self, prompt: str, answer: str | None = None) -> float:
        v = self.vectors.encode_one(prompt).astype(np.float32)
        return float(self._from_sims((self.bank @ v)[None, :])[0])

    def meta(self) -> dict[str, Any]:
        return {"k": self.k, "temperature": self.temperature, "prior": self.prior, "vectors": self.vectors.meta()}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"bank": self.bank.astype(np.float16), "gain": self.gain, **self.vectors.arrays()}

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> KnnRouter:
        r = cls(restore_vectors(meta["vectors"], arrays), k=int(meta["k"]), temperature=float(meta["temperature"]))
        r.bank = arrays["bank"].astype(np.float32)
        r.gain = arrays["gain"].astype(np.float32)
        r.prior = float(meta["prior"])
        return r


def knn(vectors: str = "lsa", cache: Any = None, **kw: Any) -> KnnRouter:
    return KnnRouter(make_vectors(vectors, cache), **kw)


register_kind("knn", KnnRouter.restore)
