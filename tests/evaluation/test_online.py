"""The online estimate of a learned route from judged shadow pairs (issue 22, part 2)."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.evaluation.online import JudgedPair, OnlineValidator, estimate, pair_from_shadow


def pairs(n: int, *, signal: float, seed: int = 0, length_signal: bool = False) -> list[JudgedPair]:
    """Half the requests are hard (the weak tier fails them); the score sees hardness with weight `signal`."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.5
    score = signal * hard + rng.normal(0, 1, n)
    chars = np.where(hard, 900, 100) if length_signal else rng.integers(50, 1000, n)
    return [JudgedPair(int(c), float(s), 0.5, 1.0, float(not h)) for c, s, h in zip(chars, score, hard, strict=True)]


def test_a_router_that_sees_difficulty_is_better_than_random_with_confidence():
    ps = pairs(300, signal=3.0)
    est = estimate(ps, min_pairs=50, rounds=200)
    score = np.array([p.score for p in ps])
    want = apgr(routing_curve(score, np.array([p.strong for p in ps]), np.array([p.weak for p in ps])))
    assert est.apgr == pytest.approx(want)
    assert est.low < est.apgr < est.high and est.low > 0.5
    assert est.verdict == "better-than-random" and est.better_than_random is True
    # at its own frontier share it recovers more of the gap than random does at that share
    assert est.strong_share == pytest.approx(float((score >= 0.5).mean()))
    assert est.recovered > est.random_recovered == est.strong_share
    # prompt length carries nothing here: the lead over it is positive with confidence
    assert est.lead_over_length_low > 0
    assert "better than random with confidence" in est.sentence()


def test_a_router_that_ranks_the_wrong_way_is_not_better_than_random():
    est = estimate(pairs(300, signal=-3.0), min_pairs=50, rounds=200)
    assert est.verdict == "not-better-than-random" and est.high < 0.5
    assert "not better than random" in est.sentence()


def test_prompt_length_is_the_baseline_at_the_same_share():
    est = estimate(pairs(300, signal=0.0, length_signal=True), min_pairs=50, rounds=200)
    assert est.length_apgr > 0.7 > est.apgr  # length sees hardness perfectly here (ties cap the curve)
    assert est.lead_over_length_high < 0
    assert est.length_recovered > est.recovered


def test_too_few_or_indistinguishable_pairs_give_no_verdict():
    assert estimate(pairs(10, signal=3.0), min_pairs=50).verdict == "too-few-pairs"
    same = [JudgedPair(10, float(i), 0.5, 1.0, 1.0) for i in range(80)]
    est = estimate(same, min_pairs=50)
    assert est.verdict == "undefined" and est.better_than_random is None


def test_the_validator_keeps_a_window_and_answers_the_guard():
    v = OnlineValidator(window=60, min_pairs=40, rounds=100)
    assert v.check() is None
    for p in pairs(60, signal=4.0):
        v.add(p)
    demote, why = v.check()
    assert not demote and "better than random" in why
    for p in pairs(60, signal=-4.0, seed=1):  # the window turns over: only the recent pairs count
        v.add(p)
    demote, why = v.check()
    assert demote and "not better than random" in why and v.latest.n == 60
    with pytest.raises(ValueError):
        OnlineValidator(window=10, min_pairs=20)


def test_shadow_records_become_pairs_only_when_judged_on_both_sides():
    base = {"prompt": "abc", "score": 0.7, "threshold": 0.5, "routed": "strong"}
    judged = {**base, "strong": {"outcome": 1.0}, "weak": {"outcome": 0.0, "ok": True}}
    assert pair_from_shadow(judged) == JudgedPair(3, 0.7, 0.5, 1.0, 0.0, "", "abc")  # the prompt: for `learned.adapt`
    assert pair_from_shadow({**judged, "weak": {"outcome": None}}) is None
    assert pair_from_shadow({**judged, "weak": {"outcome": 0.0, "ok": False}}) is None  # the shadow call failed
    assert pair_from_shadow({**judged, "score": float("nan")}) is None
    assert pair_from_shadow({**judged, "score": "x"}) is None
    assert pair_from_shadow({"strong": "?", "weak": None}) is None
