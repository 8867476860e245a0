"""A gated route wherever it is reached: the Target the gateway builds for a route named in
`approvals.routes` waits for an approval before it runs, also when another route falls back to
it, a policy nests it or an ensemble agent names it. A request approved once for a route (at
the HTTP edge, `server/admin_approvals.hold`) is not asked again for it further down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from tierwise.canonical import Request, Response, StreamChunk
from tierwise.policies.base import Context, Target

APPROVED = "approved_routes"  # ctx.notes: the routes this request holds an approval for


class GatedRoute:
    def __init__(self, name: str, inner: Target, gateway: Any) -> None:
        self.name = name
        self.inner = inner
        self._gw = gateway  # its `approvals` is made after the routes are built
        # Hidden: endpoints that reach a route's first deployment directly (embeddings, token counts)
        # must not get around the gate; they see a route that leads to no model of theirs.
        self.targets = None
        self.default = None

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    async def _approved(self, req: Request, ctx: Context) -> None:
        held: set[str] = ctx.notes.setdefault(APPROVED, set())
        if self.name not in held:
            await self._gw.approvals.gate_request(req, ctx, self.name, ctx.notes.get("client_gone"))
            held.add(self.name)

    async def complete(self, req: Request, ctx: Context) -> Response:
        await self._approved(req, ctx)
        return await self.inner.complete(req, ctx)

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        await self._approved(req, ctx)
        return await self.inner.stream(req, ctx)
