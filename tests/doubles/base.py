"""The machinery both upstream doubles share: a real aiohttp server on 127.0.0.1 in a background
thread with its own event loop, request recording, the script queue, and delivery of a Plan
(delays, slow chunks, cut connections) — so each format module only says how to render.

Tests are sync (they call the official SDKs) and async; a thread-owned loop serves both.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.doubles.script import Fail, Plan, Raw, Reply, StreamError, resolve


@dataclass
class RecordedRequest:
    """One request as the double received it. `body` is the parsed JSON (None if not JSON)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    body: Any = None
    status: int | None = None  # what the double answered (None while in flight / when cut)
    peer: Any = None  # the client's (host, port): equal peers mean a reused connection
    meta: dict[str, Any] = field(default_factory=dict)


# Per-request flag: has this request already been counted as gone (client left, or our own cut)?
STATE_KEY: web.RequestKey[dict[str, bool]] = web.RequestKey("double_state", dict)


class Rejected(Exception):
    """A request the double refuses the way the real API would (status + message)."""

    def __init__(self, status: int, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


class DoubleServer:
    """Base for OpenAIDouble / AnthropicDouble. Use `start()`/`stop()` or `with`/`async with`.

    `api_key`: when set, requests must carry it (401 otherwise); when None, any or no key is fine
    (the gateway sends no key to a provider configured without one).
    """

    kind = "base"

    def __init__(self, *, api_key: str | None = None, models: list[str] | None = None) -> None:
        self.api_key = api_key
        self.models = models or ["double-model"]
        self.default: Any = Reply(text="ok")
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0  # clients that went away before the double finished answering
        self.cuts = 0  # connections the double dropped on purpose (CutStream)
        self.active = 0  # requests being answered right now
        self.url = ""
        self.port = 0
        self._script: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._clients: list[Any] = []

    def keep(self, client: Any) -> Any:
        """`client` (an SDK or httpx client of this double), closed when the double stops (see GatewayServer.keep)."""
        self._clients.append(client)
        return client

    # ------------------------------------------------------------------ script

    def script(self, *items: Any) -> None:
        """Queue items; each generation request consumes one, then `default` answers."""
        with self._lock:
            self._script.extend(items)

    @property
    def last(self) -> RecordedRequest | None:
        """The most recent request, or None."""
        return self.requests[-1] if self.requests else None

    @property
    def pending(self) -> int:
        """Script items not consumed yet."""
        return len(self._script)

    def reset(self) -> None:
        """Forget the script, the recorded requests and the counters; default back to "ok"."""
        with self._lock:
            self._script.clear()
        self.requests.clear()
        self.default = Reply(text="ok")
        self.disconnects = self.cuts = 0

    def _next_plan(self, rec: RecordedRequest) -> Plan:
        with self._lock:
            item = self._script.popleft() if self._script else None
        return resolve(item if item is not None else self.default, self.default, rec)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll `predicate` (e.g. `lambda: d.disconnects >= 1`) until true or `timeout`; return it."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> DoubleServer:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve_start())
            except BaseException as e:  # noqa: BLE001 - reported to the starting thread
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"{type(self).__name__}-loop", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            self._thread = None
            raise RuntimeError(f"{type(self).__name__} did not start: {failure[0] if failure else 'timeout'}")
        return self

    async def _serve_start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # handler_cancellation: a client that hangs up cancels its handler, as on a real server,
        # which is how `disconnects` sees cancelled upstream requests even during a Delay.
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, handler_cancellation=True,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._serve_stop(), loop)
        with contextlib.suppress(Exception):
            fut.result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None

    async def _serve_stop(self) -> None:
        for t in list(self._tasks):  # a handler stuck in a long Delay must not hold up the shutdown
            t.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def __enter__(self) -> DoubleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> DoubleServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # ------------------------------------------------------------------ to override

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def error_body(self, status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def render_body(self, reply: Reply, rec: RecordedRequest) -> dict[str, Any]:
        raise NotImplementedError

    def render_chunks(self, reply: Reply, rec: RecordedRequest) -> list[bytes]:
        raise NotImplementedError

    def stream_error_chunk(self, err: StreamError) -> bytes:
        raise NotImplementedError

    def extra_headers(self) -> dict[str, str]:
        return {}

    # ------------------------------------------------------------------ helpers for handlers

    async def record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = None
        rec = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            raw=raw,
            body=body,
            peer=request.transport.get_extra_info("peername") if request.transport else None,
        )
        self.requests.append(rec)
        return rec

    def json_response(self, status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        h = {**self.extra_headers(), **(headers or {})}
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=h)

    def error_response(self, rec: RecordedRequest | None, status: int, message: str,
                       error_type: str | None = None, retry_after: float | str | None = None) -> web.Response:
        headers = {}
        if isinstance(retry_after, str):
            headers["retry-after"] = retry_after
        elif retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        if rec is not None:
            rec.status = status
        return self.json_response(status, self.error_body(status, message, error_type), headers)

    def check_key(self, rec: RecordedRequest) -> None:
        """401 when the double was given an api_key and the request does not carry it."""
        if self.api_key is None:
            return
        h = rec.headers
        got = h.get("x-api-key") or (h.get("authorization", "").removeprefix("Bearer ").strip() or None)
        if got != self.api_key:
            raise Rejected(401, "invalid x-api-key" if self.kind == "anthropic" else "Incorrect API key provided.")

    def route(self, handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        """Wrap a handler for app.router: disconnect counting and cancellation on stop()."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            return await self.guarded(request, handler)

        return wrapped

    async def guarded(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        """Run a handler, counting client disconnects and keeping stop() able to cancel it."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.active += 1
        state = {"gone": False}
        request[STATE_KEY] = state
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except (asyncio.CancelledError, ConnectionResetError):
            if not state["gone"]:
                state["gone"] = True
                self.disconnects += 1
            raise
        finally:
            self.active -= 1
            if task is not None:
                self._tasks.discard(task)

    async def _not_found(self, request: web.Request) -> web.Response:
        return self.json_response(404, self.error_body(404, f"Unknown request URL: {request.method} {request.path}"))

    # ------------------------------------------------------------------ delivery

    async def answer(self, request: web.Request, rec: RecordedRequest, stream: bool) -> web.StreamResponse:
        """Consume the next script item and deliver it as `rec` asked (stream or whole body)."""
        try:
            plan = self._next_plan(rec)
        except Exception as e:  # a broken script item (or callable) fails the request loudly, not the server
            return self.error_response(rec, 500, f"double: bad script item: {e}")
        if plan.gate is not None:  # a thread's event: wait off the loop (bounded)
            await asyncio.get_running_loop().run_in_executor(None, plan.gate.wait, 30)
        if plan.delay:
            await asyncio.sleep(plan.delay)
        if plan.cut_after == 0:
            return await self._drop(request)
        final = plan.final
        if isinstance(final, Fail):
            return self.error_response(rec, final.status, final.msg or _default_message(final.status),
                                       final.error_type, final.retry_after)
        if isinstance(final, Raw):
            rec.status = final.status
            body = final.body.encode() if isinstance(final.body, str) else final.body
            if final.split:
                return await _send_split(request, final, body)
            return web.Response(status=final.status, body=body,
                                headers={"content-type": final.content_type, **final.headers})
        rec.status = 200
        if stream:
            return await self._send_stream(request, rec, final, plan)
        return await self._send_body(request, rec, final, plan)

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        """Close the connection abruptly, without a response (or mid-response)."""
        self.cuts += 1
        state = request.get(STATE_KEY)
        if state is not None:
            state["gone"] = True  # our own cut, not a client disconnect
        transport = request.transport
        if transport is not None:
            transport.abort()
        # No response can follow; cancelling ends the handler without aiohttp writing or logging one.
        raise asyncio.CancelledError

    async def _send_stream(self, request: web.Request, rec: RecordedRequest, reply: Reply,
                           plan: Plan) -> web.StreamResponse:
        chunks = self.render_chunks(reply, rec)
        if plan.corrupt is not None and chunks:
            i = min(plan.corrupt.at_chunk, len(chunks) - 1)
            chunks[i] = _damage(chunks[i], plan.corrupt.kind, stream=True)
        resp = web.StreamResponse(status=200, headers={
            "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
            **self.extra_headers()})
        await resp.prepare(request)
        if plan.trickle:
            await _trickle(resp, b"".join(chunks), plan.trickle)
            return resp
        for i, chunk in enumerate(chunks):
            if plan.hold is not None and i == plan.hold.at_chunk:  # a thread's event: wait off the loop (bounded)
                await asyncio.get_running_loop().run_in_executor(None, plan.hold.release.wait, 30)
            if plan.cut_after is not None and i >= plan.cut_after:
                return await self._drop(request)
            if plan.error_after is not None and i >= plan.error_after.after_chunks:
                release = plan.error_after.release
                if release is not None:  # a thread's event: wait off the double's loop (bounded)
                    await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
                await resp.write(self.stream_error_chunk(plan.error_after))
                break
            if i and plan.interval:
                await asyncio.sleep(plan.interval)
            await resp.write(chunk)
        if plan.end_delay:
            await asyncio.sleep(plan.end_delay)
        await resp.write_eof()
        return resp

    async def _send_body(self, request: web.Request, rec: RecordedRequest, reply: Reply,
                         plan: Plan) -> web.StreamResponse:
        data = orjson.dumps(self.render_body(reply, rec))
        if plan.corrupt is not None:
            data = _damage(data, plan.corrupt.kind, stream=False)
        if plan.cut_after is None and not plan.interval and not plan.trickle:
            return web.Response(status=200, body=data, content_type="application/json", headers=self.extra_headers())
        resp = web.StreamResponse(status=200, headers={"content-type": "application/json", **self.extra_headers()})
        resp.content_length = len(data)
        await resp.prepare(request)
        if plan.trickle:
            await _trickle(resp, data, plan.trickle)
            return resp
        parts = max(2, plan.cut_after or 4)
        size = max(1, len(data) // parts)
        pieces = [data[i:i + size] for i in range(0, len(data), size)]
        for i, piece in enumerate(pieces):
            if plan.cut_after is not None and i >= min(plan.cut_after, len(pieces) - 1):
                return await self._drop(request)  # a body cut short of its Content-Length
            if i and plan.interval:
                await asyncio.sleep(plan.interval)
            await resp.write(piece)
        await resp.write_eof()
        return resp


def _damage(data: bytes, kind: str, *, stream: bool) -> bytes:
    """Break a body or one SSE event: malformed JSON, or an invalid UTF-8 byte inside its text."""
    if kind == "utf8":
        # Inside the first string value after the first key: still JSON-shaped, no longer UTF-8.
        at = data.find(b'":"')
        at = at + 3 if at >= 0 else len(data) // 2
        return data[:at] + b"\xff\xfe" + data[at:]
    if kind == "json":
        if stream:
            return data.replace(b"data: {", b"data: {\"oops\" ", 1)
        return data[: len(data) // 2] + b"}"
    raise ValueError(f"unknown damage kind {kind!r}")


async def _send_split(request: web.Request, raw: Raw, body: bytes) -> web.StreamResponse:
    """`raw`'s body written in the pieces its `split` offsets cut, `raw.pause` seconds apart."""
    resp = web.StreamResponse(status=raw.status, headers={"content-type": raw.content_type, **raw.headers})
    await resp.prepare(request)
    cuts = [0, *raw.split, len(body)]
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        if i:
            await asyncio.sleep(raw.pause)
        await resp.write(body[a:b])
    await resp.write_eof()
    return resp


async def _trickle(resp: web.StreamResponse, data: bytes, interval: float) -> None:
    for i in range(len(data)):
        await resp.write(data[i:i + 1])
        await asyncio.sleep(interval)
    await resp.write_eof()


def _default_message(status: int) -> str:
    return {
        400: "Invalid request", 401: "Invalid authentication", 403: "Permission denied", 404: "Not found",
        408: "Request timed out", 413: "Request too large", 429: "Rate limit reached", 500: "Internal server error",
        502: "Bad gateway", 503: "Service unavailable", 504: "Gateway timeout", 529: "Overloaded",
    }.get(status, f"HTTP {status}")


def estimate_tokens(value: Any) -> int:
    """A deterministic size-based token count (about 4 bytes per token) for usage and count_tokens."""
    if value is None:
        return 0
    return max(1, len(orjson.dumps(value)) // 4)
