"""A/B splits: a weighted share of a route's traffic goes to each arm, sticky per session or user.

```yaml
routes:
  assistant:
    policy: split
    sticky: session            # session | user | key; requests without one fall back (see below)
    salt: summer-experiment    # changing it reshuffles who lands where
    arms:
      control:   {target: frontier,      weight: 80}
      treatment: {target: local-cascade, weight: 20}
```

An arm's target is any model or route (a deployment, a fallback chain, a cascade, another
policy). Assignment hashes (salt, route, sticky value) with BLAKE2b into [0, 1) and picks the
arm whose cumulative weight share covers it: the same session lands on the same arm on every
replica and after every restart, with no shared state. The sticky value is the session
(`X-Tierwise-Session` or `metadata.tierwise_session`), the user (`X-Tierwise-User`, OpenAI `user`,
Anthropic `metadata.user_id`) or the gateway key's name; when the chosen one is missing the next
of session → user → key is used, and a request with none is assigned by its request id (not
sticky). The arm is recorded on the trace and in the ledger's `arm` column (`tierwise report
--by arm`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tierwise.budgets.plan import SESSION_HEADER
from tierwise.canonical import Request, Response, StreamChunk
from tierwise.policies.base import Context, Target
from tierwise.policies.registry import Builder, PolicyConfig, PolicyType, register

USER_HEADER = "x-tierwise-user"
Sticky = Literal["session", "user", "key"]
_ORDER: tuple[Sticky, ...] = ("session", "user", "key")


class Arm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = Field(description="model or route this arm sends its share to")
    weight: float = Field(description="relative share of traffic (any positive scale: 80/20 or 0.8/0.2)")

    @field_validator("weight")
    @classmethod
    def _positive(cls, v: float) -> float:
        if not math.isfinite(v) or v <= 0:
            raise ValueError("must be a finite number above 0 (remove the arm to give it no traffic)")
        return v


class SplitConfig(PolicyConfig):
    policy: str = "split"
    arms: dict[str, Arm] = Field(description="arm name -> {target, weight}")
    sticky: Sticky = Field("session", description="what keeps a caller on one arm: session, user or key")
    salt: str = Field("", max_length=200, description="changes every assignment when changed (a new experiment)")
    reference: str | None = Field(None, description="frontier model whose prices savings compare to")

    @field_validator("arms")
    @classmethod
    def _arms(cls, v: dict[str, Arm]) -> dict[str, Arm]:
        if len(v) < 2:
            raise ValueError("a split needs at least two arms")
        for name in v:
            if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
                raise ValueError(f"arm name {name[:70]!r} must be 1-64 letters, digits, '-', '_' or '.'")
        return v


def sticky_value(req: Request, ctx: Context, first: Sticky) -> tuple[str, str] | None:
    """(which, value) of the first sticky identity the request carries, starting with `first`."""
    order = (first, *[s for s in _ORDER if s != first])
    for which in order:
        if which == "session":
            v = req.headers.get(SESSION_HEADER) or req.metadata.get("tierwise_session")
        elif which == "user":
            v = req.headers.get(USER_HEADER) or req.user
        else:
            v = ctx.notes.get("key_name")
        if v:
            return which, str(v)[:512]
    return None


def bucket(salt: str, route: str, value: str) -> float:
    """A uniform number in [0, 1) from the value: the same on every machine, in every process."""
    h = hashlib.blake2b(f"{salt}\x1f{route}\x1f{value}".encode("utf-8", "replace"), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


class Split:
    def __init__(self, name: str, arms: list[tuple[str, float, Target]], sticky: Sticky, salt: str) -> None:
        self.name = name
        self.arms = arms
        self.sticky: Sticky = sticky
        self.salt = salt
        total = sum(w for _, w, _ in arms)
        acc, self.edges = 0.0, []
        for _, w, _ in arms:  # cumulative shares; the last edge is exactly 1
            acc += w / total
            self.edges.append(acc)
        self.edges[-1] = 1.0

    def assign(self, value: str) -> tuple[str, Target]:
        u = bucket(self.salt, self.name, value)
        for (arm, _, target), edge in zip(self.arms, self.edges, strict=True):
            if u < edge:
                return arm, target
        arm, _, target = self.arms[-1]
        return arm, target

    def choose(self, req: Request, ctx: Context) -> Target:
        found = sticky_value(req, ctx, self.sticky)
        which, value = found if found is not None else ("request", ctx.trace.request_id)
        arm, target = self.assign(value)
        ctx.notes["arm"] = arm
        how = f"sticky by {which}" if found is not None else "no session, user or key: by request id (not sticky)"
        ctx.trace.decide(self.name, f"arm {arm} ({how}) -> {target.name}", detail={"arm": arm, "sticky": which})
        return target

    async def complete(self, req: Request, ctx: Context) -> Response:
        return await self.choose(req, ctx).complete(req, ctx)

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        return await self.choose(req, ctx).stream(req, ctx)


def _build(cfg: SplitConfig, name: str, b: Builder) -> Target:
    return Split(name, [(arm, a.weight, b.resolve(a.target)) for arm, a in cfg.arms.items()], cfg.sticky, cfg.salt)


def _refs(cfg: Any) -> list[str]:
    return [a.target for a in cfg.arms.values()] + ([cfg.reference] if cfg.reference else [])


register(PolicyType("split", SplitConfig, _build, _refs))
