"""A task type near the quality target split by rank (`within.near: rank`).

Without it a request takes the frontier when its own acceptance estimate (the text model's, or the type's moved by
the prompt signal) is under the target, so a type whose estimates sit on one side of the target is served almost
wholly on that side, however close its own acceptance is to the target (RESULTS, "Learning loop round 34": gsm8k,
philosophy and law, the types at or just below the target, are most of the gap to `linear`, which splits them).

Under `rank`, a type with `min_verdicts` verdicts that the change-point test has not moved back (a type the
below-target rule moved back is held on the frontier by evidence like any other, and may be split) is split when the evidence
leaves its side in doubt: f, the posterior probability that its acceptance is below the target (the Beta CDF of its
own verdicts at the target), is the share of its requests sent to the frontier while `band` < f < 1 − `band`; the
ones sent are those the request's estimate ranks lowest among the type's latest `window` requests (ties split by a
hash of the request id). Under `held` only types the boundary holds on the frontier are split (a local type keeps
each request's estimate against the target). The estimate orders the type's requests; the type's own verdicts say how many go. Whether a
request is judged stays the type's decision, as for any request whose own estimate crosses its type's tier.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import deque

from tierwise.learning.boundary import TaskState, Tier, beta_cdf


class NearRank:
    """Per task type: the latest `window` request estimates, kept sorted for a rank."""

    def __init__(self, window: int, band: float, min_verdicts: int, held_only: bool = False) -> None:
        self.window = window
        self.held_only = held_only  # `near: held`: only types the boundary holds on the frontier are split
        self.band = band
        self.min_verdicts = min_verdicts
        self._latest: dict[str, deque[float]] = {}
        self._sorted: dict[str, list[float]] = {}

    def rank(self, task_type: str, score: float, tie: float) -> float:
        """Share of the type's window (this request included) scored below `score`; equal scores by `tie` in [0, 1)."""
        latest = self._latest.setdefault(task_type, deque())
        ordered = self._sorted.setdefault(task_type, [])
        latest.append(score)
        insort(ordered, score)
        if len(latest) > self.window:
            old = latest.popleft()
            del ordered[bisect_left(ordered, old)]
        lo, hi = bisect_left(ordered, score), bisect_right(ordered, score)
        return (lo + tie * (hi - lo)) / len(ordered)

    def tier(self, task_type: str, st: TaskState, score: float, target: float, tie: float) -> Tier | None:
        """The request's tier when its type is split by rank, else None (the request's estimate decides)."""
        r = self.rank(task_type, score, tie)
        if st.total_judged < self.min_verdicts or (self.held_only and st.tier != "frontier"):
            return None
        below = beta_cdf(st.a, st.b, target)  # P(the type's acceptance < target | its verdicts)
        if not self.band < below < 1.0 - self.band:
            return None
        return "frontier" if r < below else "local"


__all__ = ["NearRank"]
