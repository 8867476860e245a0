"""The one place a finished request is observed: metrics, spans and the dashboard's live feed.

`Gateway.record` calls `Observer.finished` once per request (streams included). With nothing
enabled that call returns at once. The observer reads only what the request already has — its
trace steps and timings — so no policy is edited to be observed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from tierwise.canonical import Request, TextBlock, Usage
from tierwise.observability.settings import ObservabilityConfig
from tierwise.observability.tracecontext import (
    CALLS,
    FIRST_CALL,
    FIRST_HEADER,
    NOTE,
    SAMPLED,
    SPAN,
    TRACE,
    TraceIds,
    call_traceparent,
    ids_for,
    new_ids,
    span_id,
)
from tierwise.observability.vocab import error_type
from tierwise.pricing import MILLION, Price

try:
    from tierwise.observability import _finished as native  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: `finished_record` below
    native = None

log = logging.getLogger("tierwise.observability")
# The model name a client asked for is its own text (any name, with a default route or a pattern route): kept
# to this many characters, as the ledger keeps it (gateway.MAX_MODEL_NAME). Span shapes are cached by it.
MAX_REQUESTED = 256
MAX_CONTENT = 16_384  # characters of captured message content (`tracing.capture_content`) kept per request


class Finished:
    """One finished request, as metrics, spans and the live feed see it (references, no copies)."""

    __slots__ = ("request_id", "route", "api", "stream", "status", "error_type", "latency_ms", "ttft_ms",
                 "started", "steps", "answered", "reference_cost", "requested_model", "ids", "content",
                 "breakers", "trace", "wall", "cache", "key")

    def __init__(self, request_id: str, route: str, api: str, stream: bool, status: int, error_type: str,
                 latency_ms: float, ttft_ms: float | None, started: float, steps: list[Any], answered: Any,
                 reference_cost: float | None, requested_model: str, ids: Any, content: str | None,
                 breakers: dict[str, Any], trace: Any, wall: float, cache: str | None = None,
                 key: str | None = None) -> None:
        self.request_id = request_id
        self.route = route
        self.api = api
        self.stream = stream
        self.status = status
        self.error_type = error_type
        self.latency_ms = latency_ms
        self.ttft_ms = ttft_ms
        self.started = started
        self.steps = steps
        self.answered = answered
        self.reference_cost = reference_cost
        self.requested_model = requested_model
        self.ids = ids
        self.content = content
        self.breakers = breakers
        self.trace = trace
        self.wall = wall
        self.cache = cache
        self.key = key  # the name of the gateway key that asked: the dashboard shows a client its own requests

    @property
    def usage(self) -> Usage:
        u = Usage()
        for s in self.steps:
            if s.kind == "call" and s.usage is not None:
                u.add(s.usage)
        return u

    @property
    def cost(self) -> float:
        return sum(s.cost or 0.0 for s in self.steps if s.kind == "call")


def finished_record(prices: tuple[dict[str, Any], Any] | None, request_id: str, route: str, api: str, stream: bool,
                    status: int, error_type: str, latency_ms: float, ttft_ms: float | None, started: float,
                    steps: list[Any], requested_model: str, ids: Any, content: str | None, breakers: dict[str, Any],
                    trace: Any, wall: float, cache: str | None, key: str | None) -> Finished:
    """A request's `Finished`, with the call that answered (the last successful call that was not a helper call:
    those carry a `role`) and, with `prices` ({route: per-token prices}, a function for a route not in it), the
    answer's cost at the route's reference prices. `_finished.Maker` does the same in C."""
    answered = None
    for s in reversed(steps):
        if s.kind == "call" and s.ok and "role" not in s.detail:
            answered = s
            break
    ref_cost = None
    if answered is not None and prices is not None:
        p = prices[0].get(route, False)
        if p is False:
            p = prices[1](route)
        u = answered.usage
        if p is not None and u is not None:  # pricing.cost, its prices resolved once per route
            ref_cost = (u.input_tokens * p[0] + u.output_tokens * p[1] + u.cache_read_tokens * p[2]
                        + u.cache_write_tokens * p[3]) / MILLION
        elif p is not None:
            ref_cost = 0.0
    return Finished(request_id, route, api, stream, status, error_type, latency_ms, ttft_ms, started, steps, answered,
                    ref_cost, requested_model, ids, content, breakers, trace, wall, cache, key)


def protected(ctx: Any, req: Request) -> bool:
    """Whether this request holds a value the privacy guard protects (its content must never leave in a span).

    Read: `ctx.privacy.protected`, after `ctx.privacy.scan_request(req)` (cached by the guard: the
    flag is otherwise set only once a remote call was scanned), or `ctx.notes["privacy_protected"]`.
    A scan that fails counts as protected."""
    if ctx.notes.get("privacy_protected"):
        return True
    p = getattr(ctx, "privacy", None)
    if p is None:
        return False
    if not getattr(p, "protected", False):
        scan = getattr(p, "scan_request", None)
        if scan is not None:
            try:
                scan(req)
            except Exception:
                return True
    return bool(getattr(p, "protected", False))


def _per_token(price: Price | None) -> tuple[float, float, float, float] | None:
    """(input, output, cache read, cache write) USD per million tokens, as `pricing.cost` resolves them."""
    if price is None:
        return None
    return (price.input, price.output, price.input if price.cache_read is None else price.cache_read,
            price.input if price.cache_write is None else price.cache_write)


def content_of(req: Request) -> str:
    """The request's messages as `gen_ai.input.messages` JSON, cut to `MAX_CONTENT` characters (what a span
    keeps): the record holding it lives on in the dashboard's recent requests, so a conversation of megabytes
    must not be kept whole. Each text is cut to `MAX_CONTENT` before encoding (JSON escaping only lengthens a
    text, so the first `MAX_CONTENT` characters are still those of the whole conversation's JSON)."""
    msgs: list[dict[str, Any]] = []
    if req.system:
        msgs.append({"role": "system", "parts": [{"type": "text", "content": b.text[:MAX_CONTENT]}
                                                 for b in req.system]})
    for m in req.messages:
        parts = [{"type": "text", "content": b.text[:MAX_CONTENT]} for b in m.content if isinstance(b, TextBlock)]
        msgs.append({"role": m.role, "parts": parts})
    return orjson.dumps(msgs).decode()[:MAX_CONTENT]


class Observer:
    def __init__(self, cfg: ObservabilityConfig, gateway: Any) -> None:
        self.cfg = cfg
        self.gw = gateway
        self.metrics: Any = None
        self.exporter: Any = None
        self.live: Any = None
        gcfg = gateway.cfg
        if cfg.metrics.enabled:
            from tierwise.observability.metrics import Metrics

            self.metrics = Metrics(cfg.metrics.max_label_values, routes=list(gcfg.routes),
                                   models=[*gateway.deployments, *(m.model for m in gcfg.models.values())],
                                   providers=list(gcfg.providers))
        if cfg.tracing.endpoint:
            from tierwise.observability.spans import SpanExporter

            m = self.metrics
            privacy = getattr(gateway, "privacy", None)
            self.exporter = SpanExporter(cfg.tracing, {n: p.kind for n, p in gcfg.providers.items()},
                                         on_drop=(lambda n: m.spans_dropped.inc(n)) if m is not None else None,
                                         privacy=privacy)
        if cfg.dashboard.enabled:
            from tierwise.observability.live import LiveFeed

            self.live = LiveFeed(cfg.dashboard.recent)
        self.tracing = self.exporter is not None
        self.ratio = cfg.tracing.sample_ratio
        # The header a request's trace context is read from: none unless the operator trusts the callers (a client
        # with the sampled flag set forced tracing at any sample_ratio and chose its trace ids, session 34).
        self.parent_header = "traceparent" if cfg.tracing.trust_traceparent else ""
        self.capture = cfg.tracing.capture_content
        self._ref_prices: dict[str, Any] = {}  # route -> reference model's prices (config: fixed), see _per_token
        # (the reference cost is worked out for the metrics and the dashboard's totals, not for spans alone)
        self._prices = (self._ref_prices, self._ref_price) if self.metrics is not None or self.live is not None \
            else None
        self._make = native.Maker(Finished, Finished.__slots__) if native is not None else None
        self.enabled = self.metrics is not None or self.tracing or self.live is not None

    def _ref_price(self, route: str) -> Any:
        p = self._ref_prices[route] = _per_token(self.gw.reference_price(route)[1])
        return p

    # ------------------------------------------------------------------ upstream propagation

    def inject(self, ctx: Any, req: Request, headers: dict[str, str]) -> None:
        """Add `traceparent` for the call step just recorded (the last one on the trace)."""
        if not self.tracing:
            return
        notes = ctx.notes
        ids = notes.get(NOTE)
        if ids is None:
            ids = notes[NOTE] = new_ids(req.headers.get(self.parent_header), self.ratio)
        index = len(ctx.trace.steps) - 1
        if ids[CALLS] is None and ids[FIRST_HEADER] is not None:  # the request's first call: ready-made
            ids[CALLS] = {index: ids[FIRST_CALL]}
            headers["traceparent"] = ids[FIRST_HEADER]
        else:
            headers["traceparent"] = call_traceparent(ids, index)

    # ------------------------------------------------------------------ the end of a request

    def finished(self, ctx: Any, req: Request, *, status: int, stream: bool, latency_ms: float,
                 ttft_ms: float | None, error: Any) -> None:
        if not self.enabled:
            return
        try:  # (one frame: this runs for every request)
            trace = ctx.trace
            notes = ctx.notes
            ids: TraceIds | None = None
            content = None
            if self.tracing:
                ids = notes.get(NOTE) or ids_for(ctx, req.headers, self.ratio, self.parent_header)
                if self.capture and ids[SAMPLED] and not protected(ctx, req):
                    content = content_of(req)
            requested = notes.get("requested_model") or req.model
            requested = (requested if type(requested) is str else str(requested))[:MAX_REQUESTED]
            fields = (self._prices, trace.request_id, trace.route, ctx.client_format or "", stream, status,
                      "none" if error is None and status < 400 else error_type(error, status), latency_ms, ttft_ms,
                      trace.started, trace.steps, requested, ids,
                      content, self.gw.deployments, trace, time.time(), notes.get("cache"), notes.get("key_name"))
            make = self._make
            if make is None:
                rec = finished_record(*fields)
            else:
                try:
                    rec = make(*fields)
                except Exception:  # a value the C maker does not take: the same in Python
                    rec = finished_record(*fields)
            if self.metrics is not None:
                self.metrics.observe(rec)
            if ids is not None and ids[SAMPLED]:
                self.exporter.submit(rec)
            if self.live is not None:
                self.live.add(rec)
        except Exception:  # observing must never break a request
            log.exception("observability: could not observe request %s", ctx.trace.request_id)

    async def aclose(self) -> None:
        """At shutdown, on the event loop: the last sums into prometheus-client, the last spans out."""
        if self.metrics is not None:
            self.metrics.flush()
        if self.exporter is not None:
            await self.exporter.aclose()
    # ------------------------------------------------------------------ off the response path

    def learning_spent(self, cost: float | None) -> None:
        """A shadow run or an evaluation (judge call) was recorded: the dashboard's saving is net of its cost,
        as `tierwise report`'s is. Not a request: the request counts and metrics do not see it."""
        if self.live is not None and cost:
            self.live.add_learning(float(cost), time.time())

    def evaluation(self, ctx: Any, req: Request, *, parent: Any, latency_ms: float) -> None:
        """An evaluation run after a request answered (a judge's verdict, a shadow run): its trace goes out as
        its own server span, a child of the judged request's span in the same trace, with the verdict as a
        `gen_ai.evaluation.result` event (the exporter's encoder, as for verifier verdicts). Tracing only:
        it is not a client request, so metrics and the live feed do not count it."""
        if not self.tracing:
            return
        try:
            up = parent.notes.get(NOTE) if parent is not None else None
            if up is None:
                ids = ids_for(ctx, req.headers, self.ratio, self.parent_header)
            else:
                ids = ctx.notes[NOTE] = [up[TRACE], span_id(), up[SPAN], up[SAMPLED], None, None, None]
            if not ids[SAMPLED]:
                return
            trace = ctx.trace
            rec = Finished(trace.request_id, trace.route, "evaluation", False, 200, "none", latency_ms, None,
                           trace.started, trace.steps, None, None, str(req.model), ids, None, {}, trace,
                           time.time())
            self.exporter.submit(rec)
        except Exception:  # observing must never break the loop
            log.exception("observability: could not trace the evaluation %s", ctx.trace.request_id)

    def close(self) -> None:
        """The same without a running loop (library use)."""
        if self.metrics is not None:
            self.metrics.flush()
        if self.exporter is not None:
            self.exporter.close()
