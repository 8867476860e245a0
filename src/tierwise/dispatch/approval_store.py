"""Where pending approvals live: in this process (one gateway) or in Redis (every replica).

A record is opened (refused when its route already has `max_pending` waiting, or its gateway key
`max_pending_per_key` of them: one key cannot keep every other key out), decided once
(approved, rejected, timed out or cancelled: the first decision wins, atomically), and its
waiter is woken. In Redis the decision is a Lua script (check-and-set on the record, removal
from the pending sets) followed by a PUBLISH on one channel per key prefix; each process keeps
one subscription and wakes its own waiters, so a decision taken through replica B releases the
request waiting on replica A at once. A waiter also looks at its record every `recheck` seconds
in case a notice was lost while the subscription reconnected (no fast polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import orjson

from tierwise import signing

log = logging.getLogger("tierwise.approvals")

PENDING = "pending"
WITHDRAWN = "the approval store did not answer when the request opened it"
OP_TIMEOUT = 3.0  # seconds a Redis call of the approvals may take (it then counts as the store being down)
KEEP_DECIDED_S = 300  # a decided record stays readable this long (who decided, for a late look)
MAX_KEPT = 2000  # records the memory store keeps at most (pending ones are bounded per route besides)
FINAL_STATES = ("approved", "rejected", "timed_out", "cancelled")
# What `open` answers: the record waits, or which bound refused it.
OPENED, ROUTE_FULL, KEY_FULL = "opened", "route", "key"


# A record's fields an approver decides on (review33b: a decision's tag covered none of them, and a Redis writer who
# rewrote a pending record's preview to a harmless question had the approver release the request it hid)
ASKED = ("id", "kind", "subject", "request_id", "model", "key", "tenant", "preview", "facts", "node")


@dataclass(slots=True)
class ApprovalRecord:
    id: str
    kind: str  # route | capability
    subject: str  # the route's or capability's name
    created: float
    deadline: float
    request_id: str = ""
    model: str | None = None  # what the client asked for
    key: str | None = None  # the gateway key's name (never its value)
    tenant: str | None = None
    preview: str = ""  # redacted and scrubbed text an approver decides on
    facts: dict[str, Any] = field(default_factory=dict)  # stream, tools, message count, tokens ...
    node: str = ""  # the process that holds the waiting request
    state: str = PENDING
    approver: str | None = None
    reason: str | None = None
    decided: float | None = None
    sig: str | None = None  # the deciding gateway's tag (`signed`), with approvals.store.signing_key_env
    osig: str | None = None  # the opening gateway's tag over what is asked (`asked`), with signing_key_env

    def asked(self) -> bytes:
        """What an approver decides on, as the gateway holding the request opened the record (its `osig` covers it,
        and through it every decision's tag)."""
        return b"open\n" + orjson.dumps({k: getattr(self, k) for k in ASKED}, option=orjson.OPT_SORT_KEYS)

    def signed(self, osig: str | None = None) -> bytes:
        """What a decision's tag covers: the record it is on, the decision, who took it, why and when (ms), and
        the opening tag of what was asked (`osig`: the record's own unless given)."""
        return "\n".join((self.id, self.state, self.approver or "", self.reason or "",
                          f"{self.decided or 0:.3f}", (self.osig if osig is None else osig) or "")).encode()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> ApprovalRecord:
        d = orjson.loads(raw)
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def readable(raw: bytes | None) -> ApprovalRecord | None:
    """A record from Redis, or None for one that is not a record this gateway wrote (not JSON, another shape):
    written from outside (a hand at `redis-cli`, another deployment on the same Redis and prefix), one such record
    made the whole pending list a 503 "approval store unavailable" for every approver before session 32."""
    if raw is None:
        return None
    try:
        rec = ApprovalRecord.from_json(raw)
    except (ValueError, TypeError, AttributeError):
        return None
    texts = (rec.id, rec.kind, rec.subject, rec.state)
    times = (rec.created, rec.deadline)
    if not all(type(t) is str for t in texts) or not all(type(t) in (int, float) for t in times):
        log.warning("approvals: a record in the store is not one of this version's; left out of the list")
        return None
    return rec


class ApprovalStore(Protocol):
    backend: str

    async def open(self, rec: ApprovalRecord, max_pending: int, per_key: int) -> str: ...
    async def get(self, id: str) -> ApprovalRecord | None: ...
    async def decide(self, id: str, state: str, approver: str, reason: str | None) -> tuple[bool, ApprovalRecord | None]: ...
    async def pending(self, limit: int) -> list[ApprovalRecord]: ...
    def watch(self, id: str) -> asyncio.Event: ...
    def unwatch(self, id: str) -> None: ...
    async def ready(self) -> None: ...
    async def withdraw(self, rec: ApprovalRecord) -> None: ...
    def authentic(self, rec: ApprovalRecord, opened: ApprovalRecord | None = None) -> bool: ...
    async def close(self) -> None: ...


class _Watchers:
    """Waiters of this process, by record id: woken when a decision on their record is announced."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}

    def watch(self, id: str) -> asyncio.Event:
        ev = self.events[id] = asyncio.Event()
        return ev

    def unwatch(self, id: str) -> None:
        self.events.pop(id, None)

    def wake(self, id: str) -> None:
        ev = self.events.get(id)
        if ev is not None:
            ev.set()

    def wake_all(self) -> None:
        for ev in self.events.values():
            ev.set()


class MemoryApprovalStore(_Watchers):
    """Pending approvals of this process only (a single gateway)."""

    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, ApprovalRecord] = {}

    def _prune(self, now: float) -> None:
        # Decided records stay readable for a while (who decided), then go; so do pending records
        # whose deadline passed long ago (their waiter vanished), and the oldest beyond MAX_KEPT.
        for k, r in list(self.records.items()):
            if (r.state != PENDING and (r.decided or 0) < now - KEEP_DECIDED_S) or (
                    r.state == PENDING and r.deadline < now - KEEP_DECIDED_S):
                del self.records[k]
        if len(self.records) > MAX_KEPT:
            done = sorted((r for r in self.records.values() if r.state != PENDING), key=lambda r: r.decided or 0)
            for r in done[:len(self.records) - MAX_KEPT]:
                del self.records[r.id]

    async def open(self, rec: ApprovalRecord, max_pending: int, per_key: int) -> str:
        """OPENED, or which bound refused it: the route's, else the key's share (`per_key`, when the record has a key)."""
        now = time.time()
        self._prune(now)
        waiting = mine = 0
        for r in self.records.values():
            if r.state == PENDING and r.kind == rec.kind and r.subject == rec.subject and r.deadline >= now:
                waiting += 1
                if rec.key is not None and r.key == rec.key:
                    mine += 1
        if waiting >= max_pending:
            return ROUTE_FULL
        if rec.key is not None and mine >= per_key:
            return KEY_FULL
        self.records[rec.id] = rec
        return OPENED

    async def get(self, id: str) -> ApprovalRecord | None:
        return self.records.get(id)

    async def decide(self, id: str, state: str, approver: str, reason: str | None) -> tuple[bool, ApprovalRecord | None]:
        rec = self.records.get(id)
        if rec is None or rec.state != PENDING:
            return False, rec
        rec.state, rec.approver, rec.reason, rec.decided = state, approver, reason, time.time()
        self.wake(id)
        return True, rec

    async def pending(self, limit: int) -> list[ApprovalRecord]:
        now = time.time()
        live = [r for r in self.records.values() if r.state == PENDING and r.deadline >= now]
        return sorted(live, key=lambda r: r.created)[:limit]

    async def ready(self) -> None:
        return None

    async def withdraw(self, rec: ApprovalRecord) -> None:
        await self.decide(rec.id, "cancelled", "gateway", WITHDRAWN)

    def authentic(self, rec: ApprovalRecord, opened: ApprovalRecord | None = None) -> bool:
        return True  # (this process's memory: nobody else writes it)

    async def close(self) -> None:
        self.wake_all()


# KEYS: pending zset, subject zset, record[, the key's zset of this subject]. ARGV: id, deadline, now, max, json,
# ttl[, per-key max]. Answers 1 (opened), 0 (the route's bound, or withdrawn), 2 (the key's share).
_OPEN = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end  -- withdrawn before it ran (see `withdraw`)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 0 end
if KEYS[4] then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[3])
  if redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[7]) then return 2 end
end
redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[6])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if KEYS[4] then
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  -- a set whose key never opens again goes with its last deadline (a killed gateway's records)
  local last = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
  redis.call('EXPIREAT', KEYS[4], math.ceil(tonumber(last[2])) + 1)
end
return 1
"""

# KEYS: pending zset, record. ARGV: id, state, approver, reason ('' = none), now (ms), subject-set prefix, channel,
# seconds the decided record is kept, the decision's tag ('' = unsigned; computed by the gateway: the secret never
# reaches Redis).
_DECIDE = """
local raw = redis.call('GET', KEYS[2])
if not raw then return {0, false} end
local rec = cjson.decode(raw)
if rec['state'] ~= 'pending' then return {0, raw} end
rec['state'] = ARGV[2]
rec['approver'] = ARGV[3]
rec['reason'] = cjson.null
if ARGV[4] ~= '' then rec['reason'] = ARGV[4] end
rec['decided'] = tonumber(ARGV[5])
rec['sig'] = cjson.null
if ARGV[9] ~= '' then rec['sig'] = ARGV[9] end
local out = cjson.encode(rec)
redis.call('SET', KEYS[2], out, 'EX', ARGV[8])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', ARGV[6] .. rec['kind'] .. ':' .. rec['subject'], ARGV[1])
if type(rec['key']) == 'string' then  -- the key's share (`_key_set`: the same name, digested here)
  redis.call('ZREM', ARGV[6] .. rec['kind'] .. ':' .. rec['subject'] .. ':key:' .. redis.sha1hex(rec['key']), ARGV[1])
end
redis.call('PUBLISH', ARGV[7], ARGV[1])
return {1, out}
"""



UNSIGNED = ("opened without a signature (by a gateway without approvals.store.signing_key_env, or of a version "
            "before session 33): ask again")


class RedisApprovalStore(_Watchers):
    """Pending approvals in Redis, shared by every gateway replica on the same prefix."""

    backend = "redis"

    def __init__(self, url: str, prefix: str, secret: bytes | None = None,
                 accepted: list[bytes] | None = None, accept_until: float | None = None) -> None:
        super().__init__()
        # approvals.store.signing_key_env: whoever can write the prefix's keys could set a pending record to
        # `approved` and the request went on (review32a); with a secret a decision is honoured only with its tag
        self.secret = secret
        # The tags of these verify too (signing_accept_key_envs: a rotation's other key; before session 34 one
        # key per prefix, and a rotation rejected every record opened or decided under the other)
        self.secrets = (secret, *(accepted or ())) if secret is not None else ()
        # ... until `signing_accept_until` (epoch seconds, read on every check): then the signing secret's alone
        self.accept_until = accept_until
        if accept_until is not None and accepted and time.time() >= accept_until:
            log.warning("approvals: signing_accept_until has passed: the secrets of signing_accept_key_envs no "
                        "longer verify (remove them from the config)")
        import redis.asyncio as aioredis

        # No read timeout: the subscription blocks on reads by design; calls are bounded by OP_TIMEOUT.
        self.client: Any = aioredis.Redis.from_url(url, socket_connect_timeout=OP_TIMEOUT)
        self.prefix = prefix
        self.channel = prefix + "decided"
        self._open = self.client.register_script(_OPEN)
        self._decide = self.client.register_script(_DECIDE)
        self._listener: asyncio.Task[None] | None = None
        self._subscribed: asyncio.Event | None = None
        self._failed: asyncio.Event | None = None  # set when a (re)subscription attempt failed

    def _rec(self, id: str) -> str:
        return f"{self.prefix}rec:{id}"

    def _subject(self, kind: str, subject: str) -> str:
        return f"{self.prefix}subject:{kind}:{subject}"

    def _key_set(self, kind: str, subject: str, key: str) -> str:
        """Pending ids of one gateway key on one subject (the key's name digested: any character, fixed length)."""
        return f"{self._subject(kind, subject)}:key:{hashlib.sha1(key.encode()).hexdigest()}"

    async def ready(self) -> None:
        """Subscribed to the decisions channel (before a record opens, so no notice can be missed)."""
        if self._listener is None or self._listener.done():
            self._subscribed, self._failed = asyncio.Event(), asyncio.Event()
            self._listener = asyncio.create_task(self._listen(), name="tierwise-approvals-listener")
        assert self._subscribed is not None and self._failed is not None
        if self._subscribed.is_set():
            return
        waits = [asyncio.ensure_future(self._subscribed.wait()), asyncio.ensure_future(self._failed.wait())]
        try:  # a refused connection fails at once; a silent one after OP_TIMEOUT
            await asyncio.wait(waits, timeout=OP_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if not self._subscribed.is_set():
            self._failed.clear()
            raise ConnectionError("cannot subscribe to the approvals channel on Redis")

    async def _listen(self) -> None:
        assert self._subscribed is not None and self._failed is not None
        failures = 0
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                failures = 0
                self.wake_all()  # after a reconnect: every waiter looks at its record once
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
                    if msg is not None and msg.get("type") == "message":
                        data = msg["data"]
                        self.wake(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis went away: waiters keep their recheck; resubscribe with backoff
                self._failed.set()
                if failures == 0:
                    log.warning("approvals: lost the Redis subscription (%s); reconnecting", type(e).__name__)
                failures += 1
                await asyncio.sleep(min(10.0, 0.25 * 2 ** min(failures, 6)))
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def open(self, rec: ApprovalRecord, max_pending: int, per_key: int) -> str:
        now = time.time()
        if self.secret is not None:
            rec.osig = signing.tag(self.secret, rec.asked()).hex()
        ttl = int(rec.deadline - now) + KEEP_DECIDED_S
        keys = [self.prefix + "pending", self._subject(rec.kind, rec.subject), self._rec(rec.id)]
        args: list[Any] = [rec.id, rec.deadline, now, max_pending, orjson.dumps(rec.to_dict()), max(ttl, 1)]
        if rec.key is not None:  # one script: the key's share and the route's bound checked and taken at once
            keys.append(self._key_set(rec.kind, rec.subject, rec.key))
            args.append(per_key)
        ok = await asyncio.wait_for(self._open(keys=keys, args=args), OP_TIMEOUT)
        return OPENED if ok == 1 else KEY_FULL if ok == 2 else ROUTE_FULL

    async def withdraw(self, rec: ApprovalRecord) -> None:
        """Make sure a record whose opening failed on our side (a timeout: Redis may run it later, or ran it and
        the reply was lost) never waits: a cancelled record in its place stops a late opening (`_OPEN` checks),
        and a record that did open is cancelled. Left pending, it counted against `max_pending` until its
        deadline with nobody waiting for it, and later requests of the route were refused."""
        gone = {**rec.to_dict(), "state": "cancelled", "approver": "gateway", "reason": WITHDRAWN,
                "decided": time.time()}
        ttl = max(int(rec.deadline - time.time()) + KEEP_DECIDED_S, 1)
        if await asyncio.wait_for(self.client.set(self._rec(rec.id), orjson.dumps(gone), nx=True, ex=ttl), OP_TIMEOUT):
            return
        await self.decide(rec.id, "cancelled", "gateway", WITHDRAWN)

    def _secrets(self) -> tuple[bytes, ...]:
        """The secrets whose tags verify now (the rotation's others only until `accept_until`)."""
        if self.accept_until is not None and time.time() >= self.accept_until:
            return self.secrets[:1]
        return self.secrets

    def authentic(self, rec: ApprovalRecord, opened: ApprovalRecord | None = None) -> bool:
        """A decided record a gateway holding the secret wrote (any record, without one), on the request `opened`
        (the waiter's own copy of what it asked: a decision taken on a record rewritten since does not verify)."""
        if self.secret is None:
            return True
        return _verifies(self._secrets(), rec.signed(None if opened is None else opened.osig or ""), rec.sig)

    def as_opened(self, rec: ApprovalRecord) -> bool:
        """What `rec` asks is what a gateway holding the secret opened (any record, without one)."""
        return self.secret is None or _verifies(self._secrets(), rec.asked(), rec.osig)

    async def get(self, id: str) -> ApprovalRecord | None:
        raw = await asyncio.wait_for(self.client.get(self._rec(id)), OP_TIMEOUT)
        return None if raw is None else ApprovalRecord.from_json(raw)

    async def decide(self, id: str, state: str, approver: str, reason: str | None) -> tuple[bool, ApprovalRecord | None]:
        decided = round(time.time(), 3)  # (whole ms: the same number after Lua's cjson, which keeps 14 digits)
        sig = ""
        if self.secret is not None:
            # The tag covers the record's opening tag, so it approves only what the waiter asked; a record whose
            # fields were rewritten since it opened is rejected, not approved (what the approver read was not it)
            cur = readable(await asyncio.wait_for(self.client.get(self._rec(id)), OP_TIMEOUT))
            if state == "approved" and cur is not None and cur.state == PENDING and not self.as_opened(cur):
                # A record opened with no tag at all: a gateway of the prefix without the secret, or one from before
                # session 33's review (an upgrade, a secret being turned on). Fail closed, and say so: before
                # session 34 it read as a record rewritten from outside
                why = (UNSIGNED if not cur.osig else "changed outside the gateways since it opened")
                log.warning("approvals: %s was %s; rejected instead of approved", id,
                            why if not cur.osig else "changed in the store since its gateway opened it (written "
                            "from outside the gateways)")
                state, reason = "rejected", f"approved by {approver[:64]} on a record {why}"
                approver = "gateway"
            d = ApprovalRecord(id, "", "", 0, 0, state=state, approver=approver, reason=reason or None, decided=decided)
            sig = signing.tag(self.secret, d.signed(cur.osig if cur is not None else "")).hex()
        done, raw = await asyncio.wait_for(self._decide(
            keys=[self.prefix + "pending", self._rec(id)],
            args=[id, state, approver, reason or "", f"{decided:.3f}", self.prefix + "subject:", self.channel,
                  KEEP_DECIDED_S, sig]), OP_TIMEOUT)
        rec = ApprovalRecord.from_json(raw) if raw else None
        return bool(done), rec

    async def pending(self, limit: int) -> list[ApprovalRecord]:
        ids = await asyncio.wait_for(self.client.zrangebyscore(self.prefix + "pending", time.time(), "+inf",
                                                               start=0, num=limit), OP_TIMEOUT)
        if not ids:
            return []
        raws = await asyncio.wait_for(self.client.mget([self._rec(i.decode()) for i in ids]), OP_TIMEOUT)
        recs = [r for r in map(readable, raws) if r is not None and r.state == PENDING]
        if len(kept := [r for r in recs if self.as_opened(r)]) < len(recs):
            log.warning("approvals: %d pending record(s) changed since their gateway opened them (written from "
                        "outside the gateways): left out of the list", len(recs) - len(kept))
        return sorted(kept, key=lambda r: r.created)

    async def close(self) -> None:
        self.wake_all()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
        with contextlib.suppress(Exception):
            await self.client.aclose()


def _verifies(secrets: tuple[bytes, ...], data: bytes, hex_tag: Any) -> bool:
    try:
        given = bytes.fromhex(hex_tag) if isinstance(hex_tag, str) else b""
    except ValueError:
        return False
    return any(signing.verifies(s, data, given) for s in secrets)
