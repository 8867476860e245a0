"""`boundary.move_back_keep`: how much evidence a type keeps when its posterior sends it back below the target.

A local type moves back (`below-target`) once its posterior says it is credibly under the target. With every verdict
kept, a type sent back by an unlucky run (in the replay, `mmlu/math` at a true acceptance of 0.83, sent back on 12
good of 21) keeps a posterior that the value of information never pays to correct, and holds frontier slots for the
rest of the stream (bench/RESULTS.md, "Issue 21, round 20"). With `move_back_keep: K` the posterior keeps at most K
verdicts' worth (the mean of its evidence unchanged): the type is judged again, and moves local on fresh verdicts if
it is good; a type that really is below the target is confirmed on a few verdicts and stays on the frontier.
"""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from tests.learning.replay_loop import loop_with, recovered_after
from tierwise.learning.boundary import Boundary, BoundarySettings, below_target
from tierwise.learning.loop import LearningLoop

GOOD, BAD = 21, 9  # 30 verdicts: local, and one more rejection puts its credible upper edge under 0.75


def settings(keep: float | None) -> BoundarySettings:
    return BoundarySettings(quality_target=0.75, credible=0.6, discount=1.0, move_back="credible",
                            move_back_keep=keep)


def local_type(b: Boundary) -> None:
    """A local type on GOOD accepted and BAD rejected verdicts, its change-point test at zero."""
    st = b.state("qa")
    st.a, st.b = 1.0 + GOOD, 1.0 + BAD
    st.tier, st.judged, st.total_judged = "local", GOOD + BAD, GOOD + BAD
    assert not below_target(st.a, st.b, b.settings)


def test_the_settings_edge_case_is_one_rejection_from_a_move_back() -> None:
    s = settings(None)
    assert not below_target(1 + GOOD, 1 + BAD, s) and below_target(1 + GOOD, 2 + BAD, s)


@pytest.mark.parametrize("keep", [None, 5.0, 10.0, 100.0])
def test_a_move_back_keeps_at_most_keep_verdicts_worth_with_the_same_mean(keep: float | None) -> None:
    b = Boundary(settings(keep))
    local_type(b)
    b.state("qa").by_key = {"": [float(GOOD), float(BAD)]}  # the gateway's own part (no keys)
    move = b.observe("qa", 0.0)
    assert move is not None and move.to == "frontier" and move.why == "below-target"
    st = b.state("qa")
    ea, eb = st.a - 1.0, st.b - 1.0
    n = GOOD + BAD + 1
    kept = n if keep is None else min(keep, n)
    assert ea + eb == pytest.approx(kept)
    assert ea / (ea + eb) == pytest.approx(GOOD / n)  # the evidence's mean, unchanged
    assert move.mean == pytest.approx((1 + GOOD) / (2 + n), abs=1e-4)  # the record states the evidence it moved on
    parts = sum(v[0] + v[1] for v in st.by_key.values())
    assert parts == pytest.approx(kept)  # the keys' parts shrink with the posterior
    assert st.total_judged == n and st.judged == 0  # its history still says it has moved back


def test_a_drift_alarm_and_a_move_local_are_unchanged() -> None:
    for keep in (None, 5.0):
        b = Boundary(settings(keep))
        rng = random.Random(3)
        for _ in range(300):
            b.observe("qa", 1.0 if rng.random() < 0.9 else 0.0)
        assert b.tier("qa") == "local"
        before = (b.state("qa").a, b.state("qa").b)
        for _ in range(100):
            m = b.observe("qa", 0.0)
            if m is not None:
                break
        assert m is not None and m.why == "drift"
        st = b.state("qa")
        assert st.b - 1.0 > 3 and st.a + st.b < sum(before)  # the test's run, whatever `move_back_keep` says
    fresh = Boundary(settings(5.0))
    for _ in range(10):
        fresh.observe("fresh", 1.0)
    assert fresh.tier("fresh") == "local" and fresh.state("fresh").a == 11.0  # nothing is shrunk on a move local


def test_the_default_keeps_everything_and_bad_values_are_refused() -> None:
    assert BoundarySettings().move_back_keep is None
    with pytest.raises(ValidationError):
        BoundarySettings(move_back_keep=-1.0)


def sent_back(keep: float | None) -> LearningLoop:
    """A loop at the replay's settings whose one type was local and goes back below the target on a rejection."""
    loop = loop_with()
    loop.boundary.settings.move_back_keep = keep
    for i in range(GOOD + BAD):
        loop.plan("qa", f"w{i}")
    local_type(loop.boundary)
    move = loop.verdict("qa", 0.0)
    assert move is not None and move.why == "below-target"
    return loop


def test_a_good_type_sent_back_by_an_unlucky_run_comes_back_only_with_keep() -> None:
    at, judged = recovered_after(sent_back(5.0), 0.9, 3000, seed=5)
    assert at is not None and at < 200 and judged <= 80
    at, _ = recovered_after(sent_back(None), 0.9, 3000, seed=5)
    assert at is None  # every verdict kept: its posterior holds it on the frontier for good


def test_a_type_really_below_the_target_stays_on_the_frontier_and_its_verdicts_stop() -> None:
    at, judged = recovered_after(sent_back(5.0), 0.5, 3000, seed=5)
    assert at is None and judged <= 25
