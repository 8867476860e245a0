"""OpenTelemetry GenAI spans, built off the request path and sent over OTLP/HTTP (protobuf).

At the end of a request the observer hands `submit` one `Finished` record (references to what
the request already holds: its trace steps and timings). Nothing else happens on the request
path: once a second (or when a batch is full) a task on the event loop turns queued records into
OTLP protobuf — one server span per request, one client span per upstream call, span events for
decisions and verifier verdicts (`gen_ai.evaluation.result`) — in slices between requests, and
POSTs them in one batch. When the queue is
full, or the receiver fails, records are dropped and counted (`tierwise_trace_spans_dropped`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as G
from opentelemetry.semconv.attributes import error_attributes, http_attributes

from tierwise import __version__
from tierwise.observability import otlp_wire as wire
from tierwise.observability.tracecontext import call_span_id
from tierwise.observability.vocab import NONE, call_error_type, reason_label
from tierwise.secret_scrub import scrub

log = logging.getLogger("tierwise.observability")

MAX_TEXT = 300  # reasons and names on spans
MAX_CONTENT = 16_384  # captured message content, when enabled
ERROR_TYPE = error_attributes.ERROR_TYPE
HTTP_STATUS = http_attributes.HTTP_RESPONSE_STATUS_CODE
EVALUATION_EVENT = "gen_ai.evaluation.result"
DECISION_EVENT = "tierwise.decision"
SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 2, 3
SLICE = 64  # records encoded between two returns to the event loop (~0.1-0.2 ms of work)
COST, REFERENCE_COST, REQUEST_ID = "tierwise.cost_usd", "tierwise.reference_cost_usd", "tierwise.request_id"
IN_TOKENS, OUT_TOKENS = G.GEN_AI_USAGE_INPUT_TOKENS, G.GEN_AI_USAGE_OUTPUT_TOKENS
CACHE_TOKENS, TTFT = G.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, G.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
HEADS_MAX = 10_000
# Per-request values: the bytes before each value, made once.
_P_COST = wire.double_prefix(wire.SPAN_ATTR, COST)
_P_REF = wire.double_prefix(wire.SPAN_ATTR, REFERENCE_COST)
_P_TTFT = wire.double_prefix(wire.SPAN_ATTR, TTFT)
_IN, _OUT, _CACHE = (wire.IntAttr(wire.SPAN_ATTR, k) for k in (IN_TOKENS, OUT_TOKENS, CACHE_TOKENS))
_IN1, _OUT1 = wire.small_int_prefix(wire.SPAN_ATTR, IN_TOKENS), wire.small_int_prefix(wire.SPAN_ATTR, OUT_TOKENS)
# A span's ids (trace id, span id, parent span id: fields 1, 2, 4, each with its length) in one
# struct call; ids are big-endian integers, the 128-bit trace id as two halves.
_MASK64 = (1 << 64) - 1
_IDS3 = struct.Struct(">HQQHQHQ").pack  # (tag+length, trace hi, trace lo, tag+length, span id, tag+length, parent)
_IDS2 = struct.Struct(">HQQHQ").pack
_T_TRACE, _T_SPAN, _T_PARENT = 0x0A10, 0x1208, 0x2208
_SPANS_TAG, _EVENT_TAG, _EVENT_TIME = wire.SCOPE_SPANS_SPANS, wire.SPAN_EVENT, wire.EVENT_TIME  # cached span heads (one per route/model/status combination seen)


def _attrs(pairs: dict[str, Any]) -> list[KeyValue]:
    out = []
    for k, v in pairs.items():
        av = AnyValue(string_value=str(v)) if not isinstance(v, (bool, int, float)) else (
            AnyValue(bool_value=v) if isinstance(v, bool) else
            AnyValue(int_value=v) if isinstance(v, int) else AnyValue(double_value=v))
        out.append(KeyValue(key=k, value=av))
    return out


def _ns(perf: float, offset: float) -> int:
    return int((perf + offset) * 1e9)


class SpanExporter:
    """Bounded queue, drained by a task on the gateway's event loop that encodes and POSTs OTLP batches.

    Why no background thread: on the request path the event loop releases the GIL at every socket
    wait, and a busy encoder thread then held it for up to the interpreter's switch interval, so
    the loop queued behind it (measured: ~10-20% of plain throughput at 100% sampling on a 2-core
    machine, while the encoding itself cost ~1% of the CPU). On the loop, encoding runs in slices
    between requests and the POST is one non-blocking aiohttp call per batch.
    """

    def __init__(self, cfg: Any, provider_kinds: dict[str, str], on_drop: Any = None) -> None:
        self.endpoint: str = cfg.endpoint
        self.headers = {"content-type": "application/x-protobuf", **cfg.headers}
        self.queue: collections.deque[Any] = collections.deque()
        self.max_queue = cfg.queue_size
        self.batch = cfg.batch_size
        self.interval = cfg.interval
        self.timeout = cfg.timeout
        self.kinds = provider_kinds  # configured provider name -> openai | anthropic
        self.on_drop = on_drop
        self.dropped = 0
        self.exported = 0
        # perf_counter -> wall clock; taken once (the two clocks drift by far less than a span lasts).
        self.offset = time.time() - time.perf_counter()
        self.resource = Resource(attributes=_attrs({"service.name": cfg.service_name,
                                                    "service.version": __version__,
                                                    "telemetry.sdk.name": "tierwise",
                                                    "telemetry.sdk.language": "python"}))
        self.scope = InstrumentationScope(name="tierwise", version=__version__)
        # Encoded once: ResourceSpans.resource (1) and ScopeSpans.scope (1).
        self._resource_b = wire.field(b"\x0a", self.resource.SerializeToString())
        self._scope_b = wire.field(b"\x0a", self.scope.SerializeToString())
        self._heads: dict[tuple[Any, ...], bytes] = {}  # span heads, per route/model/status combination
        self._events: dict[tuple[Any, ...], bytes] = {}  # event bodies (all but the time), same
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the exporting task runs on
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None  # one export at a time: a flush waits for the batch in flight
        self._session: Any = None  # aiohttp.ClientSession, made on the loop at the first export
        self._sync_lock = threading.Lock()  # the same, for exports without a running loop
        self._closed = False

    # ------------------------------------------------------------------ request path

    def submit(self, rec: Any) -> None:
        q = self.queue
        if len(q) >= self.max_queue:
            self._drop(1)
            return
        q.append(rec)
        task = self._task
        if task is None or task.done():  # first request, or its loop ended (library use: asyncio.run again)
            self._start()
        elif len(q) >= self.batch and self._wake is not None:
            self._wake.set()

    def _drop(self, n: int) -> None:
        self.dropped += n
        if self.on_drop is not None:
            self.on_drop(n)

    def _start(self) -> None:
        if self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (library use from sync code): flush() or close() exports
            return
        if self._session is not None:  # made on a loop that has ended: let it go without its loop
            self._session.detach()
            self._session = None
        self._loop = loop
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task = loop.create_task(self._run(), name="tierwise-otlp")

    # ------------------------------------------------------------------ on the event loop

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._export()
            except Exception:  # a bug must not stop the exporter
                log.exception("otlp: export failed")

    async def _export(self) -> None:
        assert self._lock is not None
        async with self._lock:
            while self.queue:
                batch = self._take()
                body = await self._encode_sliced(batch)
                if body is None:
                    continue
                if await self._post(body):
                    self.exported += len(batch)
                else:
                    self._drop(len(batch))

    def _take(self) -> list[Any]:
        q = self.queue
        n = min(len(q), self.batch)
        return [q.popleft() for _ in range(n)]

    async def _encode_sliced(self, batch: list[Any]) -> bytes | None:
        spans: list[bytes] = []
        try:
            for i in range(0, len(batch), SLICE):
                for rec in batch[i:i + SLICE]:
                    self.spans_of(rec, spans)
                if i + SLICE < len(batch):
                    await asyncio.sleep(0)  # let requests in between slices: the loop stalls ~0.1 ms at most
            return wire.request_of(self._resource_b, self._scope_b, spans)
        except Exception:  # a bug must not stop the exporter
            log.exception("otlp: could not encode %d spans", len(batch))
            self._drop(len(batch))
            return None

    async def _post(self, body: bytes) -> bool:
        import aiohttp

        if self._session is None:  # one pooled connection to the receiver, made on this loop
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout),
                                                  skip_auto_headers=("User-Agent",))
        try:
            async with self._session.post(self.endpoint, data=body, headers=self.headers) as resp:
                await resp.read()
                return 200 <= resp.status < 300
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
            log.warning("otlp: export to the configured endpoint failed: %s", type(e).__name__)
            return False

    # ------------------------------------------------------------------ flush / close (any thread)

    def _on_loop(self) -> bool:
        loop = self._loop
        return loop is not None and loop.is_running() and not loop.is_closed()

    def flush(self) -> None:
        """Export everything queued so far (waits for the batch in flight). From a thread other than the
        loop's; on the loop itself, await `aflush()`."""
        loop = self._loop
        if self._on_loop() and loop is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                raise RuntimeError("SpanExporter.flush() called on its own event loop: await aflush()")
            asyncio.run_coroutine_threadsafe(self._export(), loop).result(self.timeout * 4 + 10)
            return
        self._flush_sync()

    async def aflush(self) -> None:
        if self._lock is None:
            self._flush_sync()
            return
        await self._export()

    def _flush_sync(self) -> None:
        with self._sync_lock:
            while self.queue:
                batch = self._take()
                try:
                    body = self.encode(batch)
                except Exception:
                    log.exception("otlp: could not encode %d spans", len(batch))
                    self._drop(len(batch))
                    continue
                if self._post_sync(body):
                    self.exported += len(batch)
                else:
                    self._drop(len(batch))

    def _post_sync(self, body: bytes) -> bool:
        req = urllib.request.Request(self.endpoint, data=body, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (configured URL)
                resp.read()
                return 200 <= resp.status < 300
        except (urllib.error.URLError, OSError, ValueError) as e:
            log.warning("otlp: export to the configured endpoint failed: %s", type(e).__name__)
            return False

    async def aclose(self) -> None:
        """On the loop, at shutdown: export what is queued, then stop."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._lock is not None:
            await self._export()
        else:
            self._flush_sync()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def close(self) -> None:
        """Without a running loop (library use): export what is queued."""
        self._closed = True
        if not self._on_loop():
            self._flush_sync()

    # ------------------------------------------------------------------ encoding

    def encode(self, batch: list[Any]) -> bytes:
        spans: list[bytes] = []
        for rec in batch:
            self.spans_of(rec, spans)
        return wire.request_of(self._resource_b, self._scope_b, spans)

    def _server_head(self, rec: Any) -> bytes:
        a = rec.answered
        key = (rec.route, rec.requested_model, rec.stream, a.name if a is not None else None, rec.status, rec.api,
               rec.error_type)
        h = self._heads.get(key)
        if h is None:
            static: dict[str, Any] = {
                G.GEN_AI_OPERATION_NAME: "chat",
                G.GEN_AI_REQUEST_MODEL: rec.requested_model[:MAX_TEXT],
                G.GEN_AI_REQUEST_STREAM: rec.stream,
                G.GEN_AI_RESPONSE_MODEL: a.model if a is not None else None,
                G.GEN_AI_PROVIDER_NAME: self.kinds.get(a.provider or "") if a is not None else None,
                HTTP_STATUS: rec.status,
                "tierwise.route": rec.route,
                "tierwise.api": rec.api,
                "tierwise.answered_by": a.name if a is not None else None,
                "tierwise.locality": a.locality if a is not None else None,
                ERROR_TYPE: rec.error_type if rec.error_type != NONE else None,
            }
            h = wire.head(f"chat {rec.route}"[:MAX_TEXT], SPAN_KIND_SERVER, static,
                          rec.status >= 500 or rec.error_type != NONE)
            if len(self._heads) < HEADS_MAX:
                self._heads[key] = h
        return h

    def _client_head(self, s: Any) -> bytes:
        role = s.detail.get("role") if s.detail else None
        key = (s.name, s.model, s.provider, s.locality, s.ok, s.status, role, s.reason if s.ok is False else None)
        h = self._heads.get(key)
        if h is None:
            cerr = call_error_type(s.ok, s.status, s.reason)
            static: dict[str, Any] = {
                G.GEN_AI_OPERATION_NAME: "chat",
                G.GEN_AI_PROVIDER_NAME: self.kinds.get(s.provider or ""),
                G.GEN_AI_REQUEST_MODEL: s.model,
                G.GEN_AI_RESPONSE_MODEL: s.model if s.ok else None,
                HTTP_STATUS: s.status,
                "tierwise.deployment": s.name,
                "tierwise.provider": s.provider,
                "tierwise.locality": s.locality,
                "tierwise.role": str(role) if role is not None else None,
                ERROR_TYPE: cerr if cerr != NONE else None,
            }
            h = wire.head(f"chat {s.model}"[:MAX_TEXT], SPAN_KIND_CLIENT, static, s.ok is False)
            if len(self._heads) < HEADS_MAX:
                self._heads[key] = h
        return h

    def spans_of(self, rec: Any, out: list[bytes]) -> None:
        """Append the request's spans (server first, then one client span per upstream call) to `out`, as
        ScopeSpans.spans entries. Written out flat (no helper calls per value): this runs for every request."""
        ids = rec.ids
        trace_id = ids.trace_id
        tid_hi, tid_lo = trace_id >> 64, trace_id & _MASK64
        server_id = ids.span_id
        off = self.offset
        byte = wire.BYTE
        dbl = wire.double
        times = wire.times
        calls: list[bytes] = []
        events: list[bytes] = []
        tin = tout = tcache = 0
        total_cost = 0.0
        ids3 = _IDS3
        for i, s in enumerate(rec.steps):
            if s.kind == "call":
                start = s.at + off
                body = [ids3(_T_TRACE, tid_hi, tid_lo, _T_SPAN, call_span_id(server_id, i), _T_PARENT, server_id),
                        self._client_head(s),
                        times(0x39, int(start * 1e9), 0x41, int((start + (s.latency_ms or 0.0) / 1000) * 1e9))]
                c = s.cost
                if c is not None:
                    body.append(_P_COST + dbl(c) if type(c) is float else wire.value(wire.SPAN_ATTR, COST, c))
                    total_cost += c
                u = s.usage
                if u is not None:
                    n = u.input_tokens
                    tin += n
                    body.append(_IN1 + byte[n] if 0 <= n < 0x80 else _IN(n))
                    n = u.output_tokens
                    tout += n
                    body.append(_OUT1 + byte[n] if 0 <= n < 0x80 else _OUT(n))
                    n = u.cache_read_tokens
                    if n:
                        tcache += n
                        body.append(_CACHE(n))
                if s.ttft_ms is not None:
                    body.append(_P_TTFT + dbl(s.ttft_ms / 1000))
                span = b"".join(body)
                n = len(span)
                calls.append(_SPANS_TAG + (byte[n] if n < 0x80 else wire.varint(n)))
                calls.append(span)
            else:
                e = _EVENT_TIME + wire.fixed64_value(int((s.at + off) * 1e9)) + self._event_body(s)
                n = len(e)
                events.append(_EVENT_TAG + (byte[n] if n < 0x80 else wire.varint(n)))
                events.append(e)
        start = rec.started + off
        rid = rec.request_id
        body = [ids3(_T_TRACE, tid_hi, tid_lo, _T_SPAN, server_id, _T_PARENT, ids.parent_id) if ids.parent_id
                else _IDS2(_T_TRACE, tid_hi, tid_lo, _T_SPAN, server_id), self._server_head(rec)]
        body.append(times(0x39, int(start * 1e9), 0x41, int((start + rec.latency_ms / 1000) * 1e9)))
        body.append(wire.value(wire.SPAN_ATTR, REQUEST_ID, rid))
        body.append(_IN1 + byte[tin] if tin < 0x80 else _IN(tin))
        body.append(_OUT1 + byte[tout] if tout < 0x80 else _OUT(tout))
        if tcache:
            body.append(_CACHE(tcache))
        if rec.stream and rec.ttft_ms:
            body.append(_P_TTFT + dbl(rec.ttft_ms / 1000))
        if total_cost:
            body.append(_P_COST + dbl(float(total_cost)))
        ref = rec.reference_cost
        if ref is not None:
            body.append(_P_REF + dbl(ref) if type(ref) is float else wire.value(wire.SPAN_ATTR, REFERENCE_COST, ref))
        if rec.content is not None:
            body.append(wire.value(wire.SPAN_ATTR, G.GEN_AI_INPUT_MESSAGES, scrub(rec.content[:MAX_CONTENT])))
        body += events
        span = b"".join(body)
        n = len(span)
        out.append(_SPANS_TAG + (byte[n] if n < 0x80 else wire.varint(n)))
        out.append(span)
        out += calls

    def _event_body(self, s: Any) -> bytes:
        key = (s.kind, s.name, s.ok, s.score, s.reason)
        body = self._events.get(key)
        if body is None:
            if s.kind == "verdict":
                body = wire.event_body(EVALUATION_EVENT, {
                    G.GEN_AI_EVALUATION_NAME: s.name[:MAX_TEXT],
                    G.GEN_AI_EVALUATION_SCORE_VALUE: s.score,
                    G.GEN_AI_EVALUATION_SCORE_LABEL: "pass" if s.ok else "fail",
                    G.GEN_AI_EVALUATION_EXPLANATION: scrub(s.reason[:MAX_TEXT]),
                })
            else:
                body = wire.event_body(DECISION_EVENT, {
                    "tierwise.policy": s.name[:MAX_TEXT],
                    "tierwise.reason": scrub(s.reason[:MAX_TEXT]),
                    "tierwise.reason_label": reason_label(s.reason),
                })
            if len(self._events) < HEADS_MAX:
                self._events[key] = body
        return body
