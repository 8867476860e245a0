"""A capability as a route target: `routes: {classify: {capability: classify}}` (or
`policy: capability`) makes a request to that route a task for a worker serving `classify`.

The request goes to the worker as an OpenAI chat body (the gateway's own codec, both ways), the
worker's answer comes back as the route's response, and the trace gets one call step carrying
the worker, the model that answered there, its locality, tokens and cost, so the gateway's
ledger row and metrics are those of any other model call. A stream request gets the finished
answer as a stream. One Dispatcher per gateway process serves all its capability routes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import Field

from tierwise.canonical import Request, Response, StreamChunk
from tierwise.dispatch.config import Priority
from tierwise.errors import ConfigError, UpstreamError
from tierwise.policies.base import Context
from tierwise.policies.registry import PolicyConfig
from tierwise.wire import openai_chat

DISPATCHER_ATTR = "_tierwise_dispatcher"


class CapabilityRouteConfig(PolicyConfig):
    policy: str = "capability"
    capability: str = Field(description="the capability a worker serves (docs/distributed.md)")
    priority: Priority = "normal"
    timeout: float | None = Field(None, gt=0, le=86400, description="seconds to wait for the result "
                                  "(default dispatch.timeout)")
    local_only: bool | None = Field(None, description="publish only to workers with locality local (default: "
                                    "whether dispatch.local_only lists the capability)")


def dispatcher_for(gateway: Any) -> Any:
    """The gateway process's one Dispatcher, made on first use (after a `serve --workers` fork)."""
    d = getattr(gateway, DISPATCHER_ATTR, None)
    if d is None:
        from tierwise.dispatch.client import Dispatcher

        if gateway.cfg.dispatch is None:
            raise ConfigError("a capability route needs a `dispatch:` section (where Redis is)")
        d = Dispatcher.from_config(gateway.cfg.dispatch)
        setattr(gateway, DISPATCHER_ATTR, d)
    return d


class CapabilityTarget:
    def __init__(self, name: str, cfg: CapabilityRouteConfig, gateway: Any) -> None:
        self.name = name
        self.cfg = cfg
        self.gateway = gateway

    async def complete(self, req: Request, ctx: Context) -> Response:
        body = openai_chat.encode_request(req, self.cfg.capability)
        body = {k: v for k, v in body.items() if k not in ("stream", "stream_options", "model")}
        approvals = getattr(self.gateway, "approvals", None)  # approval gates (docs/distributed.md, approvals)
        if approvals is not None and hasattr(approvals, "gate_request"):
            await approvals.gate_request(req, ctx, self.cfg.capability, ctx.notes.get("client_gone"), kind="capability")
        local_only = self.cfg.local_only
        why = None if local_only else self._must_stay_local(req, ctx)
        if why is not None:
            local_only = True
            ctx.trace.decide(self.name, f"capability {self.cfg.capability!r} sent to local workers only: {why}")
        step = ctx.trace.call(self.name, provider="dispatch", detail={"capability": self.cfg.capability})
        t0 = time.perf_counter()
        try:
            r = await dispatcher_for(self.gateway).dispatch(self.cfg.capability, body, priority=self.cfg.priority,
                                                             timeout=self.cfg.timeout, local_only=local_only)
            resp = openai_chat.decode_response(r.body)
        except UpstreamError as e:
            step.ok = False
            step.status = e.status
            step.reason = e.message
            step.latency_ms = (time.perf_counter() - t0) * 1000
            raise
        step.ok = True
        step.status = 200
        step.model = r.model
        step.locality = r.locality
        step.usage = resp.usage
        step.cost = r.cost
        step.latency_ms = (time.perf_counter() - t0) * 1000
        step.detail.update(worker=r.worker, task=r.task_id, attempt=r.attempt)
        return resp

    def _must_stay_local(self, req: Request, ctx: Context) -> str | None:
        """Why this request may only go to local workers under the gateway's privacy policy (None:
        it may go to any). A worker of the `any` zone may be a remote machine, and the gateway's
        privacy boundary sits in front of its own remote deployments only: so a request the policy
        would refuse, block or redact before a remote call stays in the local zone instead, and
        a detector failure keeps it there too (fails closed)."""
        boundary = getattr(self.gateway, "privacy", None)
        if boundary is None:
            return None
        from tierwise.privacy.policy import decide

        guard = boundary.guard(ctx)
        try:
            counts = guard.scan_request(req)
        except Exception:
            return "the privacy detector failed"
        classes = boundary.table.classes_of(counts)
        v = decide(guard.policies, classes, boundary.table.class_entities, frozenset(), counts)
        if v.action != "send":
            return v.reason
        if v.redact:
            return f"it holds {', '.join(sorted(v.redact))}, which the privacy policy redacts before a remote call"
        return None

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        from tierwise.policies.ensemble import _as_stream

        return _as_stream(await self.complete(req, ctx))

    async def drain(self) -> None:
        """Called when the gateway closes: the shared dispatcher goes with the first route asked."""
        d = getattr(self.gateway, DISPATCHER_ATTR, None)
        if d is not None:
            setattr(self.gateway, DISPATCHER_ATTR, None)
            await d.close()


INLINE_KEYS = {"capability", "priority", "timeout", "local_only"}


def lift_inline_capabilities(routes: dict[str, Any]) -> dict[str, Any]:
    """Routes with every inline `{capability: x, ...}` target replaced by the name of a route made for
    it (`capability:x`), so any policy's target (fallback targets, a rule's target, a cascade tier)
    can be a capability without that policy knowing; `{capability: x}` as a whole route is the
    shorthand for `policy: capability`."""
    out: dict[str, Any] = {}
    made: dict[str, Any] = {}

    def name_for(node: dict[str, Any]) -> str:
        parts = [str(node["capability"])]
        if node.get("priority") not in (None, "normal"):
            parts.append(str(node["priority"]))
        if node.get("local_only") is not None:
            parts.append("local" if node["local_only"] else "any")
        if node.get("timeout") is not None:
            parts.append(f"{node['timeout']}s")
        name = "capability:" + ":".join(parts)
        made.setdefault(name, {"policy": "capability", **node})
        return name

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            if "capability" in v and set(v) <= INLINE_KEYS:
                return name_for(v)
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    for name, raw in routes.items():
        if isinstance(raw, dict) and "policy" not in raw and "capability" in raw and set(raw) <= INLINE_KEYS:
            out[name] = {"policy": "capability", **raw}
        elif isinstance(raw, dict) and raw.get("policy") != "capability":
            out[name] = walk(raw)
        elif isinstance(raw, list):
            out[name] = walk(raw)
        else:
            out[name] = raw
    for name, rc in made.items():
        out.setdefault(name, rc)
    return out
