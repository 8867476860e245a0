"""The answer cache's admin endpoints on the gateway, for every backend (the memory backend lives
only inside the `tierwise serve` process, so this is the only way to reach it without a restart):

- `GET  /v1/tierwise/cache`            the backend's size and this process's hit/miss counts;
- `POST /v1/tierwise/cache/invalidate` `{"route": R, "tenant": T}` (either, both, or neither for all)
  drops entries from the backend and from this process's semantic index.

Both sit behind the gateway's client keys. A gateway with keys lets a key drop only its own
tenant's entries (a key cannot empty another team's cache); one without keys (local use) lets the
caller name any route or tenant. Errors use OpenAI's error schema, like the other admin routes.
"""

from __future__ import annotations

from typing import Any

import orjson

from tierwise.errors import InvalidRequest, TierwiseError
from tierwise.server.asgi_scope import request_headers


def _unavailable(e: Exception) -> TierwiseError:
    """The backend (Redis, SQLite) failed: a 503 naming only the exception's type (its text may hold
    the backend's URL, password included)."""
    return TierwiseError(f"cache backend unavailable ({type(e).__name__})", status=503, kind="overloaded_error")


def _cache(app: Any) -> Any:
    cache = app.gw.cache
    if cache is None:
        raise InvalidRequest("this gateway's config has no answer cache (cache.enabled is false)")
    return cache


def _filters(data: Any, key: Any, keyed: bool) -> tuple[str | None, str | None]:
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object: {\"route\": ..., \"tenant\": ...}")
    unknown = set(data) - {"route", "tenant"}
    if unknown:
        raise InvalidRequest(f"unknown field(s) {', '.join(sorted(unknown))}; expected route and/or tenant")
    route, tenant = data.get("route"), data.get("tenant")
    for name, v in (("route", route), ("tenant", tenant)):
        if v is not None and (not isinstance(v, str) or not v or len(v) > 256):
            raise InvalidRequest(f"{name} must be a non-empty string of at most 256 characters")
    if keyed:
        if tenant is not None and tenant != key.tenant:
            raise InvalidRequest("a key may only invalidate its own tenant's entries")
        tenant = key.tenant
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
        app.check_auth(request_headers(scope), scope)
        return {"object": "tierwise.cache", **await _cache(app).stats()}

    await _answer(app, send, work)


async def cache_invalidate_endpoint(app: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = request_headers(scope)

    async def work() -> dict[str, Any]:
        key = app.check_auth(headers, scope)
        cache = _cache(app)
        route, tenant = _filters(await app.parse(scope, receive, headers), key, app.keyring.required)
        dropped = await cache.invalidate(route=route, tenant=tenant)
        return {"object": "tierwise.cache.invalidation", "route": route, "tenant": tenant, "dropped": dropped}

    await _answer(app, send, work)
