"""A deployment: one configured model on one provider, usable as a policy Target.

It encodes the canonical request in the provider's wire format, calls it (through its
circuit breaker), decodes the answer, and records one `call` step on the trace with status,
latency, time to first token, tokens and cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import aiohttp
import orjson

from tierwise.budgets.background import BACKGROUND, COVERS, further_call, unused_call
from tierwise.canonical import (
    BlockDelta,
    Choice,
    MessageDelta,
    MessageStart,
    Request,
    Response,
    StreamChunk,
    StreamError,
    Usage,
)
from tierwise.config import ModelConfig
from tierwise.console_log import upstream_refused, upstream_unreachable
from tierwise.errors import CircuitOpen, InvalidRequest, RateLimitHold, UpstreamError, UpstreamTimeout
from tierwise.policies.base import Context
from tierwise.pricing import Price
from tierwise.providers import output_rate, sent_clock, window
from tierwise.providers.breaker import CircuitBreaker
from tierwise.providers.error_classes import class_of, config_fault, counts_against_deployment
from tierwise.providers.fan_out import all_or_none
from tierwise.providers.http import Provider, mark_answering
from tierwise.providers.live_stats import LiveStats
from tierwise.providers.streamed_body import answer_of
from tierwise.providers.usage_bounds import (
    answer_chars,
    at_least_relayed,
    bound_usage,
    hides_reasoning,
    text_units,
    too_few,
    unseen_output,
)
from tierwise.providers.whole_body_stream import choose
from tierwise.tokens import PER_FETCHED_DOCUMENT, estimate_request, fetched_documents_in
from tierwise.wire import anthropic_messages, openai_chat, strict_output
from tierwise.wire.sse import EventTooLarge, EventTooManyLines
from tierwise.wire.strict_tools import StrictCalls, answer_calls, violation, whole_reason

CODECS: dict[str, ModuleType] = {"openai": openai_chat, "anthropic": anthropic_messages}


class Deployment:
    def __init__(
        self,
        name: str,
        cfg: ModelConfig,
        provider: Provider,
        breaker: CircuitBreaker,
        price: Price | None,
        cost_fn: Any,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.provider = provider
        self.breaker = breaker
        self.price = price
        self._cost = cost_fn
        self.codec = CODECS[provider.kind]
        self.locality = provider.locality
        self.max_output = window.output_ceiling(cfg.max_output_tokens, cfg.model, self.locality == "remote")  # (the table's)
        self.rate = output_rate.OutputRate(cfg.output_tokens_per_second)  # (how fast it writes: a cut call's unseen output)
        pc = provider.cfg
        self.regions = frozenset(r.lower() for r in [*pc.regions, *([pc.region] if pc.region else [])])
        # The privacy boundary (tierwise.privacy.boundary), set on remote deployments when the
        # config has a `privacy:` section; every call of every policy passes through it.
        self.privacy: Any = None
        # Live statistics (providers/live_stats.py), set when the blackboard is on; None costs one test.
        self.stats: LiveStats | None = None
        # What happens to http(s) image URLs (providers/image_urls.py); None: forwarded as they are.
        self.images: Any = None
        # Anthropic's own structured output for an OpenAI client's schema (wire/anthropic_messages/native_output.py).
        self.native_output = provider.kind == "anthropic" and cfg.structured_output == "native"
        self.encode_kw = {"cap_field": pc.cap_field} if provider.kind == "openai" else {}  # (config max_tokens_field)
        self.misconfigured_said = False  # the console said once that its upstream refused the key or the model
        # The newest breaker-counted failure if a config fault (an outage's text may quote the request that drew it,
        # and any client reads an open breaker's) and `opened_at` after it: named only if it opened it (not a peer).
        self.last_failure: UpstreamError | None = None
        self.last_failure_opened: float | None = None

    def __repr__(self) -> str:
        return f"Deployment({self.name!r} -> {self.provider.name}:{self.cfg.model})"

    # ------------------------------------------------------------------ helpers

    def _step(self, ctx: Context) -> Any:
        return ctx.trace.call(self.name, model=self.cfg.model, provider=self.provider.name, locality=self.locality)

    def _admit(self, step: Any) -> None:
        if self.breaker.held_until and (held := self.breaker.held_for()):  # (one attribute test when never held)
            step.ok, step.reason, step.latency_ms = False, "rate-limited: waiting the upstream's Retry-After", 0.0
            raise RateLimitHold(f"model {self.name!r} is rate-limited by its upstream (not tried: it asked for a "
                                f"pause)", retry_after=held)
        if not self.breaker.allow():
            step.ok, step.reason, step.latency_ms = False, "circuit open", 0.0
            last = self.last_failure if self.last_failure_opened == self.breaker.opened_at else None
            why = f"; the last: {last.message[:300]})" if last is not None else ")"
            raise CircuitOpen(f"model {self.name!r} is unavailable (circuit open after repeated failures{why}",
                              retry_after=self.breaker.retry_in(), cause=class_of(last) if last is not None else None)
        if self.stats is not None:
            self.stats.begin()

    def _release(self) -> None:
        """A call ended without telling anything about the deployment's health."""
        self.breaker.release()
        if self.stats is not None:
            self.stats.end()

    def _fail(self, step: Any, err: UpstreamError, t0: float, at_once: bool = False) -> None:
        step.ok = False
        step.status = err.upstream_status
        step.reason = err.message
        step.latency_ms = (time.perf_counter() - t0) * 1000
        if class_of(err) == "rate_limit":
            # The upstream is up and said when to come back: wait that (bounded), no step toward the cooldown.
            self.breaker.hold(err.retry_after)
            self._release()
        # The request's own fault (malformed, too long) says nothing about the deployment's health.
        elif not counts_against_deployment(err):
            self._release()
        else:
            self.breaker.failure(at_once)
            self.last_failure, self.last_failure_opened = err if config_fault(err) else None, self.breaker.opened_at
            if self.stats is not None:
                self.stats.failed(step.latency_ms)
            if err.connect_failed and not self.provider.unreachable_said:
                self.provider.unreachable_said = True  # once per outage: said again after it has answered
                pc = self.provider.cfg
                upstream_unreachable(self.name, self.provider.name, pc.base_url, pc.locality == "local")
            if not self.misconfigured_said and err.error_class in ("auth", "not_found"):
                self.misconfigured_said = True
                pc = self.provider.cfg
                upstream_refused(self.name, self.cfg.model, self.provider.name, err.error_class, err.message,
                                 pc.api_key_env, pc.base_url, pc.kind == "openai" and pc.locality == "local")

    def _bill_cut(self, step: Any, req: Request, usage: Usage) -> None:
        """A call cut off because its client left: the provider bills the input it read and reports nothing
        (OpenAI reports usage at a stream's end), so the input is estimated — in the ledger row as in the
        budget, or leaving before each answer would buy frontier input that no report shows."""
        if not usage.input_tokens:
            usage.input_tokens = estimate_request(req) + PER_FETCHED_DOCUMENT * fetched_documents_in(req)
            usage.estimated = True
            step.detail["input_estimated"] = True
        step.usage = usage
        step.cost = self._cost(self.price, usage)

    def _bill_unread(self, step: Any, req: Request) -> None:
        """A non-streamed call that failed while the upstream answered it (a read timeout, a 200 body cut, too
        large or not JSON): the provider bills the answer it made, and nothing reports it. It counts as the
        reservation assumed, the estimated input and the whole output cap. Before, it counted nothing, and a
        route retrying (or falling back from) an upstream that timed out paid each attempt past any budget."""
        out = (req.max_tokens or 0) * max(1, req.n)
        self._bill_cut(step, req, Usage(output_tokens=out, estimated=True))
        step.detail["usage_unread"] = True

    def _finish(self, step: Any, usage: Usage, t0: float, paused: float = 0.0, n: int = 1) -> None:
        step.ok, step.status, step.usage = True, 200, usage
        step.cost = self._cost(self.price, usage)
        step.latency_ms = ((end := time.perf_counter()) - t0) * 1000
        self.rate.observe_call(usage.output_tokens, t0, end, paused, n)  # (paused: a stream's client's pace)
        self.breaker.success()
        self.provider.unreachable_said = False
        if self.stats is not None:
            self.stats.ok(step.latency_ms, step.ttft_ms)

    def _body(self, req: Request, check: Any = None) -> bytes:
        if self.native_output and req.response_format is not None:
            body = orjson.dumps(self.codec.encode_request(req, self.cfg.model, native_output=True))
        else:
            body = orjson.dumps(self.codec.encode_request(req, self.cfg.model, **self.encode_kw))
        if check is not None:
            check(body)
        return body

    def _headers(self, req: Request, ctx: Context) -> dict[str, str]:
        h = self.provider.headers(req.headers)
        obs = getattr(ctx.services, "observer", None)
        if obs is not None and obs.tracing:  # W3C trace context for the call step just recorded
            obs.inject(ctx, req, h)
        return h

    # ------------------------------------------------------------------ Target

    async def complete(self, req: Request, ctx: Context, check: Any = None) -> Response:
        # A remote call goes through the privacy boundary first, which calls back with `check`:
        # it sees the exact bytes before they leave. Without a `privacy:` config: one test.
        if self.privacy is not None and check is None:
            return await self.privacy.complete(self, req, ctx)  # type: ignore[no-any-return]
        if self.images is not None:
            req = await self.images.apply(req, self.name, ctx)
        if req.n > 1 and self.provider.kind == "anthropic":
            return await self._fan_out(req, ctx)
        window.check_images(self.name, self.cfg.vision, req, ctx)
        req = window.fit(self.name, self.cfg.context_window, req, ctx, self.max_output)
        if req.max_tokens is None and self.cfg.default_max_tokens is not None:  # (a runaway answer's bound)
            req = window.default_output(self.name, self.cfg.default_max_tokens, self.cfg.context_window, req, ctx)
        if self.locality == "remote":
            return await self._admitted(self._complete_upstream, "call", req, ctx, check)  # type: ignore[no-any-return]
        return await self._complete_upstream(req, ctx, check)

    async def _admitted(self, send: Any, how: str, req: Request, ctx: Context, check: Any) -> Any:
        """A remote call (`send`: `_complete_upstream` or `_open_stream`) under the budgets. Work off a request's path
        (a judge call, a shadow run) has no request's reservation to count in: each of its calls is admitted on its
        own (tierwise.budgets.background, `CallCharge.call` / `.stream`, named by `how`), and so is each of a
        request's remote calls past the ones its reservation covers (a retry, the next target)."""
        notes = ctx.notes
        bg = notes.get(BACKGROUND)
        if bg is None and COVERS in notes:
            bg = further_call(ctx, req)
            if bg is None:  # covered by the request's reservation, unless it never leaves
                try:
                    return await send(req, ctx, check)
                except CircuitOpen:
                    unused_call(ctx, req)
                    raise
        if bg is not None:
            return await getattr(bg, how)(send, self, req, ctx, check)
        return await send(req, ctx, check)

    async def _complete_upstream(self, req: Request, ctx: Context, check: Any, mine: list[Any] | None = None
                                 ) -> Response:
        step = self._step(ctx)
        if mine is not None:  # the call's own steps, for its own settlement (budgets/background.py)
            mine.append(step)
        self._admit(step)
        t0 = sent_clock.start()  # (unseen output counts from when it got a connection)
        try:
            resp: Response = await answer_of(self.provider, self.codec, req.n, self._body(req, check),
                                             self._headers(req, ctx))
        except UpstreamError as e:
            if e.answering:
                self._bill_unread(step, req)
                if req.max_tokens is None and isinstance(e, UpstreamTimeout):
                    e.message = (f"{e.message}: the request set no max_tokens, and a model that never stops writes "
                                 "until its context is full; set max_tokens (the gateway's operator can set the "
                                 "model's default_max_tokens)")
                    e.args = (e.message,)
            # A timeout whose unread answer is charged (input + max_tokens) opens the breaker at once: each further
            # call to an upstream that hangs is charged the same, for nothing back (a probe per cooldown after).
            self._fail(step, e, t0, at_once=e.answering and isinstance(e, UpstreamTimeout) and bool(step.cost))
            raise
        except BaseException as e:
            # Any other way out (cancelled, a body the encoder refuses, a bug) says nothing about the
            # deployment's health, but must hand back a half-open probe slot, or the deployment
            # would refuse every request until restart.
            self._release()
            step.ok, step.reason = False, "cancelled" if isinstance(e, asyncio.CancelledError) else type(e).__name__
            if step.reason == "cancelled":  # what it wrote before the client left was not seen: bounded by time
                self._bill_cut(step, req, self._unseen(Usage(), req, t0, hidden=True))
            raise
        if too_few(resp.usage, chars := answer_chars(resp)):  # no usage reported (or less than none could be)
            at_least_relayed(resp.usage, chars)
        bound_usage(resp.usage, self._usage_caps(req), req)
        if req.strict_tools is not None:  # an OpenAI client's strict tools: the answer must honour them
            err = await _strict_answer(self.provider.name, req.strict_tools, resp)
            if err is not None:
                self._fail(step, err, t0)
                step.usage, step.cost = resp.usage, self._cost(self.price, resp.usage)  # made, so billed
                raise err
        if req.response_format is not None:  # structured output asked for: the answer must be it
            err = await strict_output.answer_violation(self.provider.name, req, resp)
            if err is not None:
                self._fail(step, err, t0)
                step.usage, step.cost = resp.usage, self._cost(self.price, resp.usage)  # made, so billed
                raise err
        self._finish(step, resp.usage, t0, n=req.n)
        step.ttft_ms = step.latency_ms
        return resp

    async def _fan_out(self, req: Request, ctx: Context) -> Response:
        """Anthropic has no `n`: ask n times concurrently and merge the answers as choices."""
        single = req.with_changes(n=1)
        results = await all_or_none([self.complete(single, ctx) for _ in range(req.n)])
        first = results[0]
        for r in results[1:]:
            first.usage.add(r.usage)
            first.extra_choices.append(Choice(content=r.content, stop_reason=r.stop_reason, logprobs=r.logprobs))
        first.raw = None
        return first

    async def stream(self, req: Request, ctx: Context, check: Any = None) -> AsyncIterator[StreamChunk]:
        if self.privacy is not None and check is None:  # see `complete`
            return await self.privacy.stream(self, req, ctx)  # type: ignore[no-any-return]
        if self.images is not None:
            req = await self.images.apply(req, self.name, ctx)
        if req.n > 1 and self.provider.kind == "anthropic":
            raise InvalidRequest("n > 1 with stream=true needs an OpenAI-compatible upstream")
        window.check_images(self.name, self.cfg.vision, req, ctx)
        req = window.fit(self.name, self.cfg.context_window, req, ctx, self.max_output)
        if req.max_tokens is None and self.cfg.default_max_tokens is not None:  # (a runaway answer's bound)
            req = window.default_output(self.name, self.cfg.default_max_tokens, self.cfg.context_window, req, ctx)
        if self.locality == "remote":
            return await self._admitted(self._open_stream, "stream", req, ctx, check)  # type: ignore[no-any-return]
        return await self._open_stream(req, ctx, check)

    async def _open_stream(self, req: Request, ctx: Context, check: Any, mine: list[Any] | None = None
                           ) -> AsyncIterator[StreamChunk]:
        step = self._step(ctx)
        if mine is not None:
            mine.append(step)
        self._admit(step)
        t0 = sent_clock.start()  # (unseen output counts from when it got a connection)
        try:
            resp = await self.provider.open(
                self.provider.chat_url, self._body(req, check), self._headers(req, ctx)
            )
        except UpstreamError as e:
            if e.answering:  # it took the request, no answer headers in time: billed as a stream that stalled
                self._bill_cut(step, req, self._unseen(Usage(), req, t0))
                step.detail["billed_cut"] = True
            self._fail(step, e, t0)
            raise
        except BaseException as e:  # cancelled, an unencodable body, a bug: hand back the probe slot
            self._release()
            if isinstance(e, asyncio.CancelledError):  # the client left before the first event
                step.ok, step.reason = False, "cancelled"
                self._bill_cut(step, req, self._unseen(Usage(), req, t0))
            raise
        return self._relay(resp, step, t0, req, self._usage_caps(req))

    def _unseen(self, usage: Usage, req: Request, t0: float, hidden: bool = False) -> Usage:
        """`usage` of a call cut before its usage came, at least what it can have written unseen since `t0` when it
        is not streamed (`hidden`) or its model reasons without streaming it (usage_bounds.unseen_output)."""
        if (hidden or hides_reasoning(req, self.cfg.model, self.cfg.hidden_reasoning)) and \
                (since := sent_clock.sent_since(t0)) is not None:  # (None: it never left the pool's queue)
            unseen_output(usage, since, self._usage_caps(req)[1], self.rate.per_second() * max(1, req.n))
        return usage

    def _usage_caps(self, req: Request) -> tuple[int, int]:
        """The most tokens the upstream can truly have counted for `req`: (any count, output)."""
        cap = self.provider.cfg.max_usage_tokens
        return cap, cap if req.max_tokens is None else min(cap, req.max_tokens * max(1, req.n))

    async def _relay(self, resp: aiohttp.ClientResponse, step: Any, t0: float, req: Request,
                     caps: tuple[int, int]) -> AsyncIterator[StreamChunk]:
        decoder = self.codec.StreamDecoder()
        pcfg = self.provider.cfg
        decoder.parser.max_event = pcfg.max_stream_event_bytes
        usage = Usage()
        done = False
        stall = pcfg.timeouts.read
        last_event = started = time.monotonic()
        received, paused = 0, 0.0  # (paused: seconds the client took to take what was relayed, not the model's)
        produced = 0  # characters of streamed deltas: what a cancelled stream is billed for
        relayed = False  # has a chunk gone up (to the policy, and so to the client)?
        strict = StrictCalls(req.strict_tools) if req.strict_tools is not None else None
        out = _structured(req, decoder) if req.response_format is not None else None
        held: list[StreamChunk] = []  # what the strict checks keep back from the client until judged
        unknown = True  # the body's kind: a stream, or one JSON body (wire13: providers/whole_body_stream.py)
        try:
            try:
                async for data in resp.content.iter_any():
                    received += len(data)
                    if received > pcfg.max_response_bytes:
                        raise self.provider.too_large()
                    if unknown:
                        unknown, decoder, data = choose(decoder, data, self.codec)
                    try:
                        chunks = decoder.feed(data)
                    except EventTooManyLines as e:
                        raise UpstreamError(f"provider {self.provider.name!r} sent {e}", retryable=False) from None
                    except EventTooLarge:
                        raise UpstreamError(f"provider {self.provider.name!r} sent a stream event larger than "
                                            f"{pcfg.max_stream_event_bytes} bytes (max_stream_event_bytes)",
                                            retryable=False) from None
                    now = time.monotonic()
                    if chunks:
                        last_event = now
                    elif now - last_event > stall:  # bytes trickle in but no event completes
                        raise mark_answering(UpstreamTimeout(
                            f"provider {self.provider.name!r} sent no complete stream event for {stall:g}s"
                        ))
                    if now - started > pcfg.timeouts.stream_total:  # events keep coming, and never end
                        raise mark_answering(UpstreamTimeout(f"provider {self.provider.name!r} streamed for longer "
                                                         f"than {pcfg.timeouts.stream_total:g}s (timeouts.stream_total)"))
                    if not chunks:
                        continue
                    if step.ttft_ms is None:
                        step.ttft_ms = (time.perf_counter() - t0) * 1000
                    if strict is not None:  # before any of the read goes up: a piece its SDK rejects never does
                        for chunk in chunks:
                            await _strict_pieces(self.provider.name, strict, chunk)
                    if out is not None:
                        for chunk in chunks:
                            await _output_pieces(self.provider.name, out, chunk)
                    for i, chunk in enumerate(chunks):
                        produced += _count(chunk, usage)
                        failure = _stream_failure(chunk)
                        if failure is None:
                            continue
                        if not relayed and decoder.error is not None:
                            # Came in the same read as the stream's first events (OpenRouter's opening
                            # chunk, then the error): nothing reached the client, so it is an upstream error
                            # like any other, and a fallback may move on. (Its deltas are billed, below.)
                            raise decoder.error
                        # The upstream reported an error mid-stream: pass on what came before it,
                        # then fail like a cut stream, so the client gets one error event in its
                        # own API's schema and the breaker counts the failure.
                        before = chunks[:i]
                        if len(chunk.events) > 1:
                            before.append(StreamChunk(chunk.events[:-1], None, chunk.raw_format))
                        if before:
                            yield _merge(before)
                        # Its class kept: the request's own fault (a 400, an overflow) is not the deployment's
                        # health, and must not count against its breaker.
                        raise UpstreamError(
                            f"provider {self.provider.name!r} failed mid-stream: {failure.message}",
                            retryable=False, kind=failure.error_type,
                            error_class=decoder.error.error_class if decoder.error is not None else None,
                        )
                    if (out is not None and out.holding) or (strict is not None and strict.holding):
                        held.extend(chunks)  # the answer's opening or end, not yet judged
                        continue
                    if held:
                        chunks, held = [*held, *chunks], []
                    # Everything one read brought goes out as one chunk: one write to the client
                    # instead of one per event (the per-write cost dominated streaming's profile).
                    yield _merge(chunks)
                    relayed, paused = True, paused + time.monotonic() - now  # (a slow reader held the relay)
                    if decoder.ended:  # the answer is complete: don't wait on the upstream's EOF
                        break
                for chunk in decoder.finish():
                    produced += _count(chunk, usage)
                    if strict is not None:
                        await _strict_pieces(self.provider.name, strict, chunk)
                    if out is not None:
                        await _output_pieces(self.provider.name, out, chunk)
                    yield chunk if not held else _merge([*held, chunk])
                    held = []
                if held:  # (the stream ended without its end: what was held is the answer)
                    yield _merge(held)
            except TimeoutError:
                raise mark_answering(UpstreamTimeout(f"provider {self.provider.name!r} stalled mid-stream")) from None
            except aiohttp.ClientError:
                raise UpstreamError(f"provider {self.provider.name!r} cut the stream", retryable=True) from None
            done = True
        except UpstreamError as e:
            self._fail(step, e, t0)
            at_least_relayed(usage, produced + decoder.other_chars)  # the usage of a failed stream is a running total, if any
            step.usage = bound_usage(usage, caps, req)
            # A stream that stalled, ran past its time or was cut, or failed after producing tokens, was read and
            # run by the provider, which bills its input and what it streamed: its cost says so (the input
            # estimated when unreported). Before (session 26's leftovers), a failed stream's step had no cost:
            # the ledger and the savings reports showed a hung upstream's streams as free.
            if isinstance(e, UpstreamTimeout) or produced or e.message.endswith("cut the stream"):
                self._bill_cut(step, req, self._unseen(usage, req, t0))
                step.detail["billed_cut"] = True
            else:
                step.cost = self._cost(self.price, usage)  # what the upstream reported, if anything
            raise
        finally:
            if done:
                if too_few(usage, produced + decoder.other_chars):  # no usage in streams, or a placeholder
                    at_least_relayed(usage, produced + decoder.other_chars)
                self._finish(step, bound_usage(usage, caps, req), t0, paused, req.n)
                _give_back(resp)
            else:
                if step.ok is None:  # client went away: not the deployment's fault
                    step.ok, step.reason = False, "cancelled"
                    # Usage arrives with a stream's end: a cut one is billed for the deltas it relayed.
                    at_least_relayed(usage, produced + decoder.other_chars)
                    bound_usage(usage, caps, req)
                    self._bill_cut(step, req, self._unseen(usage, req, t0))
                    step.latency_ms = (time.perf_counter() - t0) * 1000
                    self._release()
                resp.close()  # drop the connection so the upstream stops generating


# A stream whose last event came before the end of its HTTP body (many servers send the chunked
# terminator in a write of its own) is answered without waiting for that end; the connection goes
# back to the pool once the upstream ends the body, or is closed after this long.
DRAIN_S = 1.0
_draining: set[asyncio.Task[None]] = set()


def _give_back(resp: aiohttp.ClientResponse) -> None:
    """Release a finished stream's connection for reuse, at once or after its body ends."""
    if resp.content.at_eof():
        resp.release()
        return
    task = asyncio.ensure_future(_drain(resp))
    _draining.add(task)  # a reference, so the task is not collected mid-way
    task.add_done_callback(_draining.discard)


async def _drain(resp: aiohttp.ClientResponse) -> None:
    try:
        async with asyncio.timeout(DRAIN_S):
            while await resp.content.readany():
                pass  # bytes after the stream's end are not part of any answer
    except (TimeoutError, aiohttp.ClientError):
        resp.close()
    except BaseException:  # cancelled (the gateway is stopping): drop the connection
        resp.close()
        raise
    else:
        resp.release()


def _merge(chunks: list[StreamChunk]) -> StreamChunk:
    """One chunk with the events of several; raw bytes kept only when every part has them."""
    if len(chunks) == 1:
        return chunks[0]
    events = [ev for c in chunks for ev in c.events]
    raws = [c.raw for c in chunks]
    raw = b"".join(raws) if all(r is not None for r in raws) else None  # type: ignore[arg-type]
    return StreamChunk(events, raw, chunks[0].raw_format)


async def _strict_pieces(provider: str, strict: StrictCalls, chunk: StreamChunk) -> None:
    """Raise `invalid_output` when the chunk would hand the client strict-tool arguments its SDK cannot parse."""
    tool, ended = strict.feed(chunk.events)
    if tool is not None:
        raise violation(provider, tool, "cannot begin a JSON object")
    for tool, arguments in ended:
        why = await whole_reason(strict.schemas[tool], arguments)
        if why is not None:
            raise violation(provider, tool, why)


def _structured(req: Request, decoder: Any) -> strict_output.StructuredText | None:
    c = strict_output.contract(req)
    if c is None:
        return None
    out = strict_output.StructuredText(c, req.n)
    if req.n > 1:  # every choice is the client's answer: the OpenAI decoder hands the others over
        decoder.side = out.side
    return out


async def _output_pieces(provider: str, out: strict_output.StructuredText, chunk: StreamChunk) -> None:
    """Raise `invalid_output` when the chunk would hand the client a structured answer its SDK rejects."""
    why, wholes = out.feed(chunk.events)
    for label, whole in wholes:
        if why is not None:
            break
        why = await strict_output.whole_reason(out.contract, whole)
        why = why and why + label
    if why is not None:
        raise strict_output.violation(provider, out.contract, why)


async def _strict_answer(provider: str, schemas: dict[str, Any], resp: Response) -> UpstreamError | None:
    for tool, arguments in answer_calls(resp, schemas):
        if resp.stop_reason == "max_tokens":  # cut: the SDK raises its own LengthFinishReasonError
            return None
        why = await whole_reason(schemas[tool], arguments)
        if why is not None:
            return violation(provider, tool, why)
    return None


def _stream_failure(chunk: StreamChunk) -> StreamError | None:
    events = chunk.events
    return events[-1] if events and isinstance(events[-1], StreamError) else None


def _count(chunk: StreamChunk, usage: Usage) -> int:
    """Take the usage the chunk reports; the characters of its deltas."""
    chars = 0
    for ev in chunk.events:
        if isinstance(ev, BlockDelta):
            v = ev.value
            chars += len(v) if v.isascii() else text_units(v)  # (inline: a call per delta cost 1.5% of a stream)
        elif isinstance(ev, (MessageStart, MessageDelta)):
            u = ev.usage
            # Both APIs report running totals; keep the largest seen of each.
            if u.input_tokens > usage.input_tokens:
                usage.input_tokens = u.input_tokens
            if u.output_tokens > usage.output_tokens:
                usage.output_tokens = u.output_tokens
            if u.cache_read_tokens > usage.cache_read_tokens:
                usage.cache_read_tokens = u.cache_read_tokens
            if u.cache_write_tokens > usage.cache_write_tokens:
                usage.cache_write_tokens = u.cache_write_tokens
            if u.cache_write_1h_tokens > usage.cache_write_1h_tokens:
                usage.cache_write_1h_tokens = u.cache_write_1h_tokens
            if u.web_searches > usage.web_searches:
                usage.web_searches = u.web_searches
            if u.billed_usd > usage.billed_usd:
                usage.billed_usd = u.billed_usd
    return chars
