"""`within.near: rank`: a task type whose own verdicts leave it near the quality target is split by rank — the share
of its requests its posterior puts below the target goes to the frontier, the ones its request estimate ranks lowest
— instead of each request's estimate against the target (which serves a near-target type almost wholly on one side).
Under `held` only types the boundary holds on the frontier are split. Scripted streams; the estimate here is the type's acceptance moved by the prompt signal (`within`)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from tierwise.learning.boundary import TaskState, beta_cdf
from tierwise.learning.loop import LearningLoop, LoopSettings
from tierwise.learning.near_rank import NearRank
from tierwise.learning.within import WithinSettings

SHORT, LONG = math.log1p(40), math.log1p(2000)


def make_loop(near: str, **within: object) -> LearningLoop:
    return LearningLoop("r", LoopSettings.model_validate({
        # the scripted stream gives a verdict on every request; a change-point test that never fires
        "boundary": {"quality_target": 0.75, "credible": 0.6, "discount": 1.0, "drift_credible": 0.9999999999},
        "within": {"enabled": True, "near": near, **within}}))


def near_target_local(loop: LearningLoop, n: int = 120) -> None:
    """Short prompts accepted 25 times in 30, long ones 23 in 30: a local type at 0.80, near the 0.75 target, its
    slope saying long prompts are the (slightly) harder ones — every request's own estimate above the target."""
    for i in range(n):
        long = i % 2 == 1
        loop.plan("qa", f"r{i}", signal=LONG if long else SHORT)
        k = i // 2
        ok = (k % 30 not in (1, 5, 11, 17, 22, 26, 29)) if long else (k % 30 not in (3, 9, 15, 21, 27))
        loop.verdict("qa", 1.0 if ok else 0.0, request_id=f"r{i}")
    st = loop.boundary.state("qa")
    assert st.tier == "local" and 0.75 < st.mean() < 0.82
    assert loop.within.slope("qa") < 0.0


def frontier_share(loop: LearningLoop, signal: float, n: int = 200, tag: str = "x") -> float:
    return sum(loop.plan("qa", f"{tag}{k}", signal=signal).tier == "frontier" for k in range(n)) / n


def mixed(loop: LearningLoop, n: int = 500) -> tuple[float, list[int], list[int]]:
    """n requests of 25 prompt lengths (40 to ~1,900 characters) in turn: the frontier share, and the length levels
    of the requests served on the frontier and locally."""
    tiers = [(k % 25, loop.plan("qa", f"m{k}", signal=math.log1p(40 * 1.175 ** (k % 25))).tier) for k in range(n)]
    front = [lv for lv, t in tiers if t == "frontier"]
    return len(front) / n, front, [lv for lv, t in tiers if t == "local"]


def test_off_by_default_and_bounded() -> None:
    assert WithinSettings().near == "off"
    assert WithinSettings(near="held").near == "held"
    for bad in ({"near": "on"}, {"near_band": 0.5}, {"near_band": 0.0}, {"near_window": 5}, {"near_min_verdicts": 0}):
        with pytest.raises(ValidationError):
            WithinSettings(**bad)


def test_off_a_near_target_local_type_is_served_almost_wholly_locally() -> None:
    loop = make_loop("off")
    near_target_local(loop)
    share, _, _ = mixed(loop)
    assert share < 0.05  # the estimates (all but the longest prompts') sit above the target: one side


def test_rank_sends_the_posteriors_below_target_share_and_the_lowest_ranked() -> None:
    loop = make_loop("rank")
    near_target_local(loop)
    st = loop.boundary.state("qa")
    below = beta_cdf(st.a, st.b, 0.75)
    assert 0.05 < below < 0.95
    share, front, local = mixed(loop)
    assert share == pytest.approx(below, abs=0.03)  # how many: the type's own evidence
    assert min(front) >= 20 and sum(front) / len(front) > 21  # which: the ones its estimate ranks lowest (the longest)


def test_held_leaves_a_local_type_to_its_estimates() -> None:
    loop = make_loop("held")
    near_target_local(loop)
    share, _, _ = mixed(loop)
    assert share < 0.05  # as without the option: only types on the frontier tier are split


def test_rank_leaves_a_type_far_from_the_target_to_its_estimates() -> None:
    loop = make_loop("rank")
    for i in range(120):  # 119 of 120 accepted: P(below 0.75) ~ 0
        loop.plan("qa", f"r{i}", signal=SHORT)
        loop.verdict("qa", 0.0 if i == 7 else 1.0, request_id=f"r{i}")
    assert beta_cdf(*(lambda s: (s.a, s.b))(loop.boundary.state("qa")), 0.75) < 0.05
    assert frontier_share(loop, SHORT) == 0.0


def test_rank_waits_for_the_types_verdicts() -> None:
    rank = NearRank(window=50, band=0.05, min_verdicts=20)
    st = TaskState(tier="local", a=8.0, b=3.0, total_judged=10)  # near the target, 10 verdicts
    assert rank.tier("qa", st, 0.5, 0.75, 0.5) is None
    st.total_judged = 20
    assert rank.tier("qa", st, 0.0, 0.75, 0.5) == "frontier"  # lowest of the window


def test_the_rank_is_among_the_types_latest_window() -> None:
    rank = NearRank(window=4, band=0.05, min_verdicts=1)
    for s in (0.1, 0.2, 0.3, 0.4):
        rank.rank("qa", s, 0.0)
    assert rank.rank("qa", 0.35, 0.0) == pytest.approx(2 / 4)  # 0.1 has left the window: 0.2, 0.3 below
    assert rank.rank("other", 0.35, 0.0) == 0.0  # each type its own window
    # the window now 0.3, 0.4, 0.35, 0.35: equal scores split by the tie
    assert rank.rank("qa", 0.35, 0.999) == pytest.approx((1 + 0.999 * 2) / 4)


@pytest.mark.parametrize("near", ["rank", "held"])
def test_a_type_moved_back_by_the_change_point_test_is_not_split(near: str) -> None:
    rank = NearRank(window=50, band=0.05, min_verdicts=1, held_only=near == "held")
    loop = make_loop(near)
    loop.near = rank
    st = loop.boundary.state("qa")
    st.tier, st.a, st.b, st.total_judged, st.judged, st.drifted = "frontier", 28.0, 12.0, 40, 0, 1
    assert 0.05 < beta_cdf(st.a, st.b, 0.75) < 0.95  # mean 0.70: every estimate below the target (no slope yet)
    assert frontier_share(loop, SHORT, n=50) == 1.0
    st.drifted = 0  # the same type moved back by the below-target rule, held on the frontier: split
    share = frontier_share(loop, SHORT, n=200, tag="y")
    assert share == pytest.approx(beta_cdf(st.a, st.b, 0.75), abs=0.06)
