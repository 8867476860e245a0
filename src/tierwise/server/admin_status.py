"""The read-only admin views: `GET /v1/tierwise/budgets` (usage and what remains of each budget; an admin
or viewer key reads every bucket, a gateway key its own: server/roles.py) and `GET /v1/tierwise/blackboard`
(live statistics and `dynamic` route states: gateway-wide, so an admin's or a viewer's, like /metrics)."""

from __future__ import annotations

from typing import Any

import orjson

from tierwise.errors import Internal, TierwiseError
from tierwise.secret_scrub import scrub_value
from tierwise.server.asgi_scope import request_headers
from tierwise.server.key_scopes import KeyScope
from tierwise.wire import openai_chat


async def budgets(app: Any, scope: dict[str, Any], send: Any) -> None:
    """Usage and what remains of each budget (`tierwise budgets`), for key holders."""
    try:
        reader = app.roles.reader(request_headers(scope), dashboard=False)  # its own buckets, whatever the dashboard says
        body = await app.gw.spend.status()
        if reader.key is not None:  # a gateway key sees its own buckets, not other keys' or clients'
            body["budgets"] = [r for r in body["budgets"] if sees_bucket(reader.key, r)]
            body.pop("reservations_in_flight", None)
    except TierwiseError as e:
        await app.send_json(send, e.status, openai_chat.encode_error(e))
        return
    except Exception as e:  # the shared store is unreachable
        err = Internal(f"budget store unavailable ({type(e).__name__})", status=503, kind="overloaded_error")
        await app.send_json(send, 503, openai_chat.encode_error(err))
        return
    # Tag, session and workflow values are the clients' text: a key sent as a session id was shown to every
    # viewer as sent (session 29). Off the request path: an admin's read.
    await app.send_json(send, 200, orjson.dumps(scrub_value(body)))


def sees_bucket(key: KeyScope, row: dict[str, Any]) -> bool:
    per, value = row["per"], row["value"]
    if per == "key":
        return bool(value == key.name)
    if per == "route":
        return key.routes is None or value in key.routes
    return per in ("global", "model")  # shared totals; tag/session/workflow values are other clients' text


async def blackboard(app: Any, scope: dict[str, Any], send: Any) -> None:
    """Live per-model statistics merged over the replicas, and each `dynamic` route's state.

    Every client's requests move these figures (latency, errors, traffic per model, which tier a
    `dynamic` route sends to), so on a gateway with keys they are an admin's or a viewer's: a
    gateway key gets 403, as for /metrics (docs/observability.md#access)."""
    try:
        app.roles.reader(request_headers(scope), dashboard=False).need_all("GET /v1/tierwise/blackboard")
    except TierwiseError as e:
        await app.send_json(send, e.status, openai_chat.encode_error(e))
        return
    board = app.gw.blackboard
    body: dict[str, Any] = {"enabled": board is not None}
    if board is not None:
        body.update(board.snapshot())
        body["routes"] = {n: {"state": getattr(t, "state", None), "transitions": t.transitions}
                          for n, t in app.gw.routes_built().items() if hasattr(t, "transitions")}
    await app.send_json(send, 200, orjson.dumps(body))
