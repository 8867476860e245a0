"""What a policy is: something with the same interface as a model.

A `Target` takes a canonical request and returns a response (`await complete(...)`) or a
stream (`it = await stream(...)`, then `async for chunk in it`). A
deployment (one model on one provider) is a Target; so is every policy (fallback, cascade,
rule router, learned router, ...), which lets policies nest wherever a model can stand.
Policies record what they do on `ctx.trace` and call other targets by object or by name
through `ctx.resolve`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tierwise.canonical import Request, Response, StreamChunk, WireFormat
from tierwise.trace import Trace


@runtime_checkable
class Target(Protocol):
    @property
    def name(self) -> str: ...  # read-only here: an attribute or a property satisfies it

    async def complete(self, req: Request, ctx: Context) -> Response: ...

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        """Open a stream. Awaiting it raises if the stream could not start (so a fallback can
        move on); the returned iterator yields chunks and may raise mid-stream."""
        ...


@dataclass(slots=True)
class Context:
    """Per-request state handed down the policy tree."""

    trace: Trace
    resolve: Callable[[str], Target]  # model or route name -> Target (raises NotFound)
    client_format: WireFormat | None = None
    # Free-form data a policy may leave for an outer one (e.g. a learned router's score).
    notes: dict[str, Any] = field(default_factory=dict)
    # Filled in by the app: services policies may use (pricing, ledger, embedder ...).
    services: Any = None
    # The request's privacy guard (tierwise.privacy.boundary.Guard), made on its first remote call.
    privacy: Any = None


async def drain_background(tasks: set[asyncio.Task[Any]], timeout: float) -> None:
    """At shutdown: let a route's background work (shadow runs, evaluations) finish within `timeout`,
    then cancel what is left and wait for it to end."""
    if tasks:
        _, late = await asyncio.wait(set(tasks), timeout=timeout)
        for t in late:
            t.cancel()
        if late:
            await asyncio.wait(late)


def privacy_refusal(ctx: Context, first: int) -> str | None:
    """Why the privacy boundary refused a remote call made since trace step `first` (a class that is
    `local_only`, a region, a detector that failed: tierwise.privacy.boundary records each as a `privacy`
    decision step with action `refused`), else None. A route with a local tier serves such a request there, as
    a fallback moves on to its local target (docs/privacy.md)."""
    for s in ctx.trace.steps[first:]:
        if s.kind == "decision" and s.name == "privacy" and s.ok is False \
                and ((s.detail or {}).get("privacy") or {}).get("action") == "refused":
            return s.reason or "the privacy policy"
    return None
