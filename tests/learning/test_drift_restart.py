"""`boundary.drift_restart`: what a type's posterior keeps when the change-point test sends it back to the frontier.

`run` keeps the test's run (the verdicts since its statistic last left zero); `prior` keeps nothing. The run is the
stretch the test picked for being bad, so on a healthy type (a false alarm) it is a pessimistic estimate that the
loop's value of information then never pays to correct: the type stayed on the frontier for the rest of the stream in
every such case of the replay (bench/RESULTS.md, "Issue 21, session 23 (round 18)"). Restarted from the prior, the
type is explored again as a new type is, and goes back local on fresh verdicts if it is still good.
"""

from __future__ import annotations

import random
from typing import Literal

import pytest
from pydantic import ValidationError

from tests.learning.replay_loop import loop_with, recovered_after, settle_local
from tierwise.learning.boundary import Boundary, BoundarySettings
from tierwise.learning.loop import LearningLoop

Restart = Literal["run", "prior"]


def drift_back(b: Boundary, task_type: str = "qa") -> None:
    """Rejections until the change-point test sends a local type back."""
    for _ in range(100):
        m = b.observe(task_type, 0.0)
        if m is not None:
            assert m.to == "frontier" and m.why == "drift"
            return
    raise AssertionError("the change-point test never fired")


def settled_boundary(restart: Restart) -> Boundary:
    b = Boundary(BoundarySettings(quality_target=0.75, credible=0.6, discount=1.0, move_back="credible",
                                  drift_restart=restart))
    rng = random.Random(3)
    for _ in range(300):
        b.observe("qa", 1.0 if rng.random() < 0.9 else 0.0)
    assert b.tier("qa") == "local"
    return b


def test_run_keeps_the_tests_run_and_prior_keeps_nothing() -> None:
    kept = settled_boundary("run")
    drift_back(kept)
    st = kept.state("qa")
    assert st.tier == "frontier" and st.b > 1.0 + 3 and st.mean() < 0.5  # the run of rejections
    fresh = settled_boundary("prior")
    drift_back(fresh)
    st = fresh.state("qa")
    assert st.tier == "frontier" and (st.a, st.b) == (1.0, 1.0) and st.by_key == {}
    assert st.total_judged > 300  # the type's history is still counted (it has moved back: `total_judged > judged`)


def test_the_default_is_run_and_other_values_are_refused() -> None:
    assert BoundarySettings().drift_restart == "run"
    with pytest.raises(ValidationError):
        BoundarySettings(drift_restart="forget")


def false_alarm(restart: Restart) -> LearningLoop:
    loop = loop_with()
    loop.boundary.settings.drift_restart = restart
    settle_local(loop)
    drift_back(loop.boundary)
    assert loop.boundary.tier("qa") == "frontier"
    return loop


def test_after_a_false_alarm_a_restarted_type_earns_its_way_back_and_a_kept_run_does_not() -> None:
    at, judged = recovered_after(false_alarm("prior"), 0.9, 3000, seed=5)
    assert at is not None and at < 200 and judged <= 40
    at, _ = recovered_after(false_alarm("run"), 0.9, 3000, seed=5)
    assert at is None  # the run's pessimistic posterior holds it on the frontier


def test_after_a_real_drop_a_restarted_type_stays_on_the_frontier_and_its_verdicts_stop() -> None:
    at, judged = recovered_after(false_alarm("prior"), 0.3, 3000, seed=5)
    assert at is None and judged <= 20
