"""What a router's training prompts looked like, and how far new prompts are from them.

A `TrainingProfile` is saved with the router. For each space it describes (`lsa`: a small LSA of
hashed TF-IDF fitted on the training prompts, the words a router reads; `embedding`: the
router's own sentence embedding, when it has one) it keeps a bank of up to `BANK` training
vectors and the distribution of each training prompt's distance to its k-th nearest other
training prompt (cosine distance, k = `K`). A new prompt's distance to its k-th nearest bank
vector, read against that distribution, gives its *percentile*: about uniform on [0, 1] for
prompts like the training ones, near 1 for prompts unlike any of them.

`ShiftWindow` keeps the last `window` requests' percentiles and reports the share beyond the
training's `far_quantile` (expected: 1 − far_quantile) and a verdict with hysteresis:
off-distribution once the share exceeds `demote_above`, back once it falls below `promote_below`.
Per request: one sparse gather, one small matrix-vector product, a partial sort (well under
0.1 ms; measured in bench/RESULTS.md).

The profile also keeps an 8-byte BLAKE2b digest of each training prompt (not the prompts), so a
report can say when it scores a router on the queries it was trained on (`seen_count`).
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BANK = 2000  # training vectors kept per space
K = 10  # the k of the k-th-nearest-neighbour distance
LSA_DIMS = 64
QUANTILES = np.linspace(0.0, 1.0, 201)


def prompt_digests(prompts: Sequence[str]) -> np.ndarray:
    """An 8-byte BLAKE2b digest of each prompt (its stripped text), as uint64."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(p.strip().encode("utf-8", "surrogatepass"), digest_size=8)
                                       .digest(), "little") for p in prompts), dtype=np.uint64, count=len(prompts))


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.asarray(x / np.where(n == 0, 1.0, n), dtype=np.float32)


class SpaceProfile:
    """Bank and kNN-distance quantiles of the training prompts in one vector space."""

    def __init__(self, bank: np.ndarray, quantiles: np.ndarray, k: int) -> None:
        self.bank = bank.astype(np.float32)
        self.quantiles = np.asarray(quantiles, dtype=float)
        self.k = k

    @classmethod
    def fit(cls, vectors: np.ndarray, seed: int = 0) -> SpaceProfile:
        raw = np.asarray(vectors, dtype=np.float32)
        rng = np.random.default_rng(seed)
        keep = rng.permutation(len(raw))[:BANK] if len(raw) > BANK else np.arange(len(raw))
        raw = raw[keep]
        bank = _unit(raw).astype(np.float16).astype(np.float32)  # saved as float16: profile what a restore reads
        k = max(1, min(K, len(bank) - 1))
        # Reference: each bank prompt's distance to its k-th nearest *other* bank prompt, exactly what a new
        # prompt gets against the whole bank (so a prompt like the training ones lands uniformly in it).
        d = np.empty(len(bank))
        for s in range(0, len(bank), 512):
            sims = raw[s:s + 512] @ bank.T
            rows = np.arange(sims.shape[0])
            sims[rows, s + rows] = -np.inf
            d[s:s + 512] = 1.0 - np.partition(sims, -k, axis=1)[:, -k]
        return cls(bank, np.quantile(d, QUANTILES), k)

    def distances(self, q: np.ndarray) -> np.ndarray:
        """1 − similarity to the k-th nearest bank vector. Queries are not normalised: an LSA projection
        keeps only the part of a prompt the training vocabulary spans, so a prompt in other words gets a
        short vector, hence a large distance (embeddings are unit vectors already)."""
        q = np.atleast_2d(np.asarray(q, dtype=np.float32))
        k = min(self.k, len(self.bank))
        out = np.empty(len(q))
        for s in range(0, len(q), 512):
            sims = q[s:s + 512] @ self.bank.T
            out[s:s + 512] = 1.0 - np.partition(sims, -k, axis=1)[:, -k]
        return out

    def percentiles(self, d: np.ndarray) -> np.ndarray:
        """Share of training prompts closer to their neighbours than `d` (0 … 1)."""
        return np.interp(np.asarray(d, dtype=float), self.quantiles, QUANTILES)


class TrainingProfile:
    """Per-space profiles; the `lsa` space is always there, `embedding` when the router embeds."""

    def __init__(self, lsa: Any, spaces: dict[str, SpaceProfile], n_train: int,
                 seen: np.ndarray | None = None) -> None:
        self.lsa = lsa  # a fitted dense.LsaVectors
        self.spaces = spaces
        self.n_train = n_train
        self.seen = seen  # sorted digests of the training prompts (None: saved before they were kept)

    @classmethod
    def fit(cls, prompts: Sequence[str], embedding: Any = None) -> TrainingProfile:
        from tierwise.routers.dense import LsaVectors

        # The LSA is fitted on one half of the prompts and the bank drawn from the other, so bank prompts
        # are as new to the projection as live prompts are (fitted prompts project longer than unseen ones).
        order = np.random.default_rng(0).permutation(len(prompts))
        half = order[: len(order) // 2] if len(prompts) >= 40 else order
        rest = order[len(order) // 2:] if len(prompts) >= 40 else order
        lsa = LsaVectors(dims=LSA_DIMS).fit([prompts[i] for i in half])
        lsa.components = lsa.components.astype(np.float16).astype(np.float32)
        profile = cls(lsa, {}, len(prompts), np.unique(prompt_digests(prompts)))
        profile.spaces["lsa"] = SpaceProfile.fit(profile.lsa_raw([prompts[i] for i in rest]))
        if embedding is not None:
            profile.spaces["embedding"] = SpaceProfile.fit(embedding.encode(prompts))
        return profile

    def lsa_raw(self, prompts: Sequence[str]) -> np.ndarray:
        """LSA projections of unit TF-IDF rows, not re-normalised (see `SpaceProfile.distances`)."""
        return np.asarray(self.lsa.tfidf.matrix(prompts) @ self.lsa.components, dtype=np.float32)

    def lsa_raw_one(self, prompt: str) -> np.ndarray:
        idx, val = self.lsa.tfidf.row(prompt)
        return np.asarray(val @ self.lsa.components[idx], dtype=np.float32)

    def vectors(self, space: str, prompts: Sequence[str], embedding: Any = None) -> np.ndarray:
        if space == "lsa":
            return self.lsa_raw(prompts)
        if embedding is None:
            raise ValueError("the embedding space needs the router's embedding vectors")
        return embedding.encode(prompts)

    def seen_count(self, prompts: Sequence[str]) -> int | None:
        """How many of `prompts` are training prompts (None: the profile does not know)."""
        if self.seen is None:
            return None
        return int(np.isin(prompt_digests(prompts), self.seen).sum())

    def percentile_one(self, prompt: str, embedding: Any = None) -> dict[str, float]:
        """Per-space percentile of one prompt (the request path)."""
        out = {}
        for name, sp in self.spaces.items():
            if name == "lsa":
                v = self.lsa_raw_one(prompt)
            elif embedding is not None:
                v = embedding.encode_one(prompt)
            else:
                continue
            out[name] = float(sp.percentiles(sp.distances(v))[0])
        return out

    def percentiles(self, prompts: Sequence[str], embedding: Any = None) -> dict[str, np.ndarray]:
        """Per-space percentiles of a batch (pre-deployment reports)."""
        out = {}
        for name, sp in self.spaces.items():
            if name == "embedding" and embedding is None:
                continue
            out[name] = sp.percentiles(sp.distances(self.vectors(name, prompts, embedding)))
        return out

    # --- persistence (inside the router's own .json/.npz) ----------------------------------
    def meta(self) -> dict[str, Any]:
        return {"n_train": self.n_train, "lsa": self.lsa.meta(), "spaces": {n: {"k": s.k} for n, s in self.spaces.items()}}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"lsa/{k}": v for k, v in self.lsa.arrays().items()}
        for n, s in self.spaces.items():
            out[f"{n}/bank"] = s.bank.astype(np.float16)
            out[f"{n}/quantiles"] = s.quantiles
        if self.seen is not None:
            out["seen"] = self.seen
        return out

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> TrainingProfile:
        from tierwise.routers.dense import LsaVectors

        lsa = LsaVectors.restore(meta["lsa"], {k[4:]: v for k, v in arrays.items() if k.startswith("lsa/")})
        spaces = {n: SpaceProfile(arrays[f"{n}/bank"].astype(np.float32), arrays[f"{n}/quantiles"], int(m["k"]))
                  for n, m in meta["spaces"].items()}
        return cls(lsa, spaces, int(meta["n_train"]), arrays.get("seen"))


def router_embedding(router: Any) -> Any:
    """The router's sentence-embedding vectors (its own or a member's), or None."""
    from tierwise.routers.dense import EmbeddingVectors

    # an options router (`transfer`) keeps them on its base
    for r in [router, *getattr(router, "members", []), *([router.base] if hasattr(router, "base") else [])]:
        v = getattr(r, "vectors", None)
        if isinstance(v, EmbeddingVectors):
            return v
    return None


def attach_profile(router: Any, prompts: Sequence[str]) -> Any:
    """Describe the router's training prompts on it (saved with it by `save_router`)."""
    router.profile = TrainingProfile.fit(prompts, router_embedding(router))
    return router


@dataclass
class ShiftVerdict:
    share_far: float  # share of the window beyond the training's far quantile
    mean_percentile: float
    n: int
    off: bool  # off-distribution (with hysteresis)
    changed: bool  # the verdict flipped on this request


class ShiftWindow:
    """The last `window` requests' percentiles (one space), and an off-distribution verdict with hysteresis.

    The window is shared by every client of the route, and one client choosing far prompts (any text unlike
    the training prompts) demoted the route for all of them: every client's requests then went to the
    fallback (the frontier by default: a cost attack), for as long as the client kept a sixth of the traffic
    far. So each percentile counts under the key name that sent it, and:
    - one key holds at most `key_cap` of the window (`key_share` of it, never fewer than `min_requests`): a
      key at its cap replaces its own oldest percentile, so a flood does not push the others out;
    - no one key decides the verdict: the far share it is taken on is the lowest of the whole window's and of
      the window's without each named key in turn (a key alone in the window decides, as a lone client must).
    Requests without a key name (a gateway without keys) share one entry, neither capped nor left out, as in
    routers/refit.py."""

    def __init__(self, *, window: int = 200, min_requests: int = 30, far_quantile: float = 0.95,
                 demote_above: float = 0.25, promote_below: float = 0.15, key_share: float = 1.0) -> None:
        if not 0 < promote_below <= demote_above < 1 or min_requests > window or min_requests < 1:
            raise ValueError("need 0 < promote_below ≤ demote_above < 1 and 1 ≤ min_requests ≤ window")
        if not 0.0 < key_share <= 1.0:
            raise ValueError("refit_key_share must be above 0 and at most 1")
        self.window = window
        self.min_requests = min_requests
        self.far_quantile = far_quantile
        self.demote_above = demote_above
        self.promote_below = promote_below
        self.key_cap = max(min_requests, math.ceil(window * key_share))
        self._p: deque[float] = deque()
        self._k: deque[str] = deque()  # the key name of each percentile
        self._held: dict[str, int] = {}  # key name -> percentiles it holds
        self._far_by: dict[str, int] = {}  # key name -> far percentiles it holds
        self._far = 0
        self.off = False

    def percentiles(self) -> list[float]:
        return list(self._p)

    def keys(self) -> list[str]:
        return list(self._k)

    def restore(self, percentiles: list[float], off: bool, keys: list[str] | None = None) -> None:
        """Start again from saved percentiles (oldest first; each added again under its key, so every key's cap
        holds) and the saved verdict (the hysteresis's state)."""
        self._p.clear()
        self._k.clear()
        self._held.clear()
        self._far_by.clear()
        self._far = 0
        for p, k in zip(percentiles, keys if keys is not None else [""] * len(percentiles), strict=True):
            self._keep(p, k)
        self.off = off

    def _keep(self, percentile: float, key: str) -> None:
        fq = self.far_quantile
        k: str | None = None
        if key and self._held.get(key, 0) >= self.key_cap:  # at its cap: the key's newest replaces its own oldest
            i = self._k.index(key)
            old, k = self._p[i], key
            del self._p[i], self._k[i]
        elif len(self._p) >= self.window:  # the window's oldest goes, whoever sent it
            old, k = self._p.popleft(), self._k.popleft()
        if k is not None:
            if self._held[k] == 1:
                del self._held[k]
            else:
                self._held[k] -= 1
            if old > fq:
                self._far -= 1
                if self._far_by[k] == 1:
                    del self._far_by[k]
                else:
                    self._far_by[k] -= 1
        self._p.append(percentile)
        self._k.append(key)
        self._held[key] = self._held.get(key, 0) + 1
        if percentile > fq:
            self._far += 1
            self._far_by[key] = self._far_by.get(key, 0) + 1

    def _share_of_many(self, share: float, n: int) -> float:
        """`share`, or lower: the far share without any one named key that holds far percentiles (so no one key
        decides while the window holds others' requests)."""
        for k, far in self._far_by.items():
            rest = n - self._held.get(k, 0)
            if k and far and rest > 0:
                share = min(share, (self._far - far) / rest)
        return share

    def add(self, percentile: float, key: str = "") -> ShiftVerdict:
        self._keep(percentile, key)
        n = len(self._p)
        share = self._far / n
        before = self.off
        if n >= self.min_requests:
            if share > self.promote_below and len(self._held) > 1:  # (below it, every share agrees: no need)
                share = self._share_of_many(share, n)
            if not self.off and share > self.demote_above:
                self.off = True
            elif self.off and share < self.promote_below:
                self.off = False
        return ShiftVerdict(share, float(np.mean(self._p)), n, self.off, self.off != before)
