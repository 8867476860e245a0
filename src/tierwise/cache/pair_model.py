"""The semantic tier's verifier: how likely a cached question and a new one ask the same thing.

A small attention model over the two questions' token embeddings (the contextual token vectors
all-MiniLM-L6-v2 computes anyway on the way to the sentence embedding), after "decomposable
attention" (Parikh et al., 2016): every token of one question is softly aligned with the tokens of
the other, each token is compared with what it aligned to, the comparisons are pooled per
question, and the two pools plus a few surface cues (pair_features.py: numbers, names, question
word, negation, rare unmatched words, lengths) decide. Cosine of the sentence embeddings alone
cannot tell "How do I learn Python?" from "How do I learn Java?"; the token that found no
counterpart can. The model is symmetric in the two questions.

The weights, the surface features' scaling, the IDF table and the thresholds calibrated for a few
false-hit rates live in one `.npz` of plain arrays (loaded with `allow_pickle=False`: numbers only,
no code). Inference is a handful of small numpy matrix products per candidate pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.cache.pair_features import HAND_NAMES, IDF_BUCKETS, hand_features

MODEL_FILE = Path(__file__).with_name("verifier_model.npz")
MAX_TOKENS = 64  # per question: longer ones are cut (a bound on the work per pair)
FORMAT = 2  # the arrays this code reads (1 was the MLP over sentence-embedding interactions)
WEIGHTS = ("w_att", "b_att", "w_proj", "b_proj", "w_cmp", "b_cmp", "w_hid", "b_hid", "w_out", "b_out")
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_ARRAY_BYTES = 64 * 1024 * 1024  # decompressed (the shipped model: under 1 MiB)


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)  # type: ignore[no-any-return]


def maxsim_features(ta: np.ndarray, tb: np.ndarray) -> list[float]:
    """How well each question's tokens find a counterpart in the other (unit token vectors):
    the mean and the worst best-match per side, in a symmetric order."""
    s = ta @ tb.T
    ra, rb = s.max(axis=1), s.max(axis=0)
    ma, mb = float(ra.mean()), float(rb.mean())
    na, nb = float(ra.min()), float(rb.min())
    return [min(ma, mb), max(ma, mb), min(na, nb), max(na, nb)]


def unit_outputs(o: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(unit sentence embedding, unit token vectors without padding) of one SentenceTransformer output."""
    se = o["sentence_embedding"].float().numpy()
    mask = o["attention_mask"].numpy().astype(bool)
    te = o["token_embeddings"].float().numpy()[mask][:MAX_TOKENS]
    return se / max(float(np.linalg.norm(se)), 1e-9), te / np.maximum(np.linalg.norm(te, axis=1, keepdims=True), 1e-9)


def check(arrays: dict[str, np.ndarray]) -> None:
    """A model file's arrays must be this format, every array present, of consistent shapes, finite numbers."""
    fmt = arrays.get("format")
    if fmt is None or fmt.shape != () or fmt.dtype.kind not in "iuf" or int(fmt) != FORMAT:
        raise ValueError("not a verifier model of this version (retrain with `tierwise cache train-verifier`)")
    for name in (*WEIGHTS, "hand_mean", "hand_scale", "idf", "fhr", "thr"):
        a = arrays.get(name)
        if a is None or a.dtype.kind != "f" or a.size == 0 or not np.all(np.isfinite(a)):
            raise ValueError(f"verifier model: array {name!r} missing or not finite numbers")
    if any(arrays[n].ndim != 2 for n in ("w_att", "w_cmp", "w_hid")):
        raise ValueError("verifier model: weight matrices must be matrices")
    d, h = arrays["w_att"].shape
    g, k = arrays["w_cmp"].shape[1], arrays["w_hid"].shape[1]
    n_side = len(HAND_NAMES) + 4 + 2 * d
    want = {"w_att": (d, h), "b_att": (h,), "w_proj": (d, h), "b_proj": (h,), "w_cmp": (4 * h, g), "b_cmp": (g,),
            "w_hid": (6 * g + n_side, k), "b_hid": (k,), "w_out": (k, 1), "b_out": (1,), "hand_mean": (n_side,),
            "hand_scale": (n_side,), "idf": (IDF_BUCKETS,), "thr": arrays["fhr"].shape}
    for name, shape in want.items():
        if arrays[name].shape != shape or 0 in shape:
            raise ValueError(f"verifier model: array {name!r} has shape {arrays[name].shape}, expected {shape}")
    if arrays["fhr"].ndim != 1 or np.any(arrays["hand_scale"] == 0):
        raise ValueError("verifier model: operating points or feature scales malformed")


def side_vector(a: str, b: str, ea: np.ndarray, eb: np.ndarray, ta: np.ndarray, tb: np.ndarray,
                idf: np.ndarray) -> np.ndarray:
    """Unscaled side input of one pair: surface cues, max-sim, and the sentence vectors' element-wise
    product and absolute difference (which directions of meaning agree)."""
    ea, eb = ea.astype(np.float32), eb.astype(np.float32)
    cues = hand_features(a, b, float(ea @ eb), idf) + maxsim_features(ta, tb)
    return np.concatenate([np.array(cues, dtype=np.float32), ea * eb, np.abs(ea - eb)])


class PairModel:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        check(arrays)
        self.w = {k: arrays[k].astype(np.float32) for k in WEIGHTS}
        self.hand_mean = arrays["hand_mean"].astype(np.float32)
        self.hand_scale = arrays["hand_scale"].astype(np.float32)
        self.idf = arrays["idf"].astype(np.float32)
        # operating points: false-hit rate -> probability threshold (calibrated on held-out pairs)
        self.thresholds = dict(zip(arrays["fhr"].tolist(), arrays["thr"].tolist(), strict=True))

    @classmethod
    def load(cls, path: Path | str = MODEL_FILE) -> PairModel:
        from tierwise.bounded_npz import load_npz

        return cls(load_npz(path, max_file_bytes=MAX_FILE_BYTES, max_total_bytes=MAX_ARRAY_BYTES))

    @staticmethod
    def save(path: Path | str, **arrays: Any) -> None:
        np.savez_compressed(path, format=np.array(FORMAT), **arrays)

    def threshold(self, max_false_hit_rate: float) -> float:
        return float(self.thresholds[min(self.thresholds, key=lambda f: abs(f - max_false_hit_rate))])

    def side_features(self, a: str, b: str, ea: np.ndarray, eb: np.ndarray, ta: np.ndarray,
                      tb: np.ndarray) -> np.ndarray:
        """The pair's surface cues, max-sim features and sentence-vector interactions, scaled as in training."""
        x = side_vector(a, b, ea, eb, ta, tb, self.idf)
        return (x - self.hand_mean) / self.hand_scale  # type: ignore[no-any-return]

    def _pool(self, pa: np.ndarray, pb: np.ndarray, att: np.ndarray) -> np.ndarray:
        w = self.w
        aligned = att @ pb
        g = np.concatenate([pa, aligned, pa * aligned, np.abs(pa - aligned)], axis=1) @ w["w_cmp"] + w["b_cmp"]
        g = np.maximum(g, 0)
        return np.concatenate([g.mean(axis=0), g.max(axis=0)])

    def logit(self, ta: np.ndarray, tb: np.ndarray, side: np.ndarray) -> float:
        w = self.w
        ta, tb = ta[:MAX_TOKENS].astype(np.float32), tb[:MAX_TOKENS].astype(np.float32)
        fa = np.maximum(ta @ w["w_att"] + w["b_att"], 0)
        fb = np.maximum(tb @ w["w_att"] + w["b_att"], 0)
        pa = ta @ w["w_proj"] + w["b_proj"]
        pb = tb @ w["w_proj"] + w["b_proj"]
        e = fa @ fb.T
        v1 = self._pool(pa, pb, _softmax(e, 1))
        v2 = self._pool(pb, pa, _softmax(e.T, 1))
        h = np.concatenate([v1 + v2, np.abs(v1 - v2), v1 * v2, side]) @ w["w_hid"] + w["b_hid"]
        return float(np.maximum(h, 0) @ w["w_out"][:, 0] + w["b_out"][0])

    def prob(self, a: Sequence[str], b: Sequence[str], ea: np.ndarray, eb: np.ndarray, ta: Sequence[np.ndarray],
             tb: Sequence[np.ndarray]) -> np.ndarray:
        """P(same question) for each pair (a[i], b[i]); ea/eb: their unit sentence vectors, ta/tb: their
        unit token vectors."""
        out = np.empty(len(a), dtype=np.float64)
        for i in range(len(a)):
            x, y = ta[i][:MAX_TOKENS].astype(np.float32), tb[i][:MAX_TOKENS].astype(np.float32)
            out[i] = self.logit(x, y, self.side_features(a[i], b[i], ea[i], eb[i], x, y))
        return 1.0 / (1.0 + np.exp(-out))
