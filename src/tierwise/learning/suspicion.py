"""A local task type under suspicion after a rejected verdict (`value.suspicion_odds`, off by default).

An established local type is judged on its audits alone (every 50th request at the default 2%), and the change-watch
(`value.watch: decide`) judges its every request only while the change-point test's statistic is above zero: two
accepted verdicts after a lone rejection bring it back to zero. After a drift to an acceptance near the test's
alternative the statistic climbs slowly and returns to zero often, so the watch stops and the next rejection waits for
an audit ~50 requests later (RESULTS, "Issue 21, round 33"). Suspicion keeps judging every request of the type from a
rejection until the verdicts since it favour "no change" over the test's drop by `suspicion_odds` to one: a sequential
probability ratio test with the change-point test's own two acceptances (`drift.weights`), not floored at zero, so a
drifted type stays watched until the boundary moves it back, and a healthy one is released after a few acceptances.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from tierwise.learning.drift import weights

PENDING = 4096  # audits whose verdicts may still come


class Suspicion:
    """Per local task type under suspicion: the log-likelihood ratio (drop against no change) of its verdicts since
    the rejection that raised it."""

    def __init__(self, odds: float | None, start: str = "audit") -> None:
        self.odds = odds
        self.start = start  # audit: only a rejected audit raises it; any: any rejected verdict of a local type
        self.stat: dict[str, float] = {}
        self.audits: OrderedDict[str, None] = OrderedDict()  # request ids of audits whose verdicts are pending

    def audit(self, request_id: str) -> None:
        """A local type's request was judged as an audit: its rejection raises suspicion."""
        if self.odds is not None:
            self.audits[request_id] = None
            while len(self.audits) > PENDING:
                self.audits.popitem(last=False)

    def active(self, task_type: str) -> bool:
        return task_type in self.stat

    def note(self, task_type: str, accepted: bool, p0: float, target: float, *, local: bool,
             request_id: str | None = None) -> None:
        """One verdict of `task_type`; `p0` the change-point test's in-control acceptance, `local` whether the type is
        (still) served by the local tier: a type on the frontier is under no suspicion."""
        if self.odds is None:
            return
        s = self.stat.get(task_type)
        audit = request_id is not None and self.audits.pop(request_id, 0) is None
        if not local or (s is None and (accepted or not (audit or self.start == "any"))):
            self.stat.pop(task_type, None)
            return
        rejection, acceptance = weights(p0, target)
        s = (s or 0.0) + (-acceptance if accepted else rejection)
        if s <= -math.log(self.odds):
            del self.stat[task_type]  # the verdicts since the rejection favour no change by the odds asked
        else:
            self.stat[task_type] = s

    def dump(self) -> dict[str, float]:
        return dict(self.stat)

    def load(self, data: Any) -> None:
        if isinstance(data, dict):
            self.stat = {str(k): float(v) for k, v in data.items()
                         if isinstance(v, (int, float)) and math.isfinite(v)}


__all__ = ["Suspicion"]
