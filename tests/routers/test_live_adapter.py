"""routers/adapt.py: the transferred router adapted on judged pairs (issue 22, session 25)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tierwise.routers.adapt import LiveAdapter

BENCH = Path(__file__).resolve().parents[2] / "bench" / "routers_adapt.py"


def traffic(n: int, seed: int, unique: bool = False) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Two kinds of request: integrals (the strong tier right, the local one wrong) and capitals (both right).
    The router, trained elsewhere, ranks them the wrong way round."""
    rng = np.random.default_rng(seed)
    kind = rng.random(n) < 0.5
    # unique: a case number in every prompt, so no two predictions tie (the ridge then fits its own pairs
    # almost exactly: see the note in routers/adapt.py)
    ids = [f", case {i}" if unique else "" for i in rng.permutation(900_000)[:n] + 100_000]
    prompts = [f"Compute the integral of x^{rng.integers(2, 9)} times sin({rng.integers(1, 99)} x) dx{i}" if k
               else f"What is the capital of country number {rng.integers(1, 999)} in the atlas{i}?"
               for k, i in zip(kind, ids, strict=True)]
    strong = np.ones(n)
    weak = np.where(kind, 0.0, 1.0)
    prior = np.where(kind, 0.2, 0.8) + rng.normal(0, 0.05, n)
    return prompts, prior, strong, weak


def test_the_router_decides_alone_until_enough_pairs_are_judged() -> None:
    prompts, prior, strong, weak = traffic(60, 0)
    a = LiveAdapter(min_pairs=50)
    for i in range(49):
        a.add(prompts[i], prior[i], strong[i], weak[i])
    assert a.refit() is False
    assert a.score(prompts[55], 0.37) == 0.37


def test_judged_pairs_give_the_ranking_the_traffic_shows() -> None:
    """The router, trained elsewhere, cannot tell the two kinds apart (its scores are noise); the live pairs can."""
    prompts, _, strong, weak = traffic(800, 1)
    prior = np.random.default_rng(9).random(800)
    a = LiveAdapter()
    for i in range(500):
        a.add(prompts[i], prior[i], strong[i], weak[i])
    assert a.refit() and a.n_fitted == 500 and a.live_weight == pytest.approx(500 / 800)
    rest = range(500, 800)
    adapted = a.score_many([prompts[i] for i in rest], prior[500:])
    gain = (strong - weak)[500:]
    def auc(s: np.ndarray) -> float:  # how often an integral (gain 1) ranks above a capital (gain 0)
        return float((s[gain == 1][:, None] > s[gain == 0][None, :]).mean())

    assert 0.4 < auc(prior[500:]) < 0.6
    assert auc(adapted) > 0.7  # 0.78: the live side is ranked among in-sample fits (routers/adapt.py)


def test_the_window_is_bounded_and_a_restored_adapter_scores_the_same() -> None:
    prompts, prior, strong, weak = traffic(300, 2)
    a = LiveAdapter(window=100, min_pairs=20)
    for i in range(250):
        a.add(prompts[i], prior[i], strong[i], weak[i])
    a.add("a failed score", float("nan"), 1.0, 0.0)
    assert len(a.pairs) == 100 and a.pairs[0][0] == prompts[150]
    a.refit()
    b = LiveAdapter(window=100, min_pairs=20)
    b.restore(a.snapshot())
    rest = [prompts[i] for i in range(250, 300)]
    assert np.array_equal(a.score_many(rest, prior[250:]), b.score_many(rest, prior[250:]))


def test_the_adapter_computes_what_the_measured_simulation_did() -> None:
    """bench/routers_adapt.py `tfidf:1:300` is the method of bench/RESULTS.md's figures."""
    spec = importlib.util.spec_from_file_location("routers_adapt", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    prompts, prior, strong, weak = traffic(400, 3, unique=True)
    rng = np.random.default_rng(4)
    weak = np.where(rng.random(400) < 0.2, 1 - weak, weak)  # noisy verdicts
    live, rest = np.arange(200), np.arange(200, 400)
    fold = {"prior": prior, "lsa": np.eye(400, 8, dtype=np.float32), "strong": strong, "weak": weak,
            "prompts": prompts}
    expected = bench.adapt("tfidf:1:300", live, rest, fold)
    a = LiveAdapter()
    for i in live:
        a.add(prompts[i], prior[i], strong[i], weak[i])
    a.refit()
    assert np.allclose(a.score_many([prompts[i] for i in rest], prior[rest]), expected, atol=1e-6)
