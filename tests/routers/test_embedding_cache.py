"""The on-disk embedding cache embeds each distinct prompt once (across calls, folds and processes),
stays within its bound, and `ensemble-embedding` embeds each prompt once for both members."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from tierwise.evaluation.loaders import load_jsonl
from tierwise.routers import load_router, make_router, save_router
from tierwise.routers.embedding_cache import EmbeddingCache
from tierwise.routers.features import Embedder

FIXTURE = Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl"


def fake_vector(text: str) -> np.ndarray:
    v = np.random.default_rng(zlib.crc32(text.encode())).normal(size=384).astype(np.float32)
    if "Prove" in text or "Derive" in text:
        v[:8] += 4.0  # the hard prompts share a direction, as real embeddings of them would
    return v / np.linalg.norm(v)


class CountingEmbedder:
    model_name = "fake-model"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen.extend(texts)
        return np.stack([fake_vector(t) for t in texts])


@pytest.fixture
def counted(monkeypatch):
    """Every text the real embedding model would have embedded, in order (the model is faked)."""
    seen: list[str] = []

    def encode(self, texts, batch_size=64):
        seen.extend(texts)
        return np.stack([fake_vector(t) for t in texts])

    monkeypatch.setattr(Embedder, "encode", encode)
    return seen


def test_each_distinct_text_is_embedded_once_and_kept_on_disk(tmp_path):
    emb = CountingEmbedder()
    c = EmbeddingCache(tmp_path / "cache")
    x = c.encode(["a", "b", "a", "c"], emb)
    assert emb.seen == ["a", "b", "c"] and x.shape == (4, 384)
    np.testing.assert_array_equal(x[0], x[2])
    c.encode(["b", "c", "d"], emb)
    assert emb.seen == ["a", "b", "c", "d"]
    c.close()
    again = EmbeddingCache(tmp_path / "cache")  # a new process: read from disk, nothing embedded
    y = again.encode(["c", "a"], emb)
    assert emb.seen == ["a", "b", "c", "d"] and again.hits == 2 and again.misses == 0
    np.testing.assert_allclose(y[1], x[0])
    other = CountingEmbedder()
    other.model_name = "another-model"  # keyed by model as well as text
    again.encode(["a"], other)
    assert other.seen == ["a"]
    assert b"fake-model" not in (tmp_path / "cache" / "embeddings.sqlite3").read_bytes()  # hashes only


def test_the_cache_is_bounded(tmp_path):
    emb = CountingEmbedder()
    c = EmbeddingCache(tmp_path, max_entries=5)
    for i in range(12):
        c.encode([f"text {i}"], emb)
    (count,) = c._conn().execute("SELECT COUNT(*) FROM emb").fetchone()
    assert count == 5
    fresh = EmbeddingCache(tmp_path, max_entries=5)
    fresh.encode(["text 11", "text 0"], emb)  # the newest is kept, the oldest was dropped
    assert emb.seen[-1] == "text 0" and emb.seen.count("text 11") == 1


def test_cross_validation_embeds_each_prompt_once_with_the_cache(tmp_path, counted):
    from tierwise.evaluation.replay import evaluate

    data = load_jsonl(FIXTURE)
    evaluate(data, ["knn-embedding", "mf-embedding"], folds=3, embedding_cache=EmbeddingCache(tmp_path))
    assert sorted(counted) == sorted(set(data.prompts))


def test_ensemble_embedding_embeds_each_prompt_once(tmp_path, counted):
    data = load_jsonl(FIXTURE)
    r = make_router("ensemble-embedding").fit(data)
    r.score(data)
    assert sorted(counted) == sorted(set(data.prompts))
    restored = load_router(save_router(r, tmp_path / "ens"))
    counted.clear()
    restored.score_text(data.prompts[0])
    assert counted == [data.prompts[0]]  # one embedding per request, shared by the kNN and MF members
