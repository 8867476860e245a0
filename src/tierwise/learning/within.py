"""Within a task type: which requests are harder or easier than the type's average, from a prompt signal.

The boundary decides per task type, so it moves whole types: the hard questions of a local type are served
locally, the easy ones of a frontier type by the frontier. A request-level signal `x` (in the reflective
route the log of the prompt's length: known before any model runs, for free) is standardised within its
task type (running mean and variance over the type's requests), z = (x - mean) / sd, and each type learns
from its own verdicts how its acceptance moves with z:

    P(accepted | type, z) = sigmoid(logit(type's posterior mean) + beta_type * z)

beta_type is the posterior mode of a logistic regression with the type's acceptance as offset and a normal
prior N(0, `prior_sd`^2) on the slope of a standardised signal, fitted by Newton steps over the type's last
`window` verdicts: with few verdicts, or a signal that says nothing, it stays near zero and nothing changes.
A request then takes the tier its own acceptance estimate calls for — the boundary's rule (acceptance
against the route's quality target) applied to the request instead of the type: the hardest requests of a
local type go to the frontier, the easiest of a frontier type that has evidence go local.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tierwise.learning.slope_pool import pooled_slopes


class WithinSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description=(
        "route each request by its own acceptance estimate (its type's, moved by the prompt signal)"))
    min_verdicts: int = Field(10, ge=2, le=100_000, description=(
        "verdicts with a signal a task type needs before its slope is used"))
    prior_sd: float = Field(1.0, gt=0.0, le=100.0, description=(
        "standard deviation of the normal prior on a type's slope (per standard deviation of the signal)"))
    window: int = Field(500, ge=10, le=100_000, description="latest verdicts of a type its slope is fitted on")
    moved_back: Literal["signal", "type"] = Field("signal", description=(
        "a task type the boundary has moved back to the frontier: `signal` (the default) still lets the prompt "
        "signal send its requests local; `type` leaves them to the type's own tier until it moves local again "
        "(as the text model already is)"))
    near: Literal["off", "rank", "held"] = Field("off", description=(
        "rank: a task type whose own verdicts leave it near the target sends to the frontier the share of its "
        "requests its posterior puts below the target, the ones its request estimates rank lowest "
        "(learning/near_rank.py); held: the same for types on the frontier tier only; off (the default): each "
        "request's estimate against the target"))
    near_band: float = Field(0.05, gt=0.0, lt=0.5, description=(
        "with near: rank or held, a type is split while P(its acceptance < target) lies between this and 1 minus it"))
    near_window: int = Field(200, ge=10, le=100_000, description=(
        "with near: rank or held, latest requests of a type its request's estimate is ranked among"))
    near_min_verdicts: int = Field(20, ge=1, le=100_000, description=(
        "with near: rank or held, verdicts a type needs before it is split"))
    pool: Literal["off", "partial"] = Field("off", description=(
        "partial: each type's slope is shrunk toward the slope pooled over every type by as much as the types' "
        "spread leaves room for (DerSimonian-Laird random effects, learning/slope_pool.py): a slope fitted on a "
        "few dozen verdicts whose sign the other types' contradict no longer decides which of its requests go "
        "where; off (the default): each type's own slope"))
    signal: Literal["length", "router"] = Field("length", description=(
        "the request-level signal: length (the default), the log of the prompt's length; router, the score a saved "
        "router (`router`, e.g. issue 22's `transfer`, trained on other data) gives the prompt "
        "(learning/within_signal.py)"))
    router: str | None = Field(None, description=(
        "with signal: router, the path of a saved router (`tierwise eval ... --save`), relative to the config"))

    @model_validator(mode="after")
    def _router_named(self) -> WithinSettings:
        if self.signal == "router" and not self.router:
            raise ValueError("within.signal: router needs within.router, the path of a saved router")
        return self


@dataclass
class TypeSignal:
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    beta: float = 0.0
    records: deque[tuple[float, float]] = field(default_factory=deque)  # (z, verdict)
    var: float = 0.0  # the slope's variance (1 / the fit's information), read by `pool: partial`

    def add(self, x: float) -> None:
        # Welford: a running mean and variance without keeping the values
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    def z(self, x: float) -> float:
        if self.n < 2 or self.m2 <= 0.0:
            return 0.0
        return (x - self.mean) / math.sqrt(self.m2 / (self.n - 1))


def _sigmoid(u: float) -> float:
    return 1.0 / (1.0 + math.exp(-u)) if u >= 0 else math.exp(u) / (1.0 + math.exp(u))


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1.0 - 1e-4)
    return math.log(p / (1.0 - p))


def fit_slope(rows: list[tuple[float, float]], offset: float, prior_sd: float, start: float = 0.0) -> float:
    """Posterior mode of the slope: Newton steps on sum log-lik(y | offset + beta z) - beta^2 / (2 prior_sd^2)."""
    beta = start
    prec = 1.0 / (prior_sd * prior_sd)
    for _ in range(20):
        grad, info = -beta * prec, prec
        for z, y in rows:
            p = _sigmoid(offset + beta * z)
            grad += z * (y - p)
            info += z * z * p * (1.0 - p)
        step = grad / info  # info >= prec > 0: the prior keeps the step defined
        beta += step
        if abs(step) < 1e-7:
            break
    return beta


def slope_variance(rows: list[tuple[float, float]], offset: float, beta: float, prior_sd: float) -> float:
    """1 / the information of the fitted slope (the prior's included): its variance at the posterior mode."""
    info = 1.0 / (prior_sd * prior_sd)
    for z, _ in rows:
        p = _sigmoid(offset + beta * z)
        info += z * z * p * (1.0 - p)
    return 1.0 / info


class WithinType:
    def __init__(self, settings: WithinSettings) -> None:
        self.settings = settings
        self.types: dict[str, TypeSignal] = {}
        self.shrunk: dict[str, float] = {}  # `pool: partial`: each fitted type's slope after pooling

    def _type(self, task_type: str) -> TypeSignal:
        ts = self.types.get(task_type)
        if ts is None:
            ts = self.types[task_type] = TypeSignal(records=deque(maxlen=self.settings.window))
        return ts

    def standardise(self, task_type: str, x: float) -> float:
        """z of this request's signal within its type (the type's statistics include it)."""
        ts = self._type(task_type)
        ts.add(x)
        return ts.z(x)

    def slope(self, task_type: str) -> float:
        ts = self.types.get(task_type)
        if ts is None or len(ts.records) < self.settings.min_verdicts:
            return 0.0
        if self.settings.pool == "partial":
            return self.shrunk.get(task_type, ts.beta)
        return ts.beta

    def _pool(self) -> None:
        """`pool: partial`: every fitted type's slope shrunk toward the pooled one (`slope_pool.pooled_slopes`)."""
        self.shrunk = pooled_slopes({t: (ts.beta, ts.var) for t, ts in self.types.items()
                                     if len(ts.records) >= self.settings.min_verdicts})

    def acceptance(self, task_type: str, type_mean: float, z: float) -> float:
        b = self.slope(task_type)
        return type_mean if b == 0.0 else _sigmoid(_logit(type_mean) + b * z)

    def record(self, task_type: str, z: float, accepted: float, type_mean: float) -> None:
        """One verdict on a request whose standardised signal was z; refits the type's slope."""
        ts = self._type(task_type)
        ts.records.append((z, min(1.0, max(0.0, float(accepted)))))
        if len(ts.records) >= self.settings.min_verdicts:
            rows = list(ts.records)
            ts.beta = fit_slope(rows, _logit(type_mean), self.settings.prior_sd, ts.beta)
            if self.settings.pool == "partial":
                ts.var = slope_variance(rows, _logit(type_mean), ts.beta, self.settings.prior_sd)
                self._pool()

    def dump(self) -> dict[str, Any]:
        return {t: {"n": ts.n, "mean": ts.mean, "m2": ts.m2, "beta": ts.beta,
                    "records": [list(r) for r in ts.records], **({"var": ts.var} if ts.var > 0.0 else {})}
                for t, ts in self.types.items()}

    def load(self, data: dict[str, Any]) -> None:
        for t, raw in data.items():
            try:
                d = dict(raw)
                ts = TypeSignal(int(d["n"]), float(d["mean"]), float(d["m2"]), float(d["beta"]),
                                deque(((float(z), float(y)) for z, y in d.get("records") or []),
                                      maxlen=self.settings.window), float(d.get("var") or 0.0))
            except (KeyError, TypeError, ValueError):  # a state file is not trusted blindly: skip that type
                continue
            if all(math.isfinite(v) for v in (ts.mean, ts.m2, ts.beta, ts.var)) and ts.var >= 0.0:
                self.types[str(t)] = ts
        if self.settings.pool == "partial":
            for ts in self.types.values():
                if ts.var <= 0.0 and len(ts.records) >= self.settings.min_verdicts:  # a state saved without pooling
                    rows = list(ts.records)
                    ts.var = slope_variance(rows, _logit(sum(y for _, y in rows) / len(rows)), ts.beta,
                                            self.settings.prior_sd)
            self._pool()


__all__ = ["TypeSignal", "WithinSettings", "WithinType", "fit_slope", "slope_variance"]
