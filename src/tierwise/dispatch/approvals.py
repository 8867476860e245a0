"""Approval gates: a request of a gated route (or a task of a gated dispatch capability) waits as
a pending record until an admin approves or rejects it, or its timeout rejects it.

`Approvals.wait` is the one generic async API: the HTTP request path (`gate_request`) and the
dispatcher (`require_capability`) both call it. What an approver sees of a request is built here
(`preview`): its route, model, key name and tenant, and a short text passed through the privacy
guard's redaction and the secret scrubber, so an approval queue never shows a raw value the
privacy policy protects, nor a key. A rejection or a timeout is a 403 in the client's schema; too
many waiting requests (the route's `max_pending`, or the key's `max_pending_per_key`) a 429; the
trace and the ledger record (`extra.approval`) say who decided
and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from tierwise.dispatch.approval_store import (
    KEY_FULL,
    OPENED,
    PENDING,
    ApprovalRecord,
    ApprovalStore,
    MemoryApprovalStore,
    RedisApprovalStore,
)
from tierwise.dispatch.approvals_config import ApprovalGate, ApprovalsConfig
from tierwise.errors import InvalidRequest, NotFound, PermissionDenied, RateLimited, TierwiseError
from tierwise.ids import new_id
from tierwise.secret_scrub import scrub
from tierwise.signing import secret_from_env

log = logging.getLogger("tierwise.approvals")

MAX_REASON = 500
MAX_LIST = 500
MAX_WITHDRAWING = 1000  # records whose opening failed, withdrawn in the background at once, at most


class ApprovalDenied(PermissionDenied):
    """A request that needed an approval did not get it; `record` says who decided and why."""

    def __init__(self, message: str, record: ApprovalRecord) -> None:
        super().__init__(message)
        self.record = record


class ApprovalRejected(ApprovalDenied):
    """An approver said no."""


class ApprovalTimedOut(ApprovalDenied):
    """Nobody decided within the gate's timeout: rejected."""


class ApprovalForged(ApprovalRejected):
    """The record reads `approved` without a decision tag that verifies (approvals.store.signing_key_env): written
    into the store from outside the gateways. Rejected, never let through."""


class ApprovalLost(ApprovalDenied):
    """The pending record vanished from the store before a decision: rejected, never let through."""


class TooManyPending(RateLimited):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(TierwiseError):
    status = 503
    kind = "overloaded_error"


class Conflict(TierwiseError):
    status = 409
    kind = "invalid_request_error"


class ClientLeft(TierwiseError):
    """The client went away while its request waited: the pending record was cancelled (499: nobody reads it)."""

    status = 499
    kind = "api_error"

    def __init__(self, id: str) -> None:
        super().__init__(f"the client went away while approval {id} was pending")


Gone = Callable[[], Awaitable[Any]]  # completes when the waiting caller goes away


def build_store(cfg: ApprovalsConfig, fallback_url: str | None) -> ApprovalStore:
    if cfg.store.backend == "redis":
        env, sharers = cfg.store.signing_key_env, "the approvals' key_prefix"
        accepted = [secret_from_env(e, f"approvals.store.signing_accept_key_envs[{i}]", sharers)
                    for i, e in enumerate(cfg.store.signing_accept_key_envs)]
        until = cfg.store.signing_accept_until
        return RedisApprovalStore(cfg.store.redis_url or fallback_url or "redis://127.0.0.1:6379/0",
                                  cfg.store.key_prefix, secret_from_env(env, "approvals.store.signing_key_env",
                                                                        sharers) if env else None, accepted,
                                  None if until is None else until.timestamp())
    return MemoryApprovalStore()


class Approvals:
    def __init__(self, cfg: ApprovalsConfig, store: ApprovalStore, *, privacy: Any = None) -> None:
        self.cfg = cfg
        self.store = store
        self.privacy = privacy  # tierwise.privacy.boundary.Boundary or None
        self.node = f"{socket.gethostname()[:64]}:{os.getpid()}"
        self._withdrawing: set[asyncio.Task[None]] = set()

    def _withdraw_later(self, rec: ApprovalRecord) -> None:
        """In the background, until the store answers or the record's deadline passes: withdraw a record whose
        opening failed (it may have opened all the same). At most MAX_WITHDRAWING at once; past that a record
        left open stops counting at its deadline."""
        if len(self._withdrawing) >= MAX_WITHDRAWING:
            return

        async def run() -> None:
            delay = 0.5
            while True:
                try:
                    await self.store.withdraw(rec)
                    return
                except Exception:
                    if time.time() + delay > rec.deadline:
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)

        task = asyncio.ensure_future(run())
        self._withdrawing.add(task)
        task.add_done_callback(self._withdrawing.discard)

    def gate(self, kind: str, subject: str) -> ApprovalGate | None:
        return (self.cfg.routes if kind == "route" else self.cfg.capabilities).get(subject)

    # ------------------------------------------------------------------ what an approver sees

    async def preview(self, text: str, limit: int) -> str:
        """`text` cut to `limit` characters, with what the privacy policy protects redacted and secrets scrubbed."""
        if limit <= 0 or not text:
            return ""
        # Cleaned before it is cut, with a margin: a value cut in half would no longer be recognised.
        window = text[:2 * limit + 256]
        more = len(text) > len(window)
        if self.privacy is not None:  # detection can be heavy (NER): off the event loop
            window = await asyncio.to_thread(self.privacy.clean_text, window) or ""
        window = scrub(window)
        return window[:limit] + ("…" if more or len(window) > limit else "")

    # ------------------------------------------------------------------ waiting

    async def wait(self, kind: str, subject: str, *, gate: ApprovalGate, request_id: str = "",
                   model: str | None = None, key: str | None = None, tenant: str | None = None,
                   preview: str = "", facts: dict[str, Any] | None = None, gone: Gone | None = None,
                   on_open: Callable[[ApprovalRecord], None] | None = None) -> ApprovalRecord:
        """Wait for a decision on a new pending record; the approved record, or raise.

        Raises TooManyPending (429) when `gate.max_pending` records of this subject already wait, or
        `gate.per_key` of `key`'s (a record without a key counts only against the subject's bound),
        ApprovalRejected / ApprovalTimedOut (403), ClientLeft when `gone` completes first (the
        record is cancelled), StoreUnavailable (503) when the shared store cannot be reached."""
        now = time.time()
        rec = ApprovalRecord(id=new_id("apr_"), kind=kind, subject=subject, created=now,
                             deadline=now + gate.seconds, request_id=request_id, model=model, key=key,
                             tenant=tenant, preview=preview, facts=facts or {}, node=self.node)
        wake = self.store.watch(rec.id)
        gone_task = asyncio.ensure_future(gone()) if gone is not None else None
        try:
            try:
                await self.store.ready()
                opened = await self.store.open(rec, gate.max_pending, gate.per_key)
            except Exception as e:
                log.warning("approvals: store unavailable (%s)", type(e).__name__)
                self._withdraw_later(rec)
                raise StoreUnavailable(f"this {kind} needs an approval and the approval store is unavailable "
                                       f"({type(e).__name__})") from None
            if opened == KEY_FULL:
                raise TooManyPending(f"this API key already has {gate.per_key} requests of {kind} {subject!r} waiting "
                                     f"for an approval (approvals max_pending_per_key: {gate.per_key} per key, of "
                                     f"the {kind}'s max_pending {gate.max_pending}); try again once one is decided",
                                     retry_after=min(gate.seconds, 60))
            if opened != OPENED:
                raise TooManyPending(f"{gate.max_pending} requests of {kind} {subject!r} already wait for an approval "
                                     f"(approvals max_pending); try again later", retry_after=min(gate.seconds, 60))
            if on_open is not None:
                on_open(rec)
            log.info("approvals: %s %s waits for approval as %s", kind, subject, rec.id)
            return await self._until_decided(rec, wake, gone_task)
        except asyncio.CancelledError:  # the caller was cancelled: nobody waits for this record anymore
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.decide(rec.id, "cancelled", "caller", "the caller was cancelled"))
            raise
        finally:
            self.store.unwatch(rec.id)
            if gone_task is not None:
                gone_task.cancel()

    async def _until_decided(self, rec: ApprovalRecord, wake: asyncio.Event,
                             gone_task: asyncio.Future[Any] | None) -> ApprovalRecord:
        recheck = self.cfg.store.recheck
        while True:
            remaining = rec.deadline - time.time()
            if remaining <= 0:
                try:
                    _, cur = await self.store.decide(rec.id, "timed_out", "timeout",
                                                     f"no decision within {rec.deadline - rec.created:g}s")
                except Exception:
                    cur = None
                return self._outcome(cur or _timed_out(rec), rec)
            wake_task = asyncio.ensure_future(wake.wait())
            waits: set[asyncio.Future[Any]] = {wake_task} | ({gone_task} if gone_task is not None else set())
            try:
                await asyncio.wait(waits, timeout=min(remaining, recheck), return_when=asyncio.FIRST_COMPLETED)
            finally:
                wake_task.cancel()
            wake.clear()
            if gone_task is not None and gone_task.done():
                with contextlib.suppress(Exception):
                    await self.store.decide(rec.id, "cancelled", "client", "the client went away")
                raise ClientLeft(rec.id)
            try:
                cur = await self.store.get(rec.id)
            except Exception as e:  # Redis blip: keep waiting until the deadline
                log.warning("approvals: cannot read %s (%s)", rec.id, type(e).__name__)
                continue
            if cur is None:  # gone from the store (a Redis restart without persistence): fail closed
                rec.state, rec.approver, rec.reason = "lost", "store", "the pending record vanished from the store"
                raise ApprovalLost(f"approval {rec.id} vanished from the approval store (restarted without "
                                   "persistence?); rejected", rec)
            if cur.state != PENDING:
                return self._outcome(cur, rec)

    def _outcome(self, rec: ApprovalRecord, opened: ApprovalRecord) -> ApprovalRecord:
        """`rec` as decided, of the record this waiter `opened` (its own copy of what it asked)."""
        why = f" ({rec.reason})" if rec.reason else ""
        if rec.state == "approved":
            if self.store.authentic(rec, opened):
                return rec
            log.warning("approvals: %s reads approved (by %r) without a valid signature: written into the store "
                        "from outside the gateways; the request is rejected", rec.id, str(rec.approver)[:64])
            said = rec.approver
            rec.state, rec.approver = "rejected", "gateway"
            rec.reason = f"an approval without a valid signature (claimed by {str(said)[:64]!r})"
            raise ApprovalForged(f"approval {rec.id} carries no valid signature (written into the approval store "
                                 "from outside the gateways); rejected", rec)
        if rec.state == "rejected":
            raise ApprovalRejected(f"approval rejected by {rec.approver}{why}; approval id {rec.id}", rec)
        if rec.state == "cancelled":
            raise ClientLeft(rec.id)
        raise ApprovalTimedOut(f"approval timed out: no approver decided within "
                               f"{rec.deadline - rec.created:g}s; rejected (approval id {rec.id})", rec)

    # ------------------------------------------------------------------ the two callers

    async def gate_request(self, req: Any, ctx: Any, route: str, gone: Gone | None, *, kind: str = "route") -> None:
        """Hold a request of a gated route (or, with kind="capability", a request a capability route
        is about to dispatch) until it is approved, or raise; record the decision on the trace.

        The key's name and tenant come from the request's context (`key_name`, `key_tenant` notes)."""
        gate = self.gate(kind, route)
        if gate is None:
            return
        # The latest message first (what the request asks now), then up to two before it, then the system prompt.
        parts = [f"[{m.role}] {m.text()}" for m in reversed(req.messages[-3:])]
        if req.system:
            parts.append("[system] " + " ".join(b.text for b in req.system)[:200])
        text = "\n".join(parts)
        # The model and tool names are the client's text too (review29f: a key sent there was shown as sent).
        facts = {"stream": req.stream, "messages": len(req.messages), "tools": [scrub(t.name[:200]) for t in req.tools[:20]],
                 "max_tokens": req.max_tokens, "client_format": ctx.client_format}
        t0 = time.perf_counter()
        rec: ApprovalRecord | None = None

        def opened(r: ApprovalRecord) -> None:
            nonlocal rec
            rec = r

        try:
            rec = await self.wait(kind, route, gate=gate, request_id=ctx.trace.request_id,
                                  model=scrub(str(ctx.notes.get("requested_model") or req.model)[:256]),
                                  key=ctx.notes.get("key_name") or None, tenant=ctx.notes.get("key_tenant") or None,
                                  preview=await self.preview(text, gate.preview_chars), facts=facts, gone=gone,
                                  on_open=opened)
        except (ApprovalDenied, ClientLeft) as e:
            state = e.record.state if isinstance(e, ApprovalDenied) else "cancelled"
            note = self._note(e.record if isinstance(e, ApprovalDenied) else rec, state, t0)
            ctx.notes["approval"] = note
            ctx.trace.decide("approval", f"approval {state}" + (f": {e.message}" if isinstance(e, TierwiseError) else ""),
                             detail={"approval": note})
            raise
        assert rec is not None
        note = self._note(rec, "approved", t0)
        ctx.notes["approval"] = note
        ctx.trace.decide("approval", f"approved by {rec.approver}" + (f" ({rec.reason})" if rec.reason else ""),
                         detail={"approval": note})

    @staticmethod
    def _note(rec: ApprovalRecord | None, state: str, t0: float) -> dict[str, Any]:
        note: dict[str, Any] = {"state": state, "waited_s": round(time.perf_counter() - t0, 3)}
        if rec is not None:
            note.update(id=rec.id, approver=rec.approver, reason=rec.reason)
        return note

    async def require_capability(self, capability: str, payload: Any, *, request_id: str = "",
                                 tenant: str | None = None, gone: Gone | None = None) -> ApprovalRecord | None:
        """For the dispatcher: wait for an approval when `capability` is gated (None when it is not)."""
        gate = self.cfg.capabilities.get(capability)
        if gate is None:
            return None
        text = payload if isinstance(payload, str) else orjson.dumps(payload, default=str).decode()
        return await self.wait("capability", capability, gate=gate, request_id=request_id, tenant=tenant,
                               preview=await self.preview(text, gate.preview_chars), gone=gone)

    # ------------------------------------------------------------------ the approver's side

    async def pending(self, limit: int = MAX_LIST) -> list[dict[str, Any]]:
        return [r.to_dict() for r in await self.store.pending(min(limit, MAX_LIST))]

    async def decide(self, id: str, approve: bool, approver: str, reason: str | None) -> dict[str, Any]:
        if not isinstance(id, str) or not id.startswith("apr_") or len(id) > 64:
            raise InvalidRequest("`id` must be an approval id (apr_…) from the pending list")
        if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
            raise InvalidRequest(f"`reason` must be a string of at most {MAX_REASON} characters")
        done, rec = await self.store.decide(id, "approved" if approve else "rejected", approver,
                                            scrub(reason) if reason else None)
        if rec is None:
            raise NotFound(f"no pending approval {id!r}")
        if not done:
            raise Conflict(f"approval {id} was already decided: {rec.state}"
                           + (f" by {rec.approver}" if rec.approver else ""))
        log.info("approvals: %s %s by %s", id, rec.state, approver)
        return rec.to_dict()

    async def close(self) -> None:
        for task in list(self._withdrawing):
            task.cancel()
        await self.store.close()


def _timed_out(rec: ApprovalRecord) -> ApprovalRecord:
    rec.state, rec.approver = "timed_out", "timeout"
    return rec
