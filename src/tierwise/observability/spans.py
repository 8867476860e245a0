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
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from tierwise import __version__
from tierwise.observability import otlp_wire as wire
from tierwise.observability.span_encoder import DECISION_EVENT, EVALUATION_EVENT, SpanEncoder

__all__ = ["DECISION_EVENT", "EVALUATION_EVENT", "SpanExporter"]

log = logging.getLogger("tierwise.observability")

SLICE = 64  # records encoded between two returns to the event loop (~0.1 ms of work)


def _attrs(pairs: dict[str, Any]) -> list[KeyValue]:
    out = []
    for k, v in pairs.items():
        av = AnyValue(string_value=str(v)) if not isinstance(v, (bool, int, float)) else (
            AnyValue(bool_value=v) if isinstance(v, bool) else
            AnyValue(int_value=v) if isinstance(v, int) else AnyValue(double_value=v))
        out.append(KeyValue(key=k, value=av))
    return out


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
        self.encoder = SpanEncoder(provider_kinds, self.offset)
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
        encode = self.encoder.encode
        try:
            for i in range(0, len(batch), SLICE):
                spans += encode(batch[i:i + SLICE])
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
        return wire.request_of(self._resource_b, self._scope_b, self.encoder.encode(batch))
