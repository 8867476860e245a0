"""Change-point detection on the verdicts of a task type the local tier serves: a Bernoulli CUSUM.

Each verdict (1 accepted, 0 rejected, or a share between) adds its log-likelihood ratio between "no
change" (acceptance p0: the task type's posterior mean when the statistic last stood at zero, or with
`boundary.drift_p0_credible` the lower edge of its credible interval, which the boundary passes in) and "a
drop" (p1: as far below the quality target as p0 was above it, and at least as far below it as a
perfect answer rate is above it, 2t - 1: smaller shifts are left to the posterior mean, whose falling
under the target also sends the type back); the statistic is floored at zero
(Page's CUSUM). It fires when it reaches h = ln(1 / (1 - drift_credible)), which keeps the mean run
between false alarms on an unchanged model above 1 / (1 - drift_credible) verdicts (Wald's bound).

While the statistic is above zero the test is undecided, and the verdicts since it last left zero are
the post-change evidence (the classic change-point estimate): when it fires, the boundary keeps only
that evidence, since what came before describes a model that is gone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tierwise.learning.boundary import TaskState
    from tierwise.learning.request_model_settings import RequestModelSettings


@dataclass
class Cusum:
    s: float = 0.0  # the statistic
    p0: float = 0.0  # in-control acceptance, frozen while s > 0
    run: int = 0  # verdicts since s last left zero
    run_good: float = 0.0

    def watching(self) -> bool:
        """The test leans toward a change but has not decided (or, with `boundary.drift_window`, a run a rejection
        opened is still inside its window, whatever the statistic)."""
        return self.s > 0.0 or self.run > 0


def threshold(drift_credible: float) -> float:
    return math.log(1.0 / (1.0 - drift_credible))


def alternative(p0: float, target: float) -> float:
    """The acceptance after a drop the test is tuned to: mirrored about the target, at most 2t - 1, below p0."""
    return min(max(min(2.0 * target - p0, 2.0 * target - 1.0), 0.01), p0 - 0.01)


def weights(p0: float, target: float) -> tuple[float, float]:
    """What one rejection adds to the statistic of a type whose in-control acceptance is p0, and what one
    acceptance takes off it."""
    p0 = min(max(p0, 0.02), 0.99)
    p1 = alternative(p0, target)
    return math.log((1.0 - p1) / (1.0 - p0)), math.log(p0 / p1)


def update(c: Cusum, x: float, mean_now: float, target: float, h: float, window: int = 0) -> tuple[int, float] | None:
    """Add one verdict `x`; `mean_now` is the posterior mean before it. Returns the post-change run
    (verdicts, accepted) when the test fires (and restarts), else None. `window` (`boundary.drift_window`): for the
    `window` verdicts after the one that opened a run the statistic is not floored at zero, so the run ends (back at
    zero) only if their sum with the opening one is still at or below zero after them: two acceptances after a lone
    rejection then no longer end the run before more verdicts have been weighed with it."""
    if c.run == 0:
        c.s, c.p0, c.run_good = 0.0, mean_now, 0.0
    p0 = min(max(c.p0, 0.02), 0.99)
    p1 = alternative(p0, target)
    c.s += x * math.log(p1 / p0) + (1.0 - x) * math.log((1.0 - p1) / (1.0 - p0))
    if c.s <= 0.0 and (c.run == 0 or c.run >= window):
        c.s, c.run, c.run_good = 0.0, 0, 0.0
        return None
    c.run += 1
    c.run_good += x
    if c.s < h:
        return None
    fired = (c.run, c.run_good)
    c.s, c.run, c.run_good = 0.0, 0, 0.0
    return fired


def check_pair(target: float, margin: float | None = None) -> tuple[float, float]:
    """The two acceptances a moved-back type's check weighs (`request_model.after_move_back: checked`): the target
    and the drop the change-point test is tuned to (`alternative(target, target)`, 2t - 1), or with
    `request_model.check_margin` d the target plus d against the target minus d: whether the verdicts on the answers
    the model serves sit above the target or below it, the promise it makes for each request it serves."""
    target = max(target, 0.02)  # (as `weights` clamps p0: at a target of 0.01 or less the drop would be 0)
    if margin is None:
        return target, alternative(target, target)
    p0 = min(target + margin, 0.99)
    return p0, min(max(target - margin, 0.01), p0 - 0.01)


def drop_odds(good: float, judged: float, target: float, margin: float | None = None) -> float:
    """The log-likelihood ratio of `good` accepted of `judged` verdicts between the check's drop and its target
    (`check_pair`): > 0 when they favour the drop."""
    p0, p1 = check_pair(target, margin)
    return good * math.log(p1 / p0) + (judged - good) * math.log((1.0 - p1) / (1.0 - p0))


def check_step(s: float, good: bool, target: float, floor: float, margin: float | None = None) -> float:
    """One verdict added to a moved-back type's check statistic (`request_model.after_move_back: checked`): `drop_odds`
    summed verdict by verdict, floored at -`floor` (the check's decision for the target). Floored, the statistic
    stays one rejection from re-opening the check however long the type looked good, as Page's CUSUM does, so a drift
    after the decision is weighed from where the decision stood, not against every acceptance since the move back."""
    p0, p1 = check_pair(target, margin)
    step = math.log(p1 / p0) if good else math.log((1.0 - p1) / (1.0 - p0))
    return max(-floor, s + step)


def recheck_rate(s: float, floor: float) -> float:
    """The share of the served requests judged while a check that stood decided for the target is re-opened: how far
    its statistic has gone from the decision (-floor) toward the drop (+floor)."""
    return min(1.0, max(0.0, (s + floor) / (2.0 * floor)))


__all__ = ["Cusum", "alternative", "check_pair", "check_step", "recheck_rate", "drop_odds", "threshold", "update", "weights"]


def model_back(rs: RequestModelSettings, st: TaskState) -> int:
    """Whether the text model serves a type moved back to the frontier (`request_model.after_move_back`): 0 no,
    1 yes, 2 yes and its check is undecided (a request it serves locally is then judged)."""
    if rs.after_move_back == "off" or st.sent_back == 0 or st.drifted > 0:
        return 0
    if rs.after_move_back == "below-target":
        return 1
    # `checked`: a sequential test on the verdicts since the move back (`TaskState.check`, floored at -h)
    h = math.log(rs.check_odds)
    if st.check >= h:
        return 0
    if st.check <= -h:
        return 1
    # undecided: judged while it gathers verdicts; at `check_max`, served unjudged (round 29's) or, with
    # `check_margin` (target + d against target - d), served while the statistic leans to the target (a truncated
    # sequential test decides for the side its ratio favours: the served acceptance above or below the target)
    return 2 if st.check_run < rs.check_max else (1 if rs.check_margin is None or st.check < 0.0 else 0)
