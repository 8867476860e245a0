"""Routing metrics exactly as RouteLLM defines them (routellm/evals), plus money.

A router gives every query a score; a query goes to the strong model when its score is at or
above the threshold. RouteLLM takes the thresholds at the 10-quantile bin edges of the scores
(11 points; at the top edge it uses `>` so the last point makes no strong calls), reads the
(strong-call %, quality) curve at each, and reports:
- APGR: (AUC - weak AUC) / (strong AUC - weak AUC), every AUC by the trapezoid rule over the
  curve's own strong-call fractions (so random routing lands near 0.5, an oracle above 1);
- CPT(x%): the strong-call % at which the curve recovers x% of the weak→strong gap, by linear
  interpolation (`np.interp` of the target quality over the curve's qualities, as RouteLLM does).

A single APGR hides how much it would move on other queries of the same kind: `bootstrap_apgr`
gives a percentile interval over resamples of the queries, alone or as the paired difference
between two routers scored on the same queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_BINS = 10


@dataclass(frozen=True)
class Curve:
    thresholds: np.ndarray
    strong_pct: np.ndarray  # 0..100, ascending
    quality: np.ndarray  # mean outcome at each point
    weak_quality: float
    strong_quality: float


def thresholds_for(scores: np.ndarray, bins: int = NUM_BINS) -> np.ndarray:
    """The bin edges `pandas.qcut(scores, bins, retbins=True)` returns (linear quantiles, duplicates kept)."""
    return np.quantile(np.asarray(scores, dtype=float), np.linspace(0.0, 1.0, bins + 1))


def routing_curve(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray, bins: int = NUM_BINS) -> Curve:
    scores = np.asarray(scores, dtype=float)
    strong = np.asarray(strong, dtype=float)
    weak = np.asarray(weak, dtype=float)
    if not (scores.shape == strong.shape == weak.shape) or scores.ndim != 1 or len(scores) == 0:
        raise ValueError("scores and outcomes must be non-empty 1-D arrays of the same length")
    if not np.all(np.isfinite(scores)):
        raise ValueError("router scores must be finite")
    edges, pcts, quals = _curve_points(scores[None, :], strong[None, :], weak[None, :], bins)
    return Curve(edges[:, 0], pcts[:, 0], quals[:, 0], float(weak.mean()), float(strong.mean()))


def _curve_points(s: np.ndarray, strong: np.ndarray, weak: np.ndarray,
                  bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds, strong-call % and quality of the curve of each row of 2-D arrays, as columns
    of (bins + 1)-row arrays in ascending strong-call order."""
    edges = np.quantile(s, np.linspace(0.0, 1.0, bins + 1), axis=1)
    pcts, quals = np.empty(edges.shape), np.empty(edges.shape)
    for i, t in enumerate(edges):
        chosen = s > t[:, None] if i == bins else s >= t[:, None]
        pcts[i] = chosen.mean(axis=1) * 100.0
        quals[i] = np.where(chosen, strong, weak).mean(axis=1)
    order = np.argsort(pcts, axis=0, kind="stable")
    return tuple(np.take_along_axis(a, order, axis=0) for a in (edges, pcts, quals))  # type: ignore[return-value]


def auc(curve: Curve) -> float:
    return float(np.trapezoid(curve.quality, curve.strong_pct / 100.0))


def apgr(curve: Curve) -> float:
    x = curve.strong_pct / 100.0
    weak_auc = float(np.trapezoid(np.full_like(x, curve.weak_quality), x))
    strong_auc = float(np.trapezoid(np.full_like(x, curve.strong_quality), x))
    if strong_auc == weak_auc:
        raise ValueError("APGR is undefined when both models have the same quality (or the curve has no width)")
    return (auc(curve) - weak_auc) / (strong_auc - weak_auc)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float


def _apgr_rows(s: np.ndarray, strong: np.ndarray, weak: np.ndarray, bins: int) -> np.ndarray:
    """`apgr(routing_curve(...))` of every row of 2-D arrays at once; NaN where it is undefined."""
    _, pcts, y = _curve_points(s, strong, weak, bins)
    x = pcts / 100.0
    width = x[-1] - x[0]
    weak_auc, strong_auc = weak.mean(axis=1) * width, strong.mean(axis=1) * width
    gap = strong_auc - weak_auc
    out = np.full(len(s), np.nan)
    ok = gap != 0
    area = np.asarray(np.trapezoid(y, x, axis=0))
    out[ok] = (area[ok] - weak_auc[ok]) / gap[ok]
    return out


def bootstrap_apgr(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray, *, against: np.ndarray | None = None,
                   rounds: int = 1000, level: float = 0.95, seed: int = 0, bins: int = NUM_BINS) -> Interval:
    """Percentile bootstrap interval of APGR: the queries are resampled with replacement `rounds`
    times and the whole curve (thresholds included) is recomputed on each resample. With `against`
    (another router's scores on the same queries) it is the interval of APGR(scores) − APGR(against)
    on the same resamples, which is narrower than comparing two separate intervals. It measures how
    much the figure depends on which queries were drawn, not how much a retrained router would vary."""
    scores, strong, weak = (np.asarray(a, dtype=float) for a in (scores, strong, weak))
    routing_curve(scores, strong, weak, bins)  # the same input checks as a single curve
    if against is not None:
        against = np.asarray(against, dtype=float)
        routing_curve(against, strong, weak, bins)
    if rounds < 1 or not 0.0 < level < 1.0:
        raise ValueError("rounds must be ≥ 1 and level between 0 and 1")
    rng = np.random.default_rng(seed)
    n = len(scores)
    chunk = max(1, 2_000_000 // n)  # rows per batch: bounded memory on large datasets
    values = []
    for start in range(0, rounds, chunk):
        ix = rng.integers(0, n, size=(min(chunk, rounds - start), n))
        v = _apgr_rows(scores[ix], strong[ix], weak[ix], bins)
        if against is not None:
            v = v - _apgr_rows(against[ix], strong[ix], weak[ix], bins)
        values.append(v)
    v = np.concatenate(values)
    v = v[np.isfinite(v)]
    if len(v) < 0.95 * rounds:  # an interval of the other resamples only would be conditional, hence biased
        raise ValueError(f"APGR is undefined on {rounds - len(v)} of {rounds} resamples: the two models differ on "
                         "too few of these queries for an interval")
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(v, [tail, 1.0 - tail])
    return Interval(float(low), float(high), level)


def cpt(curve: Curve, fraction: float) -> float:
    """Strong-call % needed to recover `fraction` of the quality gap (RouteLLM's `x% qual`)."""
    target = curve.weak_quality + fraction * (curve.strong_quality - curve.weak_quality)
    return float(np.interp(target, curve.quality, curve.strong_pct))


def oracle_scores(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Scores of a router that knows the outcomes: the gain itself."""
    return np.asarray(strong, dtype=float) - np.asarray(weak, dtype=float)


@dataclass(frozen=True)
class Prices:
    """USD per million tokens of each tier, and the tokens one query takes when none are recorded.

    Defaults are RouteLLM's cost model (paper App. D): GPT-4 $24.7/M, Mixtral $0.24/M, about 95
    input and 264 output tokens per query.
    """

    strong_per_m: float = 24.7
    weak_per_m: float = 0.24
    input_tokens: float = 95.0
    output_tokens: float = 264.0

    def per_query(self, strong: bool) -> float:
        return (self.strong_per_m if strong else self.weak_per_m) * (self.input_tokens + self.output_tokens) / 1e6


def cost_per_1k(strong_share: float, prices: Prices, *, cascade: bool = False) -> float:
    """USD per 1,000 queries when `strong_share` of them go to the strong model.

    With `cascade`, the weak model answers every query first (a post-hoc scorer needs its answer),
    so its cost is paid on all of them.
    """
    if not 0.0 <= strong_share <= 1.0:
        raise ValueError("strong_share must be between 0 and 1")
    weak_share = 1.0 if cascade else 1.0 - strong_share
    return 1000.0 * (strong_share * prices.per_query(True) + weak_share * prices.per_query(False))


@dataclass(frozen=True)
class Summary:
    name: str
    apgr: float
    cpt50: float
    cpt80: float
    cost50: float  # USD / 1k queries at the CPT(50%) operating point
    cost80: float
    curve: Curve
    apgr_ci: Interval | None = None
    scores: np.ndarray | None = None  # the per-query scores the row was computed from
    baseline: str | None = None  # name of the router `lead` is measured against
    lead: float | None = None  # APGR − the baseline's APGR on the same queries
    lead_ci: Interval | None = None  # paired bootstrap interval of `lead`

    def row(self) -> dict[str, float | str]:
        ci: dict[str, float | str] = {} if self.apgr_ci is None else {"apgr_ci_low": round(self.apgr_ci.low, 4),
                                               "apgr_ci_high": round(self.apgr_ci.high, 4)}
        if self.lead is not None:
            ci.update({"baseline": str(self.baseline), "lead": round(self.lead, 4)})
        if self.lead_ci is not None:
            ci.update({"lead_ci_low": round(self.lead_ci.low, 4), "lead_ci_high": round(self.lead_ci.high, 4)})
        return {"router": self.name, "apgr": round(self.apgr, 4), "cpt50_pct": round(self.cpt50, 2),
                "cpt80_pct": round(self.cpt80, 2), "usd_per_1k_at_cpt50": round(self.cost50, 4),
                "usd_per_1k_at_cpt80": round(self.cost80, 4), **ci}


def summarize(name: str, scores: np.ndarray, strong: np.ndarray, weak: np.ndarray,
              prices: Prices | None = None, *, cascade: bool = False, ci_rounds: int = 0) -> Summary:
    """The table row of one router; with `ci_rounds`, also a 95% bootstrap interval of its APGR (none
    where too many resamples leave it undefined: a handful of queries on which the models rarely differ)."""
    prices = prices or Prices()
    c = routing_curve(scores, strong, weak)
    c50, c80 = cpt(c, 0.5), cpt(c, 0.8)
    ci = None
    if ci_rounds:
        try:
            ci = bootstrap_apgr(scores, strong, weak, rounds=ci_rounds)
        except ValueError:
            pass
    return Summary(name, apgr(c), c50, c80, cost_per_1k(c50 / 100, prices, cascade=cascade),
                   cost_per_1k(c80 / 100, prices, cascade=cascade), c, ci, np.asarray(scores, dtype=float))


def with_lead(row: Summary, baseline: Summary, strong: np.ndarray, weak: np.ndarray, rounds: int) -> Summary:
    """`row` with its APGR lead over `baseline` on the same queries and, with `rounds`, the paired
    bootstrap interval of that lead (both curves recomputed on each resample)."""
    from dataclasses import replace

    assert row.scores is not None and baseline.scores is not None
    ci = None
    if rounds:
        try:
            ci = bootstrap_apgr(row.scores, strong, weak, against=baseline.scores, rounds=rounds)
        except ValueError:
            pass
    return replace(row, baseline=baseline.name, lead=row.apgr - baseline.apgr, lead_ci=ci)
