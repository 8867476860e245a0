"""The semantic tier's verifier: a small neural network over pair features (pair_features.py)
that says how likely a cached question and a new one ask the same thing.

Its weights, the feature scaling, the IDF table and the thresholds calibrated for a few
false-hit rates live in `verifier_model.npz` next to this module (written by
`bench/cache_quality.py --write-model`; numbers only, loaded with `allow_pickle=False`). The
forward pass is two matrix products in numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tierwise.cache.pair_features import pair_matrix

MODEL_FILE = Path(__file__).with_name("verifier_model.npz")


class Verifier:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.mean = arrays["mean"]
        self.scale = arrays["scale"]
        self.layers = [(arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(int(arrays["n_layers"]))]
        self.idf = arrays["idf"]
        # operating points: false-hit rate -> probability threshold (calibrated on held-out pairs)
        self.thresholds = dict(zip(arrays["fhr"].tolist(), arrays["thr"].tolist(), strict=True))

    @classmethod
    def load(cls, path: Path | str = MODEL_FILE) -> Verifier:
        with np.load(path, allow_pickle=False) as z:
            return cls({k: z[k] for k in z.files})

    @staticmethod
    def save(path: Path | str, **arrays: Any) -> None:
        np.savez_compressed(path, **arrays)

    def threshold(self, max_false_hit_rate: float) -> float:
        return float(self.thresholds[min(self.thresholds, key=lambda f: abs(f - max_false_hit_rate))])

    def prob_features(self, x: np.ndarray) -> np.ndarray:
        h = (x - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0)
        return 1.0 / (1.0 + np.exp(-h[:, 0]))  # type: ignore[no-any-return]

    def prob(self, a: list[str], b: list[str], ea: np.ndarray, eb: np.ndarray) -> np.ndarray:
        return self.prob_features(pair_matrix(a, b, ea, eb, self.idf))
