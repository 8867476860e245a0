"""Hysteresis of the `dynamic` policy: a statistic oscillating around the shift threshold moves
the route once, not on every request; without the gap (recover_ratio 1, no dwell) the same
signal flaps, which is what the gap is for. Statistics are fed directly; the clock is fake."""

from __future__ import annotations

from typing import Any

from tierwise.dispatch.blackboard import Blackboard
from tierwise.dispatch.blackboard_settings import BlackboardConfig
from tierwise.dispatch.thresholds import recovery_of
from tierwise.policies.base import Context
from tierwise.policies.dynamic import Dynamic
from tierwise.providers.live_stats import LiveStats
from tierwise.trace import Trace


class Named:
    def __init__(self, name: str) -> None:
        self.name = name


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def route(ratio: float, dwell: float, clock: Clock) -> tuple[Dynamic, LiveStats]:
    stats = LiveStats(alpha=0.3, window=20)
    board = Blackboard(BlackboardConfig(), {"local": stats})
    shift = [("latency_ms", "above", 300.0)]
    d = Dynamic("auto", Named("local"), Named("frontier"), board, ["local"], shift, recovery_of(shift, ratio),
                min_samples=3, min_dwell_s=dwell, probe_every=1, probe_interval_s=0, clock=clock)
    return d, stats


def run(d: Dynamic, stats: LiveStats, clock: Clock, n: int) -> list[str]:
    """n requests; every one gets a fresh latency sample alternating 270/330 ms (EWMA ~290..310)."""
    chosen: list[str] = []
    for i in range(n):
        ctx: Any = Context(Trace(f"r{i}", "auto"), lambda name: Named(name))
        chosen.append(d.choose(ctx).name)
        stats.ok(330.0 if i % 2 else 270.0, None)
        clock.t += 0.1
    return chosen


def test_oscillating_signal_does_not_flap():
    clock = Clock()
    d, stats = route(0.8, 0.0, clock)
    run(d, stats, clock, 200)
    assert d.transitions == 1 and d.state == "frontier"  # shifted once; ~300 ms is not "recovered" (< 240)


def test_without_the_gap_it_flaps():
    clock = Clock()
    d, stats = route(1.0, 0.0, clock)
    run(d, stats, clock, 200)
    assert d.transitions > 50  # the control: the same signal, no hysteresis


def test_min_dwell_bounds_the_changes():
    clock = Clock()
    d, stats = route(1.0, 5.0, clock)  # no threshold gap, but 5 s (50 requests here) in a state at least
    run(d, stats, clock, 200)
    assert 1 <= d.transitions <= 4


def test_recovers_when_the_signal_really_drops():
    clock = Clock()
    d, stats = route(0.8, 0.0, clock)
    run(d, stats, clock, 20)
    assert d.state == "frontier"
    for _ in range(10):
        stats.ok(20.0, None)
    ctx: Any = Context(Trace("x", "auto"), lambda name: Named(name))
    assert d.choose(ctx).name == "local" and d.state == "local"
    assert "recovered: local latency_ms" in ctx.trace.reason
