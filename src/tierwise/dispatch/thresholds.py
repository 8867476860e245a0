"""Thresholds on blackboard statistics, checked against the merged view: which one holds, and why.

Shared by the `dynamic` policy (shift when any holds, recover when all hold) and the `rules`
policy's `stats` matcher (all must hold). Every answer carries the statistic, its value and the
threshold, so the trace can say exactly why a route moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Threshold = tuple[str, str, float]  # (statistic, "above" | "below", value)


@dataclass(frozen=True, slots=True)
class Reading:
    model: str
    stat: str
    side: str
    value: float | None
    threshold: float

    @property
    def holds(self) -> bool:
        return holds(self.value, self.side, self.threshold)

    def describe(self) -> str:
        if self.stat == "breaker_open":
            return f"{self.model} breaker {'open' if self.value else 'closed'}"
        shown = "no samples" if self.value is None else _fmt(self.stat, self.value)
        sign = ">" if self.side == "above" else "<"
        if not self.holds and self.value is not None:
            sign = "<=" if self.side == "above" else ">="
        return f"{self.model} {self.stat} {shown} {sign} {_fmt(self.stat, self.threshold)}"

    def detail(self) -> dict[str, Any]:
        return {"model": self.model, "statistic": self.stat, "value": self.value, "threshold": self.threshold,
                "side": self.side}


def _fmt(stat: str, v: float) -> str:
    if stat == "error_rate":
        return f"{v:.3f}"
    return f"{v:.0f}" if stat.endswith("_ms") else f"{v:g}"


def holds(value: float | None, side: str, threshold: float) -> bool:
    if value is None:  # no sample yet: no threshold holds
        return False
    return value > threshold if side == "above" else value < threshold


def read(board: Any, model: str, t: Threshold) -> Reading:
    return Reading(model, t[0], t[1], board.value(model, t[0]), t[2])


# Runs on every request of a `dynamic` route on the frontier: it compares numbers and makes a
# Reading (for the trace) only for the threshold it returns.

def first_failing(board: Any, models: list[str], thresholds: list[Threshold]) -> Reading | None:
    """The first threshold that does not hold for one of `models` (None: all hold for all)."""
    for stat, side, limit in thresholds:
        for m in models:
            v = board.value(m, stat)
            if not holds(v, side, limit):
                return Reading(m, stat, side, v, limit)
    return None


def recovery_of(thresholds: list[Threshold], ratio: float) -> list[Threshold]:
    """Default recovery thresholds: each shift threshold moved by `ratio` to the healthy side
    (latency above 500 → recovered below 400 with ratio 0.8), the gap that keeps a route from flapping."""
    out: list[Threshold] = []
    for stat, side, v in thresholds:
        if stat == "breaker_open":
            out.append((stat, "below" if side == "above" else "above", 0.5))
        elif side == "above":
            out.append((stat, "below", v * ratio))
        else:
            out.append((stat, "above", v / ratio))
    return out
