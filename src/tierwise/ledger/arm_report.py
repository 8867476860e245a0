"""`tierwise report --by arm`: the arms of `split` routes compared, each figure with its uncertainty.

Per arm (of the chat requests whose ledger row carries an `arm`): requests, errors and answers by
a local model (shares with Wilson intervals), cost (total; mean per request with a bootstrap interval), latency p50 and p95
(bootstrap intervals), the verifiers' verdicts (share of judged requests whose verdicts all
passed, Wilson) and client feedback (mean score good=1, acceptable=0.5, poor=0 with a bootstrap
interval, and the share rated good, Wilson). Each arm is also compared with a baseline arm (the
first by name unless given): the difference of every figure with its interval (bootstrap for
means and percentiles, Newcombe's hybrid score interval for shares). The bootstrap uses a fixed
seed, so the same ledger always gives the same report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from tierwise.ledger.store import Ledger

Z95 = 1.959963984540054
BOOT = 2000
RATING_SCORE = {"good": 1.0, "acceptable": 0.5, "poor": 0.0}


@dataclass(slots=True)
class ArmData:
    route: str
    arm: str
    cost: list[float] = field(default_factory=list)  # of the requests whose cost is known
    latency: list[float] = field(default_factory=list)
    errors: int = 0
    requests: int = 0
    local: int = 0  # answered by a local model
    judged: int = 0  # requests with verifier verdicts
    passed: int = 0  # of those, all verdicts passed
    feedback: list[float] = field(default_factory=list)  # one score per rated request (its last rating)


def wilson(k: int, n: int) -> tuple[float, float] | None:
    if n == 0:
        return None
    p = k / n
    d = 1 + Z95**2 / n
    c = (p + Z95**2 / (2 * n)) / d
    h = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float] | None:
    """Interval of p1 - p2 from the two Wilson intervals (Newcombe 1998, method 10)."""
    a, b = wilson(k1, n1), wilson(k2, n2)
    if a is None or b is None:
        return None
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    lo = d - math.sqrt((p1 - a[0]) ** 2 + (b[1] - p2) ** 2)
    hi = d + math.sqrt((a[1] - p1) ** 2 + (p2 - b[0]) ** 2)
    return lo, hi


def _stat(x: np.ndarray, what: str) -> np.ndarray:
    """The statistic along the last axis (x: resamples × n)."""
    if what == "mean":
        return x.mean(axis=-1)  # type: ignore[no-any-return]
    return np.percentile(x, 50 if what == "p50" else 95, axis=-1)  # type: ignore[no-any-return]


def boot(values: list[float], what: str, rng: np.random.Generator) -> tuple[float | None, list[float] | None]:
    """(the statistic, its 95% percentile-bootstrap interval); an interval needs two values."""
    if not values:
        return None, None
    x = np.asarray(values, dtype=float)
    point = float(_stat(x, what))
    if len(x) < 2:
        return point, None
    s = _stat(x[rng.integers(0, len(x), size=(BOOT, len(x)))], what)
    return point, [float(np.percentile(s, 2.5)), float(np.percentile(s, 97.5))]


def boot_diff(a: list[float], b: list[float], what: str,
              rng: np.random.Generator) -> tuple[float | None, list[float] | None]:
    """stat(a) - stat(b) and its interval, the two samples resampled independently."""
    if not a or not b:
        return None, None
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    point = float(_stat(xa, what) - _stat(xb, what))
    if len(xa) < 2 or len(xb) < 2:
        return point, None
    sa = _stat(xa[rng.integers(0, len(xa), size=(BOOT, len(xa)))], what)
    sb = _stat(xb[rng.integers(0, len(xb), size=(BOOT, len(xb)))], what)
    d = sa - sb
    return point, [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))]


def collect(ledger: Ledger, *, since: float | None = None, route: str | None = None) -> dict[tuple[str, str], ArmData]:
    sql = ("SELECT route, arm, status, locality, cost_usd, latency_ms, steps, extra FROM requests "
           "WHERE arm IS NOT NULL AND kind IN ('chat', 'ensemble')")
    args: list[Any] = []
    if since is not None:
        sql += " AND ts >= ?"
        args.append(since)
    if route is not None:
        sql += " AND route = ?"
        args.append(route)
    out: dict[tuple[str, str], ArmData] = {}
    for r in ledger.iter_rows(sql + " ORDER BY route, arm, ts", args):
        d = out.setdefault((r["route"], r["arm"]), ArmData(r["route"], r["arm"]))
        d.requests += 1
        if (r["status"] or 0) >= 400:
            d.errors += 1
        d.local += r["locality"] == "local"
        if r["cost_usd"] is not None:
            d.cost.append(float(r["cost_usd"]))
        d.latency.append(float(r["latency_ms"] or 0.0))
        verdicts = [s.get("ok") for s in orjson.loads(r["steps"] or "[]") if s.get("kind") == "verdict"]
        if verdicts:
            d.judged += 1
            d.passed += all(v is True for v in verdicts)
        ratings = (orjson.loads(r["extra"]) if r["extra"] else {}).get("feedback") or []
        scores = [RATING_SCORE[f["rating"]] for f in ratings if isinstance(f, dict) and f.get("rating") in RATING_SCORE]
        if scores:
            d.feedback.append(scores[-1])
    return out


def _share(k: int, n: int) -> dict[str, Any]:
    ci = wilson(k, n)
    return {"k": k, "n": n, "share": k / n if n else None, "ci95": list(ci) if ci else None}


def _figures(d: ArmData, rng: np.random.Generator) -> dict[str, Any]:
    mean_cost, mean_ci = boot(d.cost, "mean", rng)
    p50, p50_ci = boot(d.latency, "p50", rng)
    p95, p95_ci = boot(d.latency, "p95", rng)
    fb, fb_ci = boot(d.feedback, "mean", rng)
    return {
        "route": d.route, "arm": d.arm, "requests": d.requests,
        "errors": _share(d.errors, d.requests),
        "local": _share(d.local, d.requests),
        "cost_usd": {"total": float(sum(d.cost)), "mean": mean_cost, "mean_ci95": mean_ci,
                     "known": len(d.cost), "unknown": d.requests - len(d.cost)},
        "latency_ms": {"p50": p50, "p50_ci95": p50_ci, "p95": p95, "p95_ci95": p95_ci},
        "verdicts": _share(d.passed, d.judged),
        "feedback": {"rated": len(d.feedback), "mean_score": fb, "mean_score_ci95": fb_ci,
                     "good": _share(sum(1 for s in d.feedback if s == 1.0), len(d.feedback))},
    }


def _difference(a: ArmData, base: ArmData, rng: np.random.Generator) -> dict[str, Any]:
    def diff(vals: tuple[float | None, list[float] | None]) -> dict[str, Any]:
        return {"diff": vals[0], "ci95": vals[1]}

    def share_diff(k1: int, n1: int, k2: int, n2: int) -> dict[str, Any]:
        ci = newcombe(k1, n1, k2, n2)
        return {"diff": (k1 / n1 - k2 / n2) if n1 and n2 else None, "ci95": list(ci) if ci else None}

    good_a = sum(1 for s in a.feedback if s == 1.0)
    good_b = sum(1 for s in base.feedback if s == 1.0)
    return {
        "arm": a.arm, "baseline": base.arm,
        "mean_cost_usd": diff(boot_diff(a.cost, base.cost, "mean", rng)),
        "latency_p50_ms": diff(boot_diff(a.latency, base.latency, "p50", rng)),
        "latency_p95_ms": diff(boot_diff(a.latency, base.latency, "p95", rng)),
        "error_share": share_diff(a.errors, a.requests, base.errors, base.requests),
        "local_share": share_diff(a.local, a.requests, base.local, base.requests),
        "verdict_pass_share": share_diff(a.passed, a.judged, base.passed, base.judged),
        "feedback_mean_score": diff(boot_diff(a.feedback, base.feedback, "mean", rng)),
        "feedback_good_share": share_diff(good_a, len(a.feedback), good_b, len(base.feedback)),
    }


def arm_report(ledger: Ledger, *, since: float | None = None, route: str | None = None,
               baseline: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Per route with a split: each arm's figures and its differences from the baseline arm."""
    data = collect(ledger, since=since, route=route)
    routes: dict[str, list[ArmData]] = {}
    for (r, _), d in sorted(data.items()):
        routes.setdefault(r, []).append(d)
    out = []
    for r, arms in routes.items():
        rng = np.random.default_rng(seed)
        base = next((a for a in arms if a.arm == baseline), arms[0])
        out.append({"route": r, "baseline": base.arm, "arms": [_figures(a, rng) for a in arms],
                    "differences": [_difference(a, base, rng) for a in arms if a is not base]})
    return {"by": "arm", "confidence": 0.95, "bootstrap_resamples": BOOT, "routes": out}
