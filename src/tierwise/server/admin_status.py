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
            buckets, limits = applying(app, reader.key)
            body["budgets"] = [r for r in body["budgets"] if (r["budget"], r["value"]) in buckets]
            body["rate_limits"] = [r for r in body["rate_limits"] if r.get("name") in limits]
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


def applying(app: Any, key: KeyScope) -> tuple[set[tuple[str, str]], set[str]]:
    """The budget buckets (budget, value) and the rate limits (names) that charge or count `key`'s requests: those
    of the routes (and models, when it may name them) it may use, as the request path plans them. Before (authz36)
    a key limited to its team's routes read every `per: global` and `per: model` bucket and every rate limit: the
    spend of a budget covering only another team's route, a model only that route reaches, the limits naming the
    other team's routes and keys. Tag, session and workflow buckets stay hidden (other clients' text)."""
    spend = app.gw.spend
    names = list(key.routes) if key.routes is not None else [
        *app.gw.cfg.routes, *(app.gw.deployments if key.direct_models else ())]
    buckets: set[tuple[str, str]] = set()
    limits: set[str] = set()
    for name in names:
        try:
            plan = spend.plan(name, key.name)
        except Exception:  # (a name no plan is made for: nothing of it to show)
            continue
        buckets.update((c.budget.name, c.value) for c in plan.static)
        limits.update(r.spec.name for r in plan.rates)
    return buckets, limits


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
