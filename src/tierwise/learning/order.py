"""Which requests fill the loop's frontier share: ordered by gain, from three-way verdicts on shadow pairs (`order`).

The boundary and `within` send a request to the frontier when its acceptance estimate m (P(the local answer is at
least as good)) is under the quality target: requests are ordered by acceptance. What the frontier buys on a request
is its gain, P(frontier better) − P(local better) = (1 − m) − P(local better), and a relative verdict ("local at least
as good") cannot see the second term: a type whose local answers are often *better* (a frontier model's blind spot)
has a low gain at the same acceptance, and an acceptance order spends frontier calls on it (RESULTS, "Issue 21,
session 17").

With `order: {kind: gain}` the judge of a shadow pair (the frontier answered, the local tier ran in the shadow) sees
both answers and says local better / tie / frontier better; "accepted" stays "not frontier better", so the boundary,
its moves and the change-point test see the verdicts they saw before. Per task type, among its accepted pairs, the
share r whose local answer was better is kept as a Beta posterior centred on the route's pooled share (every type's
pairs) and worth `pooled_strength` pairs. Then P(local better) = m × r and the gain is 1 − m × (1 + r): requests are
ordered by the score m × (1 + r) (r = 0 is the acceptance order).

The frontier share stays the acceptance rule's: over the route's last `window` eligible requests, s is the share
the acceptance rule (m against the target; m the loop's own estimate, without the request model) sends to the
frontier, and a request goes local when fewer than (1 − s) of
the window's scores are above its own (a block of equal scores straddling that edge is split by a hash of the
request ids). So the loop spends the frontier calls it would have spent, on the requests
where they buy most. Eligible: requests of a type with `min_verdicts` verdicts of its own that the boundary has not
moved back to the frontier (the loop decides that; others keep the acceptance rule's tier and stay out of the window).

`order: {kind: share}` keeps the window and drops the pairs: the loop's own estimate sets the share and the request's
blended estimate (with `request_model`, (1 − weight) × own + weight × the text model's) orders it, so the text model
chooses *which* requests go local without moving *how many* (inside the loop its estimates, above the target for most
requests, otherwise lower the frontier share: RESULTS, "Issue 21, session 18").
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Comparison = Literal["local", "tie", "frontier"]  # which answer of a shadow pair the judge found better
COMPARISONS: tuple[str, ...] = ("local", "tie", "frontier")


class OrderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["acceptance", "share", "gain"] = Field("acceptance", description=(
        "acceptance: a request takes the frontier when its acceptance estimate is under the target; share: the "
        "share of requests the loop's own estimate sends to the frontier, chosen by the request model's blended "
        "estimate; gain: that share chosen by gain, from three-way verdicts on shadow pairs"))
    window: int = Field(1000, ge=2, le=100_000, description="latest eligible requests the frontier share is taken over")
    pooled_strength: float = Field(4.0, ge=0.0, le=10_000.0, description=(
        "the route's pooled share of 'local better' among accepted pairs counts as this many pairs of each type"))
    min_verdicts: int = Field(5, ge=0, le=100_000, description="verdicts a task type needs before its requests are reordered")


class GainOrder:
    """Per task type: accepted shadow pairs and how many of them the local answer won; the window of scores."""

    def __init__(self, settings: OrderSettings) -> None:
        self.settings = settings
        self.pairs: dict[str, list[int]] = {}  # task type -> [local better, tie] among its accepted pairs
        self._window: deque[tuple[bool, float]] = deque()  # (acceptance rule says frontier, score)
        self._sorted: list[float] = []  # the window's scores, sorted
        self._frontier = 0  # the window's requests the acceptance rule sends to the frontier

    def record(self, task_type: str, comparison: str) -> None:
        """A three-way verdict on one shadow pair of `task_type` (a frontier-better pair is a rejection: it is the
        boundary's, and adds nothing here)."""
        if comparison not in ("local", "tie") or self.settings.kind != "gain":
            return
        c = self.pairs.setdefault(task_type, [0, 0])
        c[0 if comparison == "local" else 1] += 1

    def better_share(self, task_type: str) -> float:
        """Posterior mean of r, the share of the type's accepted pairs whose local answer was better."""
        better = sum(c[0] for c in self.pairs.values())
        ties = sum(c[1] for c in self.pairs.values())
        r0 = (better + 1.0) / (better + ties + 2.0)
        k = self.settings.pooled_strength
        own = self.pairs.get(task_type, [0, 0])
        n = own[0] + own[1]
        return r0 if n + k <= 0.0 else (own[0] + k * r0) / (n + k)

    def score(self, task_type: str, acceptance: float) -> float:
        """Under `gain`, 1 − the request's gain: P(local at least as good) + P(local better); under `share`, the
        acceptance estimate itself."""
        if self.settings.kind != "gain":
            return acceptance
        return acceptance * (1.0 + self.better_share(task_type))

    def tier_local(self, task_type: str, acceptance: float, target: float, u: float = 0.0,
                   ordering: float | None = None) -> bool:
        """Whether this request goes local: the frontier share the acceptance rule gives over the window (by
        `acceptance`, the loop's own estimate), filled by score (of `ordering`, the request model's blend when there
        is one, else `acceptance`). Requests of equal score (a type without a within-type slope) that straddle the
        edge are split: the request's place among them is u × their number (u in [0, 1): a hash of its id), so a
        tied block is not sent one way whole."""
        s = self.score(task_type, acceptance if ordering is None else ordering)
        self._push(acceptance < target, s)
        n = len(self._window)
        hi = bisect_right(self._sorted, s)
        above = n - hi  # the window's requests with a higher score
        ties = hi - bisect_left(self._sorted, s)  # with the same score, this one included
        return above + u * ties < n - self._frontier  # within the (1 − s) × n highest scores

    def _push(self, frontier: bool, s: float) -> None:
        self._window.append((frontier, s))
        insort(self._sorted, s)
        self._frontier += int(frontier)
        while len(self._window) > self.settings.window:
            f, old = self._window.popleft()
            del self._sorted[bisect_right(self._sorted, old) - 1]
            self._frontier -= int(f)

    def dump(self) -> dict[str, Any]:
        return {"pairs": {t: list(c) for t, c in self.pairs.items()},
                "window": [[int(f), s] for f, s in self._window]}

    def load(self, data: dict[str, Any]) -> None:
        pairs = data.get("pairs") or {}
        if isinstance(pairs, dict):
            for t, c in pairs.items():
                if (isinstance(c, list) and len(c) == 2
                        and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in c)):
                    self.pairs[str(t)] = [int(c[0]), int(c[1])]
        for row in (data.get("window") or [])[-self.settings.window:]:
            if (isinstance(row, list) and len(row) == 2 and isinstance(row[1], (int, float))
                    and not isinstance(row[1], bool) and math.isfinite(row[1])):
                self._push(bool(row[0]), float(row[1]))


def comparison_of(local_score: float, frontier_score: float, tolerance: float = 0.0) -> Comparison:
    """The three-way verdict two graded answers imply: local better when its score is above the frontier's by more
    than `tolerance`, frontier better when below by more than it, tie otherwise."""
    d = local_score - frontier_score
    if d > tolerance + 1e-9:
        return "local"
    if d < -tolerance - 1e-9:
        return "frontier"
    return "tie"


__all__ = ["COMPARISONS", "Comparison", "GainOrder", "OrderSettings", "comparison_of"]
