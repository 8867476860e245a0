"""Dense prompt vectors for similarity and factorisation routers.

Two sources: `lsa` (hashed TF-IDF projected by a truncated SVD learnt on the training prompts;
numpy-only at request time) and `embedding` (a local sentence-transformers model; the
optional `embeddings` extra). Vectors are unit length, so a dot product is a cosine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tierwise.routers.features import DEFAULT_EMBEDDING_MODEL, Embedder, HashingTfidf


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


class LsaVectors:
    kind = "lsa"

    def __init__(self, dims: int = 128, n_buckets: int = 1 << 15) -> None:
        self.dims = dims
        self.tfidf = HashingTfidf(n_buckets)
        self.components = np.zeros((n_buckets, dims), dtype=np.float32)

    def fit(self, texts: Sequence[str]) -> LsaVectors:
        from sklearn.decomposition import TruncatedSVD

        self.tfidf.fit(texts)
        x = self.tfidf.matrix(texts)
        k = max(1, min(self.dims, x.shape[0] - 1, x.shape[1] - 1))
        svd = TruncatedSVD(n_components=k, random_state=0).fit(x)
        comp = np.zeros((self.tfidf.n_buckets, self.dims), dtype=np.float32)
        comp[:, :k] = svd.components_.T
        self.components = comp
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(np.asarray(self.tfidf.matrix(texts) @ self.components, dtype=np.float32))

    def encode_one(self, text: str) -> np.ndarray:
        idx, val = self.tfidf.row(text)
        return _unit(val @ self.components[idx])

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "dims": self.dims, "n_buckets": self.tfidf.n_buckets}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"lsa_idf": self.tfidf.idf, "lsa_components": self.components.astype(np.float16)}

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> LsaVectors:
        v = cls(int(meta["dims"]), int(meta["n_buckets"]))
        v.tfidf.idf = arrays["lsa_idf"].astype(np.float32)
        v.components = arrays["lsa_components"].astype(np.float32)
        return v


class EmbeddingVectors:
    """Sentence embeddings. `cache` is an `EmbeddingCache` (on disk, content-keyed) or a plain dict
    (prompt → vector, as benchmarks pass); without one, batches are still embedded once per call.
    `encode_one` keeps the last prompt's vector, so members of an ensemble sharing this object
    embed a request once."""

    kind = "embedding"

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, cache: Any = None) -> None:
        self.embedder = Embedder(model)
        self.cache = cache
        self._last: tuple[str, np.ndarray] | None = None

    def fit(self, texts: Sequence[str]) -> EmbeddingVectors:
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from tierwise.routers.embedding_cache import EmbeddingCache

        if isinstance(self.cache, EmbeddingCache):
            return self.cache.encode(texts, self.embedder) if texts else np.zeros((0, 384), np.float32)
        if self.cache is None:
            return self.embedder.encode(texts)
        if not texts:
            return np.zeros((0, 384), np.float32)
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:  # a dict cache fills up as it goes: each prompt is embedded once
            self.cache.update(zip(missing, self.embedder.encode(missing), strict=True))
        return np.stack([self.cache[t] for t in texts])

    def encode_one(self, text: str) -> np.ndarray:
        if self._last is not None and self._last[0] == text:
            return self._last[1]
        if isinstance(self.cache, dict) and text in self.cache:
            v = self.cache[text]
        else:
            v = self.embedder.encode([text])[0]
        self._last = (text, v)
        return v

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.embedder.model_name}

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    @classmethod
    def restore(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> EmbeddingVectors:
        return cls(str(meta.get("model", DEFAULT_EMBEDDING_MODEL)))


Vectors = LsaVectors | EmbeddingVectors


def make_vectors(kind: str, cache: Any = None) -> Vectors:
    if kind == "lsa":
        return LsaVectors()
    if kind == "embedding":
        return EmbeddingVectors(cache=cache)
    raise ValueError(f"unknown vector kind {kind!r}; choose lsa or embedding")


def restore_vectors(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Vectors:
    if meta["kind"] == "lsa":
        return LsaVectors.restore(meta, arrays)
    if meta["kind"] == "embedding":
        return EmbeddingVectors.restore(meta, arrays)
    raise ValueError(f"unknown vector kind {meta['kind']!r}")
