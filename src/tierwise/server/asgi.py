"""The HTTP face of the gateway: a plain ASGI app (no framework on the hot path).

Routes: OpenAI `POST /v1/chat/completions`, `GET /v1/models`, `POST /v1/embeddings`;
Anthropic `POST /v1/messages` (also `?beta=true`) and `POST /v1/messages/count_tokens`;
OpenAI Responses `POST /v1/responses` (wire/openai_responses.py, stored answers in response_store.py);
`GET /health`. Every error leaves in the schema of the API the client spoke; failures
after a stream started become that API's mid-stream error event.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import orjson

from tierwise import console_log
from tierwise.budgets.controller import Refused
from tierwise.cache.admin import cache_invalidate_endpoint, cache_stats_endpoint
from tierwise.cache.answer_cache import cache_header
from tierwise.canonical import Request, StreamChunk
from tierwise.errors import (
    BudgetExceeded,
    InvalidRequest,
    NotFound,
    RequestTooLarge,
    TierwiseError,
)
from tierwise.gateway import MAX_STORED_TEXT, Gateway, new_request_id
from tierwise.learning.feedback import feedback_endpoint
from tierwise.observability.endpoints import Endpoints as observability_endpoints
from tierwise.providers.deployment import Deployment
from tierwise.providers.image_urls import remote_documents, remote_images
from tierwise.server import admin_approvals, admin_status, health, model_list, openapi
from tierwise.server.forwarding_policy import REACH_FIELDS, ForwardingGuard
from tierwise.server.json_depth import too_deep
from tierwise.server.key_scopes import KeyRing, KeyScope
from tierwise.server.limits import BODY_TIMED_OUT, BodyBudget, check_n, retry_after_header
from tierwise.server.origin_guard import OriginGuard
from tierwise.server.response_store import ResponseStore
from tierwise.server.roles import Roles
from tierwise.tokens import estimate_request
from tierwise.wire import anthropic_messages, openai_chat, openai_responses
from tierwise.wire._check import INT_MAX, get_int, token_count

log = logging.getLogger("tierwise.server")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = (b"content-type", b"application/json")
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
USAGE_ONLY_CHUNK = b'"choices":[]'
SSE_EVENT_END = re.compile(rb"(?<=\n\n)|(?<=\r\n\r\n)")  # splits after each event, keeping its end


class Internal(TierwiseError):
    status = 500
    kind = "api_error"


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers as a dict (lower-case names), made once per request."""
    h: dict[str, str] | None = scope.get(_HEADERS)
    if h is None:
        h = scope[_HEADERS] = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    return h


_HEADERS = "tierwise.headers"


# Endpoints that exist but are off by default: a 404 for them says which key turns them on.
OFF_BY_DEFAULT = (("/dashboard", "dashboard"), ("/metrics", "metrics"))


def _off_hint(path: str, observability: Any) -> str:
    """Which key turns on the endpoint `path` is under, when it is off (nothing when it is on)."""
    for prefix, part in OFF_BY_DEFAULT:
        if (path == prefix or path.startswith(prefix + "/")) and not getattr(observability, part).enabled:
            return f" ({prefix} is off: set `observability.{part}.enabled: true` in the config, see docs/observability.md)"
    return ""


class App:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.max_body = gateway.cfg.server.max_body_bytes
        self.limits = gateway.cfg.server.limits
        self.budget = BodyBudget(self.limits.max_body_bytes_in_flight)
        self.keyring = KeyRing(gateway.cfg.server)
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
            ("POST", "/v1/messages/count_tokens"): self.count_tokens,
            ("GET", "/v1/models"): self.models,
            ("GET", "/models"): self.models,
            ("POST", "/v1/embeddings"): self.embeddings,
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
        self.routes.update(observability_endpoints(self).routes())  # /metrics, /dashboard (when enabled)
        self.routes.update(admin_approvals.ApprovalEndpoints(self).routes())  # /v1/tierwise/approvals (admin keys)
        # Browser and client reach (Host/Origin/CORS/content type, forwarded betas and fields).
        self.allow: dict[str, str] = {}
        for m, p in self.routes:
            self.allow[p] = ", ".join(sorted({*self.allow.get(p, "").split(", "), m} - {""}))
        self.guard = OriginGuard(gateway.cfg.server, self._send_error)
        self.forwarding = ForwardingGuard(gateway.cfg.server.forwarding, {
            "anthropic": anthropic_messages.KNOWN_FIELDS, "openai": openai_chat.KNOWN_FIELDS,
            "responses": openai_responses.KNOWN_FIELDS})
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
                if not self.guard.passes(_headers(scope), scope["method"]):
                    screened = await self.guard.screen(scope, send, self.allow.get(scope["path"]))
                    if screened is None:
                        return
                    send = screened
                handler = self.routes.get((scope["method"], scope["path"]))
                if handler is None:
                    await self.no_route(scope, send)
                    return
                self.in_flight += 1
                try:
                    await handler(scope, receive, send)
                except Exception:  # a handler's unexpected failure (a broken ledger, a bug): still the API's schema
                    log.exception("%s %s failed", scope["method"], scope["path"][:200])
                    try:
                        await self._send_error(scope, send, Internal("internal error in the gateway; see its log"), [])
                    except Exception:  # the answer had started: the server ends the connection
                        pass
                finally:
                    self.in_flight -= 1
                    self.budget.give_back(scope)
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
            await model_list.retrieve_model(self, scope, send, _headers(scope))
            return
        codec = self.codec_for_path(path)
        allow = self.allow.get(path)
        if allow is not None:
            err: TierwiseError = InvalidRequest(f"method {scope['method'][:20]} is not allowed on {path}", status=405)
            await self.send_json(send, err.status, codec.encode_error(err), [(b"allow", allow.encode())])
            return
        await self.send_json(send, 404, codec.encode_error(NotFound(f"no such endpoint: {path[:200]}{_off_hint(path, self.gw.cfg.observability)}")))

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
        except NotFound:  # the names on offer, as far as this key may see them (not other teams' routes)
            names = ", ".join(sorted(model_list.usable_names(self, key))) or "nothing this key may use"
            raise NotFound(f"unknown model or route {model[:200]!r}; this gateway serves: {names}") from None
        key.admit(model, route, self.gw.deployments)
        return route, target

    def policy_of(self, route: str) -> str | None:
        pc = self.gw.cfg.routes.get(route)
        return getattr(pc, "policy", None)

    async def read_body(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length")
        if declared and declared.isdigit():
            if int(declared) > self.max_body:
                raise RequestTooLarge(f"request body is larger than this gateway's limit of {self.max_body} bytes")
            self.budget.take(scope, int(declared))
            declared = None
        msg = await self._body_part(scope, receive)
        body = msg.get("body", b"")
        if declared is not None:  # chunked: counted as it comes
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
            if declared is not None:
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
        body = await self.read_body(scope, receive, headers)
        if not body:
            raise InvalidRequest("request body is empty; expected a JSON object")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise InvalidRequest(f"request body is not valid JSON: {e.msg} at position {e.pos}") from None
        if too_deep(body, data, self.limits.max_json_depth):
            raise InvalidRequest(f"request body nests deeper than {self.limits.max_json_depth} levels "
                                 "(server.limits.max_json_depth)")
        return data

    # ------------------------------------------------------------------ chat

    async def chat_openai(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.chat(scope, receive, send, openai_chat)

    async def chat_anthropic(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.chat(scope, receive, send, anthropic_messages)

    async def chat_responses(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A codec object per request: it reads and writes the client's stored responses.
        owner = openai_responses.owner_of(self.keyring.required, self.keyring.given(_headers(scope)))
        await self.chat(scope, receive, send, openai_responses.Exchange(self.response_store, owner))

    async def chat(self, scope: Scope, receive: Receive, send: Send, codec: Any) -> None:
        t0 = time.perf_counter()
        request_id = new_request_id()
        rid = (b"x-tierwise-request-id", request_id.encode())
        headers = _headers(scope)
        try:
            data = await self.parse(scope, receive, headers)
            self.forwarding.apply(data, headers, codec.FORMAT)
            req: Request = codec.decode_request(data, headers)
            check_n(req.n, self.limits)
            route, target = self.route_for(scope, req.model)
            self.forwarding.check_tools(data, codec.FORMAT, self.policy_of(route))
        except TierwiseError as e:  # rejected: nothing reached an upstream, nothing is recorded
            await self.send_json(send, e.status, codec.encode_error(e), [rid, *retry_after_header(e)])
            return
        except Exception:
            log.exception("could not decode request %s", request_id)
            bad = InvalidRequest("request could not be understood")
            await self.send_json(send, bad.status, codec.encode_error(bad), [rid])
            return
        ctx = self.gw.context(route, request_id, codec.FORMAT, req.model)
        ctx.notes["key_name"] = scope["tierwise.key"].name  # split policies stick by it (policies/split.py)
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
        if req.stream:
            await self.chat_stream(send, receive, codec, req, target, ctx, t0, rid)
            return
        status, error = 200, None
        try:
            resp = await target.complete(req, ctx)
            body = codec.encode_response(resp, req.model)
            if self.gw.store_text:  # `ledger.store_text`: the answer goes into the request's ledger row
                ctx.notes["answer_text"] = resp.text()
        except TierwiseError as e:
            status, error, body = e.status, e, codec.encode_error(e)
        except Exception:
            log.exception("request %s failed", request_id)
            error = Internal("internal error in the gateway; see its log")
            status, body = 500, codec.encode_error(error)
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
        await self.send_json(send, status, body, extra)

    async def chat_stream(
        self, send: Send, receive: Receive, codec: Any, req: Request, target: Any, ctx: Any, t0: float, rid: Any
    ) -> None:
        # Open the stream and wait for its first chunk before answering, so a failure that
        # happens before any byte reached the client is a plain HTTP error (and fallbacks stay silent).
        try:
            it = await target.stream(req, ctx)
            try:
                first: StreamChunk = await it.__anext__()
            except StopAsyncIteration:
                first = StreamChunk(events=[])
        except TierwiseError as e:
            self.gw.record(ctx, req, status=e.status, stream=True, latency_ms=(time.perf_counter() - t0) * 1000,
                           error=e)
            await self.send_json(send, e.status, codec.encode_error(e), [rid, *retry_after_header(e)])
            return
        except Exception:
            log.exception("stream %s failed to start", ctx.trace.request_id)
            err = Internal("internal error in the gateway; see its log")
            self.gw.record(ctx, req, status=500, stream=True, latency_ms=(time.perf_counter() - t0) * 1000, error=err)
            await self.send_json(send, 500, codec.encode_error(err), [rid])
            return
        ttft = (time.perf_counter() - t0) * 1000
        encoder = codec.StreamEncoder(req.model, req)
        fmt = codec.FORMAT
        passthrough = first.raw is not None and first.raw_format == fmt
        # An OpenAI client that did not ask for usage must not get the usage-only chunk that
        # tierwise itself asked the upstream for (for the ledger).
        drop_usage_chunk = fmt == "openai" and not (
            isinstance(req.extra.get("stream_options"), dict) and req.extra["stream_options"].get("include_usage")
        )
        error: TierwiseError | None = None
        recorded = False

        def record(status: int) -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self.gw.record(
                    ctx, req, status=error.status if error is not None else status, stream=True,
                    latency_ms=(time.perf_counter() - t0) * 1000, ttft_ms=ttft, error=error,
                )

        answer: list[str] | None = [] if self.gw.store_text else None
        ctx.notes["answer_text"] = answer
        answer_len = 0

        def render(chunk: StreamChunk) -> bytes:
            nonlocal answer_len
            if answer is not None and answer_len < MAX_STORED_TEXT:  # `ledger.store_text`: for the ledger row
                for e in chunk.events:
                    if e.kind == "block_delta" and e.delta_type == "text":
                        answer.append(e.value)
                        answer_len += len(e.value)
            if passthrough and chunk.raw is not None:
                data = chunk.raw
                if drop_usage_chunk and USAGE_ONLY_CHUNK in data:
                    data = b"".join(e for e in SSE_EVENT_END.split(data) if USAGE_ONLY_CHUNK not in e)
                return data
            return b"".join([encoder.encode(ev) for ev in chunk.events])

        def ends(chunk: StreamChunk) -> bool:
            return bool(chunk.events) and chunk.events[-1].kind == "message_stop"

        async def pump(chunk: StreamChunk | None) -> None:
            """Relay from `chunk` (or from the next one when None) to the end, then end the body."""
            nonlocal error
            held = b""  # the answer's last bytes: they leave with the end of the body, in one write
            try:
                while True:
                    if chunk is None:
                        try:
                            chunk = await it.__anext__()
                        except StopAsyncIteration:
                            break
                    data = render(chunk)
                    if held:
                        data, held = held + data, b""
                    if ends(chunk):
                        held = data  # nothing should follow; the ledger row goes first
                    elif data:
                        await send({"type": "http.response.body", "body": data, "more_body": True})
                    chunk = None
            except TierwiseError as e:
                error = e
            except Exception:
                log.exception("stream %s failed", ctx.trace.request_id)
                error = Internal("internal error in the gateway; see its log")
            finally:
                await it.aclose()
            # Recorded before the client sees the end (or the error event that ends it), so its
            # next look at the ledger finds the row.
            record(200)
            tail = encoder.encode_error(error) if error is not None else b""
            await send({"type": "http.response.body", "body": held + tail, "more_body": False})

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                # What is known at the first byte: the later steps only reach the ledger (`tierwise trace`).
                "headers": SSE_HEADERS + [rid, (b"x-tierwise-route", ctx.trace.route.encode()),
                                          (b"x-tierwise-steps", ctx.trace.header_summary().encode()),
                                          *cache_header(ctx)],
            }
        )
        try:
            if ends(first):
                # The whole answer came at once (a short answer, a policy that buffered it): finish
                # here, without the relay and watch tasks; the header block leaves with the answer.
                await pump(first)
                return
            data = render(first)
            if data:  # sent now, so the header block and the first bytes leave in one write
                await send({"type": "http.response.body", "body": data, "more_body": True})
        except asyncio.CancelledError:
            await it.aclose()
            record(499)
            raise
        except Exception:
            log.exception("stream %s failed", ctx.trace.request_id)
            error = Internal("internal error in the gateway; see its log")
            await it.aclose()
            record(200)
            await send({"type": "http.response.body", "body": encoder.encode_error(error), "more_body": False})
            return

        async def watch() -> None:
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return

        pump_task = asyncio.ensure_future(pump(None))
        watch_task = asyncio.ensure_future(watch())
        try:
            await asyncio.wait((pump_task, watch_task), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not pump_task.done():  # the client went away: stop reading the upstream
                pump_task.cancel()
                try:
                    await pump_task
                except asyncio.CancelledError:
                    pass
                record(499)
            watch_task.cancel()
        record(200)

    # ------------------------------------------------------------------ other endpoints

    async def count_tokens(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        codec = anthropic_messages
        try:
            data = await self.parse(scope, receive, headers)
            self.forwarding.apply(data, headers, codec.FORMAT)
            if isinstance(data, dict) and data.get("max_tokens") is None:
                data = {**data, "max_tokens": INT_MAX}  # count_tokens bodies carry no max_tokens (> any budget)
            req = codec.decode_request(data, headers)
            route, route_target = self.route_for(scope, req.model)
            self.forwarding.check_tools(data, codec.FORMAT, self.policy_of(route))
        except TierwiseError as e:
            await self.send_json(send, e.status, codec.encode_error(e), retry_after_header(e))
            return
        n: int | None = None
        target = first_deployment(route_target)
        # The body goes upstream as sent: not to a provider that is not sent image URLs (providers/image_urls.py)
        if target is not None and target.provider.kind == "anthropic" and (
                target.images is None or not (remote_images(req) or remote_documents(req))):
            try:
                prov = target.provider
                body = dict(data)
                body.pop("max_tokens", None)
                body["model"] = target.cfg.model
                out, _ = await prov.post_json(
                    prov.chat_url + "/count_tokens", orjson.dumps(body), prov.headers(req.headers)
                )
                given = out["input_tokens"]  # the upstream's number, in [0, 2^31-1]; anything else: the estimate
                n = token_count(given) if type(given) in (int, float) else None
            except (TierwiseError, KeyError, TypeError, ValueError):
                n = None  # fall back to the estimate
        if n is None:
            n = estimate_request(req)
        await self.send_json(send, 200, orjson.dumps({"input_tokens": n}))

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        await model_list.list_models(self, scope, send, _headers(scope))

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        codec = openai_chat
        try:
            data = await self.parse(scope, receive, headers)
            if not isinstance(data, dict) or not isinstance(data.get("model"), str):
                raise InvalidRequest("`model` is required and must be a string")
            if "input" not in data:
                raise InvalidRequest("`input` is required")
            data = embedding_fields(data)
            _, route_target = self.route_for(scope, data["model"])
            target = first_deployment(route_target)
            if target is None:
                raise InvalidRequest(f"{data['model']!r} does not lead to an embedding model")
            if target.provider.kind != "openai":
                raise InvalidRequest(f"model {target.name!r} is not served by an OpenAI-compatible provider")
            prov = target.provider
            body = {**data, "model": target.cfg.model}
            _, raw = await prov.post_json(f"{prov.cfg.base_url}/embeddings", orjson.dumps(body), prov.headers())
        except TierwiseError as e:
            await self.send_json(send, e.status, codec.encode_error(e), retry_after_header(e))
            return
        except Exception:  # e.g. a body orjson cannot encode: still an answer in the client's schema
            log.exception("embeddings request failed")
            err = Internal("internal error in the gateway; see its log")
            await self.send_json(send, 500, codec.encode_error(err))
            return
        await self.send_json(send, 200, raw)

    async def openapi_doc(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The `model` names are what the caller's key may use (as in /v1/models); without a key, when
        # keys are required, none: the route and model names are not for anyone who asks.
        key = self.keyring.find(_headers(scope)) if self.auth_required else self.keyring.open_scope
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

def embedding_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The embeddings body with the fields the document describes checked (5.0 dimensions become 5)."""
    inp = data["input"]
    if not ((isinstance(inp, str) and inp) or (
            isinstance(inp, list) and inp and all(isinstance(x, str) and x for x in inp))):
        raise InvalidRequest("input: must be a non-empty string or a non-empty array of non-empty strings")
    fmt = data.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise InvalidRequest("encoding_format: must be float or base64")
    dims = get_int(data, "dimensions", minimum=1)
    out = {k: v for k, v in data.items() if v is not None or k not in ("encoding_format", "dimensions")}
    if dims is not None:
        out["dimensions"] = dims
    return out


def first_deployment(target: Any) -> Deployment | None:
    """The deployment a route tries first (its first target, or its default, recursively)."""
    seen = 0
    while not isinstance(target, Deployment):
        nxt = getattr(target, "targets", None) or [getattr(target, "default", None)]
        if not nxt or nxt[0] is None or seen > 32:
            return None
        target = nxt[0]
        seen += 1
    return target


def build_app(gateway: Gateway) -> App:
    return App(gateway)
