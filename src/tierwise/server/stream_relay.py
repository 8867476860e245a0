"""The streamed answer of a chat request: opens the target's stream, relays it to the client as its
API's server-sent events (bytes passed through when the upstream spoke the client's format) and
records the request's ledger row before the client sees the end.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from tierwise.cache.answer_cache import cache_header
from tierwise.canonical import Request, StreamChunk
from tierwise.errors import Internal, TierwiseError
from tierwise.gateway import MAX_STORED_TEXT
from tierwise.server.asgi_scope import Receive, Scope, Send
from tierwise.server.limits import retry_after_header
from tierwise.wire import model_name

log = logging.getLogger("tierwise.server")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
USAGE_ONLY_CHUNK = b'"choices":[]'
SSE_EVENT_END = re.compile(rb"(?<=\n\n)|(?<=\r\n\r\n)")  # splits after each event, keeping its end


async def relay_stream(
    app: Any, scope: Scope, send: Send, receive: Receive, codec: Any, req: Request, target: Any, ctx: Any, t0: float,
    rid: Any
) -> None:
    """Answer a streamed chat request: open the upstream stream, then relay it to the client in its
    API's SSE until the end, a failure (the API's mid-stream error event) or the client going away."""
    # Open the stream and wait for its first chunk before answering, so a failure that
    # happens before any byte reached the client is a plain HTTP error (and fallbacks stay silent).
    try:
        it = await target.stream(req, ctx)
        try:
            first: StreamChunk = await it.__anext__()
        except StopAsyncIteration:
            first = StreamChunk(events=[])
    except TierwiseError as e:
        app.gw.record(ctx, req, status=e.status, stream=True, latency_ms=(time.perf_counter() - t0) * 1000,
                      error=e)
        # The route and its steps, as a non-streamed answer's error has them (which targets failed, and how).
        await app.send_json(send, e.status, codec.encode_error(e), [
            rid, (b"x-tierwise-route", ctx.trace.route.encode()),
            (b"x-tierwise-steps", ctx.trace.header_summary().encode()), *retry_after_header(e)])
        return
    except asyncio.CancelledError:  # the client left before the first chunk (server/limits.py cancels the work)
        app.gw.record(ctx, req, status=499, stream=True, latency_ms=(time.perf_counter() - t0) * 1000)
        raise
    except Exception:
        log.exception("stream %s failed to start", ctx.trace.request_id)
        err = Internal("internal error in the gateway; see its log")
        app.gw.record(ctx, req, status=500, stream=True, latency_ms=(time.perf_counter() - t0) * 1000, error=err)
        await app.send_json(send, 500, codec.encode_error(err), [rid])
        return
    ttft = (time.perf_counter() - t0) * 1000
    encoder = codec.StreamEncoder(req.model, req)
    fmt = codec.FORMAT
    passthrough = first.raw is not None and first.raw_format == fmt
    # The upstream's bytes name the upstream's model (a local server's may be a file path): the
    # client reads the name it asked for, as in a re-encoded stream (wire/model_name.py).
    # None once no later chunk can name it (an Anthropic stream names it in `message_start` only).
    rename = model_name.renamer(fmt, req.model) if passthrough else None
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
            app.gw.record(
                ctx, req, status=error.status if error is not None else status, stream=True,
                latency_ms=(time.perf_counter() - t0) * 1000, ttft_ms=ttft, error=error,
            )

    answer: list[str] | None = [] if app.gw.store_text else None
    ctx.notes["answer_text"] = answer
    answer_len = 0

    def render(chunk: StreamChunk) -> bytes:
        nonlocal answer_len, rename
        if answer is not None and answer_len < MAX_STORED_TEXT:  # `ledger.store_text`: for the ledger row
            for e in chunk.events:
                if e.kind == "block_delta" and e.delta_type == "text":
                    answer.append(e.value)
                    answer_len += len(e.value)
        if passthrough and chunk.raw is not None:
            data = chunk.raw
            if rename is not None:
                data, more = rename(data)
                if not more:
                    rename = None
            if drop_usage_chunk and USAGE_ONLY_CHUNK in data:
                data = b"".join(e for e in SSE_EVENT_END.split(data) if USAGE_ONLY_CHUNK not in e)
            return data
        if passthrough and not encoder.resumed:
            # (wire14) an end the decoder made after the upstream's own bytes (a stream without [DONE] or
            # message_stop): the encoder continues the relayed stream, never opens a second one (another id,
            # a message_start mid-message, usage of zeros after the upstream's, which the SDKs keep)
            encoder.resume()
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
        app.give_back_caps(scope)  # (before the relay's task ends: turns later)
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
