"""Adapting a transferred router to the route's own traffic from judged pairs (issue 22, session 25).

A router trained on public data ranks the user's traffic by what separated the tiers there; the judged shadow
pairs of a `learned` route (both tiers' answers graded, evaluation/online.py) say what separates them here.
`LiveAdapter` keeps the last `window` judged pairs (prompt's hashed TF-IDF row, the router's score, the gain
strong − weak), fits a ridge regression of the gain on the rows (off the request path: `refit`), and scores a
request as the blend of two ranks among the live pairs' own values — the router's score among their router
scores, the ridge's prediction among its fitted values — with the weight λ = n / (n + `prior_weight`) on the live
side, so the router decides alone until evidence accumulates. This is the method pre-registered and measured in
bench/RESULTS.md ("adapting the transferred router on the user's judged traffic", session 25): +0.029 APGR on
the traffic after 500 judged pairs (leave one MMLU subject group out), +0.022 leave-one-benchmark-out, nothing
measurable before ~100 pairs. The adapted score is a rank in [0, 1], on another scale than the router's: a route
using it must take its threshold from the adapted scores (routers/refit.py), not the router's training set.

Known weakness (found by its test, after the measurement): the live side ranks a request's prediction among the
ridge's *in-sample* fits on the live pairs, which are spread wider than predictions on unseen prompts, so the live
rank is compressed towards the middle; with a router that ranks the traffic the wrong way round the blend does
not turn it (tests/routers/test_live_adapter.py: perfectly separable live evidence, an uninformative router →
AUC 0.78, not ~1). Ranking among out-of-fold fits is the obvious repair; it is not what was measured.

Not yet wired into the `learned` route (see bench/RESULTS.md for what is left); bench/routers_adapt.py's
`tfidf:1:300` computes the same scores (tests/routers/test_live_adapter.py checks it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from tierwise.routers.features import HashingTfidf

WINDOW = 500  # judged pairs kept (the online validator's default window)
PRIOR_WEIGHT = 300.0  # λ = n / (n + PRIOR_WEIGHT) on the live side
ALPHA = 1.0  # ridge penalty
N_BUCKETS = 1 << 16
MIN_PAIRS = 50  # below this the router's score is returned unchanged


def mid_rank(x: float | np.ndarray, ref_sorted: np.ndarray) -> np.ndarray:
    """Mid-rank of x among the sorted values (0..1): ties share the middle of their run."""
    lo = np.searchsorted(ref_sorted, x, side="left")
    hi = np.searchsorted(ref_sorted, x, side="right")
    return np.asarray((lo + hi) / (2.0 * len(ref_sorted)), dtype=float)


class LiveAdapter:
    def __init__(self, *, window: int = WINDOW, prior_weight: float = PRIOR_WEIGHT, alpha: float = ALPHA,
                 n_buckets: int = N_BUCKETS, min_pairs: int = MIN_PAIRS) -> None:
        if window < 2 or min_pairs < 2 or min_pairs > window or prior_weight < 0 or alpha <= 0:
            raise ValueError("need 2 ≤ min_pairs ≤ window, prior_weight ≥ 0 and alpha > 0")
        self.window, self.prior_weight, self.alpha, self.min_pairs = window, float(prior_weight), float(alpha), min_pairs
        self.n_buckets = n_buckets
        self.pairs: deque[tuple[str, float, float]] = deque(maxlen=window)  # (prompt, router score, gain)
        self._tf: HashingTfidf | None = None
        self._coef = np.zeros(0)
        self._intercept = 0.0
        self._fitted = np.zeros(0)  # sorted ridge predictions on the live pairs
        self._priors = np.zeros(0)  # sorted router scores of the live pairs
        self.n_fitted = 0

    def add(self, prompt: str, score: float, strong: float, weak: float) -> None:
        """One judged pair: the request's prompt, the router's score for it, both tiers' judged outcomes."""
        if score == score:  # a NaN score (the router failed) carries no ranking evidence
            self.pairs.append((prompt, float(score), float(strong) - float(weak)))

    def refit(self) -> bool:
        """Fit on the pairs held (off the request path). False, and the router alone, below `min_pairs`."""
        if len(self.pairs) < self.min_pairs:
            self._tf, self.n_fitted = None, 0
            return False
        from sklearn.linear_model import Ridge

        prompts = [p for p, _, _ in self.pairs]
        gain = np.array([g for _, _, g in self.pairs])
        tf = HashingTfidf(self.n_buckets).fit(prompts)
        x = tf.matrix(prompts)
        r = Ridge(alpha=self.alpha).fit(x, gain)
        self._coef, self._intercept = np.asarray(r.coef_, float), float(r.intercept_)
        self._fitted = np.sort(np.asarray(r.predict(x), dtype=float))
        self._priors = np.sort(np.array([s for _, s, _ in self.pairs]))
        self._tf, self.n_fitted = tf, len(prompts)
        return True

    @property
    def live_weight(self) -> float:
        return self.n_fitted / (self.n_fitted + self.prior_weight) if self.n_fitted else 0.0

    def score(self, prompt: str, prior: float) -> float:
        """The adapted score of one request (the router's `prior` unchanged until the first fit)."""
        if self._tf is None:
            return float(prior)
        idx, val = self._tf.row(prompt)
        live = float(np.dot(self._coef[idx], val)) + self._intercept
        lam = self.live_weight
        return float((1 - lam) * mid_rank(prior, self._priors) + lam * mid_rank(live, self._fitted))

    def score_many(self, prompts: Sequence[str], priors: Sequence[float]) -> np.ndarray:
        return np.array([self.score(p, s) for p, s in zip(prompts, priors, strict=True)])

    # --- route memory --------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The pairs held (the fit is recomputed from them on restore)."""
        return {"prompts": [p for p, _, _ in self.pairs], "scores": [s for _, s, _ in self.pairs],
                "gains": [g for _, _, g in self.pairs]}

    def restore(self, snap: dict[str, Any]) -> None:
        self.pairs.clear()
        for p, s, g in zip(snap.get("prompts", []), snap.get("scores", []), snap.get("gains", []), strict=False):
            if isinstance(p, str) and isinstance(s, int | float) and isinstance(g, int | float) and s == s:
                self.pairs.append((p, float(s), float(np.clip(g, -1.0, 1.0))))
        self.refit()
