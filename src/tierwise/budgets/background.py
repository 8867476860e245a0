"""Budgets for upstream calls no client request's reservation covers: admitted one call at a time.

A client request is admitted once (`SpendController.admit`) and settled where its ledger row is made: every call
on its own trace counts. Work a request starts off its path has a trace of its own and was counted by no budget:
a learning loop's judge calls and shadow runs (often the frontier model). A `$10/day` global budget then did not
hold: the loop spent frontier money past it, bounded only by the keys' request rates.

Such work marks its context with `charge_background`. Each remote call made on that context, streamed or not, is
then admitted on its own just before it leaves (providers/deployment.py asks `CallCharge.call` / `.stream`): its
worst case (the call's estimated input and its output cap at that model's prices) is reserved in the global
budgets, the budgets of the route the work belongs to, the per-model budgets of the model called, and (with
`budgets.background.charge_key`) the budgets of the gateway key whose request started it. Tag, session and
workflow budgets and the rate limits are a client's own and are not charged. A budget that refuses raises
`BudgetSkipped`: the work stops there and records itself as skipped (never a verdict); the client's answer was
given before and is unaffected. The real cost replaces the reservation when the call ends, however it ends (an
error or a cancellation releases it; a stream cut mid-way is charged what it relayed). With the Redis store the
reservation is renewed while the call runs, as a request's is.

A route's remote context summariser (compression `summary_model`) is the request's own spend, but runs on only
some requests: `charge_calls` admits its calls the same way, against every budget of the request (its key, tags,
session included), only when it runs. Its steps are then left out of the request's own settlement.

A client request's own reservation covers one call (per choice: `n` calls of a fan-out). A route that calls the
frontier again (a fallback's `retries`, a next remote target, a cascade or escalation calling on) admits each
further remote call the same way, against every budget of the request, just before it leaves: `further_call`
(asked by providers/deployment.py) counts the calls the reservation covers and hands back a `CallCharge` past them;
a covered call its deployment's open breaker refused before it left gives its cover back (`unused_call`).
A budget that refuses such a call raises BudgetExceeded: a fallback moves on to its next target (a local one
answers) and, when none answers, the client gets the budget's error in its API's schema.

The admission and settlement are the controller's (`SpendController._admit` / `settle`, the ones the request path
and an ensemble's per-call `admit_call` use): this module only gives each call a view of its own (its own request
id, reservation and steps) on the context it shares with other calls.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tierwise.errors import BudgetExceeded, TierwiseError

BACKGROUND = "budget_background"  # ctx.notes key: the context's CallCharge
COVERS = "budget_covers"  # ctx.notes key: [remote calls the request's reservation still covers, the request]
BILLED = "budget_billed"  # ctx.notes key: ids of the steps a CallCharge settled (the request's settlement skips them)
_ids = itertools.count(1)


class BudgetSkipped(TierwiseError):
    """A background call a budget refused: the work it belongs to is skipped (no client ever sees this)."""

    status = 429
    kind = "rate_limit_error"


def charge_background(ctx: Any, origin: Any | None = None, kind: str = "evaluation") -> None:
    """Make `ctx` (a background work's own context, whose trace names the route it belongs to) admit its remote
    calls against the budgets. `origin` is the request that started the work (its gateway key)."""
    spend = getattr(getattr(ctx, "services", None), "spend", None)
    if spend is None or not getattr(spend, "budgets", None):
        return
    key = (origin.notes.get("key_name") or "") if origin is not None else ""
    key = key if spend.cfg.background.charge_key else ""
    ctx.notes[BACKGROUND] = CallCharge(spend, ctx.trace.route, key, kind, background=True)


def charge_calls(ctx: Any, req: Any, kind: str = "summary") -> bool:
    """Make the request's own context admit its next remote calls one by one against the request's budgets
    (`req` gives the tag, session and workflow). True when the caller must `ctx.notes.pop(BACKGROUND)` after."""
    spend = getattr(getattr(ctx, "services", None), "spend", None)
    if spend is None or not getattr(spend, "budgets", None):
        return False
    ctx.notes[BACKGROUND] = CallCharge(spend, ctx.trace.route, ctx.notes.get("key_name") or "", kind, dims=req)
    return True


def further_call(ctx: Any, req: Any) -> CallCharge | None:
    """None while the request's reservation covers this remote call (of `req.n` choices); past it, the call's own
    admission (the request's budgets, priced at the model called)."""
    covers = ctx.notes[COVERS]
    left = covers[0] - (req.n if req.n > 1 else 1)
    if left >= 0:
        covers[0] = left
        return None
    return CallCharge(ctx.services.spend, ctx.trace.route, ctx.notes.get("key_name") or "", "retry", dims=covers[1])


def unused_call(ctx: Any, req: Any) -> None:
    """A call `further_call` counted as covered did not leave (its deployment's breaker is open): the request's
    reservation covers the next one instead."""
    ctx.notes[COVERS][0] += req.n if req.n > 1 else 1


class _CallTrace:
    """What the controller reads of one call's trace: its own id and steps; decisions go to the real trace."""

    __slots__ = ("request_id", "steps", "route", "_trace", "_charge", "_model")

    def __init__(self, trace: Any, rid: str, charge: CallCharge, model: str) -> None:
        self.request_id, self.route = rid, trace.route
        self.steps: list[Any] = []
        self._trace, self._charge, self._model = trace, charge, model

    def decide(self, name: str, reason: str, detail: dict[str, Any] | None = None, **kw: Any) -> Any:
        c = self._charge
        d = {**(detail or {}), "kind": c.kind, "model": self._model}
        if c.background and d.get("action") == "refuse":
            d["action"] = "skip"
        return self._trace.decide(name, f"{c.kind} call to {self._model}: {reason}", detail=d, **kw)


class _CallView:
    __slots__ = ("trace", "notes")
    further = True  # (refusals.py: its request's own reservation is in flight, so no "held by requests in flight")

    def __init__(self, trace: _CallTrace) -> None:
        self.trace = trace
        self.notes: dict[str, Any] = {}


class CallCharge:
    __slots__ = ("spend", "route", "key", "kind", "background", "dims")

    def __init__(self, spend: Any, route: str, key: str, kind: str, background: bool = False,
                 dims: Any = None) -> None:
        self.spend = spend
        self.route = route
        self.key = key
        self.kind = kind
        self.background = background
        self.dims = dims

    async def call(self, fn: Callable[..., Awaitable[Any]], dep: Any, req: Any, ctx: Any, check: Any) -> Any:
        """Run one remote call `fn(req, ctx, check, steps)` of deployment `dep` inside its own reservation."""
        view = await self._admit(dep, req, ctx)
        if view is None:
            return await fn(req, ctx, check)
        try:
            return await fn(req, ctx, check, view.trace.steps)
        finally:
            self._settle(view, ctx)

    async def stream(self, fn: Callable[..., Awaitable[AsyncIterator[Any]]], dep: Any, req: Any, ctx: Any,
                     check: Any) -> AsyncIterator[Any]:
        """Open one streamed call inside its own reservation, settled when the stream ends, fails or is closed."""
        view = await self._admit(dep, req, ctx)
        if view is None:
            return await fn(req, ctx, check)
        try:
            it = await fn(req, ctx, check, view.trace.steps)
        except BaseException:
            self._settle(view, ctx)
            raise
        return _SettledStream(it, lambda: self._settle(view, ctx))

    async def _admit(self, dep: Any, req: Any, ctx: Any) -> _CallView | None:
        sp = self.spend
        plan = sp.call_plan(self.route, self.key, dep.name, background=self.background)
        if not plan.static and not plan.dynamic:
            return None
        view = _CallView(_CallTrace(ctx.trace, f"{ctx.trace.request_id}~c{next(_ids)}", self, dep.name))
        from tierwise.budgets.controller import StoreUnavailable

        try:
            await sp._admit(req, view, plan, None, self.key, dims=self.dims)
        except BudgetExceeded as e:
            if not self.background:
                # Whether the client's next try would be answered all the same: its route downgrades to a local
                # tier once a budget is spent (policies/fallback.py ranks this refusal against an outage by it).
                e.downgrades = sp.plan(self.route, self.key).downgrade is not None  # type: ignore[attr-defined]
                raise
            raise BudgetSkipped(f"{self.kind} call to {dep.name} skipped: {e.message}") from None
        except StoreUnavailable:
            if not self.background:
                raise
            raise BudgetSkipped(f"{self.kind} call to {dep.name} skipped: the budget store is unavailable") from None
        return view

    def _settle(self, view: _CallView, ctx: Any) -> None:
        self.spend.settle(view)
        if not self.background:  # the request's own settlement must not count these steps again
            ctx.notes.setdefault(BILLED, set()).update(id(s) for s in view.trace.steps)


class _SettledStream:
    """One admitted call's stream: settled once, when it ends, fails or is closed, and also when it is closed or
    dropped before its first chunk. (An async generator's `finally` runs only once it has started: a stream its
    reader closed, or never read, before the first chunk kept its reservation, renewed on Redis for hours.)"""

    __slots__ = ("_it", "_settle", "_started", "_done", "_loop")

    def __init__(self, it: Any, settle: Callable[[], None]) -> None:
        self._it, self._settle = it, settle
        self._started = self._done = False
        self._loop = asyncio.get_running_loop()

    def __aiter__(self) -> _SettledStream:
        return self

    async def __anext__(self) -> Any:
        self._started = True
        try:
            return await self._it.__anext__()
        except BaseException:  # the end, an error, a cancellation: the call is over
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            if not self._started:
                await _start_and_close(self._it)
            await self._it.aclose()  # its own end first: a cut stream's step gets the usage of what it relayed
        finally:
            self._settle()

    def __del__(self) -> None:
        if self._done:
            return
        try:  # dropped unread: closed on its loop (the object lives on in that task until then)
            self._loop.call_soon_threadsafe(_close_later, self)
        except RuntimeError:  # the loop is closed: nothing left to close on; the reservation at least
            self._done = True
            try:
                self._settle()
            except Exception:  # noqa: BLE001 - a shared store's settlement needs the loop: its TTL reclaims it
                pass


_closing: set[asyncio.Future[None]] = set()  # (references: a task is not collected mid-way)


def _close_later(stream: _SettledStream) -> None:
    task = asyncio.ensure_future(stream.aclose())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def _start_and_close(it: Any) -> None:
    """Run an unstarted async generator up to its first wait and cancel it there, so its own clean-up (a
    deployment's: the call's step marked cancelled and billed its input, the connection closed, the breaker's
    slot handed back) runs; `aclose` alone does nothing to a generator that never started."""
    first = asyncio.ensure_future(it.__anext__())
    await asyncio.sleep(0)  # it starts
    first.cancel()
    await asyncio.wait([first])
    if not first.cancelled():
        first.exception()  # (retrieved: an error of a stream nobody reads is not worth a warning)
