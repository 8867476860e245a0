"""The answer cache's admin endpoints on the gateway, for every backend (the memory backend lives
only inside the `tierwise serve` process, so this is the only way to reach it without a restart):

- `GET  /v1/tierwise/cache`            the backend's size and this process's hit/miss counts;
- `POST /v1/tierwise/cache/invalidate` `{"route": R, "tenant": T}` (either, both, or neither for all)
  drops entries from the backend and from this process's semantic index.

Who may call them (the roles of server/roles.py): the statistics count every tenant's traffic and
entries, so on a gateway with keys they are an admin's or a viewer's (a gateway key gets 403, as for
/metrics). An admin key drops any route's or tenant's entries; a gateway key only its own tenant's
(a key cannot empty another team's cache), and a key limited to some routes only those routes' entries
(keys of one tenant may be limited to different routes); a viewer key changes nothing (403). Without keys (local
use) the caller may name any route or tenant. Errors use OpenAI's error schema, like the other
admin routes.
"""

from __future__ import annotations

from typing import Any

import orjson

from tierwise.errors import InvalidRequest, PermissionDenied, TierwiseError
from tierwise.server.asgi_scope import request_headers
from tierwise.server.roles import Reader


def _unavailable(e: Exception) -> TierwiseError:
    """The backend (Redis, SQLite) failed: a 503 naming only the exception's type (its text may hold
    the backend's URL, password included)."""
    return TierwiseError(f"cache backend unavailable ({type(e).__name__})", status=503, kind="overloaded_error")


def _cache(app: Any) -> Any:
    cache = app.gw.cache
    if cache is None:
        raise InvalidRequest("this gateway's config has no answer cache (cache.enabled is false)", status=404)
    return cache


def _filters(data: Any, reader: Reader) -> tuple[str | None, str | None]:
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object: {\"route\": ..., \"tenant\": ...}")
    unknown = set(data) - {"route", "tenant"}
    if unknown:
        raise InvalidRequest(f"unknown field(s) {', '.join(sorted(unknown))}; expected route and/or tenant")
    route, tenant = data.get("route"), data.get("tenant")
    for name, v in (("route", route), ("tenant", tenant)):
        if v is not None and (not isinstance(v, str) or not v or len(v) > 256):
            raise InvalidRequest(f"{name} must be a non-empty string of at most 256 characters")
    if reader.key is not None:  # a gateway key: its own tenant's entries only
        if tenant is not None and tenant != reader.key.tenant:
            raise InvalidRequest("a key may only invalidate its own tenant's entries")
        tenant = reader.key.tenant
    return route, tenant


async def _answer(app: Any, send: Any, work: Any) -> None:
    """Run an admin call; its JSON, or its error in OpenAI's schema (503 when the backend is away)."""
    from tierwise.wire import openai_chat

    try:
        body = await work()
    except TierwiseError as e:
        await app.send_json(send, e.status, openai_chat.encode_error(e))
        return
    except Exception as e:
        await app.send_json(send, 503, openai_chat.encode_error(_unavailable(e)))
        return
    await app.send_json(send, 200, orjson.dumps(body))


async def cache_stats_endpoint(app: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    async def work() -> dict[str, Any]:
        app.roles.reader(request_headers(scope), dashboard=False).need_all("GET /v1/tierwise/cache")
        return {"object": "tierwise.cache", **await _cache(app).stats()}

    await _answer(app, send, work)


async def cache_invalidate_endpoint(app: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = request_headers(scope)

    async def work() -> dict[str, Any]:
        reader = app.roles.reader(headers, dashboard=False)
        if reader.role == "viewer":
            raise PermissionDenied("a viewer key changes nothing: invalidating the cache needs an admin key "
                                   "(server.admin_keys_env) or a gateway key (its own tenant's entries)")
        cache = _cache(app)
        route, tenant = _filters(await app.read_json(scope, receive, headers), reader)
        routes: list[str | None] = [route]
        allowed = reader.key.routes if reader.key is not None else None
        if allowed is not None:  # a key kept to some routes: another route's entries are not its to drop
            if route is not None and route not in allowed:
                raise PermissionDenied(f"this API key may not use {route[:200]!r}")
            routes = [route] if route is not None else sorted(allowed)
        dropped = 0
        for r in routes:
            dropped += await cache.invalidate(route=r, tenant=tenant)
        return {"object": "tierwise.cache.invalidation", "route": route, "tenant": tenant, "dropped": dropped}

    await _answer(app, send, work)
