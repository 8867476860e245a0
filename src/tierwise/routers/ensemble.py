"""Ensemble router: the weighted mean of its members' standardised scores.

Each member's scores are centred and scaled by their spread on the training prompts, so
members on different scales (a ridge gain estimate, a kNN mean gain, an MF probability
difference) count as their weights say.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.routers.base import ROUTER_KINDS, Router, register_kind, remember_quantiles


class EnsembleRouter:
    IN_SAMPLE_CALIBRATION = True  # fit() keeps its training prompts' own scores; `tierwise eval --save`
    # replaces them by out-of-fold ones (evaluation/deployment.calibrate_out_of_fold)

    def __init__(self, members: list[Router], weights: list[float] | None = None) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.kind = "ensemble"
        self.members = members
        self.weights = np.asarray(weights or [1.0] * len(members), dtype=float)
        self.centre = np.zeros(len(members))
        self.scale = np.ones(len(members))
        self.train_quantiles: np.ndarray | None = None

    def fit(self, data: OutcomeDataset) -> EnsembleRouter:
        for i, m in enumerate(self.members):
            m.fit(data)
            s = m.score(data)
            self.centre[i] = float(np.mean(s))
            self.scale[i] = float(np.std(s)) or 1.0
        remember_quantiles(self, self.score(data))
        return self

    def _combine(self, scores: list[np.ndarray]) -> np.ndarray:
        z = [(s - c) / k for s, c, k in zip(scores, self.centre, self.scale, strict=True)]
        return np.asarray(sum(w * s for w, s in zip(self.weights, z, strict=True)) / self.weights.sum(), dtype=float)

    def score(self, data: OutcomeDataset) -> np.ndarray:
        return self._combine([m.score(data) for m in self.members])

    def score_text(self, prompt: str, answer: str | None = None) -> float:
        return float(self._combine([np.asarray(m.score_text(prompt, answer)) for m in self.members]))

    def meta(self) -> dict[str, Any]:
        return {"weights": self.weights.tolist(), "centre": self.centre.tolist(), "scale": self.scale.tolist(),
                "members": [{"kind": m.kind, **m.meta()} for m in self.members]}

    def arrays(self) -> dict[str, np.ndarray]:
        return {f"m{i}/{k}": v for i, m in enumerate(self.members) for k, v in m.arrays().items()}

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> EnsembleRouter:
        members: list[Router] = []
        for i, mm in enumerate(meta["members"]):
            prefix = f"m{i}/"
            sub = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            members.append(ROUTER_KINDS[mm["kind"]](mm, sub))
        from tierwise.routers.dense import EmbeddingVectors

        shared: dict[str, EmbeddingVectors] = {}  # one embedding model, one embedding per request
        for m in members:
            v = getattr(m, "vectors", None)
            if isinstance(v, EmbeddingVectors):
                m.vectors = shared.setdefault(v.embedder.model_name, v)  # type: ignore[attr-defined]
        r = cls(members, meta["weights"])
        r.centre = np.asarray(meta["centre"], dtype=float)
        r.scale = np.asarray(meta["scale"], dtype=float)
        return r


register_kind("ensemble", EnsembleRouter.restore)
