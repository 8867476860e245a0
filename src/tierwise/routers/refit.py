"""Re-fitting a deployed `learned` route's threshold to its target frontier share on recent traffic.

A `target_share` threshold starts as the training prompts' quantile, but a user's traffic rarely scores like
the training prompts: a router set for 30% may send 18% (or 60%) to the strong model. `ThresholdRefit` keeps
the last `window` scores in a fixed ring buffer (one store per request) and, every `every` requests once
`min_scores` are in, moves the threshold to their (1 − target_share) quantile. The quantile is a linear-time
selection (`np.partition`, two order statistics, interpolated as `np.quantile` does), never a sort, and runs
on one request in `every`: the per-request cost is a few microseconds (bench/refit_cost.py).
"""

from __future__ import annotations

import math

import numpy as np

REFIT_EVERY = 10  # requests between re-fits: the quantile's cost is spread over them


class ThresholdRefit:
    def __init__(self, threshold: float, target_share: float, *, window: int = 500, min_scores: int = 100,
                 every: int = REFIT_EVERY) -> None:
        if not 0.0 <= target_share <= 1.0:
            raise ValueError("target_share must be between 0 and 1")
        if window < 1 or not 1 <= min_scores <= window or every < 1:
            raise ValueError("refit needs 1 <= refit_min <= refit_window and every >= 1")
        self.threshold = float(threshold)
        self.source = "training"
        self.target_share = target_share
        self.min_scores = min_scores
        self.every = every
        self._buf = np.empty(window, dtype=float)
        self._next = 0  # where the next score goes
        self._n = 0  # scores held (at most the window)
        self._since = 0  # scores added since the last re-fit

    @property
    def held(self) -> int:
        return self._n

    def add(self, score: float) -> float:
        """Record one request's score (a NaN is left out) and return the threshold to route it by."""
        if score != score:
            return self.threshold
        self._buf[self._next] = score
        self._next = (self._next + 1) % len(self._buf)
        if self._n < len(self._buf):
            self._n += 1
        self._since += 1
        if self._n >= self.min_scores and self._since >= self.every:
            self._refit()
        return self.threshold

    def _refit(self) -> None:
        n = self._n
        pos = (n - 1) * (1.0 - self.target_share)  # np.quantile's default (linear) definition
        lo = math.floor(pos)
        hi = min(lo + 1, n - 1)
        part = np.partition(self._buf[:n], (lo, hi))
        self.threshold = float(part[lo] + (part[hi] - part[lo]) * (pos - lo))
        self.source = f"recent traffic ({n} requests)"
        self._since = 0
