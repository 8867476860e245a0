"""A saved router's training bank: its training questions' static token vectors and gains, for the bank term of a
route's placement (issue 22, rounds 22-24; bench/RESULTS.md, "Transfer round 22" and "Transfer round 24").

On MMLU subjects a router never saw, the gain (strong − weak outcome) of a request's nearest *training* questions,
read by the router's own static token vectors (routers/static_tokens.py), complements the router's score where it
places whole subjects worst. The bank keeps every training question (up to `MAX_ROWS`, a seeded sample past it) on
the top `AXES` principal axes of their vectors: float16 unit vectors and each question's gain on [0, 1] per source
(the part of its group before `:`), centred within its source. `lookup` gives the softmax-weighted (cosine /
`TEMPERATURE`) mean gain of a vector's `K` nearest rows (a saved bank keeps its own k and temperature: round 23's
banks 50 at 0.05, since round 24 200 at 0.1, a broader neighbourhood): about 0.3 ms a request on 13,000 rows, where
the exact 384-number look-up took 2.3 ms (bench/bank_lookup_cost.py). `BankTerm` turns it into a placement term: the request's
bank gain less the mean over the window's past requests, in units of their spread, times the spread of the window's
raw scores, times a weight (routers/window.py `RoutePlacement`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tierwise.routers.window import PlacementWindow, RoutePlacement

AXES = 64  # principal axes kept (round 22: 64 keep the neighbour gain's lead on fresh P15, within the 2 ms budget)
# nearest training questions averaged and the softmax temperature of their cosines (round 24: 200 at 0.1 on spent
# P15/P16, LOBO and in-domain GSM8K against round 23's 50 at 0.05; bench/RESULTS.md, "Transfer round 24")
K = 200
TEMPERATURE = 0.1
MAX_ROWS = 100_000  # training questions kept (a seeded sample past it): 6.4 million float16s, 12.8 MB
MAX_DIMS = 4096  # numbers of a static token vector a saved projection may read
SEED = 0
MAX_K = 1000  # a saved bank's `k`: rows averaged per look-up (its partial sort and mean stay bounded)
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 10.0  # a saved bank's softmax temperature


class BankError(ValueError):
    """A saved bank that is not one `NeighbourBank.arrays` wrote."""


class NeighbourBank:
    def __init__(self, proj: np.ndarray, vectors: np.ndarray, gains: np.ndarray, k: int = K,
                 temperature: float = TEMPERATURE) -> None:
        self.k, self.temperature = int(k), float(temperature)
        self.proj = np.ascontiguousarray(proj, dtype=np.float32)  # (dims, axes)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float16)  # (rows, axes) unit vectors, as saved
        self.gains = np.asarray(gains, dtype=np.float32)
        self._vectors32 = self.vectors.astype(np.float32)  # float16 products are slow in numpy
        self._gains64 = self.gains.astype(np.float64)

    def __len__(self) -> int:
        return len(self.gains)

    @classmethod
    def fit(cls, vectors: np.ndarray, gains: np.ndarray, axes: int = AXES, max_rows: int = MAX_ROWS, k: int = K,
            temperature: float = TEMPERATURE) -> NeighbourBank:
        """`vectors`: the training questions' static token vectors (unit, n × dims); `gains`: their centred gains."""
        x = np.asarray(vectors, dtype=np.float32)
        g = np.asarray(gains, dtype=np.float64)
        if len(x) > max_rows:
            keep = np.sort(np.random.default_rng(SEED).choice(len(x), max_rows, replace=False))
            x, g = x[keep], g[keep]
        axes = max(1, min(axes, x.shape[1], len(x)))
        _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
        proj = np.ascontiguousarray(vt[:axes].T, dtype=np.float32)
        return cls(proj, _unit(x @ proj), g, k, temperature)

    def lookup(self, vector: np.ndarray) -> float:
        """The similarity-weighted mean gain of the bank's `k` rows nearest to one static token vector."""
        q = _unit(np.asarray(vector, dtype=np.float32).reshape(1, -1) @ self.proj)[0]
        sims = self._vectors32 @ q
        k = min(self.k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
        ss = sims[top].astype(np.float64)
        w = np.exp((ss - ss.max()) / self.temperature)
        return float(w @ self._gains64[top] / w.sum())

    def meta(self) -> dict[str, Any]:
        return {"rows": len(self), "axes": int(self.proj.shape[1]), "k": self.k, "temperature": self.temperature}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"proj": self.proj, "vectors": self.vectors, "gains": self.gains}

    @classmethod
    def restore(cls, meta: Any, arrays: dict[str, np.ndarray], dims: int) -> NeighbourBank:
        """A saved bank, checked: a projection of `dims` numbers onto at most `AXES` axes, at most `MAX_ROWS` float16
        unit vectors and as many gains, every number finite; anything else raises `BankError` naming what is wrong."""
        if not isinstance(meta, dict):
            raise BankError("bank: its settings are not an object")
        try:
            proj, vecs, gains = arrays["proj"], arrays["vectors"], arrays["gains"]
        except KeyError as e:
            raise BankError(f"bank: no {e.args[0]!r} array") from None
        for name, a, kind in (("proj", proj, "f"), ("vectors", vecs, "f"), ("gains", gains, "f")):
            if not isinstance(a, np.ndarray) or a.dtype.kind != kind:
                raise BankError(f"bank: {name} is not an array of floats")
        if proj.ndim != 2 or not 1 <= proj.shape[1] <= AXES or proj.shape[0] != dims or dims > MAX_DIMS:
            raise BankError(f"bank: projection of shape {proj.shape}, not {dims} × 1..{AXES}")
        if vecs.dtype != np.float16 or vecs.ndim != 2 or vecs.shape[1] != proj.shape[1]:
            raise BankError(f"bank: vectors of shape {vecs.shape} ({vecs.dtype}), not rows × {proj.shape[1]} float16")
        if not 1 <= len(vecs) <= MAX_ROWS or gains.shape != (len(vecs),):
            raise BankError(f"bank: {len(vecs)} vectors and {gains.shape} gains (1..{MAX_ROWS:,} rows, one gain each)")
        if meta.get("rows") != len(vecs) or meta.get("axes") != proj.shape[1]:
            raise BankError("bank: its settings do not match its arrays (rows, axes)")
        if not (np.isfinite(proj).all() and np.isfinite(vecs).all() and np.isfinite(gains).all()):
            raise BankError("bank: holds a number that is not finite")
        k, temperature = meta.get("k"), meta.get("temperature")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise BankError(f"bank: k {k!r} is not a whole number in 1..{MAX_K}")
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
                or not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE:
            raise BankError(f"bank: temperature {temperature!r} is not a number in {MIN_TEMPERATURE}..{MAX_TEMPERATURE}")
        return cls(proj, vecs, gains.astype(np.float32), k, float(temperature))


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12), dtype=np.float32)


def training_gains(data: Any) -> np.ndarray:
    """Each training question's gain: outcomes on [0, 1] within its source, strong − weak, centred within the source
    (what round 22's bank held)."""
    from tierwise.routers.transfer import _unit_outcomes, centred_within, sources

    src = sources(data)
    strong, weak = np.zeros(len(src)), np.zeros(len(src))
    for s in np.unique(src):
        strong[src == s], weak[src == s] = _unit_outcomes(data.where(src == s, s))
    return centred_within(strong - weak, src)


def fit_bank(encode: Any, data: Any) -> NeighbourBank:
    """The bank of a router whose static token vectors `encode` a list of prompts, fitted on `data`."""
    prompts: Sequence[str] = list(data.prompts)
    return NeighbourBank.fit(np.asarray(encode(prompts), dtype=np.float32), training_gains(data))


class BankTerm:
    """`weight` × (the request's bank gain − the mean bank gain of the window's past requests) / their spread × the
    spread of the window's raw scores; 0 while the window holds fewer than `min_held` requests or the gains do not
    vary. The window (routers/window.py `PlacementWindow`) keeps each request's bank gain beside its raw score."""

    def __init__(self, bank: NeighbourBank, weight: float) -> None:
        self.bank, self.weight = bank, float(weight)

    def term(self, gain: float, past_gains: np.ndarray, past_scores: np.ndarray, min_held: int) -> float:
        if len(past_gains) < min_held:
            return 0.0
        sd = float(past_gains.std())
        if not sd > 0:
            return 0.0
        return self.weight * (gain - float(past_gains.mean())) / sd * float(past_scores.std())



class BankWindow(PlacementWindow):
    """A placement window that keeps each request's bank gain beside its raw score (recomputed from the vector when
    a saved window is restored, `PlacementWindow.restore` adding each request again)."""

    def __init__(self, bank: NeighbourBank, key_share: float = 1.0) -> None:
        super().__init__(key_share=key_share)
        self.bank = bank
        self.gains = np.zeros(self.size)

    def add(self, vector: np.ndarray, score: float, key: str = "", gain: float | None = None) -> int | None:
        slot = super().add(vector, score, key)
        if slot is not None:
            self.gains[slot] = self.bank.lookup(vector) if gain is None else gain
        return slot


class BankedPlacement(RoutePlacement):
    """`RoutePlacement` plus the bank term (`placement_bank`); a route without it runs `RoutePlacement` alone."""

    def __init__(self, encode: Any, term: BankTerm, key_share: float = 1.0, judged: PlacementWindow | None = None
                 ) -> None:
        self.banked = BankWindow(term.bank, key_share)
        super().__init__(encode, self.banked, judged)
        self.bank = term

    def place(self, prompt: Any, score: float, key: str = "") -> float:
        v = self.encode(prompt)
        w, gain = self.banked, self.bank.bank.lookup(v)
        extra = self.bank.term(gain, w.gains[:w.held], w.scores[:w.held], w.k)
        placed = float(score) + w.shift(v) + extra
        w.add(v, score, key, gain)
        return placed if self.judged is None else placed + self.judged.shift(v)
