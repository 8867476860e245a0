"""The approvals admin API and the approval seam of the request path.

`GET /v1/tierwise/approvals` lists the pending approvals (of every replica, with the Redis
store); `POST /v1/tierwise/approvals` with `{"id", "decision": "approve"|"reject", "reason"}`
decides one. Both need an admin key (`server.admin_keys_env`): a gateway key is refused (403),
no key or an unknown one 401; with no admin key set, the API is off (404). `hold` is what `App.chat` calls for a request of a gated route, before the budget
admission and before a stream starts: it waits for the decision while watching for the client
going away (which cancels the pending record).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from tierwise.dispatch.approvals import ClientLeft
from tierwise.dispatch.gated_route import APPROVED
from tierwise.errors import AuthenticationError, InvalidRequest, NotFound, PermissionDenied, TierwiseError
from tierwise.server.key_scopes import key_digest
from tierwise.server.limits import retry_after_header
from tierwise.wire import openai_chat

Handler = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
PATH = "/v1/tierwise/approvals"


class AdminKeys:
    """The admin keys (environment variables named in server.admin_keys_env), compared in constant time."""

    def __init__(self, env_names: list[str]) -> None:
        self.keys = [(n, key_digest(v)) for n in env_names if (v := os.environ.get(n))]

    def check(self, given: str | None, *, gateway_key: bool = False) -> str:
        """The admin's name (`admin:<ENV>`); 401 without a key or with a key this gateway does not know,
        403 with a gateway key (`gateway_key`) that is not an admin key."""
        if not self.keys:
            # Off, as /metrics and /dashboard are until enabled: a 404 that says which key turns it on.
            raise NotFound("the approvals API is off: no admin key is set (server.admin_keys_env names the "
                           "environment variables that hold them)")
        if not given:
            raise AuthenticationError("this endpoint needs an admin key (server.admin_keys_env)")
        g = key_digest(given)
        found = None
        for name, k in self.keys:  # compare with every key so timing tells nothing
            if hmac.compare_digest(g, k) and found is None:
                found = name
        if found is None and not gateway_key:
            raise AuthenticationError("invalid API key: this endpoint needs an admin key (server.admin_keys_env)")
        if found is None:
            raise PermissionDenied("this endpoint needs an admin key (server.admin_keys_env); a gateway key is not one")
        return f"admin:{found}"


class ApprovalEndpoints:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.admins = AdminKeys(app.gw.cfg.server.admin_keys_env)

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {("GET", PATH): self.list, ("POST", PATH): self.decide}

    async def _answer(self, send: Any, fn: Callable[[], Awaitable[Any]]) -> None:
        try:
            body = await fn()
        except TierwiseError as e:
            await self.app.send_json(send, e.status, openai_chat.encode_error(e), retry_after_header(e))
            return
        except Exception as e:  # the shared store is unreachable
            err = TierwiseError(f"approval store unavailable ({type(e).__name__})", status=503, kind="overloaded_error")
            await self.app.send_json(send, 503, openai_chat.encode_error(err))
            return
        await self.app.send_json(send, 200, orjson.dumps(body))

    def _admin(self, scope: dict[str, Any]) -> str:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        keyring = self.app.keyring
        return self.admins.check(keyring.given(headers), gateway_key=keyring.find(headers) is not None)

    def _approvals(self) -> Any:
        if self.app.gw.approvals is None:
            raise InvalidRequest("this gateway has no approval gates (an `approvals:` section)", status=404)
        return self.app.gw.approvals

    async def list(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def go() -> Any:
            self._admin(scope)
            a = self._approvals()
            return {"backend": a.store.backend, "now": time.time(), "pending": await a.pending()}

        await self._answer(send, go)

    async def decide(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def go() -> Any:
            who = self._admin(scope)
            a = self._approvals()
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            try:  # after the admin check: only an admin's body is read (bounded by server.max_body_bytes)
                data = orjson.loads(await self.app.read_body(scope, receive, headers))
            except orjson.JSONDecodeError:
                raise InvalidRequest("the body is not valid JSON") from None
            if not isinstance(data, dict) or set(data) - {"id", "decision", "reason"}:
                raise InvalidRequest("the body must be {\"id\": ..., \"decision\": \"approve\"|\"reject\", \"reason\": ...}")
            decision = data.get("decision")
            if decision not in ("approve", "reject"):
                raise InvalidRequest("`decision` must be approve or reject")
            return await a.decide(data.get("id"), decision == "approve", who, data.get("reason"))

        await self._answer(send, go)


async def hold(app: Any, scope: dict[str, Any], receive: Any, send: Any, codec: Any, req: Any, ctx: Any,
               route: str, t0: float, rid: tuple[bytes, bytes]) -> bool:
    """Wait for the approval the request's route needs (when gated). True: go on; False: the answer
    (an error) was sent. Also leaves what a gate further down needs on the context (tierwise.dispatch.gated_route)."""

    async def gone() -> None:  # the body has been read: the next message is the client leaving
        while (await receive())["type"] != "http.disconnect":
            pass

    ctx.notes["key_tenant"] = scope["tierwise.key"].tenant
    ctx.notes["client_gone"] = gone
    if route not in app.gw.approvals.cfg.routes:
        return True
    try:
        await app.gw.approvals.gate_request(req, ctx, route, gone)
        ctx.notes.setdefault(APPROVED, set()).add(route)
        return True
    except ClientLeft:
        app.gw.record(ctx, req, status=499, stream=req.stream, latency_ms=(time.perf_counter() - t0) * 1000)
        return False
    except TierwiseError as e:
        app.gw.record(ctx, req, status=e.status, stream=req.stream,
                      latency_ms=(time.perf_counter() - t0) * 1000, error=e)
        await app.send_json(send, e.status, codec.encode_error(e),
                            [rid, (b"x-tierwise-route", route.encode()), *retry_after_header(e)])
        return False
