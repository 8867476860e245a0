"""The HTTP face of the gateway: a plain ASGI app (no framework on the hot path).

Routes: OpenAI `POST /v1/chat/completions`, `GET /v1/models`, `POST /v1/embeddings`;
Anthropic `POST /v1/messages` (also `?beta=true`) and `POST /v1/messages/count_tokens`;
OpenAI Responses `POST /v1/responses` (wire/openai_responses.py, stored answers in response_store.py);
`GET /health`. Every error leaves in the schema of the API the client spoke; failures
after a stream started become that API's mid-stream error event.

Here: routing, the request's body and auth, and the chat endpoints up to the answer; a streamed
answer is relayed by stream_relay.py; count_tokens and embeddings live in deployment_endpoints.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import orjson

from tierwise import console_log
from tierwise.budgets.controller import Refused
from tierwise.cache.admin import cache_invalidate_endpoint, cache_stats_endpoint
from tierwise.cache.answer_cache import cache_header
from tierwise.canonical import Request
from tierwise.errors import (
    BudgetExceeded,
    Internal,
    InvalidRequest,
    NotFound,
    RequestTooLarge,
    TierwiseError,
)
from tierwise.gateway import Gateway, new_request_id
from tierwise.learning.feedback import feedback_endpoint
from tierwise.observability.endpoints import Endpoints as observability_endpoints
from tierwise.server import admin_approvals, admin_status, health, model_list, openapi
from tierwise.server.asgi_scope import Receive, Scope, Send, header_values, request_headers
from tierwise.server.deployment_endpoints import (
    SideCalls,
    count_tokens,
    embeddings,
    first_deployment,
    responses_input_tokens,
)
from tierwise.server.forwarding_policy import REACH_FIELDS, ForwardingGuard
from tierwise.server.json_depth import shape_problem
from tierwise.server.key_scopes import KeyRing, KeyScope
from tierwise.server.limits import (
    BIG_BODY_BYTES,
    BODY_TIMED_OUT,
    CLIENT_LEFT,
    WORK,
    BodyBudget,
    check_n,
    retry_after_header,
)
from tierwise.server.origin_guard import OriginGuard
from tierwise.server.response_store import ResponseStore
from tierwise.server.roles import Roles
from tierwise.server.stream_cap import CALL_SLOT, ClientCap
from tierwise.server.stream_cap import SLOT as STREAM_SLOT
from tierwise.server.stream_relay import relay_stream
from tierwise.wire import anthropic_messages, openai_chat, openai_responses

log = logging.getLogger("tierwise.server")

JSON = (b"content-type", b"application/json")


# Endpoints that exist but are off by default: a 404 for them says which key turns them on.
OFF_BY_DEFAULT = (("/dashboard", "dashboard"), ("/metrics", "metrics"))


# Endpoints of the three APIs that tierwise does not offer: their 404 says so, and what to use instead.
UNSUPPORTED = (
    ("/v1/messages/batches", "message batches are not supported by this gateway: send each request to "
                             "POST /v1/messages"),
    ("/v1/responses/", "stored responses cannot be retrieved, deleted, cancelled, listed or compacted here: "
                       "it keeps them only for previous_response_id (see docs/responses.md)"),
    ("/v1/completions", "the legacy Completions API is not supported by this gateway: use POST /v1/chat/completions"),
)


def _unsupported(path: str) -> str | None:
    for prefix, why in UNSUPPORTED:
        if path.startswith(prefix):
            return why
    return None


def _off_hint(path: str, observability: Any) -> str:
    """Which key turns on the endpoint `path` is under, when it is off (nothing when it is on)."""
    for prefix, part in OFF_BY_DEFAULT:
        if (path == prefix or path.startswith(prefix + "/")) and not getattr(observability, part).enabled:
            return f" ({prefix} is off: set `observability.{part}.enabled: true` in the config, see docs/observability.md)"
    return ""


NO_STORE = (b"cache-control", b"no-store")


def _no_store(send: Send) -> Send:
    """`send` that marks the answer `Cache-Control: no-store` (unless its handler set a Cache-Control).

    The GET endpoints answer each key with what it may see (`/health`, `/v1/models`, `/openapi.json`, the budget,
    blackboard, cache and approval views): sent without a Cache-Control, a shared cache in front of the gateway that
    skips only requests with `Authorization` (Varnish's built-in rules, a CDN caching everything) kept the answer to
    an `x-api-key` request and served it to the next caller of the URL, whatever its key."""

    async def no_store_send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            headers = msg.get("headers") or []
            if not any(k.lower() == b"cache-control" for k, _ in headers):
                msg = {**msg, "headers": [*headers, NO_STORE]}
        await send(msg)

    return no_store_send


class App:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.max_body = gateway.cfg.server.max_body_bytes
        self.limits = gateway.cfg.server.limits
        self.big_bodies = asyncio.Semaphore(1)  # bodies over BIG_BODY_BYTES parsed and decoded one at a time
        self.keyring = KeyRing(gateway.cfg.server)
        # With two client keys or more, one key holds at most half of it; a single key has no other to be kept
        # from (its own fourth upload got 503 at half the budget), nor has an open gateway.
        in_flight = self.limits.max_body_bytes_in_flight
        several = len({scope.name for _, scope in self.keyring.keys}) > 1
        self.budget = BodyBudget(in_flight, max(in_flight // 2, self.max_body) if several else None)
        v4, v6 = self.limits.network_prefix_v4, self.limits.network_prefix_v6
        self.streams = ClientCap(self.limits.max_streams_per_client, v4, v6)  # streamed answers open per client
        self.calls = ClientCap(self.limits.max_requests_per_client, v4, v6, what="model requests in flight",
                               setting="server.limits.max_requests_per_client", slot=CALL_SLOT)  # streamed or not
        self.auth_required = self.keyring.required
        self.reachability = health.Reachability()
        self._openapi: dict[KeyScope | None, bytes] = {}
        self.access_log = gateway.cfg.server.access_log
        if self.access_log:
            console_log.enable_access_log()
        self.in_flight = 0  # HTTP requests being handled (a request's ledger row is queued before it ends)
        self.routes: dict[tuple[str, str], Callable[..., Awaitable[None]]] = {
            ("POST", "/v1/chat/completions"): self.chat_openai,
            ("POST", "/chat/completions"): self.chat_openai,
            ("POST", "/v1/messages"): self.chat_anthropic,
            ("POST", "/v1/responses"): self.chat_responses,
            ("POST", "/responses"): self.chat_responses,
            ("POST", "/v1/messages/count_tokens"): lambda sc, rc, sd: count_tokens(self, sc, rc, sd),
            ("POST", "/v1/responses/input_tokens"): lambda sc, rc, sd: responses_input_tokens(self, sc, rc, sd),
            ("POST", "/responses/input_tokens"): lambda sc, rc, sd: responses_input_tokens(self, sc, rc, sd),
            ("GET", "/v1/models"): self.models,
            ("GET", "/models"): self.models,
            ("POST", "/v1/embeddings"): lambda sc, rc, sd: embeddings(self, sc, rc, sd),
            ("POST", "/v1/tierwise/feedback"): lambda sc, rc, sd: feedback_endpoint(self, sc, rc, sd),  # learning/
            ("GET", "/health"): self.health,
            ("HEAD", "/health"): self.health,  # uptime checkers and `curl -I` (uvicorn sends no body for HEAD)
            ("GET", "/v1/tierwise/budgets"): lambda sc, rc, sd: admin_status.budgets(self, sc, sd),
            ("GET", "/v1/tierwise/blackboard"): lambda sc, rc, sd: admin_status.blackboard(self, sc, sd),
            ("GET", "/v1/tierwise/cache"): lambda sc, rc, sd: cache_stats_endpoint(self, sc, rc, sd),  # cache/admin.py
            ("POST", "/v1/tierwise/cache/invalidate"): lambda sc, rc, sd: cache_invalidate_endpoint(self, sc, rc, sd),
            ("GET", "/openapi.json"): self.openapi_doc,
            ("GET", "/"): self.health,
        }
        self.roles = Roles(self)  # who reads many clients' requests (dashboard, budgets)
        self.observability = observability_endpoints(self)
        self.routes.update(self.observability.routes())  # /metrics, /dashboard (when enabled)
        self.routes.update(admin_approvals.ApprovalEndpoints(self).routes())  # /v1/tierwise/approvals (admin keys)
        # Browser and client reach (Host/Origin/CORS/content type, forwarded betas and fields).
        self.allow: dict[str, str] = {}
        for m, p in self.routes:
            self.allow[p] = ", ".join(sorted({*self.allow.get(p, "").split(", "), m} - {""}))
        self.guard = OriginGuard(gateway.cfg.server, self._send_error)
        self.forwarding = ForwardingGuard(gateway.cfg.server.forwarding, {
            "anthropic": anthropic_messages.KNOWN_FIELDS, "openai": openai_chat.KNOWN_FIELDS,
            "responses": openai_responses.KNOWN_FIELDS})
        self.side_calls = SideCalls()  # count_tokens and embeddings calls in flight (deployment_endpoints.py)
        rs = gateway.cfg.server.responses
        self.response_store = ResponseStore(max_count=rs.max_count, max_bytes=rs.max_bytes,
                                            max_response_bytes=rs.max_response_bytes, ttl_s=rs.ttl)

    # ------------------------------------------------------------------ ASGI entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        t = scope["type"]
        if t == "http":
            log_access = None
            if self.access_log:  # off by default: then the access log costs this one check
                send, log_access = console_log.access_logged(scope, send)
            try:
                if not self.guard.passes(scope):
                    screened = await self.guard.screen(scope, send, self.allow.get(scope["path"]))
                    if screened is None:
                        return
                    send = screened
                handler = self.routes.get((scope["method"], scope["path"]))
                if handler is None:
                    await self.no_route(scope, send)
                    return
                if scope["method"] != "POST":  # what a GET answers depends on the caller's key: no cache keeps it
                    send = _no_store(send)
                self.in_flight += 1
                try:
                    await handler(scope, receive, send)
                except asyncio.CancelledError:
                    if not scope.get(CLIENT_LEFT):  # (the server stopping)
                        raise
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]  # the client left: nothing to say
                except Exception:  # a handler's unexpected failure (a broken ledger, a bug): still the API's schema
                    log.exception("%s %s failed", scope["method"], scope["path"][:200])
                    try:
                        await self._send_error(scope, send, Internal("internal error in the gateway; see its log"), [])
                    except Exception:  # the answer had started: the server ends the connection
                        pass
                finally:
                    self.in_flight -= 1
                    self.budget.give_back(scope)
                    self.give_back_caps(scope)  # (every other way out than an answer's end)
            finally:
                if log_access is not None:
                    log_access()
        elif t == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await self.gw.start()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.gw.close()
                await self.observability.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def codec_for_path(path: str) -> ModuleType:
        if path.startswith("/v1/messages"):
            return anthropic_messages
        return openai_responses if path.startswith(("/v1/responses", "/responses")) else openai_chat

    async def no_route(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        if scope["method"] == "GET" and path.startswith(model_list.PREFIXES):
            await model_list.retrieve_model(self, scope, _no_store(send), request_headers(scope))
            return
        # `/v1/v1/...`: a base URL that ends in /v1 given to a client that adds /v1 itself (the Anthropic SDK,
        # litellm's anthropic/): answer in the schema of the endpoint it meant, and say how to fix the URL.
        meant = path[3:] if path.startswith("/v1/v1/") else None
        codec = self.codec_for_path(meant or path)
        if codec is openai_chat and "anthropic-version" in request_headers(scope):
            codec = anthropic_messages  # an Anthropic client on a path of no API: its SDK reads this schema
        allow = self.allow.get(path)
        if allow is not None:
            err: TierwiseError = InvalidRequest(f"method {scope['method'][:20]} is not allowed on {path}", status=405)
            await self.send_json(send, err.status, codec.encode_error(err), [(b"allow", allow.encode())])
            return
        why = _unsupported(path) or f"no such endpoint: {path[:200]}{_off_hint(path, self.gw.cfg.observability)}"
        if meant is not None and meant in self.allow:
            why = (f"no such endpoint: {path[:200]}; the client added /v1 to a base URL that already ends in /v1: "
                   f"give it the gateway's address without /v1 (it then calls {meant[:200]})")
        await self.send_json(send, 404, codec.encode_error(NotFound(why)))

    async def _send_error(self, scope: Scope, send: Send, err: TierwiseError,
                          extra: list[tuple[bytes, bytes]]) -> None:
        await self.send_json(send, err.status, self.codec_for_path(scope["path"]).encode_error(err), extra)

    @staticmethod
    async def send_json(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = [JSON, (b"content-length", str(len(body)).encode())]
        if extra:
            headers.extend(extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def give_back_caps(self, scope: Scope) -> None:
        """A model-bound request's per-client counts (server/stream_cap.py), given back as its answer's last bytes
        leave: a client in a closed loop sends its next request the moment they arrive, and a stream's task ends
        event-loop turns later (at its cap, 114 of 2,013 such requests were refused). Once: the slots are popped."""
        if CALL_SLOT in scope:
            self.calls.give_back(scope)
            if STREAM_SLOT in scope:
                self.streams.give_back(scope)

    def check_auth(self, headers: dict[str, str], scope: Scope | None = None) -> KeyScope:
        key = self.keyring.check(headers)
        if scope is not None:
            scope["tierwise.key"] = key
        return key

    def route_for(self, scope: Scope, model: str) -> tuple[str, Any]:
        """The gateway's routing, limited to what the request's key may name."""
        key = scope.get("tierwise.key", self.keyring.open_scope)
        try:
            route, target = self.gw.route_for(model)
        except NotFound:
            raise self._unknown(key, model) from None
        if key.routes is not None and route not in key.routes:  # another team's route: a 403 told it exists
            raise self._unknown(key, model)
        key.admit(model, route, self.gw.deployments)
        return route, target

    def _unknown(self, key: KeyScope, model: str) -> NotFound:
        """The 404 for a name this key may not use: the names on offer, as far as this key may see them (never
        another team's route), with the closest of them."""
        from tierwise.config_keys import near_name

        usable = sorted(model_list.usable_names(self, key))
        names = ", ".join(usable) or "nothing this key may use"
        return NotFound(f"unknown model or route {model[:200]!r}; {near_name(model[:200], usable)}"
                        f"this gateway serves: {names}")

    def policy_of(self, route: str) -> str | None:
        pc = self.gw.cfg.routes.get(route)
        return getattr(pc, "policy", None)

    async def read_body(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            raise RequestTooLarge(f"request body is larger than this gateway's limit of {self.max_body} bytes")
        # Bytes count as they arrive, not as announced: headers announcing 32 MiB that never came held the
        # whole budget for body_timeout (eight idle connections refused every client's body for a minute).
        msg = await self._body_part(scope, receive)
        body = msg.get("body", b"")
        self.budget.take(scope, len(body))
        if not msg.get("more_body"):
            return body  # type: ignore[no-any-return]
        parts = [body]
        size = len(body)
        while True:
            msg = await self._body_part(scope, receive)
            if msg["type"] == "http.disconnect":
                raise InvalidRequest("client went away while sending the body")
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise RequestTooLarge(f"request body is larger than this gateway's limit of {self.max_body} bytes")
            self.budget.take(scope, len(chunk))
            parts.append(chunk)
            if not msg.get("more_body"):
                return b"".join(parts)

    async def _body_part(self, scope: Scope, receive: Receive) -> dict[str, Any]:
        msg = await receive()
        if scope.get(BODY_TIMED_OUT):  # set by the connection guard (server/limits.py)
            raise InvalidRequest(f"the request body stopped arriving: it was not complete within "
                                 f"{self.limits.body_timeout:g} s (server.limits.body_timeout)", status=408)
        return msg

    async def parse(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> Any:
        self.check_auth(headers, scope)
        return await self.read_json(scope, receive, headers)

    async def read_json(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> Any:
        """The request's body as JSON, bounded (size, bytes in flight, depth); the caller checked the key."""
        return self.parse_body(await self.read_body(scope, receive, headers), headers, scope)

    def parse_body(self, body: bytes, headers: dict[str, str], scope: Scope | None = None) -> Any:
        if not body:
            raise InvalidRequest("request body is empty; expected a JSON object")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            # (asked only of a body that failed: nothing on the way of one that parses). A transfer coding
            # before `chunked` (`Transfer-Encoding: gzip, chunked`) is not undone by the server either.
            # Every line of each header (two `Transfer-Encoding` lines are one list: the dict kept the last).
            for name in ("content-encoding", "transfer-encoding"):
                encoding = header_values(scope, name) if scope is not None else headers.get(name, "")
                encoding = encoding.strip().lower()
                if any(c.strip() not in ("identity", "chunked", "") for c in encoding.split(",")):
                    raise InvalidRequest(f"request bodies must not be compressed ({name.title()}: {encoding[:40]}): "
                                         "send the JSON as it is", status=415) from None
            raise InvalidRequest(f"request body is not valid JSON: {e.msg} at position {e.pos}") from None
        problem = shape_problem(body, data, self.limits)
        if problem is not None:
            raise InvalidRequest(problem)
        return data

    async def decode_big(self, body: bytes, headers: dict[str, str], codec: Any,
                         scope: Scope | None = None) -> tuple[Any, Request]:
        """A big body's parse and decode, one big body at a time, with a turn for other requests between the
        two. Each holds the event loop for its whole length (a 32 MB body of 40,000 turns: ~0.2 s + ~0.3 s) and a
        worker thread would not free it (orjson and the decoder hold the GIL throughout); big bodies decoded
        side by side stacked those holds in front of every other client's request."""
        async with self.big_bodies:
            data = self.parse_body(body, headers, scope)
            await asyncio.sleep(0)
            self.forwarding.apply(data, headers, codec.FORMAT)
            req: Request = codec.decode_request(data, headers)
        await asyncio.sleep(0)  # (the next big body's waiter runs after the loop's other ready work)
        return data, req

    # ------------------------------------------------------------------ chat

    async def chat_openai(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.chat(scope, receive, send, openai_chat)

    async def chat_anthropic(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.chat(scope, receive, send, anthropic_messages)

    async def chat_responses(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A codec object per request: it reads and writes the client's stored responses.
        owner = openai_responses.owner_of(self.keyring.required, self.keyring.given(request_headers(scope)))
        await self.chat(scope, receive, send, openai_responses.Exchange(self.response_store, owner))

    async def chat(self, scope: Scope, receive: Receive, send: Send, codec: Any) -> None:
        t0 = time.perf_counter()
        request_id = new_request_id()
        rid = (b"x-tierwise-request-id", request_id.encode())
        headers = request_headers(scope)
        try:
            self.check_auth(headers, scope)  # `parse`, without its one more coroutine on the hot path
            body = await self.read_body(scope, receive, headers)
            if len(body) > BIG_BODY_BYTES:
                data, req = await self.decode_big(body, headers, codec, scope)
            else:
                data = self.parse_body(body, headers, scope)
                self.forwarding.apply(data, headers, codec.FORMAT)
                req = codec.decode_request(data, headers)
            check_n(req.n, self.limits)
            route, target = self.route_for(scope, req.model)
            self.forwarding.check_tools(data, codec.FORMAT, self.policy_of(route))
            # (given back when the request ends, in __call__)
            held = self.calls.take(scope, req.n if req.n > 1 else 1)  # n choices: n calls on an Anthropic upstream
            if req.stream:
                self.streams.take(scope, 1, held)
        except TierwiseError as e:  # rejected: nothing reached an upstream, nothing is recorded
            await self.send_json(send, e.status, codec.encode_error(e), [rid, *retry_after_header(e)])
            return
        except Exception:
            log.exception("could not decode request %s", request_id)
            bad = InvalidRequest("request could not be understood")
            await self.send_json(send, bad.status, codec.encode_error(bad), [rid])
            return
        ctx = self.gw.context(route, request_id, codec.FORMAT, req.model, req)
        key = ctx.notes["key_scope"] = scope["tierwise.key"]  # what it may name (the advisor tool's model too)
        ctx.notes["key_name"] = key.name  # split policies stick by it (policies/split.py)
        if self.gw.approvals is not None:  # a gated route waits here for a human's decision
            if not await admin_approvals.hold(self, scope, receive, send, codec, req, ctx, route, t0, rid):
                return
        if self.gw.spend.active:  # budgets and rate limits (tierwise.budgets): reserve, or refuse/downgrade
            try:
                target = await self.gw.spend.admit(req, ctx, route, target, scope.get("tierwise.key"))
            except BudgetExceeded as e:
                # A cached answer costs nothing: the cache below may still serve the request; only a
                # miss reaches this target, which refuses as admission would have.
                target = Refused(e)
            except TierwiseError as e:
                self.gw.record(ctx, req, status=e.status, stream=req.stream, latency_ms=0.0, error=e)
                await self.send_json(send, e.status, codec.encode_error(e), [rid, *retry_after_header(e)])
                return
        target = self.gw.cached(target, ctx, scope.get("tierwise.key", self.keyring.open_scope).tenant, req, codec.FORMAT)
        scope[WORK] = asyncio.current_task()  # the client leaving cancels the work done for it (server/limits.py)
        if req.stream:
            await relay_stream(self, scope, send, receive, codec, req, target, ctx, t0, rid)
            return
        status, error = 200, None
        try:
            resp = await target.complete(req, ctx)
            body = codec.encode_response(resp, req.model)
            if self.gw.store_text:  # `ledger.store_text`: the answer goes into the request's ledger row
                ctx.notes["answer_text"] = resp.text()
        except TierwiseError as e:
            status, error, body = e.status, e, codec.encode_error(e)
        except asyncio.CancelledError:  # the client left (or the server is stopping): recorded, as a stream is
            self.gw.record(ctx, req, status=499, stream=False, latency_ms=(time.perf_counter() - t0) * 1000)
            raise
        except Exception:
            log.exception("request %s failed", request_id)
            error = Internal("internal error in the gateway; see its log")
            status, body = 500, codec.encode_error(error)
        finally:
            scope.pop(WORK, None)
        trace = ctx.trace
        extra = [
            rid,
            (b"x-tierwise-route", route.encode()),
            (b"x-tierwise-steps", trace.header_summary().encode()),
            *cache_header(ctx),
        ]
        if error is not None:
            extra.extend(retry_after_header(error))  # 429, and 503 while a breaker is open
        # Recorded before the answer goes out, so a client that reads the ledger next finds its row.
        latency = (time.perf_counter() - t0) * 1000
        self.gw.record(ctx, req, status=status, stream=False, latency_ms=latency, ttft_ms=latency, error=error)
        self.give_back_caps(scope)
        await self.send_json(send, status, body, extra)

    # ------------------------------------------------------------------ other endpoints

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        await model_list.list_models(self, scope, send, request_headers(scope))

    async def openapi_doc(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The `model` names are what the caller's key may use (as in /v1/models); without a key, when
        # keys are required, none: the route and model names are not for anyone who asks.
        key = self.keyring.find(request_headers(scope)) if self.auth_required else self.keyring.open_scope
        doc = self._openapi.get(key)
        if doc is None:
            doc = self._openapi[key] = orjson.dumps(self._document(key))  # one per configured key at most
        await self.send_json(send, 200, doc)

    def _document(self, key: KeyScope | None) -> dict[str, Any]:
        """The OpenAPI document for this config and key: the `model` names it serves, and which lead to embeddings."""
        cfg = self.gw.cfg
        if key is None:
            chat = embedding = {"type": "string", "description": "a route or model name (GET /v1/models lists them)"}
        else:
            names = [n for n in (*cfg.routes, *self.gw.deployments) if key.visible(n, self.gw.deployments)]
            plain = [n for n in names if not any(c in n for c in "*?[")]
            patterns = [n for n in names if n in cfg.routes and n not in plain]
            default = cfg.server.default_route
            chat = openapi.model_schema(plain, patterns, any_name=default is not None and key.visible(default, ()))
            embed = []
            for n in plain:
                d = first_deployment(self.gw.resolve(n))
                if d is not None and d.provider.kind == "openai":
                    embed.append(n)
            embedding = openapi.model_schema(embed, [], any_name=False)
        fw = cfg.server.forwarding
        refused = {fmt: [] if "*" in allowed else sorted(REACH_FIELDS[fmt] - set(allowed))
                   for fmt, allowed in (("anthropic", fw.anthropic_fields), ("openai", fw.openai_fields))}
        audio = all(d.provider.kind == "openai" for d in self.gw.deployments.values())
        return openapi.document(auth_required=self.auth_required, chat_model=chat, audio=audio,
                                embedding_model=embedding, refused=refused, server_tools=fw.server_tools)

    async def health(self, scope: Scope, receive: Receive, send: Send) -> None:
        await health.health(self, scope, send)


def build_app(gateway: Gateway) -> App:
    return App(gateway)
