"""Dynamic routing: the local tier while it is healthy, the frontier tier while it is slow or failing.

The route reads the local models' live statistics from the blackboard (merged over every
gateway replica, tierwise.dispatch.blackboard) and keeps one state, `local` or `frontier`:

- local → frontier when any `shift_when` threshold holds (e.g. `latency_p50_ms_above: 500`,
  `error_rate_above: 0.05`) for a watched model with at least `min_samples` recent calls;
- frontier → local when every `recover_when` threshold holds (by default each shift threshold
  moved by `recover_ratio` to the healthy side: above 500 ms → below 400 ms).

Hysteresis keeps it from flapping: the gap between the two sets of thresholds, and `min_dwell_s`
spent in a state before leaving it. While on the frontier, one request in `probe_every` (and at
least one every `probe_interval_s`) still goes to the local tier, so its statistics can show
that it recovered — a model that gets no calls has no new numbers. Every request's trace says
which state answered and why (the statistic, its value, the threshold).

The state is per replica; the statistics are shared, so replicas reading the same board move
together.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import Field, model_validator

from tierwise.canonical import Request, Response, StreamChunk
from tierwise.dispatch import thresholds as th
from tierwise.dispatch.blackboard_settings import StatConditions
from tierwise.errors import ConfigError
from tierwise.policies.base import Context, Target
from tierwise.policies.fallback import Fallback
from tierwise.policies.registry import Builder, PolicyConfig, PolicyType, register


class DynamicConfig(PolicyConfig):
    policy: str = "dynamic"
    local: str = Field(description="model or route answering while the local tier is healthy")
    frontier: str = Field(description="model or route answering while it is not")
    watch: list[str] | None = Field(None, description="models whose statistics are read (default: the "
                                    "local-locality models the `local` target can reach)")
    shift_when: StatConditions = Field(description="go to the frontier when any of these holds")
    recover_when: StatConditions | None = Field(None, description="come back when all of these hold "
                                                "(default: shift_when moved by recover_ratio)")
    recover_ratio: float = Field(0.8, gt=0, le=1, description="default recovery thresholds: shift "
                                 "thresholds times this (for `_above`; divided for `_below`)")
    min_samples: int = Field(3, ge=1, le=1000, description="recent calls a model needs before its "
                             "latency or error statistics can shift the route")
    min_dwell_s: float = Field(10.0, ge=0, le=3600, description="seconds in a state before leaving it")
    probe_every: int = Field(10, ge=0, le=100_000, description="while on the frontier, one request in this "
                             "many goes to the local tier (0: none)")
    probe_interval_s: float = Field(30.0, ge=0, le=86400, description="while on the frontier, a request goes "
                                    "to the local tier at least this often (0: never by time)")
    fall_back: bool = Field(True, description="a request the local tier fails with an error another model "
                            "could answer goes to the frontier (as a `fallback` route would)")
    reference: str | None = Field(None, description="frontier model whose prices savings compare to")

    @model_validator(mode="after")
    def _no_model_key(self) -> DynamicConfig:
        for key in ("shift_when", "recover_when"):
            c = getattr(self, key)
            if c is not None and c.model is not None:
                raise ValueError(f"{key}.model: name the models to read in `watch`")
        return self


# Statistics that need recent calls behind them before they may move a route (a single slow first
# call — a model loading — must not). In-flight, queue depth and breaker state are facts at once.
_SAMPLED = {"latency_ms", "latency_p50_ms", "ttft_ms", "error_rate"}


class Dynamic:
    def __init__(self, name: str, local: Target, frontier: Target, board: object, watch: list[str],
                 shift: list[th.Threshold], recover: list[th.Threshold], *, min_samples: int, min_dwell_s: float,
                 probe_every: int, probe_interval_s: float, fall_back: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.local = local
        self.frontier = frontier
        # What a request sent to the local tier calls: the local target, then the frontier if it fails.
        self._local_call: Target = Fallback(name, [local, frontier], retries=0) if fall_back else local
        self.board = board
        self.watch = watch
        self.shift = shift
        self.recover = recover
        self.min_samples = min_samples
        self.min_dwell_s = min_dwell_s
        self.probe_every = probe_every
        self.probe_interval_s = probe_interval_s
        self._clock = clock
        self.state = "local"
        self.since = clock() - min_dwell_s  # a fresh route may shift at once
        self.transitions = 0
        self._skipped = 0  # requests sent to the frontier since the last probe
        self._probed_at = 0.0

    def _shift_reading(self) -> th.Reading | None:
        board: Any = self.board
        for m in self.watch:
            enough = board.samples(m) >= self.min_samples
            for stat, side, limit in self.shift:
                if not enough and stat in _SAMPLED:
                    continue
                v = board.value(m, stat)
                if th.holds(v, side, limit):
                    return th.Reading(m, stat, side, v, limit)
        return None

    def choose(self, ctx: Context) -> Target:
        now = self._clock()
        dwelt = now - self.since >= self.min_dwell_s
        if self.state == "local":
            hit = self._shift_reading()
            if hit is None or not dwelt:
                why = f"local healthy -> {self.local.name}" if hit is None else \
                    f"{hit.describe()}, but in local for < min_dwell_s -> {self.local.name}"
                ctx.trace.decide(self.name, why, detail={"state": "local"})
                return self._local_call
            self._move("frontier", now)
            self._probed_at = now
            ctx.trace.decide(self.name, f"shift to frontier: {hit.describe()} -> {self.frontier.name}",
                             detail={"state": "frontier", "transition": True, **hit.detail()})
            return self.frontier
        blocking = th.first_failing(self.board, self.watch, self.recover)
        if blocking is None and dwelt:
            self._move("local", now)
            ctx.trace.decide(self.name, f"recovered: {self._recovered_why()} -> {self.local.name}",
                             detail={"state": "local", "transition": True})
            return self._local_call
        self._skipped += 1
        if (self.probe_every and self._skipped >= self.probe_every) or (
                self.probe_interval_s and now - self._probed_at >= self.probe_interval_s):
            self._skipped = 0
            self._probed_at = now
            why = blocking.describe() if blocking is not None else "recovered, in frontier for < min_dwell_s"
            ctx.trace.decide(self.name, f"probe of the local tier while on the frontier ({why}) -> "
                             f"{self.local.name}", detail={"state": "frontier", "probe": True})
            return self._local_call
        why = blocking.describe() if blocking is not None else "recovered, but in frontier for < min_dwell_s"
        ctx.trace.decide(self.name, f"frontier until recovered: {why} -> {self.frontier.name}",
                         detail={"state": "frontier", **(blocking.detail() if blocking is not None else {})})
        return self.frontier

    def _recovered_why(self) -> str:
        return ", ".join(th.read(self.board, m, t).describe() for t in self.recover for m in self.watch)

    def _move(self, state: str, now: float) -> None:
        self.state = state
        self.since = now
        self.transitions += 1
        self._skipped = 0

    async def complete(self, req: Request, ctx: Context) -> Response:
        return await self.choose(ctx).complete(req, ctx)

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        return await self.choose(ctx).stream(req, ctx)


def _build(cfg: DynamicConfig, name: str, b: Builder) -> Target:
    from tierwise.route_map import models_of

    gw = b.services
    board = gw.board()
    watch = cfg.watch
    if not watch:
        # The local tier's own models: a `local` fallback route that ends on the frontier must not
        # shift because the frontier model is slower than the local threshold.
        reach = models_of(gw.cfg, cfg.local) if cfg.local in gw.cfg.routes else [cfg.local]
        watch = [m for m in reach if m in gw.deployments and gw.deployments[m].locality == "local"] or reach
    for m in watch:
        if m not in gw.deployments:
            raise ConfigError(f"route {name!r}: watch: {m!r} is not a model (statistics are kept per model)")
    shift = cfg.shift_when.thresholds()
    recover = cfg.recover_when.thresholds() if cfg.recover_when is not None else \
        th.recovery_of(shift, cfg.recover_ratio)
    # An open breaker always counts: the local model is refusing calls, whatever the thresholds say.
    if not any(t[0] == "breaker_open" for t in shift):
        shift = [*shift, ("breaker_open", "above", 0.5)]
    if not any(t[0] == "breaker_open" for t in recover):
        recover = [*recover, ("breaker_open", "below", 0.5)]
    return Dynamic(name, b.resolve(cfg.local), b.resolve(cfg.frontier), board, watch, shift, recover,
                   fall_back=cfg.fall_back,
                   min_samples=cfg.min_samples, min_dwell_s=cfg.min_dwell_s, probe_every=cfg.probe_every,
                   probe_interval_s=cfg.probe_interval_s)


register(
    PolicyType(
        "dynamic",
        DynamicConfig,
        _build,
        lambda c: [c.local, c.frontier, *(c.watch or [])] + ([c.reference] if c.reference else []),
    )
)
