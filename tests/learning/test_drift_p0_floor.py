"""`boundary.drift_p0_floor_after: N`: once a local type has N verdicts since it moved local, the change-point test's
unchanged rate is at least the quality target.

With `drift_p0_credible` (a reflective route's 0.90) the test takes the lower edge of a local type's credible interval
as its unchanged rate. For a type near the target that edge is below it (0.668 for 31 good of 39), where the test
weighs 0.67 against the drop's 0.5: a rejection adds ln(0.5/0.33) = 0.41 and an acceptance takes off ln(0.67/0.5) =
0.29, so a rejection, an acceptance, a rejection and two acceptances bring the statistic back to zero and the change-
watch (`value.watch: decide`) stops; a drift of such a type to ~0.4 then waits for its next rejected audit (RESULTS,
"Learning loop round 34": seed 525's `mmlu/law`, back after 343 requests). With the floor the test weighs 0.75 against
0.5 (0.69 and 0.41), and the same five verdicts leave it above zero. A type just moved local keeps its edge: its false
alarms are what the edge was chosen against (round 23).
"""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from tests.learning.replay_loop import loop_with, near_target, replay_settings
from tierwise.learning.boundary import BoundarySettings, beta_lower
from tierwise.learning.loop import LearningLoop

NEAR = [1] * 5 + [1, 1, 1, 0] * 8 + [1, 1]  # moved local on 5 of 5, then 34 verdicts (26 good): 31 of 39 in all


def near_target_loop(after: int | None) -> LearningLoop:
    loop = near_target(NEAR, drift_p0_floor_after=after)
    st = loop.boundary.state("qa")
    assert st.tier == "local" and st.cusum.s == 0.0 and st.judged == 34
    assert beta_lower(st.a, st.b, 0.05) == pytest.approx(0.668, abs=0.001)  # the edge, below the target
    return loop


def test_unset_by_default_and_negative_counts_refused() -> None:
    assert BoundarySettings().drift_p0_floor_after is None
    with pytest.raises(ValidationError):
        BoundarySettings(drift_p0_floor_after=-1)


@pytest.mark.parametrize("after, p0", [(None, 0.668), (20, 0.75), (34, 0.75), (35, 0.668)])
def test_a_near_target_types_test_starts_from_the_edge_or_once_established_the_target(after: int | None,
                                                                                       p0: float) -> None:
    loop = near_target_loop(after)
    loop.verdict("qa", 0.0)  # the statistic leaves zero: its rate is read now, with 34 verdicts since the move
    c = loop.boundary.state("qa").cusum
    assert c.p0 == pytest.approx(p0, abs=0.001)
    assert c.s == pytest.approx(math.log(0.5 / (1.0 - c.p0)))  # one rejection against the drop to 2t - 1 = 0.5


def test_a_type_above_the_target_is_not_changed() -> None:
    # 90% accepted over 300 verdicts: its edge (~0.86) is above the target, the floor does nothing
    p0 = {}
    for after in (None, 20):
        loop = loop_with(watch="decide")
        loop.boundary.settings.drift_p0_credible = 0.9
        loop.boundary.settings.drift_p0_floor_after = after
        for i in range(300):
            loop.plan("qa", f"q{i}")
            loop.verdict("qa", 0.0 if i % 10 == 5 else 1.0)
        loop.verdict("qa", 0.0)
        p0[after] = loop.boundary.state("qa").cusum.p0
    assert p0[None] == p0[20] > 0.8


@pytest.mark.parametrize("after, watched", [(None, False), (20, True)])
def test_the_watch_after_rejection_acceptance_rejection_and_two_acceptances(after: int | None, watched: bool) -> None:
    loop = near_target_loop(after)
    for i, v in enumerate([0, 1, 0, 1, 1]):
        loop.verdict("qa", float(v), request_id=f"w{i}")
    st = loop.boundary.state("qa")
    assert st.tier == "local"
    assert st.cusum.watching() is watched
    # the next request is judged by the change-watch only while the test leans toward a drift (without it, by whatever
    # the value of information says of a type this near the target)
    assert (loop.plan("qa", "next").reason == "change-watch") is watched


def test_the_replay_flag_sets_it() -> None:
    assert replay_settings("--drift-p0-floor-after", "20").boundary.drift_p0_floor_after == 20
    assert replay_settings().boundary.drift_p0_floor_after is None
