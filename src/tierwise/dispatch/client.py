"""The caller's side: publish a task for a capability and wait for its one result.

Results come back on result streams of this caller process, one per zone and capability
(`{tenant}:r:<caller>:<zone>:<capability>`: a worker may write only those of its own capabilities and
zones, see acl.py), read by one background reader that hands each result to the task waiting for it. The
reader reads the streams of the tasks waiting, and the process's inbox (`{tenant}:r:<caller>`, which no
worker may write): a task for a stream it is not reading yet adds a token there, so a blocked read
returns and starts reading that stream too. A result is taken only from the stream its task named, for
an id that is random (a worker that took one task cannot work out the ids of the caller's other tasks,
to answer them first or mark them done). A stream, rather than
pub/sub or a list per task: pub/sub drops what is sent while the caller is reconnecting, and a
blocking pop per task ties up a connection per waiting task; a stream is read with one
connection for any number of tasks, keeps results across a reconnect (the reader resumes after
the last id it saw) and, with AOF, across a Redis restart. A result for a task that is no longer
waiting (a duplicate completion, or one after a timeout) is dropped: the caller sees exactly one.

When Redis comes back after an outage, every waiting task whose entry is gone and that has no
completion mark (a Redis that restarted without its data) is published again under the same
task id, so it still finishes; the completion mark makes a second run's result a no-op.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.exceptions as rexc

from tierwise.dispatch.acl import script_refused
from tierwise.dispatch.config import PRIORITIES, DispatchConfig, check_name
from tierwise.dispatch.connection import REDIS_ANY, REDIS_DOWN, Backoff, connect, text, where
from tierwise.dispatch.errors import (
    DispatchTimeout,
    DispatchUnavailable,
    InvalidRequest,
    NoWorker,
    Overloaded,
    RequestTooLarge,
    TaskFailed,
)
from tierwise.dispatch.keys import Keyspace
from tierwise.dispatch.presence import present_count, unread_by
from tierwise.dispatch.scripts import GROUP, WAKE_MAX, Scripts
from tierwise.dispatch.tasks import task_fields
from tierwise.secret_scrub import scrub

log = logging.getLogger("tierwise.dispatch")

READ_BLOCK_MS = 1000
RECENT = 10_000  # task ids remembered after their result, to count late duplicates
INBOX_MAXLEN = 64  # wake-up tokens kept in a caller's inbox
# Result streams read even with no task waiting on them (the zones and capabilities used last): one task at a time
# to one capability then needs no wake-up token per task. Past this, only those with tasks waiting are kept.
STREAMS_KEPT = 64
# After Redis was away, workers need a heartbeat or two (with backoff) to announce themselves
# again, to a Redis that may have lost their presence: "no worker" is not believed for this long.
PRESENCE_GRACE_S = 10.0
# How often a task waiting for its result looks whether any worker present still reads its caller's queues, and how
# long none must have for the task to end: the only worker listing the caller restarting (stop, start) is not it.
LISTING_CHECK_S = 2.0
UNLISTED_FOR_S = 10.0


@dataclass(slots=True)
class TaskResult:
    task_id: str
    capability: str
    body: dict[str, Any]  # an OpenAI chat completion
    worker: str | None = None
    model: str | None = None
    locality: str | None = None
    cost: float | None = None
    latency_ms: float | None = None  # on the worker
    attempt: int = 1
    elapsed_ms: float = 0.0  # as the caller saw it, publishing included
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        try:
            return str(self.body["choices"][0]["message"].get("content") or "")
        except (KeyError, IndexError, TypeError, AttributeError):
            return ""


@dataclass(slots=True)
class _Waiting:
    future: asyncio.Future[dict[str, Any]]
    capability: str
    stream: str
    wake: str
    fields: list[Any]
    results: str  # the result stream its answer must come back on
    entry_id: bytes | None = None


def chat_body(payload: Any) -> dict[str, Any]:
    """A task payload from what a caller passes: a prompt string, or a chat completions body."""
    if isinstance(payload, str):
        return {"messages": [{"role": "user", "content": payload}]}
    if isinstance(payload, dict) and isinstance(payload.get("messages"), list):
        return payload
    raise InvalidRequest("a task payload is a prompt (str) or a chat completions body (a dict with `messages`)")


class Dispatcher:
    def __init__(self, redis_url: str = "redis://127.0.0.1:6379/0", *, tenant: str = "default",
                 prefix: str = "tierwise:", local_only: list[str] | tuple[str, ...] = (), max_pending: int = 1000,
                 max_payload_bytes: int = 1 << 20, timeout: float = 120.0, unavailable_wait: float = 10.0,
                 caller: str = "caller") -> None:
        cfg = DispatchConfig(redis_url=redis_url, tenant=tenant, prefix=prefix, local_only=list(local_only),
                             max_pending=max_pending, max_payload_bytes=max_payload_bytes, timeout=timeout,
                             unavailable_wait=unavailable_wait, caller=caller)
        self.cfg = cfg
        self.keys = Keyspace(cfg.prefix, cfg.tenant)
        self.caller_id = f"{cfg.caller}:{uuid.uuid4().hex[:20]}"
        self.inbox = self.keys.inbox(self.caller_id)
        self._last: dict[str, bytes | str] = {}  # result stream (or the inbox) -> the last entry id read there
        self._reading: frozenset[str] = frozenset()  # the streams the reader's current read covers
        self._client: Any = None
        self._scripts: Scripts | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[str, _Waiting] = {}
        self._recent: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.duplicates = 0  # results that arrived for a task already answered (dropped)
        self.misdirected = 0  # results for a waiting task on a stream other than its own (a hostile worker's)
        self.republished = 0  # tasks published again after Redis lost them
        self._closing = False
        self._outage_at = -1e9  # when this dispatcher last saw Redis away (monotonic)
        # (zone, capability) -> (when looked, whether no worker present reads this caller's queues, workers present,
        # since when)
        self._listing_seen: dict[tuple[str, str], tuple[float, bool, int, float]] = {}

    @classmethod
    def from_config(cls, d: DispatchConfig) -> Dispatcher:
        return cls(d.redis_url, tenant=d.tenant, prefix=d.prefix, local_only=d.local_only,
                   max_pending=d.max_pending, max_payload_bytes=d.max_payload_bytes, timeout=d.timeout,
                   unavailable_wait=d.unavailable_wait, caller=d.caller)

    def results_key(self, zone: str, capability: str) -> str:
        """This process's result stream for tasks of `capability` published to `zone`."""
        return self.keys.results(self.caller_id, zone, capability)

    async def __aenter__(self) -> Dispatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closing = True  # redis-py may turn a cancelled blocking read into an error: the loop ends on this
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        for w in self._waiting.values():
            if not w.future.done():
                w.future.cancel()
        if self._client is not None:
            try:
                await self._client.delete(self.inbox, *[k for k in self._last if k != self.inbox])
            except REDIS_ANY:
                pass  # they expire on their own (the inbox: it holds a few tokens)
            await self._client.aclose()
            self._client = None

    def _connect(self) -> None:
        self._closing = False
        if self._client is None:
            self._client = connect(self.cfg.redis_url, block_s=READ_BLOCK_MS / 1000)
            self._scripts = Scripts(self._client)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_results())

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, capability: str, payload: Any, *, priority: str = "normal",
                       timeout: float | None = None, local_only: bool | None = None) -> TaskResult:
        """Run `payload` on a worker serving `capability`; the result, or an exception that says
        why there is none (NoWorker, Overloaded, DispatchTimeout, DispatchUnavailable, TaskFailed)."""
        t0 = time.perf_counter()
        try:
            check_name(capability, "capability")
        except ValueError as e:
            raise InvalidRequest(str(e)) from None
        if priority not in PRIORITIES:
            raise InvalidRequest(f"priority must be one of {', '.join(PRIORITIES)}, not {str(priority)[:30]!r}")
        wait_s = self.cfg.timeout if timeout is None else float(timeout)
        if not 0 < wait_s <= 86400:
            raise InvalidRequest("timeout must be between 0 and 86400 seconds")
        raw = orjson.dumps(chat_body(payload))
        if len(raw) > self.cfg.max_payload_bytes:
            raise RequestTooLarge(f"the task payload is {len(raw)} bytes; this dispatcher takes at most "
                                  f"{self.cfg.max_payload_bytes} (dispatch.max_payload_bytes)")
        local = capability in self.cfg.local_only if local_only is None else local_only
        zone = "local" if local else "any"
        self._connect()
        deadline = time.monotonic() + wait_s
        # Random, not a process prefix and a counter: a worker sees the ids of the tasks it takes, and from one
        # it could otherwise name this caller's next tasks of any capability (to answer them, or to set their
        # completion marks so their real answers are dropped).
        task_id = "task_" + secrets.token_hex(12)
        results = self.results_key(zone, capability)
        fields = task_fields(task_id, results, raw)  # (its deadline: the publishing script's, Redis's clock)
        w = _Waiting(asyncio.get_running_loop().create_future(), capability,
                     self.keys.stream(zone, capability, priority, self.cfg.caller),
                     self.keys.wake(zone, capability, self.cfg.caller), fields, results)
        self._waiting[task_id] = w  # before publishing: the result may come back before XADD returns here
        try:
            if results not in self._reading:
                await self._wake_reader()
            status, value = await self._publish(w, zone, deadline)
            while status in (b"noworker", b"unlisted") and time.monotonic() - self._outage_at < PRESENCE_GRACE_S \
                    and time.monotonic() + 0.25 < deadline:
                await asyncio.sleep(0.2)  # just after an outage: the workers may not have re-announced yet
                status, value = await self._publish(w, zone, deadline)
            if status == b"noworker":
                raise await self._no_worker(capability, zone)
            if status == b"unlisted":
                raise self._unlisted(capability, int(value))
            if status == b"full":
                raise Overloaded(f"capability {capability!r} has {int(value)} tasks queued or running (max_pending "
                                 f"{self.cfg.max_pending}) from caller {self.cfg.caller!r} (the bound is per caller); "
                                 "try again shortly", retry_after=1.0)
            w.entry_id = value
            try:
                result = await self._result(w, zone, deadline)
            except NoWorker:  # no worker present reads this caller's queues any more: the task would wait in vain
                await self._withdraw(w)
                raise
            except asyncio.CancelledError:  # the caller left (a gateway's client hung up): no one waits any more
                await asyncio.shield(self._withdraw(w))
                raise
            except TimeoutError:
                why = await self._why_no_result(w)
                await self._withdraw(w)
                raise DispatchTimeout(f"task {task_id} for capability {capability!r} got no result in {wait_s:g} s "
                                      f"({why})") from None
        finally:
            self._waiting.pop(task_id, None)
        return self._outcome(task_id, capability, result, t0)

    async def _publish(self, w: _Waiting, zone: str, deadline: float) -> tuple[bytes, Any]:
        assert self._scripts is not None
        cap = w.capability
        keys = [self.keys.index(zone, cap), w.stream, w.wake, *self.keys.streams(zone, cap, self.cfg.caller),
                self.keys.listing(zone, cap, self.cfg.caller), self.keys.listing_told(zone, cap)]
        backoff = Backoff()
        down_since: float | None = None
        while True:
            try:
                status, value, *dl = await self._scripts.enqueue(
                    keys=keys, args=[self.cfg.max_pending, WAKE_MAX, max(0, int((deadline - time.monotonic()) * 1000)),
                                     *w.fields])
                if dl and "dl" not in w.fields[::2]:  # kept for publishing it again after an outage
                    w.fields += ["dl", str(int(dl[0]))]
                return status, value
            except REDIS_DOWN:
                now = self._outage_at = time.monotonic()
                if down_since is None:
                    down_since = now
                # Not the whole task timeout (120 s by default): a caller learns of an outage that outlasts
                # a restart within `unavailable_wait`.
                give_up = min(deadline, down_since + self.cfg.unavailable_wait)
                if now + 0.05 > give_up:
                    raise DispatchUnavailable(f"Redis at {where(self.cfg.redis_url)} was unreachable for "
                                              f"{now - down_since:.1f} s; capability {cap!r} was not dispatched "
                                              "(dispatch.unavailable_wait)") from None
                await asyncio.sleep(min(backoff.next(), max(0.0, give_up - time.monotonic())))
            except rexc.ResponseError as e:
                stale = script_refused(e)
                raise DispatchUnavailable(f"Redis refused the task: {scrub(str(e))[:200]}"
                                          + (f"; {stale}" if stale else "")) from None

    async def _result(self, w: _Waiting, zone: str, deadline: float) -> dict[str, Any]:
        """The task's result, waited for until `deadline` (TimeoutError past it). Every LISTING_CHECK_S it looks
        whether the workers present still read this caller's queues, and ends (NoWorker) when none has for
        UNLISTED_FOR_S: a task taken by the last worker that listed the caller, which then died, was re-claimed by
        none and waited out its timeout (session 38, dist9); likewise once no worker of the capability has been
        present (a worker stopped for good keeps its entries for their TTL, review38b)."""
        while True:
            left = deadline - time.monotonic()
            try:
                return await asyncio.wait_for(asyncio.shield(w.future), max(0.0, min(left, LISTING_CHECK_S)))
            except TimeoutError:
                if left <= LISTING_CHECK_S:
                    raise
            unread, present, since = await self._unread_by(zone, w.capability)
            if unread and time.monotonic() - since >= UNLISTED_FOR_S:
                raise self._unlisted(w.capability, present) if present else await self._no_worker(w.capability, zone)

    async def _unread_by(self, zone: str, capability: str) -> tuple[bool, int, float]:
        """Whether no worker present reads this caller's queues of the capability in the zone (none present, or
        none lists the caller and all say whose they read: the publishing script's 'noworker' and 'unlisted'; False
        when unsure: just after an outage, or Redis not answering), how many workers are present, and since when it
        has been so (monotonic). One look per capability and zone per LISTING_CHECK_S is shared by the tasks
        waiting."""
        now = time.monotonic()
        seen = self._listing_seen.get((zone, capability))
        if seen is not None and now - seen[0] < LISTING_CHECK_S:
            return seen[1], seen[2], seen[3]
        present, unread = 0, False
        if now - self._outage_at >= PRESENCE_GRACE_S:
            try:
                present, unread = await unread_by(self._client, self.keys, zone, capability, self.cfg.caller)
            except REDIS_ANY:
                present, unread = 0, False
        if len(self._listing_seen) > STREAMS_KEPT:
            self._listing_seen.clear()
        since = seen[3] if seen is not None and seen[1] and unread else now
        self._listing_seen[(zone, capability)] = (now, unread, present, since)
        return unread, present, since

    def _unlisted(self, capability: str, present: int) -> NoWorker:
        return NoWorker(f"{present} worker(s) serve capability {capability!r} for tenant {self.cfg.tenant!r} and none "
                        f"lists caller {self.cfg.caller!r} in its dispatch.callers, so none reads its tasks: add it "
                        "there (docs/distributed.md, \"Adding a caller\"; `tierwise doctor` checks)")

    async def _no_worker(self, capability: str, zone: str) -> NoWorker:
        tenant = self.cfg.tenant
        if zone == "local":
            try:
                remote = await present_count(self._client, self.keys, "any", capability)
            except REDIS_ANY:
                remote = 0
            extra = (f"; {remote} worker(s) serve it in the `any` zone only (locality remote, or its model is "
                     "not on a `locality: local` provider) and may not take local-only tasks" if remote else "")
            return NoWorker(f"no worker with locality local serves local-only capability {capability!r} for tenant "
                            f"{tenant!r}{extra}")
        return NoWorker(f"no worker serves capability {capability!r} for tenant {tenant!r} (none is present)")

    def _outcome(self, task_id: str, capability: str, r: dict[str, Any], t0: float) -> TaskResult:
        if not r.get("ok"):
            e = r.get("error")
            err: dict[str, Any] = e if isinstance(e, dict) else {}
            s = err.get("status")
            status = s if isinstance(s, int) and 400 <= s <= 599 else 502
            raise TaskFailed(f"capability {capability!r} (worker {str(r.get('worker'))[:80]}): "
                             f"{str(err.get('message', 'the task failed'))[:1000]}", status=status,
                             retryable=status >= 500, kind=str(err.get("kind") or "api_error")[:64])
        body = r.get("body")
        if not isinstance(body, dict):
            raise TaskFailed(f"capability {capability!r}: the worker's result has no body")

        def num(k: str) -> float | None:  # what a worker claims: a cost or latency is a non-negative number
            v = r.get(k)
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e12 else None

        return TaskResult(task_id, capability, body, worker=_s(r.get("worker")), model=_s(r.get("model")),
                          locality=_s(r.get("locality")), cost=num("cost"), latency_ms=num("latency_ms"),
                          attempt=int(r.get("attempt") or 1) if isinstance(r.get("attempt"), int) else 1,
                          elapsed_ms=(time.perf_counter() - t0) * 1000, raw=r)

    async def _wake_reader(self) -> None:
        """A token in the inbox: the reader's blocked read returns and reads the new task's result stream too."""
        try:
            await self._client.xadd(self.inbox, {"w": "1"}, maxlen=INBOX_MAXLEN, approximate=True)
        except REDIS_ANY:
            pass  # the reader's next read (within READ_BLOCK_MS) covers the stream anyway

    async def _why_no_result(self, w: _Waiting) -> str:
        """Why a task timed out, as far as its queue tells: no worker ever took it (its consumer group, made by the
        first worker that reads the queue, missing or not yet past its entry: the workers present may not list this
        caller, the usual mistake of an upgrade or a new caller), or one took it and did not answer."""
        generic = "its workers are busy, stalled or gone"
        try:
            groups = await self._client.xinfo_groups(w.stream)
        except rexc.ResponseError:  # no such key: nobody made the queue's group
            groups = []
        except REDIS_ANY:
            return generic
        last = next((text(g.get("last-delivered-id", "")) for g in groups if text(g.get("name", "")) == GROUP), None)
        if last is not None and _stream_id(last) >= _stream_id(text(w.entry_id or "")):
            return "a worker took it and sent no answer: stalled or gone"
        return (f"no worker took it: the workers present may not list caller {self.cfg.caller!r} in their "
                "dispatch.callers (`tierwise doctor` checks), or were busy all along")

    async def _withdraw(self, w: _Waiting) -> None:
        """A task nobody waits for any more leaves its stream, so no worker spends time on it (a worker
        running it cancels it at its next heartbeat: its claim is gone)."""
        if w.entry_id is None:
            return
        try:
            await self._client.xdel(w.stream, w.entry_id)
        except REDIS_ANY:
            pass  # its deadline makes a worker skip it

    # ------------------------------------------------------------------ results

    def _streams(self) -> dict[str, bytes | str]:
        """What the next read covers: the inbox, the result stream of every waiting task and those read lately, each
        from the last entry read there (a stream new to this process from its start: only this process's tasks use
        it)."""
        last = self._last
        streams = {self.inbox: last.get(self.inbox, "0-0")}
        for w in self._waiting.values():
            if w.results not in streams:
                streams[w.results] = last.get(w.results, "0-0")
        if len(last) > STREAMS_KEPT:
            self._last = last = {k: v for k, v in last.items() if k in streams}
        for k, v in last.items():
            streams.setdefault(k, v)
        self._reading = frozenset(streams)
        return streams

    async def _read_results(self) -> None:
        backoff = Backoff()
        outage = False
        while not self._closing:
            try:
                if outage:
                    await self._recover()  # (touches Redis only when some task was published before)
                resp = await self._client.xread(self._streams(), count=500, block=READ_BLOCK_MS)
                if outage:  # back only once Redis answered: else every retry warned "lost" anew
                    outage = False
                    log.info("dispatcher %s: Redis at %s is back", self.caller_id, where(self.cfg.redis_url))
                backoff.reset()
            except REDIS_DOWN:
                if self._closing:
                    return
                self._outage_at = time.monotonic()
                if not outage:
                    log.warning("dispatcher %s: lost Redis at %s; reconnecting", self.caller_id,
                                where(self.cfg.redis_url))
                outage = True
                await asyncio.sleep(backoff.next())
                continue
            except rexc.ResponseError as e:
                log.error("dispatcher %s: Redis refused to return results: %s", self.caller_id, scrub(str(e))[:200])
                await asyncio.sleep(max(1.0, backoff.next()))
                continue
            read: list[tuple[str, list[Any]]] = []
            for raw_key, entries in resp or []:
                key = text(raw_key)
                for entry_id, f in entries:
                    self._last[key] = entry_id
                    if key != self.inbox:
                        self._deliver(key, f)
                if key != self.inbox and entries:
                    read.append((key, [e for e, _ in entries]))
            if read:
                await self._forget(read)

    async def _forget(self, read: list[tuple[str, list[Any]]]) -> None:
        """Delete the results just read (one XDEL per stream, pipelined). Kept, they stayed in Redis until the
        stream's cap (100,000 entries of up to `max_payload_bytes` each, per process, zone and capability) or
        `result_ttl` after the last one, which steady traffic never reaches. A failure leaves them to the cap and
        the expiry: nothing waits on it."""
        try:
            pipe = self._client.pipeline(transaction=False)
            for key, ids in read:
                pipe.xdel(key, *ids)
            await pipe.execute()
        except REDIS_ANY:
            pass

    def _deliver(self, key: str, f: dict[bytes, bytes]) -> None:
        task_id = text(f.get(b"id", b""))
        w = self._waiting.get(task_id)
        if w is None or w.future.done():
            if task_id in self._recent:
                self.duplicates += 1
            return
        if key != w.results:  # written by a worker that may not answer this task: not its result
            self.misdirected += 1
            log.warning("dispatcher %s: a result for task %s of %s came on another capability's result stream; "
                        "dropped", self.caller_id, task_id, w.capability)
            return
        raw = f.get(b"r", b"")
        try:
            if len(raw) > 2 * self.cfg.max_payload_bytes:  # results come from Redis: untrusted, bounded
                raise ValueError
            r = orjson.loads(raw)
        except (orjson.JSONDecodeError, ValueError):
            r = {"ok": False, "error": {"status": 502, "message": "the worker's result is not JSON or too large"}}
        w.future.set_result(r if isinstance(r, dict) else {"ok": False})
        self._recent[task_id] = None
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)

    async def _recover(self) -> None:
        """After an outage: publish again the waiting tasks Redis no longer has (see the module doc)."""
        waiting = [(tid, w) for tid, w in self._waiting.items() if w.entry_id is not None and not w.future.done()]
        if not waiting:
            return
        pipe = self._client.pipeline(transaction=False)
        for tid, w in waiting:
            pipe.xrange(w.stream, w.entry_id, w.entry_id)
            pipe.exists(self.keys.done(tid))
        try:
            found = await pipe.execute()
        except rexc.NoPermissionError:
            # A named caller's user may not read task streams (the other callers' prompts are there): it can only
            # tell whether the stream survived. A stream that is gone took the entry with it; one that is there
            # most likely kept it (a Redis that lost its data and got tasks from another caller since is the
            # exception: the task then ends at its timeout).
            pipe = self._client.pipeline(transaction=False)
            for tid, w in waiting:
                pipe.exists(w.stream)
                pipe.exists(self.keys.done(tid))
            found = await pipe.execute()
        for i, (_tid, w) in enumerate(waiting):
            entry, done = found[2 * i], found[2 * i + 1]
            if entry or done:
                continue
            fields = dict(zip(w.fields[::2], w.fields[1::2], strict=True))
            w.entry_id = await self._client.xadd(w.stream, fields)
            await self._client.lpush(w.wake, "1")
            self.republished += 1


def _s(v: Any) -> str | None:
    return str(v)[:200] if isinstance(v, str) else None


def _stream_id(entry: str) -> tuple[int, int]:
    """A stream entry id (`<ms>-<seq>`) as a comparable pair; an unreadable one sorts first."""
    ms, _, seq = entry.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return (0, 0)
