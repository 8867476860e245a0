"""How ensembles call models: through the tierwise core, so routing, pricing and breakers apply.

`GatewayCaller` resolves a profile's model name with `Gateway.resolve` and calls the Target
with a fresh per-call Context; the call steps the deployment records (tokens, cost, latency)
become the agent's usage. A semaphore per provider caps calls in flight, because a local GPU
server answers eight requests at once more slowly than one after another.

An agent's `output_schema` goes out as the request's `response_format` (`json_schema`): an
OpenAI-format upstream gets it as is, so a
local server (llama.cpp, vLLM, Ollama) constrains its output to the schema; an Anthropic
upstream gets the schema as an instruction in the system prompt (see wire/anthropic_messages/request_encode.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Protocol

from tierwise.canonical import Message, Request, ResponseFormat, TextBlock
from tierwise.ensembles.results import CallOutcome
from tierwise.ensembles.schema import Profile
from tierwise.errors import TierwiseError
from tierwise.ids import new_id

if TYPE_CHECKING:
    from tierwise.gateway import Gateway

DEFAULT_LOCAL_LIMIT = 4
DEFAULT_REMOTE_LIMIT = 32


class SpendScope:
    """Whose budgets a run's model calls spend: the request that runs the ensemble (its route, gateway
    key and headers: a session or tag budget reads them), or `ensemble:<name>` for a run of the CLI or
    MCP. Each call is admitted on its own (tierwise.budgets), so a spent budget stops the run's next
    call, not only the next request. `refused` keeps the refusal, for the request to answer with."""

    __slots__ = ("route", "key", "headers", "metadata", "refused")

    def __init__(self, route: str, key: Any = None, headers: dict[str, str] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self.route = route
        self.key = key
        # (not the body's length: a call's estimate reads its own prompt)
        self.headers = {k: v for k, v in (headers or {}).items() if k != "content-length"}
        self.metadata = dict(metadata or {})
        self.refused: TierwiseError | None = None


class ModelCaller(Protocol):
    async def call(self, profile: Profile, prompt: str, *,
                   response_format: ResponseFormat | None = None) -> CallOutcome: ...

    def knows(self, model: str) -> bool: ...


def build_request(profile: Profile, prompt: str, response_format: ResponseFormat | None = None,
                  spend: SpendScope | None = None) -> Request:
    return Request(
        model=profile.model,
        messages=[Message("user", [TextBlock(prompt)])],
        system=[TextBlock(profile.system_prompt)] if profile.system_prompt else [],
        max_tokens=profile.max_tokens,
        temperature=profile.temperature,
        response_format=response_format,
        metadata={**(spend.metadata if spend else {}), "tierwise_feature": "ensemble"},
        headers=dict(spend.headers) if spend else {},
    )


class RunCaller:
    """One run's view of the shared caller, with the ensemble's own `concurrency` caps per provider.
    A cap replaces the built-in default for that run's calls, and applies within a limit that is
    set explicitly (the provider's `max_concurrency`, or the service's limits); other runs keep
    their own caps."""

    def __init__(self, inner: GatewayCaller, limits: dict[str, int], spend: SpendScope | None = None) -> None:
        self.inner = inner
        self.caps = {provider: asyncio.Semaphore(n) for provider, n in limits.items()}
        self.spend = spend

    def knows(self, model: str) -> bool:
        return self.inner.knows(model)

    async def call(self, profile: Profile, prompt: str, *,
                   response_format: ResponseFormat | None = None) -> CallOutcome:
        return await self.inner.call(profile, prompt, caps=self.caps, response_format=response_format,
                                     spend=self.spend)


class GatewayCaller:
    def __init__(self, gateway: Gateway, limits: dict[str, int] | None = None) -> None:
        self.gateway = gateway
        self._limits = dict(limits or {})
        self._sems: dict[str, asyncio.Semaphore] = {}

    def knows(self, model: str) -> bool:
        return model in self.gateway.deployments or model in self.gateway.cfg.routes

    def explicit_limit(self, provider: str) -> int | None:
        if provider in self._limits:
            return self._limits[provider]
        pc = self.gateway.cfg.providers.get(provider)
        return pc.max_concurrency if pc is not None else None

    def limit_for(self, provider: str) -> int:
        explicit = self.explicit_limit(provider)
        if explicit:
            return explicit
        pc = self.gateway.cfg.providers.get(provider)
        local = pc is not None and pc.locality == "local"
        return DEFAULT_LOCAL_LIMIT if local else min(DEFAULT_REMOTE_LIMIT, pc.max_connections if pc else 32)

    def semaphore(self, key: str) -> asyncio.Semaphore:
        sem = self._sems.get(key)
        if sem is None:
            sem = self._sems[key] = asyncio.Semaphore(self.limit_for(key))
        return sem

    def provider_of(self, model: str) -> str:
        dep = self.gateway.deployments.get(model)
        # A route may reach several providers; it is limited as a unit under its own name.
        return dep.provider.name if dep is not None else f"route:{model}"

    def local_providers_of(self, model: str) -> list[str]:
        """The local providers `model` (a model, or a route through other routes) can reach, sorted."""
        from tierwise.policies.registry import POLICY_TYPES

        found: set[str] = set()
        seen: set[str] = set()
        todo = [model]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            dep = self.gateway.deployments.get(name)
            if dep is not None:
                if dep.provider.cfg.locality == "local":
                    found.add(dep.provider.name)
                continue
            pc = self.gateway.cfg.routes.get(name)
            if pc is not None:
                todo.extend(POLICY_TYPES[pc.policy].references(pc))
        return sorted(found)

    async def _slots(self, model: str, stack: contextlib.AsyncExitStack, caps: dict[str, asyncio.Semaphore]) -> None:
        """Hold the limits `model`'s call must respect: its provider's, or for a route its own and
        every local provider's it can reach (a GPU server is shared however a call gets to it)."""
        keys = [self.provider_of(model)]
        if model not in self.gateway.deployments:
            keys += self.local_providers_of(model)  # a fixed order: no two calls wait on each other
        for key in keys:
            if key in caps:  # the run's own cap; the shared limit too only when one is set explicitly
                await stack.enter_async_context(caps[key])
                if self.explicit_limit(key) is None:
                    continue
            await stack.enter_async_context(self.semaphore(key))

    async def call(self, profile: Profile, prompt: str, *, caps: dict[str, asyncio.Semaphore] | None = None,
                   response_format: ResponseFormat | None = None, spend: SpendScope | None = None) -> CallOutcome:
        try:
            target = self.gateway.resolve(profile.model)
        except TierwiseError as e:  # e.g. a model removed from the config since validation
            raise CallFailed(e.message) from None
        req = build_request(profile, prompt, response_format, spend)
        ctx = self.gateway.context(profile.model, new_id("ens_"), None, profile.model)
        # the budgets admit and settle the call when it spends a request's (or a key's) budgets and any are set
        scope = spend if spend is not None and self.gateway.spend.active else None
        budgets = self.gateway.spend if scope is not None else None
        async with contextlib.AsyncExitStack() as slots:
            await self._slots(profile.model, slots, caps or {})
            try:
                if budgets is not None and scope is not None:
                    # admitted once it holds its slot: a queued call reserves nothing
                    try:
                        target = await budgets.admit_call(req, ctx, scope.route, profile.model, target, scope.key)
                    except TierwiseError as e:
                        scope.refused = scope.refused or e
                        raise
                resp = await target.complete(req, ctx)
            except TierwiseError as e:
                raise CallFailed(e.message, [s.to_dict() for s in ctx.trace.steps]) from None
            finally:
                if budgets is not None:  # the call's real cost replaces its reservation (a cut call's too)
                    budgets.settle(ctx)
            steps = [s.to_dict() for s in ctx.trace.steps]
        answered = next((s for s in reversed(ctx.trace.steps) if s.kind == "call" and s.ok), None)
        usage = ctx.trace.total_usage()
        calls = ctx.trace.calls()
        costs = [s.cost for s in calls]
        return CallOutcome(
            text=resp.text(),
            model=answered.model if answered else resp.model,
            deployment=answered.name if answered else profile.model,
            provider=answered.provider if answered else None,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            # One call without a known price makes the cost unknown (None), never a partial sum.
            cost_usd=None if None in costs else sum(c for c in costs if c is not None),
            steps=steps,
        )


class CallFailed(Exception):
    """A model call failed; carries the trace steps it made (attempts, partial costs)."""

    def __init__(self, message: str, steps: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.steps = steps or []
