"""The `blackboard:` section of tierwise.yaml, and the statistic thresholds policies match on.

Kept apart from blackboard.py so loading a config imports neither Redis nor asyncio machinery.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from tierwise.providers.live_stats import NAMES
from tierwise.redis_url import RedisUrl


class BlackboardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | Literal["auto"] = Field(
        "auto", description="auto: on when a route reads statistics (a `dynamic` route, a `rules` `stats` "
        "matcher); true: also publish this replica's statistics for the others; false: off")
    redis_url: RedisUrl | None = Field(
        None, description="Redis shared by the replicas; unset: the Redis of budgets.store or cache when "
        "their backend is redis, else this process only")
    key_prefix: str = Field("tierwise:board:", min_length=1, max_length=128, pattern=r"^\S+$",
                            description="prefix of the Redis key the blackboard writes")
    replica_id: str | None = Field(None, min_length=1, max_length=100,
                                   description="this replica's name on the blackboard (default host-pid-random)")
    publish_interval_ms: int = Field(250, ge=10, le=60_000, description="how often this replica publishes "
                                     "its statistics and reads the others' (in the background)")
    ttl_s: float = Field(5.0, gt=0, le=3600, description="a replica that has not published for this long "
                         "no longer counts")
    ewma_alpha: float = Field(0.3, gt=0, le=1, description="weight of the newest call in the EWMAs")
    window: int = Field(20, ge=1, le=1000, description="calls kept for the median latency (and a "
                        "replica's weight when merged)")
    half_life_s: float = Field(60.0, gt=0, le=86400, description="a replica's statistics weigh half as much "
                               "in the merge for every this many seconds since its last call to the model")
    share_breakers: bool = Field(True, description="a breaker opened (or closed) on one replica is "
                                 "opened (closed) on the others")
    timeout: float = Field(0.5, gt=0, le=30, description="seconds a Redis call may take")
    warn_interval: float = Field(60.0, gt=0, description="seconds between two 'Redis unavailable' warnings")


class StatConditions(BaseModel):
    """Thresholds on one model's live statistics: `<statistic>_above` / `<statistic>_below`.

    Statistics: see tierwise.providers.live_stats.NAMES. A statistic with no sample yet matches
    no threshold."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="the model (deployment) whose statistics are read "
                              "(rules matchers: required; dynamic: default the local target's models)")
    latency_ms_above: float | None = Field(None, ge=0)
    latency_ms_below: float | None = Field(None, ge=0)
    latency_p50_ms_above: float | None = Field(None, ge=0)
    latency_p50_ms_below: float | None = Field(None, ge=0)
    ttft_ms_above: float | None = Field(None, ge=0)
    ttft_ms_below: float | None = Field(None, ge=0)
    error_rate_above: float | None = Field(None, ge=0, le=1)
    error_rate_below: float | None = Field(None, ge=0, le=1)
    in_flight_above: float | None = Field(None, ge=0)
    in_flight_below: float | None = Field(None, ge=0)
    queue_depth_above: float | None = Field(None, ge=0)
    queue_depth_below: float | None = Field(None, ge=0)
    breaker_open: bool | None = Field(None, description="true: the model's breaker is open")
    _thresholds: list[tuple[str, str, float]] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _something(self) -> StatConditions:
        if not self.thresholds():
            raise ValueError("name at least one threshold, e.g. latency_p50_ms_above: 500 (statistics: "
                             + ", ".join(NAMES) + ")")
        return self

    def thresholds(self) -> list[tuple[str, str, float]]:
        """(statistic, 'above' | 'below', value) for every threshold set (worked out once: rules read it
        on every request)."""
        if self._thresholds is not None:
            return self._thresholds
        out: list[tuple[str, str, float]] = []
        for key, v in self:
            if v is None or key == "model":
                continue
            if key == "breaker_open":
                out.append(("breaker_open", "above" if v else "below", 0.5))
                continue
            stat, _, side = key.rpartition("_")
            out.append((stat, side, float(v)))
        self._thresholds = out
        return out
