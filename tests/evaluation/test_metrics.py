"""RouteLLM metrics against hand-computed curves."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.evaluation.baselines import prompt_length_scores, random_scores
from tierwise.evaluation.dataset import OutcomeDataset
from tierwise.evaluation.metrics import (
    Prices,
    _apgr_rows,
    apgr,
    bootstrap_apgr,
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


def noisy_router(strong: np.ndarray, weak: np.ndarray, noise: float, seed: int = 0) -> np.ndarray:
    """Scores that carry the gain under Gaussian noise: a router of a chosen skill."""
    return oracle_scores(strong, weak) + np.random.default_rng(seed).normal(0.0, noise, len(strong))


def test_bootstrap_rows_are_the_same_apgr_as_one_curve():
    strong, weak = outcomes(300)
    scores = noisy_router(strong, weak, 1.0)
    ix = np.random.default_rng(5).integers(0, 300, size=(7, 300))
    rows = _apgr_rows(scores[ix], strong[ix], weak[ix], 10)
    one_by_one = [apgr(routing_curve(scores[i], strong[i], weak[i])) for i in ix]
    assert rows.tolist() == pytest.approx(one_by_one, rel=1e-12)


def test_bootstrap_interval_holds_the_estimate_and_separates_routers():
    strong, weak = outcomes(2000)
    good = noisy_router(strong, weak, 0.8)
    point = apgr(routing_curve(good, strong, weak))
    ci = bootstrap_apgr(good, strong, weak, rounds=400)
    assert ci.low < point < ci.high and ci.level == 0.95
    rand = bootstrap_apgr(np.random.default_rng(3).random(2000), strong, weak, rounds=400)
    assert rand.low < 0.5 < rand.high
    assert rand.high < ci.low  # a router this much better than random is told apart on 2,000 queries
    assert bootstrap_apgr(good, strong, weak, rounds=400) == ci  # seeded: the same interval again


def test_bootstrap_interval_narrows_with_more_queries():
    widths = []
    for n in (300, 6000):
        strong, weak = outcomes(n, seed=2)
        ci = bootstrap_apgr(noisy_router(strong, weak, 0.8), strong, weak, rounds=300)
        widths.append(ci.high - ci.low)
    assert widths[1] < widths[0] / 2  # about 1/sqrt(20) as wide


def test_paired_difference_of_routers():
    strong, weak = outcomes(2000)
    better, worse = noisy_router(strong, weak, 0.5), noisy_router(strong, weak, 2.0, seed=1)
    diff = bootstrap_apgr(better, strong, weak, against=worse, rounds=400)
    assert diff.low > 0.0
    assert bootstrap_apgr(worse, strong, weak, against=better, rounds=400).high < 0.0
    same = bootstrap_apgr(better, strong, weak, against=better, rounds=50)
    assert (same.low, same.high) == (0.0, 0.0)


def test_bootstrap_bad_input_and_undefined_resamples():
    strong, weak = outcomes(100)
    with pytest.raises(ValueError, match="rounds"):
        bootstrap_apgr(np.zeros(100), strong, weak, rounds=0)
    with pytest.raises(ValueError, match="same length"):
        bootstrap_apgr(np.zeros(100), strong, weak, against=np.zeros(3))
    # The models differ on one query out of 40: most resamples miss it and APGR is undefined there.
    strong1, weak1 = np.ones(40), np.ones(40)
    weak1[0] = 0.0
    with pytest.raises(ValueError, match="undefined"):
        bootstrap_apgr(np.arange(40.0), strong1, weak1, rounds=200)
    s = summarize("r", np.arange(40.0), strong1, weak1, ci_rounds=200)
    assert s.apgr_ci is None and "apgr_ci_low" not in s.row()
    s = summarize("r", noisy_router(strong, weak, 0.8), strong, weak, ci_rounds=100)
    assert s.row()["apgr_ci_low"] < s.row()["apgr"] < s.row()["apgr_ci_high"]
