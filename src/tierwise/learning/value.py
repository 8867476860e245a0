"""Which answers are worth judging: the value of information of one more verdict on a task type.

The boundary's decision for a task type is a bet on its local acceptance p against the quality target
t. The target is an exchange rate: serving a request locally saves `saving` dollars, and the route
accepts that for a quality shortfall of at most 1 - t, so one unit of acceptance on one request is
worth lambda = saving / (1 - t) dollars. A decision taken on the current posterior Beta(a, b) pays
off over the task type's future requests, estimated as `horizon` x the type's share of the route's
traffic so far.

Sampling stops where evidence can no longer pay for itself: m more verdicts are worth their cost when
their expected value of sample information (Raiffa-Schlaifer, normal approximation of the preposterior
mean: its spread after m verdicts is sd(p) * sqrt(m / (a + b + m)))

    EVSI(m) = lambda * future requests * E[gain of the decision the boundary takes after m verdicts]

(for a local task type, the shortfall below the target they can reveal: sd_m * L((mean - t) / sd_m) with
L the standard normal loss function; for a frontier one, what moving local gains when the verdicts clear
the boundary's credible bound) exceeds m x the cost of one verdict, for some m. A task type far from the target (in either
direction) or rare enough that its savings cannot repay the verdicts is therefore not judged; one near
the target is judged only while the money at stake on its side of the target is larger than what the
verdicts cost. The forecast behind these numbers starts a task type from what the route has seen on all
task types (its pooled acceptance, worth `pooled_strength` verdicts), since one local model answers them
all: a few unlucky first verdicts then do not stop the evidence a common task type needs. (The boundary's
own moves use the type's evidence alone.) A task type whose posterior is confidently on one side of the target is settled: only a
systematic audit (every k-th request) watches it for drift; with `audit: margin`, k grows for a local type far
above the target (`audit_stretch`), whose rejections each tell the change-point test more.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import repeat
from operator import gt, mul
from statistics import NormalDist
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tierwise.learning.drift import alternative, threshold

BATCHES = (1, 2, 5, 10, 20, 50, 100, 200, 500)


class ValueSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    horizon: int = Field(10_000, ge=100, le=10_000_000, description=(
        "requests of the route over which a boundary decision has to pay back the verdicts behind it"))
    saving_usd: float | None = Field(None, gt=0.0, description=(
        "what one request served locally saves against the frontier (default: measured from the traffic)"))
    judge_usd: float | None = Field(None, ge=0.0, description="one judge call (default: measured)")
    shadow_usd: float | None = Field(None, ge=0.0, description="one shadow run of the local tier (default: measured)")
    settled: float = Field(0.05, gt=0.0, lt=0.5, description=(
        "a task type is settled (only audited) once the probability that its tier is on the wrong side of the "
        "target is below this"))
    pooled_strength: float = Field(4.0, ge=0.0, le=1000.0, description=(
        "the forecast of a task type's acceptance starts from the route's pooled acceptance, counted as this "
        "many verdicts (the tiers' own moves still need the type's own evidence); 0: a uniform start"))
    pool: Literal["route", "parent"] = Field("route", description=(
        "what a task type's forecast starts from: route (every type's pooled acceptance) or parent (the pooled "
        "acceptance of its siblings, the other types whose names share its prefix before the last '/', e.g. "
        "`mmlu/law` and `mmlu/health`; the route's while it has no name prefix or its siblings no verdicts)"))
    pool_strength: Literal["fixed", "estimated"] = Field("fixed", description=(
        "fixed: the pool counts as `pooled_strength` verdicts; estimated: as many as the spread of the pool's "
        "types' acceptances says (empirical Bayes: the Beta whose variance is the spread between the types beyond "
        "their sampling noise), between `pooled_strength` and `pooled_strength_max`"))
    pooled_strength_max: float = Field(50.0, ge=0.0, le=1000.0, description=(
        "with `pool_strength: estimated`: the most verdicts the pool counts as (types that agree closely)"))
    explore: Literal["shadow", "serve"] = Field("shadow", description=(
        "how a frontier task type gets a verdict: shadow (run the local tier beside the frontier's answer) or "
        "serve (once the type has `explore_after` verdicts of its own, answer that request with the local tier "
        "when the quality it is expected to give up, priced at the route's exchange rate, costs less than a "
        "shadow run)"))
    explore_after: int = Field(5, ge=0, le=100_000, description=(
        "verdicts of its own (from shadow runs) a frontier task type needs before `explore: serve` applies"))
    audit: Literal["fixed", "margin", "detect"] = Field("fixed", description=(
        "local audits: fixed (every 1/audit_rate-th use), margin (sparser for a type far above the target, "
        "where each rejection says more: the interval grows with the change test's evidence per rejection, "
        "up to `audit_stretch` times) or detect (spaced so that a drop to the change test's alternative is "
        "detected within `detect_within` of the type's requests on average, `detect_interval`; the change-watch "
        "then judges every request of the type until its test is back at zero or fires, whatever `watch` says)"))
    audit_stretch: float = Field(2.0, ge=1.0, le=10.0, description="the most `audit: margin` stretches the interval")
    audit_budget: float | None = Field(None, gt=0.0, lt=1.0, description=(
        "a share of the savings: while the evaluation the loop has spent so far (judge calls and shadow runs, at "
        "the route's costs) is under this share of what serving locally has saved so far, local task types are "
        "audited `audit_boost` times as often (spaced by accumulated rate, as `audit: margin` spaces them); unset: "
        "audits at `schedule.audit_rate` always"))
    audit_boost: float = Field(2.0, ge=1.0, le=10.0, description=(
        "with `audit_budget`: how many times `schedule.audit_rate` local types are audited while under it"))
    audit_boost_for: Literal["local", "established", "mean"] = Field("local", description=(
        "with `audit_budget`: which local types the boost audits more: every local type (local), only established "
        "ones (more than `schedule.established_uses` verdicts since their move and a posterior mean over "
        "`schedule.established_acceptance`), whose rejections rarely set off watches and moves that are not a drift, "
        "or those whose posterior mean alone is over `schedule.established_acceptance` (mean: no count of verdicts, "
        "so a busy type audited at 2% is boosted before its 20th verdict since its move)"))
    audit_charge: Literal["none", "watch"] = Field("none", description=(
        "with `audit_budget`: what the account charges for an extra audit (one the boost adds) beyond its judge call: "
        "nothing (none) or, when it is planned, the change-watch verdicts its rejection is expected to set off on an "
        "unchanged model (watch: the type's rejection rate times the verdicts the change-point test takes, by Wald's "
        "approximation, to come back to zero after one rejection, at the route's judge cost), so the extra audits stop "
        "while the headroom can still pay for what they set off"))
    audit_window: int | None = Field(None, ge=100, le=10_000_000, description=(
        "with `audit_budget`: the account forgets at 1/`audit_window` per request of the route (an exponentially "
        "weighted account of about that many recent requests), so the boost reads the recent evaluation share; "
        "unset: the account runs from the route's start, where the cold start's exploration weighs for long"))
    audit_goal: float | None = Field(None, gt=0.0, lt=1.0, description=(
        "with `audit_budget`: the boost also stops while the evaluation share projected `horizon` requests on (the "
        "account since the route's start plus, with `audit_window`, the window's recent rates of spending and saving "
        "over those requests) is at or over this share: a guard on the route's evaluation goal for a windowed "
        "account, which forgets what the cold start spent; unset: no guard"))
    detect_within: int = Field(200, ge=10, le=1_000_000, description=(
        "with `audit: detect`: requests of a local type within which a drift should be detected on average"))
    watch: Literal["lean", "confirm", "decide"] = Field("confirm", description=(
        "when the change-point test makes a local type judged beyond its audits: lean (whenever the statistic is "
        "above zero, in proportion to it), confirm (as lean, but a lone rejection is watched only until "
        "`confirmations` accepted verdicts have answered it; the audits wear the rest of the statistic down) or "
        "decide (every request of the type while the statistic is above zero, until it is back at zero or fires: "
        "the watch `audit: detect` runs, here beside the audits `audit` sets)"))
    returned: Literal["full", "light"] = Field("full", description=(
        "how a local type that has been sent back below the target before (`boundary.move_back_keep` lets such a "
        "type come back) is judged while its posterior mean is under the target: full (as any local type) or light "
        "(no value-of-information verdicts, and the change-watch at `lean`'s rate, in proportion to how far the "
        "change-point test has gone to firing, whatever `watch` says): such a type is near the target, where the "
        "tier matters little either way and `watch: decide` judges much of its traffic; a drift still drives the "
        "test, and with it the watch, up"))
    reexplore: Literal["full", "sample"] = Field("full", description=(
        "how a frontier type that has been sent back below the target before (`boundary.move_back_keep` lets such a "
        "type be explored again) is judged while the value of information asks for verdicts: full (every such "
        "request, as any frontier type) or sample (only the `schedule.sample_rate` hash sample of them: the same "
        "verdicts spread over more requests, so a return near the end of the stream, or one the verdicts would "
        "refuse, costs fewer; a type never sent back is explored as before)"))
    confirmations: int = Field(2, ge=1, le=20, description=(
        "with `watch: confirm`: accepted verdicts after a lone rejection that end the watch"))
    per_request: bool = Field(False, description=(
        "with `within` enabled: value verdicts by the requests whose tier they can change (each request takes "
        "the tier its own acceptance calls for, so a frontier type above the target is already served locally "
        "and a steep signal slope leaves few requests near the target), and judge every task type's first "
        "`first_uses` requests"))


SQRT_2PI = math.sqrt(2.0 * math.pi)
SQRT_2 = math.sqrt(2.0)


def normal_loss(z: float) -> float:
    """Standard normal loss function E[(Z - z)+]."""
    return math.exp(-0.5 * z * z) / SQRT_2PI - z * 0.5 * math.erfc(z / SQRT_2)


def _phi(z: float) -> float:
    return math.exp(-0.5 * z * z) / SQRT_2PI


def _upper_tail(z: float) -> float:
    return 0.5 * math.erfc(z / SQRT_2)


def evsi(a: float, b: float, target: float, m: int, stake: float, *, tier: str = "local", n_own: float | None = None,
         z_move: float = 0.0) -> float:
    """Expected value of m more verdicts; `stake` is lambda x future requests (dollars per unit of acceptance).

    Local tier: the boundary moves back when the mean falls below the target, so the value is the expected
    shortfall the verdicts can reveal, stake * sd_m * L((mean - t) / sd_m). Frontier tier: it moves local
    only once the lower credible bound clears the target (mean >= t + z_move * the posterior sd after the m
    verdicts, on the type's own `n_own` verdicts), so the value is what that move gains when it happens,
    stake * E[(mean_m - t) 1{mean_m >= t + c_m}]."""
    return next(evsi_batches(a, b, target, (m,), stake, tier=tier, n_own=n_own, z_move=z_move))


def evsi_batches(a: float, b: float, target: float, batches: tuple[int, ...], stake: float, *, tier: str = "local",
                 n_own: float | None = None, z_move: float = 0.0) -> Iterator[float]:
    """`evsi` for each m of `batches` in turn, lazily (what depends on the posterior alone is computed once: a
    decision under `sampling: value` asks for up to nine batch sizes)."""
    n = a + b
    mean = a / n
    var = a * b / (n * n * (n + 1.0))
    own = n if n_own is None else n_own
    spread = mean * (1.0 - mean)
    for m in batches:
        sd_m = math.sqrt(var * m / (n + m))
        if sd_m <= 0.0:
            yield 0.0
        elif tier == "local":  # normal_loss((mean - target) / sd_m), inline
            z = (mean - target) / sd_m
            yield stake * sd_m * (math.exp(-0.5 * z * z) / SQRT_2PI - z * 0.5 * math.erfc(z / SQRT_2))
        else:  # _upper_tail(d) and _phi(d), inline
            c_m = z_move * math.sqrt(spread / (own + m + 1.0))
            d = (target + c_m - mean) / sd_m
            yield max(0.0, stake * ((mean - target) * (0.5 * math.erfc(d / SQRT_2))
                                    + sd_m * (math.exp(-0.5 * d * d) / SQRT_2PI)))


def audit_stretch(p0: float, target: float, most: float) -> float:
    """How much longer a local type's audit interval can be, from its acceptance p0: the change test fires after
    h / ln((1 - p1) / (1 - p0)) rejections (p1 its drop alternative), so the interval scales with that evidence
    per rejection, relative to a type at the target; between 1 and `most`."""
    p0 = min(max(p0, 0.02), 0.99)
    at = min(max(target, 0.02), 0.99)
    p1, p1t = alternative(p0, target), alternative(at, target)
    if p0 <= at or p1 >= p0:
        return 1.0
    ratio = math.log((1.0 - p1) / (1.0 - p0)) / math.log((1.0 - p1t) / (1.0 - at))
    return min(max(ratio, 1.0), most)


def detect_interval(p0: float, target: float, drift_credible: float, within: int) -> float:
    """Uses between two audits of a local type whose acceptance is p0 (`audit: detect`), so that a drop to the
    change test's alternative p1 (`drift.alternative`) is detected within `within` of the type's requests on
    average. After the drop, the first rejected audit comes k (1 / (1 - p1) - 1/2) requests later on average (half
    an interval to the first audit, then 1 / (1 - p1) audits, each rejected with probability 1 - p1); from there
    the watch judges every request, and the test needs h / KL(p1 || p0) verdicts to reach its threshold h
    (Wald's approximation of the mean run to detection). So k = (within - h / KL) / (1 / (1 - p1) - 1/2), at
    least 1 (every request audited, when even that cannot meet `within`). A type whose acceptance is below the
    target is spaced as one at the target: sending it back is its posterior's business (`move_back`), and the test
    could not tell a drop from it cheaply."""
    p0 = min(max(p0, target, 0.02), 0.99)  # as the test clips it
    p1 = alternative(p0, target)
    kl = p1 * math.log(p1 / p0) + (1.0 - p1) * math.log((1.0 - p1) / (1.0 - p0))
    need = threshold(drift_credible) / kl
    return max(1.0, (within - need) / (1.0 / (1.0 - p1) - 0.5))


# equal-weight quantiles of a standard normal: the spread of a type's standardised request signals
SIGNAL_NODES = tuple(NormalDist().inv_cdf((k + 0.5) / 16) for k in range(16))


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


def _sigmoid(u: float) -> float:
    return 1.0 / (1.0 + math.exp(-u)) if u >= 0 else math.exp(u) / (1.0 + math.exp(u))


def evsi_per_request(a: float, b: float, target: float, m: int, stake: float, slope: float = 0.0) -> float:
    """Expected value of m more verdicts when each request takes the tier its own acceptance calls for
    (`learning.within`: sigmoid(logit(p) + slope * z) against the target, z ~ N(0, 1) its standardised signal,
    p the type's mean), whichever tier the type itself is on: the verdicts can only change the tier of the
    requests whose acceptance they move across the target. For one request that value is the loss its tier
    avoids, sd_z * L(|mean_z - t| / sd_z), with mean_z its acceptance at the type's mean and sd_z the preposterior
    spread sd_m carried through the sigmoid (sd_m * mean_z (1 - mean_z) / (mean (1 - mean))); averaged over the
    signal's spread. Requests already on the side of the target the type's evidence points to, far from it, add
    nothing: a frontier type whose mean is above the target is already served locally, so verdicts are not worth
    the gain of a move its requests have made."""
    n = a + b
    mean = a / n
    var = a * b / (n * n * (n + 1.0))
    sd_m = math.sqrt(var * m / (n + m))
    if sd_m <= 0.0 or stake <= 0.0:
        return 0.0
    if slope == 0.0:
        return stake * sd_m * normal_loss(abs(mean - target) / sd_m)
    base, spread = _logit(mean), mean * (1.0 - mean)
    total = 0.0
    for z in SIGNAL_NODES:
        mz = _sigmoid(base + slope * z)
        sd_z = sd_m * mz * (1.0 - mz) / spread
        total += sd_z * normal_loss(abs(mz - target) / sd_z) if sd_z > 0.0 else 0.0
    return stake * total / len(SIGNAL_NODES)


def worth_sampling(a: float, b: float, target: float, stake: float, cost: float, *, tier: str = "local",
                   n_own: float | None = None, z_move: float = 0.0, per_request: bool = False,
                   slope: float = 0.0) -> bool:
    """Some number of further verdicts is expected to be worth more than it costs (`per_request`: valued on the
    requests' own tiers, `evsi_per_request`, with the type's within-type `slope`)."""
    if stake <= 0.0:
        return False
    if cost <= 0.0:
        return True
    if per_request and (tier == "local" or a / (a + b) >= target):
        # a frontier type whose forecast is above the target already has its requests served locally (within-type
        # routing by the mean): the verdicts can only send them back, not win a move; below the target its
        # requests are all on the frontier and the move's value (the credible bound) still applies
        return any(evsi_per_request(a, b, target, m, stake, slope) > m * cost for m in BATCHES)
    values = evsi_batches(a, b, target, BATCHES, stake, tier=tier, n_own=n_own, z_move=z_move)
    return any(map(gt, values, map(mul, BATCHES, repeat(cost))))


def explore_cost(saving: float, target: float, acceptance: float) -> float:
    """What serving one request of a frontier task type locally, to learn from it, costs beside its judge call:
    the acceptance it is expected to give up (1 - acceptance) priced at the route's exchange rate
    (saving / (1 - target) per unit), less the saving it makes, = saving * (target - acceptance) / (1 - target);
    never below zero (an exploration is not counted as a gain)."""
    return max(0.0, saving * (target - acceptance) / (1.0 - target))


def pooled_prior(evidence: list[tuple[float, float]], low: float, high: float) -> tuple[float, float] | None:
    """The pool's mean acceptance and how many verdicts it is worth, from the types' own (accepted, rejected)
    evidence: the method-of-moments Beta of the spread between the types. The weighted spread of their
    acceptances, sum n_i (p_i - m)^2 / sum n_i, is sampling noise, m (1 - m) (k - 1) / sum n_i, plus the
    spread between them, m (1 - m) / (strength + 1); `strength` is clipped to [low, high] (high when the
    types agree within their noise). None without evidence."""
    rows = [(a, b) for a, b in evidence if a + b > 0.0]
    n = sum(a + b for a, b in rows)
    if n <= 0.0:
        return None
    m = sum(a for a, _ in rows) / n
    if len(rows) < 2 or m <= 0.0 or m >= 1.0:
        return m, low
    spread = sum((a + b) * (a / (a + b) - m) ** 2 for a, b in rows) / n
    between = spread - m * (1.0 - m) * (len(rows) - 1) / n
    strength = high if between <= 0.0 else m * (1.0 - m) / between - 1.0
    return m, min(max(strength, low), high)


__all__ = ["ValueSettings", "audit_stretch", "detect_interval", "evsi", "evsi_per_request", "explore_cost", "normal_loss", "pooled_prior",
           "worth_sampling"]
