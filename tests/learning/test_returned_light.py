"""`value.returned: light`: how a type that came back local after a move back below the target is judged.

With `boundary.move_back_keep` a type sent back below the target can come back local (bench/RESULTS.md, "Issue 21,
round 20"). Such a type is near the target, and while its posterior mean is under it, `watch: decide` judges every
request while the change-point statistic is above zero (most of the time, that near the target) and the value of
information finds its tier worth judging: the evaluation bought back what its return saved. `returned: light` judges
such a type by its audits and by the change-watch at `lean`'s rate (in proportion to how far the test has gone to
firing): a drift still drives the test up, and with it the watch, so the type is still sent back.
"""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from tests.learning.replay_loop import loop_with
from tests.learning.test_move_back_keep import local_type
from tierwise.learning.boundary import Boundary
from tierwise.learning.loop import LearningLoop
from tierwise.learning.value import ValueSettings


def sent_back(returned: str) -> LearningLoop:
    """A loop at the replay's settings (`watch: decide`, `move_back_keep: 5`) whose one type was local and goes back
    below the target on a rejection."""
    loop = loop_with(watch="decide", returned=returned)
    loop.boundary.settings.move_back_keep = 5.0
    for i in range(30):
        loop.plan("qa", f"w{i}")
    local_type(loop.boundary)
    move = loop.verdict("qa", 0.0)
    assert move is not None and move.why == "below-target"
    return loop


def come_back(loop: LearningLoop) -> LearningLoop:
    rng = random.Random(2)
    for i in range(3000):
        plan = loop.plan("qa", f"r{i}")
        if plan.judge:
            loop.verdict("qa", 1.0 if rng.random() < 0.95 else 0.0, request_id=f"r{i}")
        if loop.boundary.tier("qa") == "local":
            return loop
    raise AssertionError("the type did not come back local")


def stream(loop: LearningLoop, p: float, n: int, tag: str, seed: int) -> tuple[int, int, int | None]:
    """n requests whose local answers are accepted with probability p: verdicts bought while the type was local and
    under the target, such requests, and the request at which it first moved back to the frontier (None: never)."""
    rng = random.Random(seed)
    judged = under = 0
    back = None
    for i in range(n):
        st = loop.boundary.state("qa")
        near = st.tier == "local" and st.mean() < loop.settings.boundary.quality_target
        plan = loop.plan("qa", f"{tag}{i}")
        under += int(near)
        judged += int(near and plan.judge)
        if plan.judge:
            m = loop.verdict("qa", 1.0 if rng.random() < p else 0.0, request_id=f"{tag}{i}")
            if m is not None and m.to == "frontier" and back is None:
                back = i
    return judged, under, back


def returned_under_the_target(returned: str) -> LearningLoop:
    """A type that came back local, its posterior mean then pushed just under the target (0.75)."""
    loop = come_back(sent_back(returned))
    st = loop.boundary.state("qa")
    st.a, st.b = 1.0 + 36.5, 1.0 + 13.5  # 37.5 / 52: mean 0.72, the credible upper edge still over 0.75
    assert st.tier == "local" and st.mean() < 0.75
    return loop


def test_a_below_target_move_back_is_counted_and_kept_across_a_restart() -> None:
    loop = sent_back("full")
    assert loop.boundary.state("qa").sent_back == 1
    b = Boundary(loop.boundary.settings)
    b.load(loop.boundary.dump())
    assert b.state("qa").sent_back == 1


def test_a_drift_alarm_is_not_counted() -> None:
    b = Boundary(loop_with().boundary.settings)
    rng = random.Random(3)
    for _ in range(300):
        b.observe("qa", 1.0 if rng.random() < 0.9 else 0.0)
    for _ in range(100):
        m = b.observe("qa", 0.0)
        if m is not None:
            break
    assert m is not None and m.why == "drift" and b.state("qa").sent_back == 0


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_returned_type_under_the_target_is_judged_less_when_light(seed: int) -> None:
    got = {r: stream(returned_under_the_target(r), 0.74, 400, "near", seed) for r in ("full", "light")}
    (j_full, n_full, _), (j_light, n_light, _) = got["full"], got["light"]
    assert n_full >= 5 and n_light >= 100
    # per request while local and under the target: full judges about every one, light a few in a hundred
    assert j_full / n_full > 0.9 and j_light / n_light < 0.1


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_a_drift_on_a_returned_type_still_sends_it_back(seed: int) -> None:
    loop = returned_under_the_target("light")
    _, _, back = stream(loop, 0.25, 400, "drift", seed)
    assert back is not None and back < 200


def test_a_type_never_sent_back_is_watched_as_watch_says() -> None:
    loop = loop_with(watch="decide", returned="light")
    st = loop.boundary.state("qa")
    st.tier, st.a, st.b = "local", 7.0, 3.0  # under the target
    st.cusum.s, st.cusum.p0 = 0.5, 0.8
    loop.seen["qa"], loop.total = 10, 10
    assert all(loop.plan("qa", f"x{i}").reason == "change-watch" for i in range(20))
    st.sent_back = 1
    assert sum(loop.plan("qa", f"y{i}").reason == "change-watch" for i in range(200)) < 100


def test_the_default_is_full_and_bad_values_are_refused() -> None:
    assert ValueSettings().returned == "full"
    with pytest.raises(ValidationError):
        ValueSettings(returned="audit")
