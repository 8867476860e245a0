"""`boundary.drift_p0_credible`: the acceptance the change-point test takes as a local type's unchanged rate.

Unset, the test takes the posterior mean when its statistic leaves zero. A type moves local on a short run that
looked good, so that mean overstates it, and each rejection then weighs as if the type were almost never wrong: on
the replay with no drift injected the test fired 41 times in 63 streams, 23 of them on types accepted 78-87% of the
time (the test's p0 at 0.89-0.96), and none of those types came back (bench/RESULTS.md, "Issue 21, round 23"). Set,
the test takes the lower edge of the posterior's credible interval of that mass: its false-alarm bound then holds
whenever the type is at least that good, and a drop far below the target is found as fast.
"""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from tests.learning.replay_loop import loop_with
from tierwise.learning.boundary import Boundary, BoundarySettings, beta_lower


def boundary(p0_credible: float | None) -> Boundary:
    # the replay's settings (bench/learning_loop.py): target 0.75, credible 0.60, the credible move back, no discount
    return Boundary(BoundarySettings(quality_target=0.75, credible=0.6, discount=1.0, move_back="credible",
                                     drift_p0_credible=p0_credible))


def test_the_default_is_the_mean_and_masses_outside_the_unit_interval_are_refused() -> None:
    assert BoundarySettings().drift_p0_credible is None
    for bad in (1.0, -0.1):
        with pytest.raises(ValidationError):
            BoundarySettings(drift_p0_credible=bad)


@pytest.mark.parametrize("mass", [None, 0.6, 0.9])
def test_the_test_starts_from_the_mean_or_the_lower_credible_edge(mass: float | None) -> None:
    b = boundary(mass)
    for _ in range(20):
        b.observe("qa", 1.0)
    st = b.state("qa")
    assert st.tier == "local" and st.cusum.s == 0.0
    a, bb = st.a, st.b
    b.observe("qa", 0.0)  # the statistic leaves zero: p0 is read now, from the posterior before this verdict
    expected = a / (a + bb) if mass is None else beta_lower(a, bb, (1.0 - mass) / 2.0)
    assert st.cusum.s > 0.0 and st.cusum.p0 == pytest.approx(expected)
    if mass is not None:
        assert st.cusum.p0 < a / (a + bb) - 0.02


def test_three_ordinary_rejections_after_a_lucky_start_fire_the_test_only_at_the_mean() -> None:
    fired = {}
    for mass in (None, 0.9):
        b = boundary(mass)
        for _ in range(20):
            b.observe("qa", 1.0)
        moves = [b.observe("qa", 0.0) for _ in range(3)]
        fired[mass] = [m.why for m in moves if m is not None]
    assert fired[None] == ["drift"]
    assert fired[0.9] == []


def false_alarms(mass: float | None, p: float, streams: int = 200, verdicts: int = 300) -> int:
    """Streams (a type moved local on 5 of 5, then accepted with probability p) in which the test fires."""
    alarms = 0
    for seed in range(streams):
        rng = random.Random(seed)
        b = boundary(mass)
        for _ in range(5):
            b.observe("qa", 1.0)
        assert b.tier("qa") == "local"
        for _ in range(verdicts):
            m = b.observe("qa", 1.0 if rng.random() < p else 0.0)
            if m is not None:
                alarms += m.why == "drift"
                break
    return alarms


def test_a_healthy_type_raises_fewer_false_alarms() -> None:
    # an unchanged type above the target: every alarm is false (at the mean: 26 of 200 at 0.85, 45 at 0.80)
    for p in (0.85, 0.80):
        at_mean, at_lower = false_alarms(None, p), false_alarms(0.9, p)
        assert at_mean >= 20
        assert at_lower <= at_mean / 4


def drop_found_after(mass: float | None, seed: int) -> int | None:
    """A type settled local at 90% under the route's watch (`decide`) and the replay's audits, then its local answers
    accepted 25% of the time: the requests until it is back on the frontier."""
    loop = loop_with(watch="decide")
    loop.boundary.settings.drift_p0_credible = mass
    rng = random.Random(seed)
    for i in range(300):
        loop.plan("qa", f"q{i}")
        loop.verdict("qa", 1.0 if rng.random() < 0.9 else 0.0)
    assert loop.boundary.tier("qa") == "local"
    for i in range(1000):
        if loop.plan("qa", f"d{i}").judge:
            loop.verdict("qa", 1.0 if rng.random() < 0.25 else 0.0, request_id=f"d{i}")
        if loop.boundary.tier("qa") == "frontier":
            return i
    return None


def test_a_real_drop_is_found_about_as_fast() -> None:
    at_mean = [drop_found_after(None, seed) for seed in range(20)]
    at_lower = [drop_found_after(0.9, seed) for seed in range(20)]
    assert all(x is not None for x in at_lower)
    assert sorted(at_lower)[15] <= 200  # most within the replay's drift window (the first rejected audit waits)
    assert sum(at_lower) <= sum(at_mean) * 1.2  # type: ignore[arg-type]
