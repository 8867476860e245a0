"""Re-fitting a deployed `learned` route's threshold to its target frontier share on recent traffic.

A `target_share` threshold starts as the training prompts' quantile, but a user's traffic rarely scores like
the training prompts: a router set for 30% may send 18% (or 60%) to the strong model. `ThresholdRefit` keeps
the last `window` scores in a fixed ring buffer (one store per request) and, every `every` requests once
`min_scores` are in, moves the threshold to their (1 − target_share) quantile. The quantile is a linear-time
selection (`np.partition`, two order statistics, interpolated as `np.quantile` does), never a sort, and runs
on one request in `every`: the per-request cost is a few microseconds (bench/refit_cost.py).

The window is shared by every client of the route, so one client could fill it with scores of its choosing
(many trivial prompts pull the threshold down and send everyone else's requests to the strong model; many
hard-looking ones push it up and send them to the weak one). So each score is added under its client's key
name, and one key holds at most `key_cap` scores of the window (`key_share` of it, and never fewer than
`min_scores`, so a lone key still re-fits): a key at its cap replaces its own oldest score, not anyone
else's. Requests without a key name (a gateway without keys: there are no clients to tell apart) share one
uncapped entry.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

import numpy as np

REFIT_EVERY = 10  # requests between re-fits: the quantile's cost is spread over them


class ThresholdRefit:
    def __init__(self, threshold: float, target_share: float, *, window: int = 500, min_scores: int = 100,
                 every: int = REFIT_EVERY, key_share: float = 1.0) -> None:
        if not 0.0 <= target_share <= 1.0:
            raise ValueError("target_share must be between 0 and 1")
        if window < 1 or not 1 <= min_scores <= window or every < 1:
            raise ValueError("refit needs 1 <= refit_min <= refit_window and every >= 1")
        if not 0.0 < key_share <= 1.0:
            raise ValueError("refit_key_share must be above 0 and at most 1")
        self.threshold = self._training = float(threshold)
        self.source = "training"
        self.label = "recent traffic"  # what the window holds, for `source`
        self.target_share = target_share
        self.min_scores = min_scores
        self.every = every
        self._buf = np.empty(window, dtype=float)
        self._n = 0  # scores held (at most the window)
        self._since = 0  # scores added since the last re-fit
        # The most scores one named key may hold in the window (unnamed requests are not capped).
        self.key_cap = max(min_scores, math.ceil(window * key_share))
        self._slots: dict[str, deque[int]] = {}  # key name -> its slots, oldest first
        self._owner: list[str] = [""] * window  # slot -> the key whose score it holds
        self._order: OrderedDict[int, None] = OrderedDict()  # every held slot, least recently written first

    @property
    def held(self) -> int:
        return self._n

    @property
    def capacity(self) -> int:
        return len(self._buf)

    def copy_state(self) -> tuple[np.ndarray, list[int], list[str]]:
        """Plain copies of the window (scores, slots oldest first, each slot's key): cheap enough for the event
        loop; `ordered` turns them into what `restore` takes, elsewhere."""
        return self._buf[:self._n].copy(), list(self._order), list(self._owner[:self._n])

    @staticmethod
    def ordered(state: tuple[np.ndarray, list[int], list[str]]) -> tuple[list[float], list[str]]:
        buf, slots, owner = state
        return buf[np.asarray(slots, dtype=np.intp)].tolist(), [owner[s] for s in slots]

    def snapshot(self) -> tuple[list[float], list[str]]:
        """The held scores and the key names that sent them, oldest first (what `restore` takes back)."""
        return self.ordered(self.copy_state())

    def restore(self, scores: list[float], keys: list[str]) -> None:
        """Start again from saved scores (oldest first): each is added as it was, so every key's cap holds,
        and the threshold is re-fitted at once when `min_scores` are in."""
        self._n = self._since = 0
        self._slots.clear()
        self._order.clear()
        self.threshold, self.source = self._training, "training"
        for score, key in zip(scores, keys, strict=True):
            self.add(score, key)
        if self._n >= self.min_scores:
            self._refit()

    def add(self, score: float, key: str = "") -> float:
        """Record one request's score (a NaN or an infinity is left out) under the key name that sent it, and return
        the threshold to route it by."""
        if not math.isfinite(score):
            return self.threshold
        mine = self._slots.get(key)
        if mine is None:
            mine = self._slots[key] = deque()
        if key and len(mine) >= self.key_cap:
            slot = mine.popleft()  # at its cap: the key's newest score replaces its own oldest
        elif self._n < len(self._buf):
            slot = self._n
            self._n += 1
        else:
            slot = next(iter(self._order))  # the oldest score of the window, whoever sent it
            owner = self._slots[self._owner[slot]]
            owner.popleft()  # a key's slots are in write order: its oldest is this one
            if not owner and self._owner[slot] != key:
                del self._slots[self._owner[slot]]
        self._buf[slot] = score
        self._owner[slot] = key
        self._order[slot] = None
        self._order.move_to_end(slot)
        mine.append(slot)
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
        self.source = f"{self.label} ({n} requests)"
        self._since = 0
