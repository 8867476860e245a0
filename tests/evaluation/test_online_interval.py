"""The online APGR interval on few judged pairs (session 26's leftovers). APGR is a ratio over the tiers' judged
gap, and a percentile bootstrap of it on 50 pairs gave intervals 2-10 wide (resamples where the gap nearly
vanishes): a low end under 0.5 read "not better than random" and let the route guard demote a route on evidence
that told nothing. Now the interval is clipped to what any router's APGR can be on those pairs (anti-oracle to
oracle), and one still wider than `MAX_WIDTH` is "too few pairs": no verdict, no demotion."""

from __future__ import annotations

import numpy as np

from tierwise.evaluation.metrics import apgr, routing_curve
from tierwise.evaluation.online import MAX_WIDTH, JudgedPair, estimate


def pairs_of(n: int, seed: int) -> list[JudgedPair]:
    """A router that leads: judged strong right 85% of the time, weak 65%, the score half the gain plus noise."""
    rng = np.random.default_rng(seed)
    strong = (rng.random(n) < 0.85).astype(float)
    weak = (rng.random(n) < 0.65).astype(float)
    score = (strong - weak) * 0.5 + rng.random(n)
    return [JudgedPair(100, float(a), 0.5, float(b), float(c)) for a, b, c in zip(score, strong, weak, strict=True)]


def test_no_verdict_is_taken_on_an_interval_wider_than_the_range_it_can_tell():
    verdicts = []
    for seed in range(20):
        pairs = pairs_of(50, seed)
        e = estimate(pairs, min_pairs=50, seed=seed)
        verdicts.append(e.verdict)
        if e.low is None:
            continue
        strong = np.array([p.strong for p in pairs])
        weak = np.array([p.weak for p in pairs])
        gain = strong - weak
        assert apgr(routing_curve(-gain, strong, weak)) - 1e-9 <= e.low <= e.high \
            <= apgr(routing_curve(gain, strong, weak)) + 1e-9, (seed, e)
        if e.verdict in ("better-than-random", "not-better-than-random"):
            assert e.high - e.low <= MAX_WIDTH, (seed, e)
        else:
            assert e.verdict == "too-few-pairs" and "too few judged pairs to tell" in e.sentence(), e
            assert e.better_than_random is None  # the guard does not demote on it
    assert "not-better-than-random" not in verdicts, verdicts  # the router leads on every seed


def test_enough_pairs_still_give_a_verdict():
    e = estimate(pairs_of(500, 1), min_pairs=50)
    assert e.verdict == "better-than-random" and e.high - e.low <= MAX_WIDTH, e
