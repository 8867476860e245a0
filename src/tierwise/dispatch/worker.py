"""A capability worker: takes tasks from the tenant's streams, runs them through the local
tierwise core, delivers each result once, and says it is there.

Three loops share one Redis client:
- take: while a slot is free, one script takes up to that many tasks across the worker's
  streams, highest priority first (so the worker never holds more than `capacity`); when there
  is nothing, it blocks on the capabilities' wake lists (a token per published task);
- beat: renews presence and the claim on every running task (so a long task is not re-claimed
  while its worker lives), and cancels tasks whose claim it lost;
- reclaim: takes over tasks whose worker stopped renewing them for `visibility_timeout`
  (XAUTOCLAIM), and dead-letters those delivered more than `max_attempts` times.
Every loop survives Redis going away: it waits with backoff and carries on, re-creating the
consumer groups and presence a Redis restart lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from typing import Any

import orjson
import redis.exceptions as rexc

import tierwise
from tierwise.config import Config
from tierwise.dispatch.acl import script_refused
from tierwise.dispatch.config import PRIORITIES
from tierwise.dispatch.connection import REDIS_ANY, REDIS_DOWN, Backoff, connect, text, waiting_for, where
from tierwise.dispatch.keys import GROUP, Keyspace, unnamed_tag
from tierwise.dispatch.presence import PresencePublisher, entry_member, now_ms
from tierwise.dispatch.scripts import WAKE_MAX, Scripts
from tierwise.dispatch.serving import CapabilityRunner, failure
from tierwise.dispatch.tasks import Malformed, fields_of, parse_task
from tierwise.secret_scrub import scrub

log = logging.getLogger("tierwise.dispatch")

RESULTS_MAXLEN = 100_000
DEAD_MAXLEN = 10_000
DEAD_FIELD_BYTES = 4096  # a dead-lettered entry keeps this much of each field, for a person to look at
# ... and this much in all: 4 KB of each of 16 fields was 66 KB an entry, and a caller's malformed XADDs filled a
# capability's dead-letter stream (10,000 entries) with 660 MB (session 38, dist9)
DEAD_ENTRY_BYTES = 8192
# What a result waits out: Redis away, or past `maxmemory` (it refuses writes until memory is freed; review38b)
_WAITED: tuple[type[Exception], ...] = (*REDIS_DOWN, rexc.OutOfMemoryError)
ENTRY_SLACK = 4096  # an entry's fields besides its payload (id, reply, deadline): what a take hands out whole past it


def _rotated(items: list[Any], by: int) -> list[Any]:
    by %= max(1, len(items))
    return items[by:] + items[:by]


def default_worker_id(locality: str, capabilities: list[str]) -> str:
    """`<tag>-<host>-<pid>`: the tag (keys.unnamed_tag) is what the printed rules of a worker without an id name."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:40] or "worker"
    return f"{unnamed_tag(locality, capabilities)}-{host}-{os.getpid()}"


class Worker:
    def __init__(self, cfg: Config, gateway: Any, *, worker_id: str | None = None) -> None:
        assert cfg.dispatch is not None and cfg.dispatch.worker is not None
        self.d = cfg.dispatch
        self.w = cfg.dispatch.worker
        if self.d.visibility_timeout <= 2 * self.w.heartbeat:
            raise ValueError("dispatch.visibility_timeout must be more than twice worker.heartbeat, or a running "
                             "task's claim lapses between two renewals")
        self.id = worker_id or self.w.id or default_worker_id(self.w.locality, list(self.w.capabilities))
        self._named = bool(worker_id or self.w.id)
        self.keys = Keyspace(self.d.prefix, self.d.tenant)
        self.gateway = gateway
        self.runner = CapabilityRunner(gateway, self.w, self.id)
        self.zones: dict[str, list[str]] = {}
        for cap in self.w.capabilities:
            local = self.w.locality == "local" and self.runner.all_local(cap)
            if self.w.locality == "local" and not local:
                log.warning("capability %s reaches a remote model: this worker does not take its local-only tasks", cap)
            self.zones[cap] = ["local", "any"] if local else ["any"]
        self.streams: list[tuple[str, str]] = []
        self.wake_keys: list[str] = []
        self._old_queues = False  # whether the shared queues of before session 37 hold entries
        self._set_streams()
        self.running: dict[bytes, tuple[asyncio.Task[None], str]] = {}
        self.stats = {"done": 0, "failed": 0, "dead": 0, "reclaimed": 0, "duplicates": 0, "lost": 0}
        self._slot = asyncio.Event()
        # tasks taken when another completed, to start in its slot (with the order of streams they were taken in)
        self._next: dict[bytes, tuple[list[tuple[str, str]], list[Any]]] = {}
        self._stopping = False
        self._gone = False
        self.client: Any = None
        self.scripts: Scripts | None = None
        self.presence: PresencePublisher | None = None
        self._entry_max = self.d.max_payload_bytes + ENTRY_SLACK  # (scripts.py `small`)

    def info(self) -> dict[str, Any]:
        models = sorted({m for c in self.w.capabilities for m in self.runner.models(c)})
        return {"id": self.id, "tenant": self.d.tenant, "capabilities": sorted(self.w.capabilities),
                "models": models, "locality": self.w.locality, "region": self.w.region,
                "capacity": self.w.capacity, "version": tierwise.__version__, "host": socket.gethostname(),
                "pid": os.getpid(), "zones": self.zones, "started": time.time(),
                "callers": self.d.read_callers(),  # (whose queues it reads: `tierwise doctor` compares)
                "max_pending": self.d.max_pending}  # (what it trims their queues to: doctor compares too)

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        self.client = connect(self.d.redis_url, block_s=self.w.block)
        self.scripts = Scripts(self.client)
        await self._drop_refused_zones(stop)
        if not self.streams:
            await self.client.aclose()
            raise ValueError(f"worker {self.id}: its Redis user may read none of its capabilities' task queues")
        # (a named worker's entry is the same each start; an unnamed one's id is per process anyway)
        member = await asyncio.to_thread(entry_member, self.id, self.d.tenant, self.d.redis_url) \
            if self._named else None
        self.presence = PresencePublisher(self.client, self.keys, self.id, self.info(), self.zones,
                                          self.w.presence_ttl, self.d.read_callers(), member)
        await self._first_beat(stop)
        if stop.is_set():  # stopped before Redis ever answered: it never served, so never say "ready"
            await self.client.aclose()
            return
        log.info("worker %s serving %s for tenant %s via Redis at %s", self.id, ", ".join(self.zones),
                 self.d.tenant, where(self.d.redis_url))
        if ready is not None:
            ready.set()
        loops = [asyncio.create_task(self._take_loop()), asyncio.create_task(self._reclaim_loop())]
        beat = asyncio.create_task(self._beat_loop())
        try:
            await stop.wait()
        finally:
            self._stopping = True
            for t in loops:
                t.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._drain()
            self._gone = True
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
            try:
                await self.presence.stopped(self.stats["done"])
            except REDIS_ANY:
                pass  # (its entries expire on their own)
            await self.client.aclose()

    def _set_streams(self) -> None:
        # (stream key, capability), highest priority first; each caller's queues of a priority together
        named = self.d.read_callers()
        # ("": the shared queues of before session 37, while they hold entries; `_look_for_old_queues`)
        callers = [*named, ""] if self._old_queues else named
        self.streams = [(self._stream_key(z, c, p, who), c) for p in PRIORITIES for who in callers
                        for c in self.zones for z in self.zones[c]]
        self.wake_keys = [self.keys.wake(z, c, who) for who in named for c in self.zones for z in self.zones[c]]
        # The take script's keys (the streams, then the wake list of each), once per caller taken first: the script
        # reads its keys in order, and with one order the first caller's backlog would starve the others' tasks of
        # the same priority. Takes go round the orders. Within a turn the callers come one after the other, each
        # with its own queues highest priority first: priority is the caller's to choose, and with every caller's
        # high queues read before any caller's normal ones, one caller that published its backlog as `high` starved
        # the others' tasks (session 37, review37a). A priority orders its own caller's tasks.
        self._orders: list[tuple[list[tuple[str, str]], list[str]]] = []
        for r in range(len(callers)):
            order = [(self._stream_key(z, c, p, who), c) for who in _rotated(callers, r) for p in PRIORITIES
                     for c in self.zones for z in self.zones[c]]
            self._orders.append((order, [s for s, _ in order] + [self._wake_of(s) for s, _ in order]))
        self._turn = 0

    def _stream_key(self, zone: str, capability: str, priority: str, caller: str) -> str:
        if caller == "":
            return self.keys.legacy_stream(zone, capability, priority)
        return self.keys.stream(zone, capability, priority, caller)

    async def _look_for_old_queues(self) -> None:
        """Read the callers' shared queues of before session 37 while they hold entries (looked at each heartbeat):
        the tasks an upgrade found waiting there or taken by an old worker, and those of a gateway not upgraded yet,
        were otherwise never served, each waiting out its caller's timeout (session 37, review37a). Their wake
        lists are not waited on (this version's rules do not name them): such a task waits at most `block` seconds
        more. The take script is handed `wake:<zone>:<cap>:` for them, a key no caller's name makes."""
        old = [self.keys.legacy_stream(z, c, p) for p in PRIORITIES for c in self.zones for z in self.zones[c]]
        pipe = self.client.pipeline(transaction=False)
        for key in old:
            pipe.xlen(key)
        found = any(isinstance(n, int) and n > 0 for n in await pipe.execute(raise_on_error=False))
        if found != self._old_queues:
            self._old_queues = found
            log.info("worker %s: %s the shared task queues of before session 37", self.id,
                     "reading" if found else "no longer reading (empty)")
            self._set_streams()

    def _take_order(self) -> tuple[list[tuple[str, str]], list[str]]:
        """The streams (and the take script's keys) of this take, the callers' turn moved by one."""
        self._turn = (self._turn + 1) % len(self._orders)
        return self._orders[self._turn]

    def _wake_of(self, stream: str) -> str:
        zone, cap, _priority, caller = self.keys.stream_parts(stream)
        return self.keys.wake(zone, cap, caller)

    async def _drop_refused_zones(self, stop: asyncio.Event) -> None:
        """Stop reading the zones this worker's Redis user may not read (a remote machine's user has no
        access to the local-only zone, whatever its config says), and say so loudly."""
        assert self.scripts is not None
        backoff = Backoff()
        for zone in ("local", "any"):
            streams = [s for s, c in self.streams if zone in self.zones[c] and f":q:{zone}:" in s]
            keys = streams + [self._wake_of(s) for s in streams]
            while keys and not stop.is_set():
                try:
                    await self.scripts.take(keys=keys, args=[GROUP, self.id, 0, self._entry_max])  # takes nothing; ACL-checks the keys
                    break
                except rexc.NoPermissionError as e:  # (Redis's words: a refused SELECT is no zone's fault)
                    stale = script_refused(e)
                    if stale is not None:  # no zone's fault either: every zone would be dropped
                        await self.client.aclose()
                        raise ValueError(f"worker {self.id}: {stale} (Redis said: {scrub(str(e))[:200]})") from None
                    log.error("worker %s: its Redis user may not read the %s zone of tenant %s; not taking those "
                              "tasks (see `tierwise worker --acl`; Redis said: %s)", self.id, zone, self.d.tenant,
                              scrub(str(e))[:200])
                    self.zones = {c: [z for z in zs if z != zone] for c, zs in self.zones.items()}
                    break
                except REDIS_DOWN as e:
                    if backoff.tries == 0:  # the first thing a worker does: say at once why it waits
                        log.warning("worker %s: %s", self.id, waiting_for(self.d.redis_url, e))
                    await asyncio.sleep(backoff.next())
        self.zones = {c: zs for c, zs in self.zones.items() if zs}
        self._set_streams()

    async def _first_beat(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                await self._beat()
                return
            except REDIS_DOWN as e:
                log.warning("worker %s: %s", self.id, waiting_for(self.d.redis_url, e))
                await asyncio.sleep(backoff.next())
            except rexc.ResponseError as e:  # e.g. NOPERM on presence: a person must fix the ACL
                log.error("worker %s: Redis refused the heartbeat: %s", self.id, scrub(str(e))[:300])
                await asyncio.sleep(max(1.0, backoff.next()))

    async def _drain(self) -> None:
        """Let running tasks finish (up to the visibility timeout; after it others may take them)."""
        deadline = time.monotonic() + self.d.visibility_timeout
        while self.running and time.monotonic() < deadline:  # (a finishing task may start one it took)
            await asyncio.wait([t for t, _ in self.running.values()], timeout=deadline - time.monotonic(),
                               return_when=asyncio.FIRST_COMPLETED)
        left = [t for t, _ in self.running.values()]
        for t in left:
            t.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    # ------------------------------------------------------------------ loops

    async def _take_loop(self) -> None:
        assert self.scripts is not None
        backoff = Backoff()
        while not self._stopping:
            free = self.w.capacity - len(self.running)
            if free <= 0:
                await self._slot.wait()
                self._slot.clear()
                continue
            try:
                order, keys = self._take_order()
                got = await self.scripts.take(keys=keys, args=[GROUP, self.id, free, self._entry_max])
                backoff.reset()
                if got:
                    for idx, entry_id, fields in got:
                        self._start(order[int(idx) - 1], entry_id, fields, 1)
                    continue
                await self.client.blpop(self.wake_keys, timeout=self.w.block)
            except REDIS_DOWN:
                await asyncio.sleep(backoff.next())
            except rexc.ResponseError as e:  # e.g. NOPERM: a person must fix the ACL; keep trying slowly
                log.error("worker %s: Redis refused to hand out tasks: %s", self.id, scrub(str(e))[:300])
                await asyncio.sleep(max(1.0, backoff.next()))

    async def _reclaim_loop(self) -> None:
        assert self.scripts is not None
        streams = list(self.streams)
        cursors: list[Any] = ["0-0"] * len(streams)
        every = self.d.visibility_timeout / 2
        while not self._stopping:
            await asyncio.sleep(every)
            free = self.w.capacity - len(self.running)
            if free <= 0:
                continue
            if streams != self.streams:  # (the old queues came or went)
                streams = list(self.streams)
                cursors = ["0-0"] * len(streams)
            keys = [s for s, _ in streams]
            try:
                got, cursors = await self.scripts.reclaim(
                    keys=keys, args=[GROUP, self.id, int(self.d.visibility_timeout * 1000), free, self._entry_max,
                                     *cursors])
            except REDIS_ANY:
                cursors = ["0-0"] * len(keys)
                continue
            for idx, entry_id, fields, deliveries in got:
                self.stats["reclaimed"] += 1
                log.info("worker %s re-claimed task entry %s (delivery %s)", self.id, text(entry_id), deliveries)
                self._start(streams[int(idx) - 1], entry_id, fields, int(deliveries))

    async def _beat_loop(self) -> None:
        backoff = Backoff(cap=self.w.heartbeat)  # back in presence within a heartbeat of Redis's return
        while not self._gone:
            await asyncio.sleep(self.w.heartbeat if backoff.tries == 0 else backoff.next())
            try:
                # (claims first: past `maxmemory` Redis refuses the heartbeat's SET but not the claims' renewal, and
                # a running task's claim lapsed behind the refused beat: re-claimed and run again; review38b)
                await self._keep_claims()
                await self._beat()
                backoff.reset()
            except REDIS_DOWN:
                backoff.next()
            except rexc.ResponseError as e:
                log.error("worker %s: Redis refused the heartbeat: %s", self.id, scrub(str(e))[:300])

    async def _beat(self) -> None:
        assert self.presence is not None
        await self.presence.beat(in_flight=len(self.running), status="draining" if self._stopping else "online",
                                 done=self.stats["done"])
        await self._look_for_old_queues()
        await self._bound_queues()
        board = getattr(self.gateway, "blackboard", None)
        if board is not None:
            await self._publish_backlog(board)

    async def _bound_queues(self) -> None:
        """Trim the queues this worker reads to `max_pending` entries each, their wake lists to WAKE_MAX tokens
        (scripts.py BOUND): what a caller XADDed or LPUSHed past its bound directly."""
        assert self.scripts is not None
        keys = [s for s, _ in self.streams]
        removed = await self.scripts.bound(keys=[*keys, *[self._wake_of(k) for k in keys]],
                                           args=[self.d.max_pending, WAKE_MAX])
        for key, n in zip(keys, removed, strict=False):
            if n:
                _zone, cap, priority, caller = self.keys.stream_parts(key)
                log.warning("worker %s: caller %s had %d %s-priority tasks of %s queued past max_pending (%d), "
                            "published around the publishing script; the oldest were dropped", self.id,
                            caller or "(before session 37)", n + self.d.max_pending, priority, cap,
                            self.d.max_pending)

    async def _publish_backlog(self, board: Any) -> None:
        """Each served model's queue depth on the blackboard: the tasks waiting (not yet taken) in the
        queues of the capabilities it backs, so a gateway's `dynamic` route can shift on a backlog."""
        pipe = self.client.pipeline(transaction=False)
        for stream, _ in self.streams:
            pipe.xlen(stream)
            pipe.xpending(stream, GROUP)
        replies = await pipe.execute(raise_on_error=False)
        depth: dict[str, int] = {}
        for i, (_, cap) in enumerate(self.streams):
            length, pending = replies[2 * i], replies[2 * i + 1]
            if isinstance(length, Exception):
                continue
            taken = pending.get("pending", 0) if isinstance(pending, dict) else 0
            for m in self.runner.models(cap):
                depth[m] = depth.get(m, 0) + max(0, int(length) - int(taken or 0))
        for m, n in depth.items():
            st = board.own.get(m)
            if st is not None:
                st.queue_depth = n
        board.start_soon()

    async def _keep_claims(self) -> None:
        if not self.running:
            return
        assert self.scripts is not None
        ids = list(self.running)
        lost = await self.scripts.keepalive(keys=[self.running[i][1] for i in ids], args=[GROUP, self.id, *ids])
        for entry_id in lost:
            held = self.running.get(entry_id)
            if held is not None:
                # Taken over elsewhere, withdrawn by its caller, or lost with Redis's data: the caller
                # gets its result from whoever holds it now (or publishes it again).
                self.stats["lost"] += 1
                held[0].cancel()

    # ------------------------------------------------------------------ one task

    def _start(self, stream: tuple[str, str], entry_id: bytes, fields: Any, deliveries: int) -> None:
        key, cap = stream
        t = asyncio.create_task(self._handle(key, cap, entry_id, fields, deliveries))
        self.running[entry_id] = (t, key)
        t.add_done_callback(lambda _t: self._finished(entry_id))

    def _finished(self, entry_id: bytes) -> None:
        self.running.pop(entry_id, None)
        order, taken = self._next.pop(entry_id, ([], []))
        for idx, next_id, fields in taken:
            self._start(order[int(idx) - 1], next_id, fields, 1)
        self._slot.set()

    async def _handle(self, key: str, cap: str, entry_id: bytes, fields: Any, deliveries: int) -> None:
        try:
            zone, _cap, _priority, caller = self.keys.stream_parts(key)
            task = parse_task(fields, self.keys, self.d.max_payload_bytes, zone, cap, caller)
        except Malformed as m:
            await self._dead_letter(key, cap, entry_id, m.reason, fields, m.task_id, m.reply)
            return
        if deliveries > self.d.max_attempts:
            self.runner.record_lost(cap, task.id, deliveries - 1, {})  # (their spend in the ledger, uncosted)
            await self._dead_letter(key, cap, entry_id, f"delivered {deliveries} times; its workers died or stalled "
                                    f"each time (max_attempts {self.d.max_attempts})", fields, task.id, task.reply)
            return
        # The task's deadline bounds its run too, not only its start: a caller that died or hung up without
        # withdrawing the task no longer waits, and a call that never ends would hold this slot for as long as
        # its upstream's read timeout. A task without one (not the Dispatcher's) gets `dispatch.timeout`.
        # (deadlines are in Redis's clock: this machine's may be minutes off the caller's; session 36)
        redis_now = self.presence.redis_now_ms() if self.presence is not None else now_ms()
        left_s = ((task.deadline_ms - redis_now) / 1000 if task.deadline_ms is not None else self.d.timeout)
        if left_s <= 0:
            result = failure(504, "timeout_error", "the task expired before a worker could run it", self.id)
        else:
            try:
                async with asyncio.timeout(left_s):
                    result = await self.runner.run(cap, task.payload, task.id)
            except TimeoutError:
                result = failure(504, "timeout_error", "the task ran past its deadline; the worker stopped it",
                                 self.id)
        if deliveries > 1:  # earlier deliveries' workers died mid-task: their calls were recorded nowhere
            self.runner.record_lost(cap, task.id, deliveries - 1, result)
        encoded = orjson.dumps({**result, "attempt": deliveries})
        if len(encoded) > self.d.max_payload_bytes:
            encoded = orjson.dumps(failure(502, "api_error", f"the result is {len(encoded)} bytes, more than "
                                           f"max_payload_bytes ({self.d.max_payload_bytes})", self.id))
        want = 0 if self._stopping else 1  # the slot this task frees, filled in the same round trip
        order, take_keys = self._take_order()
        reply = await self._with_redis(lambda: self.scripts.complete(  # type: ignore[union-attr]
            keys=[key, self.keys.done(task.id), task.reply, *take_keys],
            args=[GROUP, entry_id, task.id, encoded, int(self.d.result_ttl), RESULTS_MAXLEN, int(self.d.result_ttl),
                  self.id, want, self._entry_max]))
        delivered, taken = (reply[0], reply[1]) if reply else (None, [])
        if taken:
            self._next[entry_id] = (order, taken)  # started once this task has left its slot
        if delivered == 0:
            self.stats["duplicates"] += 1  # an earlier run of the task already answered
        elif result.get("ok"):
            self.stats["done"] += 1
        else:
            self.stats["failed"] += 1

    async def _dead_letter(self, key: str, cap: str, entry_id: bytes, reason: str, fields: Any,
                           task_id: str | None, reply: str | None) -> None:
        self.stats["dead"] += 1
        log.warning("worker %s: task entry %s of %s went to the dead-letter stream: %s", self.id, text(entry_id),
                    cap, reason)
        kept: list[Any] = []
        room = DEAD_ENTRY_BYTES
        try:
            for k, v in fields_of(fields).items():
                if room <= 0:
                    break
                kept += [k[:64], v[:max(0, min(DEAD_FIELD_BYTES, room - len(k[:64])))]]
                room -= len(kept[-2]) + len(kept[-1])
        except Malformed:
            kept = ["raw", repr(fields)[:DEAD_FIELD_BYTES]]
        args = [GROUP, entry_id, DEAD_MAXLEN, "reason", reason, "stream", key, "entry", entry_id, "worker", self.id,
                *kept]
        await self._with_redis(lambda: self.scripts.dead_letter(  # type: ignore[union-attr]
            keys=[key, self.keys.dead(cap)], args=args))
        if task_id is not None and reply is not None:  # the caller hears it now rather than at its timeout
            encoded = orjson.dumps(failure(502, "api_error", f"task {task_id} went to the dead-letter stream: {reason}",
                                           self.id))
            await self._with_redis(lambda: self.scripts.complete(  # type: ignore[union-attr]
                keys=[key, self.keys.done(task_id), reply],
                args=[GROUP, entry_id, task_id, encoded, int(self.d.result_ttl), RESULTS_MAXLEN,
                      int(self.d.result_ttl), self.id, 0, self._entry_max]))

    async def _with_redis(self, call: Any) -> Any:
        """Run one Redis call, waiting out an outage (the result is kept until Redis is back, for as
        long as the task could still matter: its claim would lapse anyway after that)."""
        backoff = Backoff()
        give_up = time.monotonic() + max(self.d.timeout, self.d.visibility_timeout)
        while True:
            try:
                return await call()
            except _WAITED as e:
                # (past `maxmemory` Redis refuses the completion's first write: raised out of the task, the answer
                # was lost and the entry re-claimed and run again, a paid call each time; session 38, review38b)
                if time.monotonic() > give_up:
                    log.error("worker %s: Redis stayed %s; a result was dropped (its caller times out)", self.id,
                              "full (maxmemory)" if isinstance(e, rexc.OutOfMemoryError) else "away")
                    return None
                if isinstance(e, rexc.OutOfMemoryError) and backoff.tries == 0:
                    log.error("worker %s: Redis is past its maxmemory and refuses results; kept until it takes them",
                              self.id)
                await asyncio.sleep(backoff.next())
