"""`boundary.drift_window: K`: the K verdicts after the rejection that opens the change-point test's run are weighed
with it before the run can end.

Page's CUSUM floors its statistic at zero at every verdict, so on a local type whose test weighs a rejection less
than two acceptances (`mmlu/health` at ~0.85: +0.85 against 2 x 0.45; `mmlu/law`'s edge 0.67: +0.42 against 2 x 0.29)
a lone rejection answered by two acceptances ends the run and the change-watch (`value.watch: decide`) with it; a
drifted type then waits ~50 of its requests for its next audit (RESULTS, "Learning loop round 34": all four (c)
misses examined). Inside the window the statistic is not floored, the type's requests are judged, and the run ends
only if the window's sum is still at or below zero after its K verdicts.
"""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from tests.learning.replay_loop import loop_with, near_target, replay_settings, settle_local
from tierwise.learning.boundary import BoundarySettings
from tierwise.learning.drift import Cusum, update, weights
from tierwise.learning.loop import LearningLoop

H = math.log(1000.0)  # the reflective route's drift_credible 0.999


def steps(window: int, verdicts: list[int], p0: float = 0.8) -> list[float]:
    c, out = Cusum(), []
    for v in verdicts:
        assert update(c, float(v), p0, 0.75, H, window) is None
        out.append(c.s)
    return out


def test_unset_by_default_and_bounded() -> None:
    assert BoundarySettings().drift_window is None
    for bad in (0, 51):
        with pytest.raises(ValidationError):
            BoundarySettings(drift_window=bad)


def test_without_a_window_two_acceptances_end_a_lone_rejections_run() -> None:
    rejection, acceptance = weights(0.8, 0.75)
    assert 2 * acceptance > rejection  # the four (c) misses' pattern
    assert steps(0, [0, 1, 1]) == [pytest.approx(rejection), pytest.approx(rejection - acceptance), 0.0]


def test_the_window_keeps_the_run_open_and_decides_on_its_sum() -> None:
    rejection, acceptance = weights(0.8, 0.75)
    c = Cusum()
    for v in (0, 1, 1):
        update(c, float(v), 0.8, 0.75, H, 3)
    assert c.s == pytest.approx(rejection - 2 * acceptance) and c.s < 0.0  # not floored
    assert c.watching() and c.run == 3
    update(c, 0.0, 0.8, 0.75, H, 3)  # the window's third verdict, a rejection: the sum favours the drop, run goes on
    assert c.s == pytest.approx(2 * rejection - 2 * acceptance) and c.run == 4 and c.watching()


def test_the_run_ends_when_the_windows_sum_is_not_above_zero() -> None:
    s = steps(3, [0, 1, 1, 1])
    assert s[2] < 0.0 and s[3] == 0.0
    c = Cusum()
    for v in (0, 1, 1, 1):
        update(c, float(v), 0.8, 0.75, H, 3)
    assert not c.watching() and c.run == 0 and c.run_good == 0.0


def test_an_acceptance_opens_no_window_and_after_it_the_floor_is_back() -> None:
    assert steps(3, [1, 1]) == [0.0, 0.0]  # a run opens on a rejection only
    rejection, acceptance = weights(0.8, 0.75)
    s = steps(2, [0, 0, 1, 1, 1, 1, 1])  # past the window the statistic is floored as before
    assert s[1] == pytest.approx(2 * rejection) and min(s) >= 0.0 and s[-1] == 0.0


NEAR = [1] * 5 + [1, 1, 1, 0] * 8 + [1, 1, 1]  # moved local on 5 of 5, then 35 verdicts (27 good)


def near_target_loop(window: int | None, watch: str = "decide") -> LearningLoop:
    # the test's unchanged rate the lower 0.90 edge, 0.668: a rejection adds 0.41, an acceptance takes 0.29 off
    loop = near_target(NEAR, watch, drift_window=window)
    st = loop.boundary.state("qa")
    assert st.tier == "local" and not st.cusum.watching()
    return loop


@pytest.mark.parametrize("watch", ["decide", "confirm", "lean"])
@pytest.mark.parametrize("window, watched", [(None, False), (3, True)])
def test_the_type_is_judged_while_its_window_is_open(window: int | None, watched: bool, watch: str) -> None:
    # whatever `watch` says: under `lean`/`confirm` the rate follows the statistic, which is below zero here
    loop = near_target_loop(window, watch)
    for i, v in enumerate([0, 1, 1]):
        loop.verdict("qa", float(v), request_id=f"w{i}")
    st = loop.boundary.state("qa")
    assert st.cusum.watching() is watched
    assert (loop.plan("qa", "next").reason == "change-watch") is watched
    loop.verdict("qa", 1.0, request_id="next")  # the window's last verdict: the sum is below zero, the run ends
    assert not loop.boundary.state("qa").cusum.watching()
    assert loop.plan("qa", "after").reason != "change-watch"


def drift_after(window: int | None, script: list[int], n: int = 400) -> int | None:
    """A settled local type (90% accepted over 300 verdicts: only audited) drifts: its judged requests get the
    scripted verdicts, then two rejections to one acceptance (~0.33; the drifted law/health acceptances were
    0.37-0.42). The request at which it is back on the frontier."""
    loop = loop_with(watch="decide")
    loop.boundary.settings.drift_window = window
    settle_local(loop)
    verdicts = iter(script + [0, 0, 1] * n)
    for i in range(n):
        if loop.plan("qa", f"d{i}").judge:
            loop.verdict("qa", float(next(verdicts)), request_id=f"d{i}")
        if loop.boundary.tier("qa") == "frontier":
            return i
    return None


def test_a_rejection_answered_by_acceptances_no_longer_waits_for_the_next_audit() -> None:
    # at ~0.9 a rejection adds 1.61 and an acceptance takes 0.59 off: three acceptances end the run under Page's floor
    # and the type waits for its next audit (every 50th request); with a window of 4 the fourth verdict after the
    # rejection is weighed with it, and the requests before it are judged
    script = [0, 1, 1, 1]
    without, with_window = drift_after(None, script), drift_after(4, script)
    assert without is not None and with_window is not None
    assert without - with_window >= 40  # the audit interval (50) less the verdicts after the next audit's rejection


def test_the_replay_flag_sets_it() -> None:
    assert replay_settings("--drift-window", "4").boundary.drift_window == 4
    assert replay_settings().boundary.drift_window is None
