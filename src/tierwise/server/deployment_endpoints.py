"""Endpoints the first deployment a route leads to answers itself, without a policy:
Anthropic's `POST /v1/messages/count_tokens` (the upstream's count, or tierwise's estimate) and
OpenAI's `POST /v1/embeddings`. Errors leave in the schema of the API the client spoke.

Both send the client's text upstream outside `Deployment.complete/stream`, so a remote
deployment's privacy boundary is applied here: count_tokens sends the body only when the boundary
would send it as it is (otherwise the count is tierwise's estimate); embeddings inputs are
redacted, refused or blocked as the route's policy says, and the leak check sees the bytes.

Each counts as one request in the rate limits of its key and route (budgets/side.py; no budget: they spend
nothing), and each upstream call holds one of the provider's `max_connections` (its pool, shared with every
chat request) for as long as the upstream takes: so count_tokens calls hold at most an eighth of a provider's
pool at once (beyond it, the estimate), and one key's embeddings calls at most half of it (beyond it, 429).
`SideCalls` counts them. Each call also counts as one of its client's model-bound requests in flight
(`max_requests_per_client`, server/stream_cap.py), as a chat request does: before, one address on an open gateway
held its 64 chat calls and, beside them, half the pool in embeddings calls (128) and an eighth in count_tokens
calls. Past the cap an embeddings call gets 429 and a count_tokens call tierwise's estimate (no upstream call).
OpenAI's `POST /v1/responses/input_tokens` is answered with tierwise's estimate (no upstream call: not counted).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from tierwise.budgets.side import EmbeddingsCharge, admit_side, embeddings_step
from tierwise.canonical import Message, Request, TextBlock
from tierwise.endpoint_url import endpoint
from tierwise.errors import Internal, InvalidRequest, RateLimited, TierwiseError, UpstreamError
from tierwise.gateway import new_request_id
from tierwise.ledger.records import LedgerRecord
from tierwise.providers.deployment import Deployment
from tierwise.providers.error_pages import masked
from tierwise.providers.image_urls import remote_documents, remote_images
from tierwise.server.asgi_scope import Receive, Scope, Send, request_headers
from tierwise.server.limits import retry_after_header
from tierwise.tokens import estimate_request
from tierwise.trace import Step
from tierwise.wire import anthropic_messages, model_name, openai_chat, openai_responses
from tierwise.wire._check import INT_MAX, get_int, token_count

log = logging.getLogger("tierwise.server")

COUNT_TOKENS_SHARE = 8  # count_tokens calls hold at most 1/8 of a provider's pool at once
EMBEDDINGS_SHARE = 2  # one key's embeddings calls hold at most 1/2 of it


class SideCalls:
    """Calls in flight to each provider outside the policies (count_tokens, embeddings), per (provider, key).
    A key capped at a few requests a minute sent as many count_tokens calls at once as it liked: they filled
    the pool of the provider the chat requests need, and every other key's request waited `timeouts.pool`
    for a connection, then got 503."""

    def __init__(self) -> None:
        self.in_flight: dict[tuple[str, str], int] = {}

    def take(self, provider: Any, key: str, share: int) -> bool:
        """One more call of `key` (or of all keys: "") to `provider`, if fewer than its share are in flight."""
        slot = (provider.name, key)
        n = self.in_flight.get(slot, 0)
        if n >= max(1, provider.cfg.max_connections // share):
            return False
        self.in_flight[slot] = n + 1
        return True

    def give_back(self, provider: Any, key: str) -> None:
        slot = (provider.name, key)
        n = self.in_flight[slot] - 1
        if n:
            self.in_flight[slot] = n
        else:
            del self.in_flight[slot]


async def count_tokens(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
    headers = request_headers(scope)
    codec = anthropic_messages
    try:
        data = await app.parse(scope, receive, headers)
        app.forwarding.apply(data, headers, codec.FORMAT)
        if isinstance(data, dict) and data.get("max_tokens") is None:
            data = {**data, "max_tokens": INT_MAX}  # count_tokens bodies carry no max_tokens (> any budget)
        req = codec.decode_request(data, headers)
        route, route_target = app.route_for(scope, req.model)
        app.forwarding.check_tools(data, codec.FORMAT, app.policy_of(route))
        await admit_side(app.gw.spend, route, scope.get("tierwise.key"), 0, new_request_id())
    except TierwiseError as e:
        await app.send_json(send, e.status, codec.encode_error(e), retry_after_header(e))
        return
    n: int | None = None
    raw_body: bytes | None = None
    target, ruled = first_path(route_target)
    # The body goes upstream as sent: not to a provider that is not sent image URLs (providers/image_urls.py)
    if target is not None and target.provider.kind == "anthropic" and (
            target.images is None or not (remote_images(req) or remote_documents(req))) and \
            _may_call(app, scope) and app.side_calls.take(target.provider, "", COUNT_TOKENS_SHARE):
        try:
            prov = target.provider
            body = dict(data)
            body.pop("max_tokens", None)
            body["model"] = target.cfg.model
            raw_body = orjson.dumps(body)
            if target.privacy is not None and not await _may_leave_as_is(app, target, route, req, raw_body,
                                                                                          ruled):
                raise InvalidRequest("the privacy boundary would change this body: estimated instead")
            out, _ = await prov.post_json(prov.chat_url + "/count_tokens", raw_body, prov.headers(req.headers))
            given = out["input_tokens"]  # the upstream's number, in [0, 2^31-1]; anything else: the estimate
            n = token_count(given) if type(given) in (int, float) else None
        except (TierwiseError, KeyError, TypeError, ValueError):
            n = None  # fall back to the estimate
        finally:
            app.side_calls.give_back(target.provider, "")
    app.give_back_caps(scope)
    if n is None:
        n = estimate_request(req)
    await app.send_json(send, 200, orjson.dumps({"input_tokens": n}))


def _may_call(app: Any, scope: Scope) -> bool:
    """Whether the client may make one more model-bound call (counted if so; App.give_back_caps gives it back)."""
    try:
        app.calls.take(scope)
    except RateLimited:
        return False
    return True


async def responses_input_tokens(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
    """OpenAI's `POST /v1/responses/input_tokens` (`client.responses.input_tokens.count`): the body of a
    Responses request, every field optional, answered `{"object": "response.input_tokens", "input_tokens": n}`
    with tierwise's estimate (the route's first model may not be OpenAI's, nor count as it does)."""
    headers = request_headers(scope)
    codec = openai_responses
    try:
        data = await app.parse(scope, receive, headers)
        if not isinstance(data, dict):
            raise InvalidRequest("the body must be a JSON object")
        app.forwarding.apply(data, headers, codec.FORMAT)
        # Here `model` and `input` may be left out (the count is of what is given): the route is the default one.
        data = {**data, "model": data.get("model") or "", "input": data.get("input") or ""}
        owner = openai_responses.owner_of(app.keyring.required, app.keyring.given(headers))
        req = openai_responses.Exchange(app.response_store, owner).decode_request(data, headers)
        route, _ = app.route_for(scope, req.model)
        await admit_side(app.gw.spend, route, scope.get("tierwise.key"), 0, new_request_id())
    except TierwiseError as e:
        await app.send_json(send, e.status, codec.encode_error(e), retry_after_header(e))
        return
    await app.send_json(send, 200, orjson.dumps({"object": "response.input_tokens", "input_tokens":
                                                 estimate_request(req)}))


async def embeddings(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
    headers = request_headers(scope)
    codec = openai_chat
    try:
        data = await app.parse(scope, receive, headers)
        if not isinstance(data, dict) or not isinstance(data.get("model"), str):
            raise InvalidRequest("`model` is required and must be a string")
        if "input" not in data:
            raise InvalidRequest("`input` is required")
        data = embedding_fields(data)
        route, route_target = app.route_for(scope, data["model"])
        target, ruled = first_path(route_target)
        if target is None:
            raise InvalidRequest(f"{data['model']!r} does not lead to an embedding model")
        if target.provider.kind != "openai":
            raise InvalidRequest(f"model {target.name!r} is not served by an OpenAI-compatible provider")
        prov = target.provider
        app.calls.take(scope)  # one of the client's model-bound requests in flight (429 past its cap)
        # The limits first, so a key over them gets no work done (the privacy screening may call a model); the
        # tokens from the inputs themselves: a Content-Length header is absent from a chunked body (16 each).
        inp = data["input"]
        await admit_side(app.gw.spend, route, scope.get("tierwise.key"),
                         sum(map(len, [inp] if isinstance(inp, str) else inp)) // 3 + 16, new_request_id())
        body = {**data, "model": target.cfg.model}
        if target.privacy is not None:
            raw_body = await _screened_embeddings(app, target, route, data["model"], body, ruled)
        else:
            raw_body = orjson.dumps(body)
        key = scope["tierwise.key"].name
        if not app.side_calls.take(prov, key, EMBEDDINGS_SHARE):
            busy = RateLimited(f"this key has {max(1, prov.cfg.max_connections // EMBEDDINGS_SHARE)} embeddings "
                               f"calls to provider {prov.name!r} in flight already (half its max_connections): "
                               "retry when one has ended")
            busy.retry_after = 1.0  # type: ignore[attr-defined]
            raise busy
        try:
            # A remote model bills every input token: the call counts in the budgets of its key and route
            # (before session 29 it spent none, and a key embedded past its budget uncounted)
            ctx = app.gw.context(route, new_request_id(), openai_chat.FORMAT, data["model"])
            req = _as_request(data, headers)
            charge = await EmbeddingsCharge.admit(app.gw.spend, route, scope.get("tierwise.key"), target, req, ctx)
            out = None
            answering = False
            status = 200
            t0 = time.perf_counter()
            try:
                out, raw = await prov.post_json(endpoint(prov.cfg.base_url, "/embeddings"), raw_body, prov.headers())
            except UpstreamError as e:
                answering, status = bool(getattr(e, "answering", False)), e.status
                raise
            except asyncio.CancelledError:  # the client left: the upstream had the inputs (billed, as a chat call's)
                answering, status = True, 499
                raise
            finally:
                step = embeddings_step(target, charge.estimate if charge is not None else estimate_request(req),
                                       out, answering)
                if charge is not None:
                    charge.settle(ctx, step)
                if step is not None and target.locality == "remote":
                    step.latency_ms = (time.perf_counter() - t0) * 1000
                    _ledger_row(app, ctx, step, status, scope.get("tierwise.key"))
        finally:
            app.side_calls.give_back(prov, key)
        check_embeddings_answer(prov.name, out)
    except TierwiseError as e:
        await app.send_json(send, e.status, codec.encode_error(e), retry_after_header(e))
        return
    except Exception:  # e.g. a body orjson cannot encode: still an answer in the client's schema
        log.exception("embeddings request failed")
        err = Internal("internal error in the gateway; see its log")
        await app.send_json(send, 500, codec.encode_error(err))
        return
    app.give_back_caps(scope)
    await app.send_json(send, 200, model_name.body(raw, data["model"]))  # not the upstream's own name (a file path)


async def _may_leave_as_is(app: Any, dep: Deployment, route: str, req: Request, body: bytes,
                           ruled: list[Any]) -> bool:
    """Whether the privacy boundary of remote `dep` would send `req` unchanged (nothing to redact,
    refuse or block), its leak check passing on `body`."""
    ctx = _ruled_context(app, route, anthropic_messages.FORMAT, req.model, ruled)
    try:
        _, p, check = await dep.privacy.vet(dep, req, ctx)
        if p is not None:
            return False
        check(body)
    except TierwiseError:
        return False
    return True


async def _screened_embeddings(app: Any, dep: Deployment, route: str, requested: str, body: dict[str, Any],
                               ruled: list[Any]) -> bytes:
    """The embeddings body for remote `dep` as its privacy boundary lets it leave: every input,
    the `user` field and any other field redacted as the route's policy says (raises
    PrivacyBlocked / PrivacyRefused, in the client's schema, when it may not leave)."""
    inp = body["input"]
    texts = [inp] if isinstance(inp, str) else list(inp)
    user = body.get("user")
    rest = {k: v for k, v in body.items() if k not in ("model", "input", "user")}
    req = Request(model=body["model"], messages=[Message("user", [TextBlock(t)]) for t in texts],
                  user=user if isinstance(user, str) else None, extra=rest)
    ctx = _ruled_context(app, route, openai_chat.FORMAT, requested, ruled)
    out, p, check = await dep.privacy.vet(dep, req, ctx)
    if p is not None:
        redacted = ["".join(b.text for b in m.content if isinstance(b, TextBlock)) for m in out.messages]
        body = {**body, **out.extra, "input": redacted[0] if isinstance(inp, str) else redacted}
        if isinstance(user, str):
            body["user"] = out.user
    raw = orjson.dumps(body)
    check(raw)  # the last line of defence, on the exact bytes
    return raw


def check_embeddings_answer(provider: str, out: Any) -> None:
    """An upstream's embeddings answer is relayed as sent only when it is one: a list of `data` items, each with
    an `embedding` (numbers, or base64 text). A chat completion, an array, or an error object sent with status 200
    (`{"object": "error", "message": ...}`, which can quote the key the gateway sent) went to the client as a 200:
    the openai SDK then failed in the caller's code (`AttributeError`, "No embedding data received") and the
    error's text reached the client unscrubbed. Now a 502 in OpenAI's schema, its text scrubbed and cut."""
    data = out.get("data") if type(out) is dict else None
    if type(data) is list and data and all(
            type(d) is dict and type(d.get("embedding")) in (list, str) for d in data):
        return
    said = out.get("error") if type(out) is dict else None
    if isinstance(said, dict):
        said = said.get("message")
    if said is None and type(out) is dict and out.get("object") == "error":  # vLLM's older shape
        said = out.get("message")
    reason = f": {masked(str(said))}" if said else ""  # scrubbed, cut, its internal addresses masked
    raise UpstreamError(f"provider {provider!r} sent an embeddings answer this gateway cannot read{reason}",
                        retryable=True)


def _ledger_row(app: Any, ctx: Any, step: Step, status: int, key: Any) -> None:
    """A remote embeddings call's ledger row (kind `embeddings`): its tokens and cost count in the savings reports
    and the dashboard, as the budgets count them (before session 29 the call wrote none, and its spend was missing
    there). No reference cost: nothing was routed, so nothing is saved."""
    if app.gw.ledger is None:
        return
    u = step.usage
    try:
        app.gw.ledger.submit(LedgerRecord(
            request_id=ctx.trace.request_id, ts=time.time(), route=ctx.trace.route, kind="embeddings",
            client_format=openai_chat.FORMAT, status=status, decision=step.name, locality=step.locality,
            model=step.model, provider=step.provider, input_tokens=u.input_tokens if u else 0,
            tokens_estimated=bool(u and u.estimated), cost_usd=step.cost, latency_ms=step.latency_ms or 0.0,
            steps=[step.to_dict()], requested_model=str(ctx.notes.get("requested_model") or "")[:256],
            extra={"key": key.name} if key is not None and key.name else {}))
    except Exception:  # the ledger must never break a request
        log.exception("ledger: could not record embeddings request %s", ctx.trace.request_id)


def _as_request(data: dict[str, Any], headers: dict[str, str]) -> Request:
    """An embeddings body as a canonical request, for its budget admission: the inputs as user messages, the
    client's headers (its length, tag, session), one token of output."""
    inp = data["input"]
    texts = [inp] if isinstance(inp, str) else inp
    return Request(model=data["model"], messages=[Message("user", [TextBlock(t)]) for t in texts], max_tokens=1,
                   headers=headers)


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
    return first_path(target)[0]


def first_path(target: Any) -> tuple[Deployment | None, list[Any]]:
    """The deployment a route tries first, and the routes with a privacy rule of their own on the way to it
    (privacy/route_rule.py: their rules hold for a body sent there as they do for a chat request, review31d)."""
    from tierwise.privacy.route_rule import RuledRoute

    ruled: list[Any] = []
    seen = 0
    while not isinstance(target, Deployment):
        if isinstance(target, RuledRoute):
            ruled.append(target)
        nxt = getattr(target, "targets", None) or [getattr(target, "default", None)]
        if not nxt or nxt[0] is None or seen > 32:
            return None, ruled
        target = nxt[0]
        seen += 1
    return target, ruled


def _ruled_context(app: Any, route: str, fmt: Any, requested: str, ruled: list[Any]) -> Any:
    ctx = app.gw.context(route, new_request_id(), fmt, requested)
    for r in ruled:
        ctx = r.scoped(ctx)
    return ctx
