"""A route's own `privacy.routes` rule wherever the route runs, also inside another route.

The request's guard takes its policy from the route the client named (`ctx.trace.route`). A route with a rule of
its own reached from another one — a fallback's or a cascade's target, a `reflective` route's `judge`, a specialist
— ran under the outer route's policy: `privacy.routes.strict: {pii: local_only}` did not stop the e-mail address
of a request to `main` (targets `strict`, `local`) reaching `strict`'s remote model, redacted under `pii: redact`
and as written under `pii: allow` (session 31, privacy11). The gateway builds such a route behind `RuledRoute`,
which runs it with a guard of its own: the stricter of its rule and the outer guard's, the outer guard's mapping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from tierwise.canonical import Request, Response, StreamChunk
from tierwise.policies.base import Context, Target


class RuledRoute:
    def __init__(self, name: str, inner: Target, gateway: Any) -> None:
        self.name = name
        self.inner = inner
        self._gw = gateway  # its `privacy` boundary is made after the routes are built

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def scoped(self, ctx: Context) -> Context:
        """`ctx` with this route's guard (also for a body sent to its first model by a side endpoint)."""
        b = getattr(self._gw, "privacy", None)
        if b is None or ctx.trace.route == self.name:
            return ctx  # the route the client named: the request's guard holds its rule already
        outer = b.guard(ctx)
        if outer.route == self.name:
            return ctx
        from tierwise.privacy.boundary import Guard

        # The request's own texts: their findings are the outer guard's (a fresh memo rescanned them, one more
        # scan of the whole request per call: bench/privacy_ruled_rescan.py, round 12).
        return replace(ctx, privacy=Guard(b, self.name, outer, reads=outer))

    async def complete(self, req: Request, ctx: Context) -> Response:
        return await self.inner.complete(req, self.scoped(ctx))

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        return await self.inner.stream(req, self.scoped(ctx))
