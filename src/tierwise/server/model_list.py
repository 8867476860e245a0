"""`GET /v1/models` and `GET /v1/models/{id}`: the names a client may put in `model`, in the OpenAI
shape, or in the Anthropic one (with its `limit` / `after_id` / `before_id` paging) when the request
carries `anthropic-version` (the Anthropic SDKs and Claude Code always do).

The names are the config's routes (capability routes such as `capability:summarise` included: a
client can name them), then its models unless the caller's key may not name models directly; a
key limited to some routes sees only those. Nothing else reaches the answer: no provider, URL or
upstream model id.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import orjson

from tierwise.errors import InvalidRequest, NotFound, TierwiseError
from tierwise.wire import anthropic_messages, openai_chat

CREATED_AT = "2025-01-01T00:00:00Z"  # a route has no release date; Anthropic's schema wants one
PREFIXES = ("/v1/models/", "/models/")
ANTHROPIC_MAX_LIMIT = 1000


def usable_names(app: Any, key: Any) -> list[str]:
    gw = app.gw
    names = dict.fromkeys((*gw.cfg.routes, *gw.deployments))  # a route named like a model is listed once
    return [n for n in names if key.visible(n, gw.deployments)]


def _is_anthropic(headers: dict[str, str]) -> bool:
    return "anthropic-version" in headers


def _anthropic_model(name: str) -> dict[str, Any]:
    return {"type": "model", "id": name, "display_name": name, "created_at": CREATED_AT}


def _openai_model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "tierwise"}


def _anthropic_page(names: list[str], query: bytes) -> dict[str, Any]:
    q = {k: v[-1] for k, v in parse_qs(query.decode("latin-1")).items()}
    raw_limit = q.get("limit", "20")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= ANTHROPIC_MAX_LIMIT:
        raise InvalidRequest(f"limit: must be an integer from 1 to {ANTHROPIC_MAX_LIMIT}")
    limit = int(raw_limit)
    after, before = q.get("after_id"), q.get("before_id")
    if after is not None and before is not None:
        raise InvalidRequest("after_id and before_id cannot be used together")
    for field, value in (("after_id", after), ("before_id", before)):
        if value is not None and value not in names:
            raise InvalidRequest(f"{field}: {value[:200]!r} is not a model id this gateway lists")
    if before is not None:
        end = names.index(before)
        page, has_more = names[max(0, end - limit):end], end - limit > 0
    else:
        start = names.index(after) + 1 if after is not None else 0
        page, has_more = names[start:start + limit], start + limit < len(names)
    return {"data": [_anthropic_model(n) for n in page], "has_more": has_more,
            "first_id": page[0] if page else None, "last_id": page[-1] if page else None}


async def list_models(app: Any, scope: dict[str, Any], send: Any, headers: dict[str, str]) -> None:
    anthropic = _is_anthropic(headers)
    codec = anthropic_messages if anthropic else openai_chat
    try:
        names = usable_names(app, app.check_auth(headers))
        if anthropic:
            body = _anthropic_page(names, scope.get("query_string", b""))
        else:
            body = {"object": "list", "data": [_openai_model(n) for n in names]}
    except TierwiseError as e:
        await app.send_json(send, e.status, codec.encode_error(e))
        return
    await app.send_json(send, 200, orjson.dumps(body))


async def retrieve_model(app: Any, scope: dict[str, Any], send: Any, headers: dict[str, str]) -> None:
    """One model by id (`client.models.retrieve(...)`); 404 in the client's schema for a name this
    key cannot use, the same answer as for one that does not exist."""
    anthropic = _is_anthropic(headers)
    codec = anthropic_messages if anthropic else openai_chat
    path = scope["path"]
    name = path[path.index("/models/") + len("/models/"):]
    try:
        key = app.check_auth(headers)
        if not name or name not in usable_names(app, key):
            raise NotFound(f"model {name[:200]!r} does not exist on this gateway (GET /v1/models lists them)")
    except TierwiseError as e:
        await app.send_json(send, e.status, codec.encode_error(e))
        return
    model = _anthropic_model(name) if anthropic else _openai_model(name)
    await app.send_json(send, 200, orjson.dumps(model))
