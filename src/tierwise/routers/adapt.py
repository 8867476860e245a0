"""Adapting a `learned` route's router to the route's own judged traffic (issue 22; `learned.adapt`).

A router trained on public data ranks the user's traffic by what separated the tiers there; the judged shadow
pairs of the route's online validation (evaluation/online.py: both tiers' answers graded) say what separates
them here. This is the method pre-registered and measured in bench/RESULTS.md (session 25, transfer6,
`tfidf-oof:1:300`): a ridge regression (alpha 1) of the gain (strong − weak judged outcome) on the hashed
TF-IDF of the judged prompts; a request's adapted score is the blend of two ranks, the router's score among
the judged pairs' router scores and the ridge's prediction among the pairs' *out-of-fold* predictions (5
folds), with the weight λ = n / (n + `prior_weight`) on the live side, so the router decides alone until
evidence accumulates (+0.02–0.03 APGR after 500 judged pairs on the proxies; nothing measurable below ~100).

Off the request path (`LiveAdapter.refit`, called by the shadow task in a worker thread, one fit at a time,
every `every` new pairs): 1 + `FOLDS` ridge fits on at most `window` pairs. It also
- estimates the adapted route's own APGR on the pairs with their out-of-fold adapted scores (each pair scored by
  a ridge fitted without it), beside the router alone on the same pairs, with a paired interval of the lead;
- seeds a fresh `ThresholdRefit` on adapted scores with those out-of-fold scores (they are what the scores of
  new prompts look like), so the threshold is the target share's quantile of adapted scores from the first
  adapted request, and recent traffic's adapted scores replace the seeds as they come.
The request path reads the frozen `Adaptation` and that threshold: one TF-IDF row, a dot product, two
binary searches.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from tierwise.evaluation.online import PROMPT_CHARS  # of a prompt kept with its pair and read per request
from tierwise.routers.features import HashingTfidf
from tierwise.routers.refit import ThresholdRefit

if TYPE_CHECKING:
    from tierwise.evaluation.online import JudgedPair, OnlineValidator

N_BUCKETS = 1 << 16  # as measured (bench/routers_adapt.py)
ALPHA = 1.0  # ridge penalty
FOLDS = 5


def mid_rank(x: float | np.ndarray, ref_sorted: np.ndarray) -> np.ndarray:
    """Mid-rank of x among the sorted values (0..1): ties share the middle of their run."""
    lo = np.searchsorted(ref_sorted, x, side="left")
    hi = np.searchsorted(ref_sorted, x, side="right")
    return np.asarray((lo + hi) / (2.0 * len(ref_sorted)), dtype=float)


@dataclass(frozen=True)
class Adaptation:
    """One fit: read by requests, never changed (a refit makes a new one)."""

    tf: HashingTfidf
    coef: np.ndarray
    intercept: float
    priors: np.ndarray  # the pairs' router scores, sorted
    reference: np.ndarray  # the pairs' out-of-fold ridge predictions, sorted
    n: int
    weight: float  # λ on the live side
    oof: np.ndarray  # each pair's out-of-fold adapted score, in pair order

    def score(self, prompt: str, prior: float) -> float:
        idx, val = self.tf.row(prompt[:PROMPT_CHARS])
        live = float(np.dot(self.coef[idx], val)) + self.intercept
        return float((1 - self.weight) * mid_rank(prior, self.priors) + self.weight * mid_rank(live, self.reference))


def fit(prompts: Sequence[str], priors: Sequence[float] | np.ndarray, gains: Sequence[float] | np.ndarray, *,
        prior_weight: float,
        alpha: float = ALPHA, folds: int = FOLDS, n_buckets: int = N_BUCKETS) -> Adaptation:
    """The adaptation on these judged pairs (pure: no state touched; run off the event loop)."""
    from sklearn.linear_model import Ridge

    n = len(prompts)
    prior = np.asarray(priors, dtype=float)
    gain = np.asarray(gains, dtype=float)
    texts = [p[:PROMPT_CHARS] for p in prompts]
    tf = HashingTfidf(n_buckets).fit(texts)
    x = tf.matrix(texts)
    full = Ridge(alpha=alpha).fit(x, gain)
    oof_pred = np.zeros(n)
    for k in range(folds):  # fold k: every folds-th pair (as the measured simulation split them)
        te = np.arange(n) % folds == k
        oof_pred[te] = Ridge(alpha=alpha).fit(x[~te], gain[~te]).predict(x[te])
    lam = n / (n + prior_weight)
    priors_sorted, reference = np.sort(prior), np.sort(oof_pred)
    oof = (1 - lam) * mid_rank(prior, priors_sorted) + lam * mid_rank(oof_pred, reference)
    return Adaptation(tf, np.asarray(full.coef_, dtype=float), float(full.intercept_), priors_sorted, reference, n,
                      lam, np.asarray(oof, dtype=float))


class LiveAdapter:
    """The adaptation state of one live route: the latest fit, the threshold on adapted scores, the out-of-fold
    estimate. The pairs are the online validator's (its window, each gateway key's cap), the newest `window` of
    them that carry a prompt."""

    def __init__(self, validator: OnlineValidator, target_share: float, *, min_pairs: int = 100,
                 prior_weight: float = 300.0, window: int = 500, every: int = 10, refit_window: int = 500,
                 refit_min: int = 100, key_share: float = 1.0) -> None:
        if not 2 * FOLDS <= min_pairs <= window:
            raise ValueError(f"need {2 * FOLDS} ≤ adapt.min_pairs ≤ adapt.window")
        self.validator = validator
        self.target_share = target_share
        self.min_pairs, self.prior_weight, self.window, self.every = min_pairs, float(prior_weight), window, every
        self._refit_args = (refit_window, refit_min, key_share)
        # swapped whole by a refit: the fit, its threshold window, the pairs it was fitted on (saved by RouteMemory)
        self.live: tuple[Adaptation, ThresholdRefit, list[JudgedPair]] | None = None
        self.summary: dict[str, Any] | None = None  # what the last fit says (trace, CLI, dashboard)
        self._busy = threading.Lock()
        self._fitted_at = -1  # pairs added to the validator when the last fit ran
        self._added = 0

    # ------------------------------------------------------------------ the request path
    def decide(self, prompt: str, prior: float, key: str) -> tuple[float, float] | None:
        """(adapted score, threshold) for a request, or None while the router decides alone."""
        if (live := self.live) is None:
            return None
        a, thr, _ = live
        s = a.score(prompt, prior)
        return s, thr.add(s, key)

    def detail(self, adapted: tuple[float, float] | None, router_tier: str) -> dict[str, Any]:
        """The trace's (and so the ledger's) record: adapted or not, on how many judged pairs."""
        if adapted is None or (live := self.live) is None:
            return {"adapted": False, "min_pairs": self.min_pairs}
        a, thr, _ = live
        return {"adapted": True, "pairs": a.n, "weight": round(a.weight, 4), "score": round(adapted[0], 4),
                "threshold": round(adapted[1], 4), "threshold_source": thr.source, "router_tier": router_tier}

    def held(self) -> int:
        return sum(1 for p in self.validator.pairs() if p.prompt)

    # ------------------------------------------------------------------ off the request path
    def due(self) -> bool:
        self._added += 1
        return self.live is None or self._added - self._fitted_at >= self.every

    def refit(self) -> bool:
        """Fit on the newest `window` judged pairs with a prompt (in a worker thread); False when another fit is
        running or there are too few pairs."""
        if not self._busy.acquire(blocking=False):
            return False
        try:
            self._fitted_at = self._added
            pairs = [p for p in self.validator.pairs() if p.prompt and p.score == p.score][-self.window:]
            return self._install(pairs)
        finally:
            self._busy.release()

    def _install(self, pairs: list[JudgedPair], window: tuple[list[float], list[str]] | None = None) -> bool:
        """Fit on `pairs` and route by the fit: its threshold window seeded with the pairs' out-of-fold adapted
        scores, or (a restart) the saved `window` of the same fit, as it was."""
        if len(pairs) < self.min_pairs:
            return False
        a = fit([p.prompt for p in pairs], [p.score for p in pairs], [p.strong - p.weak for p in pairs],
                prior_weight=self.prior_weight)
        start = float(np.quantile(a.oof, 1.0 - self.target_share))
        size, least, share = self._refit_args
        thr = ThresholdRefit(start, self.target_share, window=size, min_scores=least, key_share=share)
        thr.label = "adapted scores: judged pairs out of fold, then recent traffic"
        if window is None:
            thr.restore(a.oof.tolist(), [p.key for p in pairs])  # seeds: recent adapted scores replace them
        else:
            thr.restore(window[0][-size:], window[1][-size:])
        if thr.held < thr.min_scores:
            thr.source = f"adapted scores ({len(pairs)} judged pairs out of fold)"
        summary = self._estimate(pairs, a, start)
        self.summary, self.live = summary, (a, thr, pairs)
        self.validator.set_adaptation(summary)
        return True

    # ------------------------------------------------------------------ across a restart (routers/route_memory.py)
    def copy_state(self) -> tuple[list[JudgedPair], tuple[np.ndarray, list[int], list[str]], int] | None:
        """On the event loop: the pairs of the fit the route routes by, its threshold window (as
        `ThresholdRefit.copy_state`), and how many judged pairs came since that fit."""
        if (live := self.live) is None:
            return None
        return live[2], live[1].copy_state(), self._added - self._fitted_at

    def restore(self, pairs: list[JudgedPair], window: tuple[list[float], list[str]], since: int) -> bool:
        """After a restart: the same fit on the same pairs (the fit is deterministic), routed by the threshold
        window it had (recent traffic's adapted scores, not the seeds a new fit starts from); the next refit
        comes after the `every` − `since` judged pairs it would have come after."""
        with self._busy:
            if not self._install(pairs, window):
                return False
            self._fitted_at, self._added = 0, max(0, since)
            return True

    def _estimate(self, pairs: list[JudgedPair], a: Adaptation, start: float) -> dict[str, Any]:
        """The adapted route's APGR on the pairs, out of fold, beside the router alone's on the same pairs."""
        from tierwise.evaluation.metrics import bootstrap_apgr

        adapted = [replace(p, score=float(s), threshold=start) for p, s in zip(pairs, a.oof, strict=True)]
        est = self.validator.estimate_of(adapted)
        alone = self.validator.estimate_of(pairs)
        out: dict[str, Any] = {"pairs": a.n, "weight": round(a.weight, 4), "estimate": est.brief(),
                               "router_alone": alone.brief(), "sentence": est.sentence()}
        strong = np.array([p.strong for p in pairs])
        weak = np.array([p.weak for p in pairs])
        try:
            lead = bootstrap_apgr(a.oof, strong, weak, against=np.array([p.score for p in pairs]),
                                  rounds=self.validator.rounds, level=self.validator.level, seed=len(pairs))
            out["lead"] = {"value": None if est.apgr is None or alone.apgr is None else round(est.apgr - alone.apgr, 4),
                           "low": round(lead.low, 4), "high": round(lead.high, 4)}
        except ValueError:  # both tiers judged alike on too many pairs
            pass
        return out

    def check(self) -> tuple[bool, str] | None:
        """For `RouteGuard`: while adapted, the adapted route's out-of-fold verdict; before, the router's own."""
        if self.live is None or self.summary is None:
            return self.validator.check()
        est = self.summary["estimate"]  # (the validator's hysteresis: one demoted state for the route)
        return self.validator.decide(est["verdict"], est.get("low"), "adapted: " + self.summary["sentence"])


def adaptation_sentence(summary: dict[str, Any] | None) -> str:
    if not summary:
        return ""
    est, alone = summary["estimate"], summary["router_alone"]
    if est.get("apgr") is None:
        return f"adapted on {summary['pairs']} judged pairs (weight {summary['weight']:.2f})"
    text = (f"adapted on {summary['pairs']} judged pairs (weight {summary['weight']:.2f}): out-of-fold APGR "
            f"{est['apgr']:.3f} ({est['low']:.3f}–{est['high']:.3f})")
    if alone.get("apgr") is not None:
        text += f", router alone {alone['apgr']:.3f}"
    if "lead" in summary:
        lead = summary["lead"]
        text += f", lead {lead['value']:+.3f} ({lead['low']:+.3f}…{lead['high']:+.3f})"
    return text


def simulate(scores: np.ndarray, prompts: Sequence[str], strong: np.ndarray, weak: np.ndarray, n: int, *,
             prior_weight: float = 300.0, rounds: int = 300, level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """`tierwise eval --adapt N`: the data set's questions arrive in a random order (`seed`); the first `n` are
    judged pairs (the recorded outcomes stand in for the judge), the adaptation is fitted on them, and the router
    alone and the adapted router are scored on the rest (APGR with an interval, and the paired lead)."""
    from tierwise.evaluation.metrics import apgr, bootstrap_apgr, routing_curve

    if not 2 * FOLDS <= n <= len(prompts) - 2 * FOLDS:
        raise ValueError(f"--adapt needs between {2 * FOLDS} judged pairs and {2 * FOLDS} fewer than the data set's "
                         f"{len(prompts)} questions")
    order = np.random.default_rng(seed).permutation(len(prompts))
    live, rest = order[:n], order[n:]
    a = fit([prompts[i] for i in live], scores[live], (strong - weak)[live], prior_weight=prior_weight)
    adapted = np.array([a.score(prompts[i], float(scores[i])) for i in rest])
    s, w = strong[rest], weak[rest]
    out: dict[str, Any] = {"judged": n, "rest": len(rest), "weight": round(a.weight, 4), "seed": seed}
    for name, x in (("router", scores[rest]), ("adapted", adapted)):
        ci = bootstrap_apgr(x, s, w, rounds=rounds, level=level, seed=seed) if rounds else None
        out[name] = {"apgr": round(apgr(routing_curve(x, s, w)), 4),
                     "low": None if ci is None else round(ci.low, 4), "high": None if ci is None else round(ci.high, 4)}
    lead = bootstrap_apgr(adapted, s, w, against=scores[rest], rounds=rounds, level=level, seed=seed) if rounds else None
    out["lead"] = {"value": round(out["adapted"]["apgr"] - out["router"]["apgr"], 4),
                   "low": None if lead is None else round(lead.low, 4),
                   "high": None if lead is None else round(lead.high, 4)}
    return out


def simulation_lines(name: str, sim: dict[str, Any]) -> list[str]:
    def ci(d: dict[str, Any], sign: str = "") -> str:
        return "" if d["low"] is None else f" ({d['low']:{sign}.3f}…{d['high']:{sign}.3f})"

    return [f"  {name}: {sim['judged']} judged pairs (weight {sim['weight']:.2f}), scored on the other {sim['rest']}:",
            f"    router alone {sim['router']['apgr']:.3f}{ci(sim['router'])}  adapted {sim['adapted']['apgr']:.3f}"
            f"{ci(sim['adapted'])}  lead {sim['lead']['value']:+.3f}{ci(sim['lead'], '+')}"]
