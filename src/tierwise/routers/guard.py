"""The guard of a deployed `learned` route: is live traffic still like the router's training data,
and is the threshold still sending the intended share to the strong tier?

`RouteGuard.observe(prompt, score)` runs once per request, after the router scored it:
- measures the prompt's distance to the router's training distribution (routers/shift.py) and
  feeds the sliding window; when the window is off-distribution (with hysteresis) the route is
  *demoted*: requests go to the safe fallback until traffic comes back;
- with `refit_threshold`, feeds the recent in-distribution scores (all scores when there is no
  profile) to a `ThresholdRefit` (routers/refit.py), which moves the threshold to their quantile at
  the target strong share (instead of the training prompts' quantile);
- asks any extra `EvidenceCheck`s (the online APGR estimate from judged shadow pairs,
  evaluation/online.py) whether the router should be demoted; each says why, and the route is
  re-promoted when none does any more.
Without a training profile (a route with online validation but no `shift`) only the checks run.
The route records the outcome on the trace (and so in the ledger).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tierwise.routers.refit import ThresholdRefit
from tierwise.routers.shift import ShiftWindow, TrainingProfile

# An evidence check returns None (no opinion yet) or (demote?, reason).
EvidenceCheck = Callable[[], "tuple[bool, str] | None"]


@dataclass
class GuardState:
    percentile: dict[str, float]
    share_far: float
    window_n: int
    demoted: bool
    changed: bool
    reason: str
    threshold: float
    threshold_source: str
    detail: dict[str, Any] = field(default_factory=dict)


class RouteGuard:
    def __init__(self, profile: TrainingProfile | None, *, space: str = "lsa", embedding: Any = None,
                 window: ShiftWindow | None = None, demote: bool = True, threshold: float = 0.0,
                 target_share: float | None = None, refit_threshold: bool = False, refit_window: int = 500,
                 refit_min: int = 100, refit_key_share: float = 1.0,
                 checks: list[EvidenceCheck] | None = None) -> None:
        if profile is not None and space not in profile.spaces:
            raise ValueError(f"the router's training profile has no {space!r} space (has: {', '.join(profile.spaces)})")
        if refit_threshold and target_share is None:
            raise ValueError("refit_threshold needs target_share")
        self.profile = profile
        self.space = space
        self.embedding = embedding if space == "embedding" else None
        self.window = window or ShiftWindow()
        self.demote = demote
        self._fixed = threshold
        self.target_share = target_share
        self.refit = (ThresholdRefit(threshold, target_share, window=refit_window, min_scores=refit_min,
                                     key_share=refit_key_share)
                      if refit_threshold and target_share is not None else None)
        self.checks = list(checks or [])
        self.demoted = False
        self.reason = ""

    def _percentile(self, prompt: str) -> float:
        assert self.profile is not None
        sp = self.profile.spaces[self.space]
        if self.space == "lsa":
            v = self.profile.lsa_raw_one(prompt)
        else:
            assert self.embedding is not None
            v = self.embedding.encode_one(prompt)
        return float(sp.percentiles(sp.distances(v))[0])

    @property
    def threshold(self) -> float:
        return self.refit.threshold if self.refit is not None else self._fixed

    @property
    def threshold_source(self) -> str:
        return self.refit.source if self.refit is not None else "training"

    def observe(self, prompt: str, score: float, key: str = "") -> GuardState:
        reasons = []
        percentile: dict[str, float] = {}
        v = None
        if self.profile is not None:
            p = self._percentile(prompt)
            percentile[self.space] = p
            v = self.window.add(p, key)  # one key's share of the window is bounded (ShiftWindow)
            if v.off:
                reasons.append(f"traffic is off the router's training distribution: {v.share_far:.0%} of the last "
                               f"{v.n} requests are farther from its training prompts than "
                               f"{self.window.far_quantile:.0%} of them (demote above {self.window.demote_above:.0%})")
        if self.refit is not None and (v is None or not v.off or not self.demote):
            # only traffic the router knows moves its threshold, while far traffic goes to the fallback; with
            # `demote: false` far traffic is routed by score, so its scores set the threshold (before session 36 a
            # router set for 30% kept its training quantile on such traffic and sent 0% of it to the strong tier)
            self.refit.add(score, key)
        shift_off = bool(reasons)
        if not self.demote:  # shift measured and recorded only; the checks still demote
            reasons = []
        cleared: list[str] = []
        for check in self.checks:
            verdict = check()
            if verdict is not None:
                (reasons if verdict[0] else cleared).append(verdict[1])
        demoted = bool(reasons)
        changed = demoted != self.demoted
        if changed and not demoted:
            why = [] if v is None else [f"{v.share_far:.0%} of the last {v.n} requests are far from the training "
                                        f"prompts (promote below {self.window.promote_below:.0%})"]
            self.reason = "re-promoted: " + "; ".join(why + cleared)
        elif demoted:
            self.reason = "; ".join(reasons)
        else:
            self.reason = ""
        self.demoted = demoted
        return GuardState(percentile, v.share_far if v else 0.0, v.n if v else 0, demoted, changed, self.reason,
                          self.threshold, self.threshold_source, {"monitor_only_off": shift_off and not self.demote})
