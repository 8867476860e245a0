"""Partial pooling of the within-type slopes (`within.pool: partial`).

Each task type's slope of acceptance on the standardised prompt signal (`learning/within.py`) is fitted on that
type's own verdicts, often 10–50 of them. On so few a slope's standard error is 0.35–0.7, about as large as the
slopes themselves, so a type's sign can come out wrong: on the replay's seed 631 `mmlu/philosophy` (whose longer
prompts are the ones the local model gets wrong: the prompt length ranks its acceptance at AUC 0.34 over the whole
data) fitted +0.45 on 46 verdicts, and its split sent its shortest prompts, the ones the local answer was right on,
to the frontier. Under `pool: partial` each type's slope is shrunk toward the slope pooled over every type, by as
much as the spread of the types' slopes leaves room for: the random-effects estimate of DerSimonian and Laird.
With k types' slopes b_i and their variances v_i (1 / the fit's information):

    w_i = 1 / v_i, b = sum w_i b_i / sum w_i, Q = sum w_i (b_i - b)^2,
    tau^2 = max(0, (Q - (k - 1)) / (sum w_i - sum w_i^2 / sum w_i))
    shrunk_i = (b / tau^2 + b_i / v_i) / (1 / tau^2 + 1 / v_i)    (tau^2 = 0: every type takes b)

When the types' slopes scatter no more than their standard errors explain (Q <= k - 1), nothing says the types
differ, and each takes the pooled slope; a type whose own slope is well measured and far from the others keeps
most of it. Fewer than `MIN_TYPES` types with a slope: nothing is pooled (each its own).
"""

from __future__ import annotations

MIN_TYPES = 3  # below this the spread between types (tau^2) has no degrees of freedom worth the name


def pooled_slopes(estimates: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Each type's slope after partial pooling; `estimates` maps a type to (its own slope, its variance)."""
    usable = {t: (b, v) for t, (b, v) in estimates.items() if v > 0.0}
    if len(usable) < MIN_TYPES:
        return {t: b for t, (b, _) in estimates.items()}
    w = {t: 1.0 / v for t, (_, v) in usable.items()}
    sw = sum(w.values())
    pooled = sum(w[t] * usable[t][0] for t in usable) / sw
    q = sum(w[t] * (usable[t][0] - pooled) ** 2 for t in usable)
    denom = sw - sum(x * x for x in w.values()) / sw
    tau2 = max(0.0, (q - (len(usable) - 1)) / denom) if denom > 0.0 else 0.0
    out: dict[str, float] = {}
    for t, (b, v) in estimates.items():
        if t not in usable or tau2 <= 0.0:
            out[t] = pooled
        else:
            out[t] = (pooled / tau2 + b / v) / (1.0 / tau2 + 1.0 / v)
    return out


__all__ = ["MIN_TYPES", "pooled_slopes"]
