"""Worker presence: who is there, what it serves, and until when.

A worker renews two things every heartbeat, both expiring on their own when it stops (a kill -9
included): its presence record `<prefix>presence:<tenant>:<worker>` (JSON, read by the
dashboard and `tierwise worker --list`) and its entry in the per-capability index
`{tenant}:w:<zone>:<capability>` (a sorted set of `<worker>#<secret of its process>` scored by expiry time),
which publishing a task checks inside the same script that queues it, so "no capable worker" is known without a
scan. Workers only add or renew their own entries there; the publishing script removes the expired ones.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import orjson

from tierwise.dispatch.connection import text
from tierwise.dispatch.keys import Keyspace


def now_ms() -> int:
    return int(time.time() * 1000)


def entry_member(worker_id: str, tenant: str, redis_url: str) -> str | None:
    """A named worker's entry in the presence indexes, the same each time it starts: its id and a secret derived
    from its Redis password (PBKDF2, so the unnamed callers, which may read the members, cannot cheaply try
    passwords against it); None without a password (the caller then takes a random one). With a random secret per
    process, each worker killed left its entries behind for good under named callers, one per index (the
    capability's and, since session 38, one per caller it reads): no role but an unnamed caller may prune them, since
    ZREMRANGEBYSCORE lets one user empty an index (session 38, dist9). Another user cannot work out the secret, so
    it still cannot aim at the entry."""
    from redis.connection import parse_url

    password = parse_url(redis_url).get("password")
    if not password:
        return None
    salt = f"tierwise-presence-entry:{tenant}:{worker_id}".encode()
    return f"{worker_id}#{hashlib.pbkdf2_hmac('sha256', str(password).encode(), salt, 100_000, dklen=16).hex()}"


class PresencePublisher:
    def __init__(self, client: Any, keys: Keyspace, worker_id: str, info: dict[str, Any],
                 zones: dict[str, list[str]], ttl: float, callers: list[str] | None = None,
                 member: str | None = None) -> None:
        self.client = client
        self.keys = keys
        self.worker_id = worker_id
        # Its entry in the presence index: the id and a secret (`entry_member`, or one of this process). Named by the
        # id alone, any worker of the capability (whose rules allow ZADD on the index, and Redis cannot limit ZADD's
        # members) scored another worker's entry 0, and with its own too every caller got NoWorker while the workers
        # were there (session 37, dist8). Workers read no member names, so they cannot name another's entry.
        self.member = member or f"{worker_id}#{secrets.token_hex(16)}"
        self.info = info
        self.zones = zones  # capability -> the zones it is read from
        self.callers = list(callers or [])  # whose queues it reads (`dispatch.callers`)
        self.ttl_ms = int(ttl * 1000)
        # Redis's clock at the last heartbeat, and this machine's monotonic clock then: tasks' deadlines are in
        # Redis's clock. Carried forward by the monotonic clock, not the wall clock: a wall clock that stepped after
        # a heartbeat (NTP, a resumed VM) expired every task until the next one (session 36, review36d).
        self._redis_ms: float | None = None
        self._at = 0.0

    def redis_now_ms(self) -> float:
        """Redis's clock now, as well as this worker knows it (this machine's wall clock before the first beat)."""
        if self._redis_ms is None:
            return float(now_ms())
        return self._redis_ms + (time.monotonic() - self._at) * 1000

    async def beat(self, **live: Any) -> None:
        """Renew presence (`live` adds fields such as in_flight and status)."""
        sent = time.monotonic()
        sec, usec = await self.client.time()  # Redis's clock: callers on other machines compare against it
        t = int(sec) * 1000 + int(usec) // 1000
        self._redis_ms, self._at = t, (sent + time.monotonic()) / 2  # (Redis read it about half way)
        pipe = self.client.pipeline(transaction=False)
        record = {**self.info, **live, "heartbeat_ms": t}
        pipe.set(self.keys.presence(self.worker_id), orjson.dumps(record), px=self.ttl_ms)
        for idx in self._indexes():
            # Only its own entry: the publishing script prunes the expired ones (a worker's rules allow ZADD
            # alone on the index, since ZREMRANGEBYSCORE, ZREM, DEL or PEXPIRE let one worker empty it)
            pipe.zadd(idx, {self.member: t + self.ttl_ms})
        await pipe.execute()

    def _indexes(self) -> list[str]:
        """The indexes its entry goes in: per capability and zone, those of the callers it reads, the one of the
        workers that say so, then the capability's (in this order: a publish between two of them then never finds
        it in the capability's index and not in its callers', which would refuse a caller it reads)."""
        out: list[str] = []
        for cap, zones in self.zones.items():
            for zone in zones:
                out += [self.keys.listing(zone, cap, c) for c in self.callers]
                out += [self.keys.listing_told(zone, cap), self.keys.index(zone, cap)] if self.callers else \
                    [self.keys.index(zone, cap)]
        return out

    async def stopped(self, done: int) -> None:
        """A worker that stops on purpose says so in its record and keeps its entries for their TTL, as a killed one
        does: a restart is shorter, and it then takes what its callers published in between. Removed at once, a
        restart of the only worker listing a caller refused that caller's requests (NoWorker, 503) for as long as it
        lasted, and every new request while it was down (session 38, review38b). A worker stopped for good: its
        callers' tasks end with NoWorker soon after its entries expire (client.py `_result`)."""
        await self.beat(in_flight=0, status="stopped", done=done)


async def present_count(client: Any, keys: Keyspace, zone: str, capability: str) -> int:
    """How many workers are present that read the capability's tasks in that zone (ZCOUNT: any worker of the
    capability may ZADD into the index, so its member names are not read: `present` of a planted 8 MB member sent
    it to the caller at each local-only request no local worker could take; session 35, obs6)."""
    from tierwise.dispatch.scripts import HORIZON_MS

    sec, usec = await client.time()
    now = int(sec) * 1000 + int(usec) // 1000
    return int(await client.zcount(keys.index(zone, capability), now, now + HORIZON_MS))  # (see HORIZON_MS)


async def records(client: Any, keys: Keyspace) -> list[dict[str, Any]]:
    """The presence records of this tenant's workers (`tierwise worker --list`, tests), read with the dashboard's
    bounds (observability/topology.py): at most 500, no key name over 512 bytes, no record over 64 KiB read, a hash
    record by the fields the dashboard shows. Any worker of the tenant may write under its presence prefix, and this
    read each key whole with GET: one hash record made the listing fail as "Redis did not answer (ResponseError)",
    a 200 MB record was read and printed whole (1.3 GB of memory), a 64 MB key name came back (session 35)."""
    from tierwise.observability.topology import HASH_FIELDS, MAX_RECORD_BYTES, RedisPresence

    source = RedisPresence(None, f"{keys.prefix}presence:", keys.tenant, client=client)
    out: list[dict[str, Any]] = []
    for key, kind, raw, _ttl in await source.read():
        name = text(key)[len(keys.presence("")):]
        if raw is None:  # too large to read
            out.append({"id": name, "unread": f"a record larger than {MAX_RECORD_BYTES} bytes, not read"})
        elif not raw or isinstance(raw, Exception):  # gone, or of another type, since the walk began
            continue
        elif kind == "hash":
            out.append({"id": name, **{f: text(v) for f, v in zip(HASH_FIELDS, raw, strict=False) if v is not None}})
        else:
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return sorted(out, key=lambda r: str(r.get("id")))


async def unread_by(client: Any, keys: Keyspace, zone: str, capability: str, caller: str) -> tuple[int, bool]:
    """How many workers are present for the capability in the zone, and whether none of them reads `caller`'s
    queues: none present, or none lists it and all say whose they read (the publishing script's 'noworker' and
    'unlisted', scripts.py)."""
    from tierwise.dispatch.scripts import HORIZON_MS

    sec, usec = await client.time()
    now = int(sec) * 1000 + int(usec) // 1000
    pipe = client.pipeline(transaction=False)
    for key in (keys.index(zone, capability), keys.listing(zone, capability, caller),
                keys.listing_told(zone, capability)):
        pipe.zcount(key, now, now + HORIZON_MS)
    present, listed, told = (int(n) for n in await pipe.execute())
    return present, not present or (not listed and told >= present)
