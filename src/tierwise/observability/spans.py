"""OpenTelemetry GenAI spans, sent over OTLP/HTTP (protobuf) in batches.

At the end of a traced request the observer hands `submit` one `Finished` record; its spans (one
server span per request, one client span per upstream call, span events for decisions and
verifier verdicts) are written as protobuf bytes at once (`span_encoder`, a few microseconds)
and wait with the rest of their batch. Once a second, or when `batch_size` requests wait, a task
on the event loop POSTs the waiting batches. When `queue_size` requests wait, or the receiver
fails, requests' spans are dropped and counted (`tierwise_trace_spans_dropped`).

Redirects are never followed: `headers` usually carry the receiver's credentials (an `authorization`,
an `x-honeycomb-team`, an `api-key`), and aiohttp re-sends every header but `Authorization` to the host a
redirect names (urllib every header, `Authorization` too); a 3xx counts as a failed export.

A receiver that answers an export with anything but 2xx (a 401 for a wrong key, a 413, a 3xx) is logged at WARNING
(`_refused`): the status and the start of its answer, scrubbed and on one line, never the request's headers; at most
once a minute for the same status, so a receiver refusing every batch does not flood the log. So is a 2xx whose
ExportTraceServiceResponse reports a partial success (spans the receiver rejected, and its reason).

The receiver's answer is read to at most `MAX_ANSWER` bytes (an ExportTraceServiceResponse is a few bytes, a
partial success a short message): whoever answers at its address could otherwise send gigabytes (or a gzip bomb,
which aiohttp inflates) into the gateway's memory within `timeout`. A longer answer closes the connection.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from tierwise import __version__, no_redirects, secret_scrub
from tierwise.observability import otlp_wire as wire
from tierwise.observability.span_encoder import DECISION_EVENT, EVALUATION_EVENT, SpanEncoder

__all__ = ["DECISION_EVENT", "EVALUATION_EVENT", "SpanExporter"]

log = logging.getLogger("tierwise.observability")
MAX_ANSWER = 64 * 1024  # bytes of a receiver's answer read (see the module docstring)
REFUSAL_SHOWN = 300  # characters of a refusing receiver's answer logged
ANSWER_KEPT = 4096  # bytes of the receiver's answer kept to read its refusal or partial success from
REFUSAL_EVERY = 60.0  # seconds between two log lines for the same refusal status

def _attrs(pairs: dict[str, Any]) -> list[KeyValue]:
    out = []
    for k, v in pairs.items():
        av = AnyValue(string_value=str(v)) if not isinstance(v, (bool, int, float)) else (
            AnyValue(bool_value=v) if isinstance(v, bool) else
            AnyValue(int_value=v) if isinstance(v, int) else AnyValue(double_value=v))
        out.append(KeyValue(key=k, value=av))
    return out


def _shown(text: str) -> str:
    """A receiver's words as logged: scrubbed (it may echo the key it refused), cut, and on one line (its line breaks
    would forge log lines)."""
    text = "".join(c if c.isprintable() else " " for c in text)
    return secret_scrub.scrub_cut(" ".join(text.split()), REFUSAL_SHOWN)


class SpanExporter:
    """A request's spans are encoded when it finishes (`submit`) and wait as bytes, in batches of
    `batch_size` requests, bounded by `queue_size`; a task on the gateway's event loop POSTs them.

    Why encode at once rather than in the exporting task: a queued record holds the request's
    trace (its steps, their usage and details) until the export, and those objects, surviving
    into the garbage collector's older generations and making its young one fill up faster,
    cost the gateway more than the encoding did; bytes are not tracked by the collector.
    Why no background thread: on the request path the event loop releases the GIL at every socket
    wait, and a busy thread then held it for up to the interpreter's switch interval, so the loop
    queued behind it (measured: ~10-20% of plain throughput at 100% sampling on a 2-core machine).
    """

    def __init__(self, cfg: Any, provider_kinds: dict[str, str], on_drop: Any = None, privacy: Any = None) -> None:
        self.endpoint: str = cfg.endpoint
        self.headers = {"content-type": "application/x-protobuf", **cfg.headers}
        self.pending: list[bytes] = []  # ScopeSpans.spans entries of the batch being filled
        self.pending_n = 0  # requests in it
        self.ready: collections.deque[tuple[list[bytes], int, int]] = collections.deque()  # full batches, bytes
        self.waiting = 0  # requests encoded and not yet exported (or dropped)
        self.max_queue = cfg.queue_size
        # The count alone let 4,096 requests with captured content (16,384 characters, up to 4 bytes each) hold
        # 272 MB while the receiver was down or slow (66 kB a request; before session 32): full batches are
        # bounded in bytes too, and the one being filled holds at most `batch_size` requests.
        self.max_bytes = cfg.queue_bytes
        self.ready_bytes = 0
        # The batch being filled is sealed at an eighth of that, and the POST in flight counts against the bound:
        # both were outside it (up to `batch_size` requests each, ~34 MB apiece at 66 kB a request, on top of the
        # 32 MiB; review32a), so all the exporter holds is at most ~1.125 × queue_bytes and one request.
        self.seal_bytes = max(1, cfg.queue_bytes // 8)
        self.pending_bytes = 0
        self._in_flight_bytes = 0
        self.batch = cfg.batch_size
        self.interval = cfg.interval
        self.timeout = cfg.timeout
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
        self.encoder = SpanEncoder(provider_kinds, self.offset, privacy)
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the exporting task runs on
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None  # one export at a time: a flush waits for the batch in flight
        self._session: Any = None  # aiohttp.ClientSession, made on the loop at the first export
        self._sync_lock = threading.Lock()  # the same, for exports without a running loop
        self._closed = False
        self._trigger = 0  # pending_n at which submit calls _kick: 0 until the task runs, then batch_size
        self._in_flight = 0  # requests in the POST being made
        self._refusal: tuple[int, float] = (0, 0.0)  # the last refusal logged: its status, time.monotonic()

    # ------------------------------------------------------------------ request path

    def submit(self, rec: Any) -> None:
        if self.waiting >= self.max_queue:
            self._drop(1)
            return
        w = self.encoder._native  # (SpanEncoder.spans_of, without its frame: this runs per traced request)
        k = len(self.pending)
        if w is None:
            self.encoder.spans_of(rec, self.pending)
        else:
            try:
                w(rec, self.pending)
            except Exception:
                self.encoder.fallbacks += 1
                self.encoder.spans_of_python(rec, self.pending)
        self.waiting += 1
        self.pending_n = n = self.pending_n + 1
        self.pending_bytes = b = self.pending_bytes + sum(map(len, self.pending[k:]))
        if n >= self._trigger or b >= self.seal_bytes:
            self._kick()

    def _kick(self) -> None:
        if self.pending_n >= self.batch or self.pending_bytes >= self.seal_bytes:
            self._seal()
            if self._wake is not None:
                self._wake.set()
        task = self._task
        if task is None or task.done():  # first request, or its loop ended (library use: asyncio.run again)
            self._start()

    def _seal(self) -> None:
        """The batch being filled is complete: to the export queue."""
        if self.pending_n:
            nb = self.pending_bytes
            held = self.ready_bytes + self._in_flight_bytes
            if held and held + nb > self.max_bytes:
                self.waiting -= self.pending_n
                self._drop(self.pending_n)
            else:
                self.ready.append((self.pending, self.pending_n, nb))
                self.ready_bytes += nb
            self.pending = []
            self.pending_n = 0
            self.pending_bytes = 0

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
        self._task.add_done_callback(self._stopped)
        self._trigger = self.batch

    def _stopped(self, task: Any) -> None:
        if task is self._task:
            self._trigger = 0  # the next submit starts a task again (on the loop it runs on)

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

    async def _export(self, deadline: float | None = None) -> None:
        """POST the waiting batches; with `deadline` (time.monotonic(), at shutdown) those it leaves no time for
        are dropped and counted."""
        assert self._lock is not None
        async with self._lock:
            self._seal()
            while self.ready:
                entries, n, nb = self.ready.popleft()
                self.waiting -= n
                self.ready_bytes -= nb
                budget = None if deadline is None else deadline - time.monotonic()
                if budget is not None and budget <= 0:
                    self._drop(n)
                    continue
                self._in_flight, self._in_flight_bytes = n, nb  # (dropped by aclose when the POST is cancelled)
                body = self._body(entries)
                del entries  # (the body alone is held while the POST waits)
                ok = await self._post(body, budget)
                del body
                self._in_flight, self._in_flight_bytes = 0, 0
                if ok:
                    self.exported += n
                else:
                    self._drop(n)

    def _body(self, entries: list[bytes]) -> bytes:
        return wire.request_of(self._resource_b, self._scope_b, entries)

    async def _post(self, body: bytes, budget: float | None = None) -> bool:
        import aiohttp

        if self._session is None:  # one pooled connection to the receiver, made on this loop
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout),
                                                  skip_auto_headers=("User-Agent",))
        extra = {} if budget is None else {"timeout": aiohttp.ClientTimeout(total=min(budget, self.timeout))}
        try:
            async with self._session.post(self.endpoint, data=body, headers=self.headers,
                                          allow_redirects=False, **extra) as resp:
                left = MAX_ANSWER  # (inflated bytes, when the answer is compressed)
                head = b""
                while left > 0 and not resp.content.at_eof():
                    chunk = await resp.content.read(left)
                    head = head or chunk[:ANSWER_KEPT]
                    left -= len(chunk) or left
                if not resp.content.at_eof():
                    resp.close()  # longer than any OTLP answer: the connection is not read further
                if 200 <= resp.status < 300:
                    self._partial(head)
                    return True
                self._refused(resp.status, head)
                return False
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
            log.warning("otlp: export to the configured endpoint failed: %s", type(e).__name__)
            return False

    def _refused(self, status: int, answer: bytes) -> None:
        """The receiver answered an export with `status` (not 2xx): tell the operator, without the request's
        headers (its credentials)."""
        if self._due(status):
            hint = " (a redirect: not followed, the headers carry the receiver's credentials)" \
                if 300 <= status < 400 else ""
            text = _shown(answer.decode("utf-8", "replace"))
            log.warning("otlp: the configured endpoint refused an export: HTTP %d%s%s; its spans are dropped",
                        status, hint, f": {text}" if text else "")

    def _partial(self, answer: bytes) -> None:
        """A 2xx whose ExportTraceServiceResponse says the receiver rejected some spans (OTLP's partial success)."""
        if len(answer) < 2:  # (an empty answer, or an empty message: full success)
            return
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        try:
            part = ExportTraceServiceResponse.FromString(answer).partial_success
        except (DecodeError, ValueError):  # not protobuf (or cut at the bytes kept): nothing to say
            return
        if (part.rejected_spans or part.error_message) and self._due(-1):
            text = _shown(part.error_message)
            log.warning("otlp: the configured endpoint accepted an export but rejected %d span(s)%s",
                        part.rejected_spans, f": {text}" if text else "")

    def _due(self, status: int) -> bool:
        """Whether a line about `status` (-1: a partial success) may be logged now: once a minute for the same."""
        now = time.monotonic()
        last, at = self._refusal
        if status == last and now - at < REFUSAL_EVERY:
            return False
        self._refusal = (status, now)
        return True

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
            self._seal()
            while self.ready:
                entries, n, nb = self.ready.popleft()
                self.waiting -= n
                self.ready_bytes -= nb
                if self._post_sync(self._body(entries)):
                    self.exported += n
                else:
                    self._drop(n)

    def _post_sync(self, body: bytes) -> bool:
        req = urllib.request.Request(self.endpoint, data=body, headers=self.headers, method="POST")
        try:
            with no_redirects.urlopen(req, timeout=self.timeout) as resp:
                head = resp.read(MAX_ANSWER)[:ANSWER_KEPT]  # (closing the response drops the rest)
                if 200 <= resp.status < 300:
                    self._partial(head)
                    return True
                self._refused(resp.status, head)
                return False
        except urllib.error.HTTPError as e:  # urllib's form of a non-2xx answer (a 3xx too: no_redirects)
            try:
                head = e.read(MAX_ANSWER)[:ANSWER_KEPT]
            except (OSError, ValueError):
                head = b""
            self._refused(e.code, head)
            return False
        except (urllib.error.URLError, OSError, ValueError) as e:
            log.warning("otlp: export to the configured endpoint failed: %s", type(e).__name__)
            return False

    async def aclose(self) -> None:
        """On the loop, at shutdown: export what is queued, then stop. The last export has one `timeout` in all:
        a hung receiver held the shutdown for a `timeout` per waiting batch (queue_size / batch_size + 1 of them);
        what it does not send in that time is dropped and counted."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._lock is not None:
            self._drop_in_flight()
            await self._export(time.monotonic() + self.timeout)
        else:
            self._flush_sync()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _drop_in_flight(self) -> None:
        """A POST cancelled before its answer: its requests are dropped (and counted)."""
        if self._in_flight:
            self._drop(self._in_flight)
            self._in_flight, self._in_flight_bytes = 0, 0

    def close(self) -> None:
        """Without a running loop (library use): export what is queued."""
        self._closed = True
        if not self._on_loop():
            self._flush_sync()

    # ------------------------------------------------------------------ encoding

    def encode(self, batch: list[Any]) -> bytes:
        """An ExportTraceServiceRequest for finished-request records (tests, benchmarks)."""
        return self._body(self.encoder.encode(batch))
