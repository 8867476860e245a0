"""tierwise as a library: the routes of a config called from your own code, without the HTTP server.

`Tierwise` owns one `Gateway` (providers, routes, ledger, budgets, privacy) and does for a call what the server does
for a request — route resolution, budget admission, the answer cache, the ledger record — so the learning loop,
`tierwise boundary`, `tierwise feedback` and `tierwise flywheel export` see library traffic as they see the
gateway's. Requests are given in the OpenAI Chat Completions shape (`messages`, and any other field of that API);
errors are the gateway's own `TierwiseError`s (`.kind`, `.status`, `.message`).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

from tierwise.canonical import Response
from tierwise.config import Config, load_config
from tierwise.errors import InvalidRequest, TierwiseError
from tierwise.gateway import Gateway, new_request_id
from tierwise.learning.feedback import notify_route, parse_feedback, record_feedback, tier_of, wants_judging
from tierwise.server.build import build_gateway
from tierwise.wire import openai_chat


@dataclass(slots=True)
class Result:
    """One answer: its text, the request id (for `feedback`, `tierwise trace`), the route that served it, where the
    deployment that answered runs (`locality`: `local`/`remote`) and its tier (`tier`: `local`/`frontier`, the words
    of `feedback` and `tierwise boundary`), the deployment, and the canonical response and trace steps."""

    text: str
    request_id: str
    route: str
    locality: str | None
    model: str | None
    response: Response
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tier(self) -> str | None:
        return tier_of(self.locality)


class Tierwise:
    """`async with Tierwise("tierwise.yaml") as tw: r = await tw.chat("main", [{"role": "user", "content": "hi"}])`.

    Leaving the block waits for the routes' background work (shadow runs, judge calls) and writes the ledger."""

    def __init__(self, config: Config | str | os.PathLike[str]) -> None:
        self.cfg = config if isinstance(config, Config) else load_config(config)
        self.gateway: Gateway = build_gateway(self.cfg)
        self._started = False

    async def __aenter__(self) -> Tierwise:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if not self._started:
            await self.gateway.start()
            self._started = True

    async def close(self) -> None:
        """Finish background work (shadow runs, evaluations), close the connections, write the ledger."""
        await self.gateway.close()

    async def idle(self) -> None:
        """Wait until the background work the routes have started (shadow runs, judge calls) has ended. It runs on
        your event loop, off the answers' path; `close` waits for it too (up to 5 s a route, then cancels)."""
        while True:
            tasks = {t for r in self.gateway.routes_built().values() for t in getattr(r, "_background", ())}
            if not tasks:
                return
            await asyncio.wait(tasks)

    async def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> Result:
        """One request to the route (or model) `model`, as a Chat Completions body would give it. Raises a
        `TierwiseError` when it is refused or fails (recorded in the ledger as the server records it)."""
        if params.get("stream"):
            raise InvalidRequest("Tierwise.chat answers whole responses; `stream` is served by the gateway")
        await self.start()
        gw = self.gateway
        t0 = time.perf_counter()
        req = openai_chat.decode_request({**params, "model": model, "messages": messages}, {})
        route, target = gw.route_for(req.model)
        ctx = gw.context(route, new_request_id(), openai_chat.FORMAT, req.model, req)
        status, error = 200, None
        try:
            if gw.spend.active:
                target = await gw.spend.admit(req, ctx, route, target, None)
            target = gw.cached(target, ctx, "", req, openai_chat.FORMAT)
            resp = await target.complete(req, ctx)
            if gw.store_text:
                ctx.notes["answer_text"] = resp.text()
        except TierwiseError as e:
            status, error = e.status, e
            raise
        except asyncio.CancelledError:
            status = 499
            raise
        finally:
            gw.record(ctx, req, status=status, stream=False, latency_ms=(time.perf_counter() - t0) * 1000,
                      error=error)
        answered = next((s for s in reversed(ctx.trace.steps) if s.kind == "call" and s.ok
                         and "role" not in s.detail), None)
        return Result(text=resp.text(), request_id=ctx.trace.request_id, route=route,
                      locality=answered.locality if answered else None, model=answered.name if answered else None,
                      response=resp, steps=[s.to_dict() for s in ctx.trace.steps])

    async def feedback(self, request_id: str, rating: str, reason: str | None = None) -> dict[str, Any]:
        """Rate an answer (`good`/`acceptable`/`poor`, or `up`/`down`), as `POST /v1/tierwise/feedback` does: the
        linked route, task type, tier and model back, and whether a judge will look at it (`judging`)."""
        gw = self.gateway
        if gw.ledger is None:
            raise InvalidRequest("feedback needs the ledger, which this config disables")
        rid, rating, reason = parse_feedback({"request_id": request_id, "rating": rating, "reason": reason})
        linked = await asyncio.to_thread(record_feedback, gw.ledger, rid, rating, reason, source="library")
        rec = await asyncio.to_thread(gw.ledger.get, rid) if wants_judging(gw, linked) else None
        linked["judging"] = notify_route(gw, linked, rec)
        return linked
