"""The `dispatch:` section of tierwise.yaml: where Redis is, whose tenant this process acts for,
and the bounds of the task queues; `dispatch.worker` makes the config a worker's
(`tierwise worker -c worker.yaml`). Gateways and workers read the same section, so a
capability's local-only mark and the queue bounds are one setting for both sides.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tierwise.redis_url import RedisUrl

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")  # \Z: `$` would allow a final newline
PRIORITIES = ("high", "normal", "low")  # read in this order: a worker takes high-priority tasks first
Priority = Literal["high", "normal", "low"]


def check_name(v: str, what: str) -> str:
    # Names become parts of Redis keys and ACL patterns: no `:`, `*`, `{`, spaces or glob characters.
    if not NAME.match(v):
        raise ValueError(f"{what} {v!r} must be 1-64 letters, digits, `_`, `.` or `-` (it is part of Redis keys)")
    return v


def check_caller(v: str) -> str:
    """A caller's name is the last part of its queues' keys (`q:<zone>:<cap>:<priority>:<caller>`), and its printed
    rules cover `q:*:<caller>`. Before session 37 the queues were `q:<zone>:<cap>:<priority>`, shared by every caller,
    and an upgrade leaves them behind with their waiting tasks: a caller named `normal` read (XRANGE) and emptied the
    other callers' tasks there (session 37, review37a)."""
    check_name(v, "caller")
    if v in PRIORITIES:
        raise ValueError(f"caller {v!r} is a priority's name; its rules would reach queues of before session 37 "
                         "(choose another name)")
    return v


# The longest a worker's presence may outlive its heartbeat: an index entry scored further ahead of Redis's clock is
# no heartbeat's (see scripts.py: not counted, and removed)
PRESENCE_TTL_MAX_S = 86400

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CapabilityConfig(_Strict):
    """What backs one capability on this worker: exactly one of a model, a route or an ensemble."""

    model: str | None = Field(None, description="a model of this config")
    route: str | None = Field(None, description="a route of this config")
    ensemble: str | None = Field(None, description="an ensemble (name, or file relative to this config)")

    @model_validator(mode="after")
    def _one(self) -> CapabilityConfig:
        if sum(x is not None for x in (self.model, self.route, self.ensemble)) != 1:
            raise ValueError("needs exactly one of `model`, `route`, `ensemble`")
        return self


class WorkerConfig(_Strict):
    id: str | None = Field(None, description="this worker's name (default: a tag of its locality and "
                                    "capabilities, host name and process id)")
    locality: Literal["local", "remote"] = Field(
        "remote", description="local: this machine may see local-only data (it then also reads the local-only "
        "queues of capabilities whose models are all local)")
    region: str | None = None
    capacity: int = Field(4, ge=1, le=10_000, description="tasks run at once, at most")
    capabilities: dict[str, CapabilityConfig] = Field(min_length=1)
    heartbeat: float = Field(5.0, gt=0, le=3600, description="seconds between presence renewals")
    presence_ttl: float = Field(15.0, gt=0, le=PRESENCE_TTL_MAX_S, description="seconds presence outlives the last heartbeat")
    block: float = Field(1.0, gt=0, le=60, description="seconds one wait for new tasks blocks Redis reads")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v, "worker id")

    @field_validator("capabilities")
    @classmethod
    def _caps(cls, v: dict[str, CapabilityConfig]) -> dict[str, CapabilityConfig]:
        for name in v:
            check_name(name, "capability")
        return v

    @model_validator(mode="after")
    def _ttl(self) -> WorkerConfig:
        if self.presence_ttl <= self.heartbeat:
            raise ValueError("presence_ttl must be longer than heartbeat, or presence flickers between beats")
        return self


class DispatchConfig(_Strict):
    redis_url: RedisUrl = Field("redis://127.0.0.1:6379/0", description="Redis to dispatch through; credentials "
                           "belong in the URL via ${ENV} (they never reach logs)")
    prefix: str = Field("tierwise:", description="prefix of every key")
    tenant: str = Field("default", description="the tenant this process acts for: its tasks, results and "
                        "workers are in keys of this tenant only")
    caller: str = Field("caller", description="this caller's name (a gateway or an application) in its result "
                        "streams' keys: a caller's Redis user can be limited to its own (docs/distributed.md)")
    callers: list[str] | None = Field(
        None, max_length=64, description="a worker's: the callers (their `dispatch.caller` names) whose task queues "
        "it reads; default: `caller` alone (each caller publishes to queues of its own, see docs/distributed.md)")
    local_only: list[str] = Field(default_factory=list, description="capabilities whose tasks go only to workers "
                                  "with locality local (published where only they can read)")
    visibility_timeout: float = Field(30.0, gt=0, le=86400, description="seconds a taken task may go without its "
                                      "worker's heartbeat before another worker re-claims it")
    max_attempts: int = Field(3, ge=1, le=100, description="deliveries of one task before it goes to the "
                              "dead-letter stream and its caller gets an error")
    max_pending: int = Field(1000, ge=1, description="tasks queued or running per caller, capability and zone; "
                             "more are refused (back-pressure)")
    max_payload_bytes: int = Field(1 << 20, ge=1024, le=64 << 20, description="largest task payload or result")
    timeout: float = Field(120.0, gt=0, le=86400, description="seconds a caller waits for a result by default")
    unavailable_wait: float = Field(
        10.0, gt=0, le=86400, description="seconds a task keeps retrying an unreachable Redis before its caller gets "
        "DispatchUnavailable (503), however long its own timeout (long enough to ride out a Redis restart)")
    result_ttl: float = Field(3600.0, gt=0, description="seconds a task's completion mark (the dedupe record) is kept")
    worker: WorkerConfig | None = Field(None, description="present in a worker's config (`tierwise worker`)")

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, v: str) -> str:
        return check_name(v, "tenant")

    @field_validator("caller")
    @classmethod
    def _caller(cls, v: str) -> str:
        return check_caller(v)

    @field_validator("callers")
    @classmethod
    def _callers(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else list(dict.fromkeys(check_caller(c) for c in v))

    def read_callers(self) -> list[str]:
        """The callers whose queues a worker of this config reads."""
        return self.callers if self.callers else [self.caller]

    @field_validator("local_only")
    @classmethod
    def _local(cls, v: list[str]) -> list[str]:
        return [check_name(c, "capability") for c in v]

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.:-]{0,64}$", v):
            raise ValueError("prefix may hold letters, digits, `_`, `.`, `:` and `-` only")
        return v

    @field_validator("redis_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^(redis|rediss|unix)://", v):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return v
