"""`policy: ensemble`: a route whose answer is an ensemble's final output.

The last user message is the ensemble's input. Every model call the agents made is copied
onto the request's trace, so the ledger row of the request carries the real tokens and cost.
A stream request gets the finished answer as one stream (the final output exists only at
the end of the run).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import Field

from tierwise.canonical import (
    BlockDelta,
    BlockStart,
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    Request,
    Response,
    StreamChunk,
    TextBlock,
    Usage,
)
from tierwise.errors import ConfigError, UpstreamError
from tierwise.policies.base import Context, Target
from tierwise.policies.registry import Builder, PolicyConfig, PolicyType, register
from tierwise.trace import Step


class EnsembleRouteConfig(PolicyConfig):
    policy: str = "ensemble"
    ensemble: str = Field(description="ensemble name (project/global/library) or path relative to the config")
    project_dir: str | None = Field(None, description="folder holding .tierwise/ (default: the config's folder)")


class EnsembleRoute:
    def __init__(self, name: str, ensemble: str, service: Any) -> None:
        self.name = name
        self.ensemble = ensemble
        self.service = service

    async def complete(self, req: Request, ctx: Context) -> Response:
        from tierwise.ensembles.caller import SpendScope

        # Each model call the agents make is admitted by this request's budgets (its route, key, headers):
        # the route itself names no model, so the request's own admission reserved nothing for them.
        spend = SpendScope(ctx.trace.route, ctx.notes.get("key_scope"), req.headers, req.metadata)
        run = await self.service.run(self.ensemble, req.last_user_text(), record=False, spend=spend)
        for a in run.agents:
            for s in a.steps:
                if s.get("kind") == "call":
                    ctx.trace.steps.append(_step(s, a.name))
        ctx.trace.decide(self.name, f"ensemble {run.ensemble} run {run.run_id}: {run.status}")
        if run.status == "failed":
            if spend.refused is not None:  # a spent budget stopped the run: the client hears it as such (429)
                raise spend.refused
            final = run.agent(run.final_agent)
            raise UpstreamError(f"ensemble {run.ensemble!r} failed at agent {final.name!r}: {final.error}",
                                retryable=False)
        out = run.output
        text = out if isinstance(out, str) else _json(out)
        t = run.totals()
        return Response(id="ens_" + run.run_id, model=self.name, content=[TextBlock(text)],
                        usage=Usage(t["input_tokens"], t["output_tokens"]))

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        resp = await self.complete(req, ctx)
        return _as_stream(resp)


async def _as_stream(resp: Response) -> AsyncIterator[StreamChunk]:
    yield StreamChunk([MessageStart(resp.id, resp.model, Usage(resp.usage.input_tokens, 0)),
                       BlockStart(0, TextBlock(""))])
    yield StreamChunk([BlockDelta(0, "text", resp.text())])
    yield StreamChunk([BlockStop(0), MessageDelta("end_turn", resp.usage), MessageStop()])


def _json(v: Any) -> str:
    import orjson

    return orjson.dumps(v, default=str).decode()


def _step(d: dict[str, Any], agent: str) -> Step:
    usage = d.get("usage")
    return Step(
        "call", d.get("name", "?"), ok=d.get("ok"), reason=d.get("reason", ""), model=d.get("model"),
        provider=d.get("provider"), locality=d.get("locality"), status=d.get("status"),
        usage=Usage(**{k: v for k, v in usage.items() if k in Usage.__slots__}) if isinstance(usage, dict)
        else None,
        cost=d.get("cost"), latency_ms=d.get("latency_ms"), detail={"agent": agent},
    )


def _build(cfg: EnsembleRouteConfig, name: str, b: Builder) -> Target:
    from tierwise.ensembles.library import Library
    from tierwise.ensembles.service import EnsembleService

    gateway = b.services
    project = Path(b.base_dir) / (cfg.project_dir or ".")
    library = Library(project, trusted=gateway.cfg.ensembles.trusted_paths(b.base_dir),
                      script_env=gateway.cfg.ensembles.script_env)
    ref = cfg.ensemble
    if ref.endswith((".yaml", ".yml")) and not os.path.isabs(ref):
        ref = str(Path(b.base_dir) / ref)
    service = EnsembleService(gateway, library)
    try:
        ens = library.load(ref)
    except ConfigError as e:
        raise ConfigError(f"route {name!r}: {e.message}") from None
    # Models may be defined after this route in the config: check the ones known so far lazily,
    # but profiles and nested ensembles must resolve now.
    problems = [p for p in library.problems(ens) if "unknown model" not in p]
    if problems:
        raise ConfigError(f"route {name!r}: ensemble {ens.name!r} cannot run: " + "; ".join(problems))
    return EnsembleRoute(name, ref, service)


register(PolicyType("ensemble", EnsembleRouteConfig, _build, lambda c: []))
