"""RouteLLM metrics against hand-computed curves."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.evaluation.baselines import prompt_length_scores, random_scores
from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.evaluation.metrics import (
    Prices,
    apgr,
    cost_per_1k,
    cpt,
    oracle_scores,
    routing_curve,
    summarize,
    thresholds_for,
)


def outcomes(n: int = 2000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.random(n) < 0.8).astype(float), (rng.random(n) < 0.6).astype(float)


def test_hand_computed_curve():
    # 10 queries, scores 0..9; strong right on all, weak right on the five lowest-scored only.
    scores = np.arange(10, dtype=float)
    strong = np.ones(10)
    weak = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=float)
    c = routing_curve(scores, strong, weak)
    # Edges are 0, 0.9, 1.8, ..., 9; `>=` sends 10, 9, ..., 1 queries; the top edge uses `>`: none.
    assert c.strong_pct.tolist() == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert c.quality.tolist() == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9, 1, 1, 1, 1, 1, 1])
    # AUC by trapezoid = 0.5*0.5 + (area of the ramp 0.5→1 over 0..0.5) + 1*0.5
    area = 0.5 * (0.5 + 1.0) / 2 + 0.5
    assert apgr(c) == pytest.approx((area - 0.5) / (1.0 - 0.5))
    assert cpt(c, 0.5) == pytest.approx(25.0)
    assert cpt(c, 0.8) == pytest.approx(40.0)


def test_thresholds_match_pandas_qcut_edges():
    s = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    assert thresholds_for(s).tolist() == pytest.approx(np.quantile(s, np.linspace(0, 1, 11)).tolist())


def test_random_is_about_half_oracle_above_one_reversed_below_zero():
    strong, weak = outcomes()
    rand = np.mean([apgr(routing_curve(np.random.default_rng(100 + s).random(len(strong)), strong, weak))
                    for s in range(5)])
    assert rand == pytest.approx(0.5, abs=0.05)
    assert apgr(routing_curve(oracle_scores(strong, weak), strong, weak)) > 1.0
    assert apgr(routing_curve(-oracle_scores(strong, weak), strong, weak)) < 0.0


def test_costs_follow_the_share():
    p = Prices(strong_per_m=10.0, weak_per_m=0.0, input_tokens=50, output_tokens=50)
    assert cost_per_1k(0.0, p) == 0.0
    assert cost_per_1k(1.0, p) == pytest.approx(1.0)  # 1000 queries × 100 tokens × $10/M
    assert cost_per_1k(0.5, Prices(10.0, 2.0, 50, 50), cascade=True) == pytest.approx(0.5 + 0.2)
    with pytest.raises(ValueError):
        cost_per_1k(1.5, p)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="same length"):
        routing_curve(np.zeros(3), np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        routing_curve(np.array([np.nan, 1.0]), np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match="undefined"):
        apgr(routing_curve(np.arange(4.0), np.ones(4), np.ones(4)))


def test_baselines():
    d = OutcomeDataset("t", ["a", "bbb", "cc"], np.ones(3), np.zeros(3), ["1", "2", "3"])
    assert prompt_length_scores(d).tolist() == [1, 3, 2]
    assert random_scores(d, 3).tolist() == random_scores(d, 3).tolist()
    s = summarize("len", prompt_length_scores(d), d.strong, d.weak)
    assert s.row()["router"] == "len" and 0 <= s.cpt50 <= 100
