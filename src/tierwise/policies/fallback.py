"""Fallback: ordered targets, retries with exponential backoff and full jitter that honour
`Retry-After`, and silent fall-through for streams that fail before their first chunk. A rate limit (429)
is not retried on the same target: the next target is tried, and when every one is rate-limited the client
hears a 429 with the soonest Retry-After (its SDK waits and retries; the gateway retrying too doubled the calls).

Circuit breakers live on the deployments (see providers/breaker.py): an open breaker fails
in microseconds, so a dead local server never delays routes that can go elsewhere.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

from pydantic import Field

from tierwise.canonical import Request, Response, StreamChunk
from tierwise.errors import (
    BudgetExceeded,
    CircuitOpen,
    ContextOverflow,
    Overloaded,
    UnsupportedInput,
    UpstreamError,
    UpstreamTimeout,
)
from tierwise.policies.base import Context, Target
from tierwise.policies.registry import Builder, PolicyConfig, PolicyType, register
from tierwise.providers.error_classes import class_of, config_fault, counts_against_deployment, moves_on


class FallbackConfig(PolicyConfig):
    policy: str = "fallback"
    targets: list[str] = Field(min_length=1, description="models or routes, tried in order")
    retries: int = Field(1, ge=0, le=10, description="extra tries of the same target on a retryable error "
                         "(not a rate limit: the client retries the gateway's 429; not a refused connection "
                         "while a next target remains: the route moves on to it at once; not a timeout while the "
                         "upstream was already answering: the same call would run as long again)")
    backoff_base: float = Field(0.25, ge=0, description="seconds; doubles each retry")
    backoff_max: float = Field(8.0, ge=0)
    retry_after_max: float = Field(30.0, ge=0, description="longest Retry-After honoured before moving on")
    reference: str | None = Field(None, description="frontier model whose prices savings compare to")


def should_fall_back(err: UpstreamError) -> bool:
    """Move on to the next target? Not for a malformed request or a content-policy refusal, which
    every target would answer the same way; yes for everything else, context overflow included
    (see providers/error_classes.py)."""
    return moves_on(err)


class Fallback:
    def __init__(
        self,
        name: str,
        targets: list[Target],
        *,
        retries: int = 1,
        backoff_base: float = 0.25,
        backoff_max: float = 8.0,
        retry_after_max: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.targets = targets
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self._rng = rng or random.Random()

    def _delay(self, attempt: int, err: UpstreamError) -> float | None:
        """Seconds to wait before retrying the same target, or None to move on to the next."""
        if err.retry_after is not None:
            if err.retry_after > self.retry_after_max:
                return None
            return err.retry_after
        cap = min(self.backoff_max, self.backoff_base * (2**attempt))
        return self._rng.uniform(0, cap)

    async def _run(self, ctx: Context, call: Any) -> Any:
        last: UpstreamError | None = None
        overflows: list[ContextOverflow] = []
        others = 0  # targets that failed for another reason than the request's size
        unsupported = 0  # targets configured not to take what the request carries (images)
        refused = 0  # remote targets the privacy policy does not let this request reach
        invalid = 0  # targets whose answer broke the contract the request asked for (structured output, strict tools)
        limited: list[float | None] = []  # targets whose last failure was a rate limit: each one's Retry-After
        why_each: dict[str, str] = {}  # target -> its last error: "all failed" must say why each did
        fault_each: dict[str, str | None] = {}  # target -> `auth`/`not_found` when its last error was the config's
        spent: BudgetExceeded | None = None  # a budget refused a further remote attempt (budgets/background.py)
        down: set[str] = set()  # targets whose last failure was an outage: they would answer once back
        ran_out = 0  # targets that timed out while answering: the same request would run as long again
        for i, target in enumerate(self.targets):
            for attempt in range(self.retries + 1):
                try:
                    result = await call(target)
                except BudgetExceeded as e:
                    # This attempt, not the request: the next target may cost less (the local tier nothing).
                    spent = e
                    why_each[target.name] = e.message[:300]
                    down.discard(target.name)  # (timed out, then its retry refused: the budget stops it)
                    break
                except UpstreamError as e:
                    last = e
                    why_each[target.name] = e.message[:300]
                    fault_each[target.name] = config_fault(e)
                    if not should_fall_back(e):
                        raise
                    refused += e.error_class == "privacy_refused"
                    invalid += e.error_class == "invalid_output"
                    if isinstance(e, ContextOverflow):
                        overflows.append(e)
                        break  # the same target would refuse it again
                    if class_of(e) == "rate_limit":
                        # The upstream said when to come back: the client hears it (a 429 with the soonest
                        # Retry-After, below) and its SDK waits and retries. A retry here as well multiplied the
                        # calls to a rate-limited upstream (two per client try).
                        others += 1
                        limited.append(e.retry_after)
                        down.add(target.name)  # it answers once its limit resets
                        break
                    if isinstance(e, CircuitOpen) or counts_against_deployment(e) or e.pool_full:
                        down.add(target.name)
                    if isinstance(e, (CircuitOpen, UnsupportedInput)):
                        others += 1
                        unsupported += isinstance(e, UnsupportedInput)
                        break  # don't wait for an open breaker, don't retry a skip: go to the next target
                    # A refused connection (nothing listens: a local server not started, or restarting) is no
                    # blip a quarter-second wait cures: with a next target, move on to it at once. The last
                    # target keeps its retries (a server coming back may answer them).
                    refused_with_next = getattr(e, "connect_failed", False) and i < len(self.targets) - 1
                    # A timeout while the upstream was already answering (it had the whole request) is the request's
                    # doing, not a blip: the same call runs as long again, holding a local slot or paying a remote
                    # model twice. Not retried; the next target is tried (nothing reached the client; once an answer
                    # has started streaming to it, nothing is re-sent: `prepend` below never comes back here).
                    answering = isinstance(e, UpstreamTimeout) and e.answering
                    if attempt < self.retries and e.retryable and not refused_with_next and not answering:
                        delay = self._delay(attempt, e)
                        if delay is not None:
                            await asyncio.sleep(delay)
                            continue
                    others += 1
                    ran_out += answering
                    break
                else:
                    if i > 0 or attempt > 0:
                        why = last.message if last else spent.message if spent else "error"
                        ctx.trace.decide(
                            self.name,
                            f"fell back to {target.name} after: {why}",
                        )
                    return result
        if spent is not None and not (down and getattr(spent, "downgrades", False)):
            # No target answered and the budget stopped the attempts: its 429, which says when it resets, unless a
            # target was down too and the route downgrades once its budget is spent. Then the client's next try is
            # answered by the local tier (as soon as it is back, if it is the one down), so "come back when the
            # budget resets" would be the wrong advice: the 503 below says to retry, and names both reasons. A
            # route that refuses once spent refuses that next try too: the 429 is the answer (docs/budgets.md).
            raise spent
        assert last is not None
        if overflows and not others:
            # Nothing could hold it: the client hears its own API's "too long", and can compact.
            raise combined_overflow(self.name, overflows)
        if (len(self.targets) == 1 and last.status != 503) or (unsupported == others and not overflows):
            raise last  # the request's own problem (no target takes images): a 400, not an outage
        # Each target's own reason, not only the last one's: with no API key for the first target and the
        # second one down, the last error alone hides the key (the privacy refusal is among them).
        each = "; ".join(f"{name}: {msg}" for name, msg in why_each.items())
        if invalid and invalid + unsupported == others:
            # Every target answered, none as the request asked (a structured answer, a strict tool's arguments):
            # no outage (a 503 `overloaded_error` sent Claude Code into minutes of retries), a bad gateway answer.
            # Still `invalid_output` to a route that nests this one (it moves on).
            raise UpstreamError(f"route {self.name!r}: no target's answer honoured the format the request asked "
                                f"for ({each})", retryable=False, error_class="invalid_output")
        if refused and refused + unsupported == others:
            # Every target refused the request itself (privacy, too long, images): the same request meets the
            # same refusals again, so the answer is final, not an outage a client should retry (a 503 made
            # Claude Code resend it for minutes). A 400, as a `block` is: Claude Code reads a 403 as "Failed to
            # authenticate". Still a privacy refusal to a route that nests this one (it moves on).
            raise UpstreamError(f"route {self.name!r}: no target may take this request ({each})", status=400,
                                retryable=False, kind="invalid_request_error", error_class="privacy_refused")
        faults = [c for c in fault_each.values() if c]
        if faults and len(faults) + unsupported == others and spent is None:
            # Every target failed on the gateway's own configuration (its key refused, a model the server does not
            # have; an open breaker counts by the failure that opened it), or could not hold or take the request
            # at all (overflows are not among `others`): no outage a retry outlives. A 503
            # `overloaded_error` sent Claude Code into minutes of silent retries; this 502 says not to retry
            # (server/limits.py), and the message names each target's fault. Still that class to a route that
            # nests this one (it moves on).
            raise UpstreamError(f"route {self.name!r}: no target can answer as the gateway is configured ({each})",
                                retryable=False, error_class="auth" if "auth" in faults else "not_found")
        if limited and len(limited) == others:
            # Every target said "not now" and when: the client's own rate-limit handling (SDKs raise RateLimitError
            # and pace on Retry-After) is the right answer, not an outage. The soonest target decides when.
            known = [s for s in limited if s is not None]
            raise UpstreamError(f"route {self.name!r}: every target is rate-limited ({each})", status=429,
                                retry_after=min(known) if known else None, kind="rate_limit_error",
                                error_class="rate_limit")
        if ran_out and ran_out == others and not overflows:
            # Every target had the request and was still answering when its time ran out: a 504 the SDKs do not
            # retry (server/limits.py), not a 503 inviting the same request to run on each again.
            err = UpstreamTimeout(f"route {self.name!r}: every target timed out while answering ({each})")
            err.answering = True
            raise err
        raise Overloaded(
            f"route {self.name!r}: every target failed ({each})",
            retry_after=last.retry_after if last.retry_after is not None else self._reopens_in(),
        )

    def _reopens_in(self) -> float | None:
        """Seconds until the first open breaker among the targets lets a probe through (for Retry-After)."""
        waits = [b.retry_in() for t in self.targets if (b := getattr(t, "breaker", None)) is not None
                 and b.state == "open"]
        return min(waits) if waits else None

    async def complete(self, req: Request, ctx: Context) -> Response:
        return await self._run(ctx, lambda t: t.complete(req, ctx))  # type: ignore[no-any-return]

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        async def open_and_peek(t: Target) -> AsyncIterator[StreamChunk]:
            it = await t.stream(req, ctx)
            try:
                first = await it.__anext__()
            except StopAsyncIteration:
                raise UpstreamError(f"{t.name}: empty stream", retryable=True) from None
            except BaseException:
                await it.aclose()  # type: ignore[attr-defined]
                raise
            return prepend(first, it)

        return await self._run(ctx, open_and_peek)  # type: ignore[no-any-return]


async def prepend(first: StreamChunk, rest: AsyncIterator[StreamChunk]) -> AsyncIterator[StreamChunk]:
    try:
        yield first
        async for c in rest:
            yield c
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


def combined_overflow(route: str, overflows: list[ContextOverflow]) -> ContextOverflow:
    """One overflow for a route none of whose targets could hold the request: the largest window
    tried, and the prompt size an upstream counted (or else the gateway's estimate)."""
    counted = [o for o in overflows if o.tokens is not None and not o.estimated]
    sized = counted or [o for o in overflows if o.tokens is not None]
    widest = max((o for o in overflows if o.limit is not None), key=lambda o: o.limit or 0, default=None)
    tokens = max((o.tokens or 0 for o in sized), default=None) if sized else None
    limit = widest.limit if widest is not None else None
    output = widest.output if widest is not None else None
    reasons = "; ".join(o.message for o in overflows)
    return ContextOverflow(f"route {route!r}: no target can hold this request: {reasons}", tokens=tokens,
                           limit=limit, output=output, estimated=not counted)


def _build(cfg: FallbackConfig, name: str, b: Builder) -> Target:
    targets = [b.resolve(t) for t in cfg.targets]
    if len(targets) == 1 and cfg.retries == 0:
        return targets[0]
    return Fallback(
        name,
        targets,
        retries=cfg.retries,
        backoff_base=cfg.backoff_base,
        backoff_max=cfg.backoff_max,
        retry_after_max=cfg.retry_after_max,
    )


register(
    PolicyType(
        "fallback",
        FallbackConfig,
        _build,
        lambda c: list(c.targets) + ([c.reference] if c.reference else []),
    )
)
