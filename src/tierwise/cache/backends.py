"""Where cache entries live: this process (memory), a SQLite file (one node) or Redis (replicas).

Every backend bounds what it holds by total bytes, evicting the least recently used entries
first, and by TTL (Redis: TTL per key, and the byte bound kept in an index every replica shares). Entries carry their route and
tenant so `tierwise cache invalidate --route/--tenant` can drop them.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from tierwise.signing import TAG_BYTES, tag, verifies
from tierwise.sqlite_wal import retry_locked


class Backend(Protocol):
    name: str

    async def get(self, key: str, *, route: str, tenant: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, *, ttl: float, route: str, tenant: str) -> None: ...

    async def invalidate(self, *, route: str | None = None, tenant: str | None = None) -> int: ...

    async def stats(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


# ---------------------------------------------------------------------------- memory


# An item of the memory backend: (value, size, expires, route, tenant), a plain tuple. Not a NamedTuple:
# the garbage collector stops tracking a plain tuple of atoms (bytes, str, numbers, None and such tuples)
# when it first collects it (this one, holding a packed entry, at the collection after its entry's), so
# a full cache of packed entries (`entry.pack`) adds nothing to what later collections traverse; it
# never untracks a tuple subclass.
VALUE: Final = 0
SIZE: Final = 1
EXPIRES: Final = 2
ROUTE: Final = 3
TENANT: Final = 4


@dataclass
class MemoryBackend:
    """Entries in this process: `put_entry`/`get_entry` keep an answer cache entry as the object it is
    (no serialisation, and synchronous: nothing to wait for), with the size its caller reckons."""

    max_bytes: int
    name: str = "memory"
    keeps_entries: bool = True
    _items: OrderedDict[str, tuple[Any, int, float, str, str]] = field(default_factory=OrderedDict)
    _bytes: int = 0
    evictions: int = 0

    def _drop(self, key: str) -> None:
        it = self._items.pop(key, None)
        if it is not None:
            self._bytes -= it[SIZE]

    def get_entry(self, key: str) -> Any:
        it = self._items.get(key)
        if it is None:
            return None
        if it[EXPIRES] <= time.monotonic():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return it[VALUE]

    def put_entry(self, key: str, value: Any, size: int, *, ttl: float, route: str, tenant: str) -> None:
        size += len(key)
        if size > self.max_bytes:
            return
        items = self._items
        if key in items:
            self._drop(key)
        items[key] = (value, size, time.monotonic() + ttl, route, tenant)
        self._bytes += size
        while self._bytes > self.max_bytes and items:
            self._drop(next(iter(items)))
            self.evictions += 1

    async def get(self, key: str, *, route: str = "", tenant: str = "") -> bytes | None:
        return self.get_entry(key)  # type: ignore[no-any-return]

    async def put(self, key: str, value: bytes, *, ttl: float, route: str, tenant: str) -> None:
        self.put_entry(key, value, len(value), ttl=ttl, route=route, tenant=tenant)

    async def invalidate(self, *, route: str | None = None, tenant: str | None = None) -> int:
        doomed = [k for k, it in self._items.items()
                  if (route is None or it[ROUTE] == route) and (tenant is None or it[TENANT] == tenant)]
        for k in doomed:
            self._drop(k)
        return len(doomed)

    async def stats(self) -> dict[str, Any]:
        return {"backend": self.name, "entries": len(self._items), "bytes": self._bytes, "max_bytes": self.max_bytes,
                "evictions": self.evictions}

    async def close(self) -> None:
        return None


# ---------------------------------------------------------------------------- sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache (
  key TEXT PRIMARY KEY, value BLOB NOT NULL, size INTEGER NOT NULL, expires REAL NOT NULL,
  used REAL NOT NULL, route TEXT NOT NULL, tenant TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_used ON cache(used);
"""


class SqliteStore:
    """The synchronous part of the SQLite backend (also used directly by `tierwise cache`)."""

    def __init__(self, path: str, max_bytes: int, busy_s: float = 5.0) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=busy_s)
        retry_locked(lambda: self.db.execute("PRAGMA journal_mode=WAL"))  # workers may open it at once
        self.db.execute("PRAGMA synchronous=NORMAL")
        retry_locked(lambda: self.db.executescript(_SCHEMA))

    def get(self, key: str) -> bytes | None:
        now = time.time()
        row = self.db.execute("SELECT value, expires FROM cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        if row[1] <= now:
            self.db.execute("DELETE FROM cache WHERE key = ?", (key,))
            return None
        self.db.execute("UPDATE cache SET used = ? WHERE key = ?", (now, key))
        return bytes(row[0])

    def put(self, key: str, value: bytes, ttl: float, route: str, tenant: str) -> None:
        now = time.time()
        self.db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (key, value, len(value), now + ttl, now, route, tenant))
        total = self.db.execute("SELECT COALESCE(SUM(size), 0) FROM cache").fetchone()[0]
        if total > self.max_bytes:
            self.db.execute("DELETE FROM cache WHERE expires <= ?", (now,))
            total = self.db.execute("SELECT COALESCE(SUM(size), 0) FROM cache").fetchone()[0]
            # Least recently used first, until the total fits.
            for k, size in self.db.execute("SELECT key, size FROM cache ORDER BY used").fetchall():
                if total <= self.max_bytes:
                    break
                self.db.execute("DELETE FROM cache WHERE key = ?", (k,))
                total -= size

    def invalidate(self, route: str | None, tenant: str | None) -> int:
        where, args = [], []
        if route is not None:
            where.append("route = ?")
            args.append(route)
        if tenant is not None:
            where.append("tenant = ?")
            args.append(tenant)
        sql = "DELETE FROM cache" + (" WHERE " + " AND ".join(where) if where else "")
        return self.db.execute(sql, args).rowcount

    def probe(self) -> None:
        """One committed write and its removal: a file gone read-only, full, locked by another process or
        corrupted fails here as a store would."""
        self.db.execute("INSERT OR REPLACE INTO cache VALUES ('health-probe', x'', 0, 0, 0, '', '')")
        self.db.execute("DELETE FROM cache WHERE key = 'health-probe'")

    def stats(self) -> dict[str, Any]:
        n, b = self.db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM cache").fetchone()
        return {"backend": "sqlite", "path": self.path, "entries": n, "bytes": b, "max_bytes": self.max_bytes}

    def close(self) -> None:
        self.db.close()


BUSY_S: Final = 0.5  # how long a request-path call waits for another process's lock on the file


class SqliteBackend:
    """SQLite on a worker thread: the request path never blocks on the file."""

    name = "sqlite"

    def __init__(self, path: str, max_bytes: int) -> None:
        # A file another process holds locked is a miss after BUSY_S, not sqlite's 5-second wait on every lookup
        # and every store of the requests that meet it (measured before: 5.0 s each).
        self.store = SqliteStore(path, max_bytes, busy_s=BUSY_S)
        self._lock = asyncio.Lock()  # one connection: calls take turns

    async def _run(self, fn: Any, *args: Any) -> Any:
        async with self._lock:
            return await asyncio.to_thread(fn, *args)

    async def get(self, key: str, *, route: str = "", tenant: str = "") -> bytes | None:
        return await self._run(self.store.get, key)  # type: ignore[no-any-return]

    async def put(self, key: str, value: bytes, *, ttl: float, route: str, tenant: str) -> None:
        await self._run(self.store.put, key, value, ttl, route, tenant)

    async def invalidate(self, *, route: str | None = None, tenant: str | None = None) -> int:
        return await self._run(self.store.invalidate, route, tenant)  # type: ignore[no-any-return]

    async def stats(self) -> dict[str, Any]:
        return await self._run(self.store.stats)  # type: ignore[no-any-return]

    async def probe(self) -> None:
        await self._run(self.store.probe)

    async def close(self) -> None:
        self.store.close()


# ---------------------------------------------------------------------------- redis


_GLOB = re.compile(r"[*?\[\]\\^]")  # what Redis's glob treats specially
_HEX12 = "[0-9a-f]" * 12  # a tag (`RedisBackend._tag`)
_HEX40 = "[0-9a-f]" * 40  # an entry's key (keys.exact_key: a 20-byte BLAKE2b in hex)


# The byte bound on Redis, kept by scripts so that concurrent gateways agree: `<prefix>lru-order` (a sorted set
# of entry keys by last use, numbered by the counter `<prefix>lru-seq`), `<prefix>lru-sizes` (a hash of each entry's counted bytes) and
# `<prefix>lru-bytes` (their total). A put counts its entry and evicts the least recently used entries until the
# total fits; entries whose TTL ran out are counted until the eviction reaches them (the bound errs on the safe
# side: the cache holds at most `max_bytes`, sometimes less). A total the server evicted (an LRU `maxmemory`
# policy) is summed again from the sizes. An entry counts its value's bytes, as on sqlite, so an entry of
# `max_entry_bytes` fits a cache of `max_bytes` equal to it.
# The counter gone while the order is not (the server evicted it; an order scored by the millisecond clock before
# it): it goes on from the highest rank held, else every later use ranked below the entries already there, and the
# newest entries went first while the old ones stayed.
_SEQUENCE = """
local function next_use(order, seq)
  if redis.call('EXISTS', seq) == 0 then
    local top = redis.call('ZREVRANGE', order, 0, 0, 'WITHSCORES')
    if top[2] then redis.call('SET', seq, string.format('%d', math.floor(tonumber(top[2])))) end
  end
  return redis.call('INCR', seq)
end
"""
_PUT = _SEQUENCE + """
if redis.call('EXISTS', KEYS[4]) == 0 and redis.call('HLEN', KEYS[3]) > 0 then
  local sum = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[3])) do sum = sum + tonumber(v) end
  redis.call('SET', KEYS[4], sum)
end
local old = redis.call('HGET', KEYS[3], KEYS[1])
if old then redis.call('DECRBY', KEYS[4], old) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], next_use(KEYS[2], KEYS[5]), KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], ARGV[3])
local total = redis.call('INCRBY', KEYS[4], ARGV[3])
local max = tonumber(ARGV[4])
local evicted = 0
while total > max and evicted < 10000 do
  local popped = redis.call('ZPOPMIN', KEYS[2])
  if #popped == 0 then redis.call('SET', KEYS[4], 0) break end
  local k = popped[1]
  local size = redis.call('HGET', KEYS[3], k)
  redis.call('HDEL', KEYS[3], k)
  redis.call('DEL', k)
  if size then total = redis.call('DECRBY', KEYS[4], size) end
  evicted = evicted + 1
end
return evicted
"""
_TAG = TAG_BYTES  # bytes of an entry's HMAC-SHA256 (`redis_signing_key_env`)

# ARGV: the largest entry this cache stores (`max_entry_bytes`). A larger value is not one of this cache's: whoever
# can write under the prefix planted it (8 MB under a 64 KiB bound was read whole at every lookup, decoded on the
# event loop and served, before session 32), so it is a miss, never read; the miss's answer takes its place.
_GET = _SEQUENCE + """
if redis.call('STRLEN', KEYS[1]) > tonumber(ARGV[1]) then return false end
local v = redis.call('GET', KEYS[1])
if v then redis.call('ZADD', KEYS[2], 'XX', next_use(KEYS[2], KEYS[3]), KEYS[1]) end
return v
"""
_DROP = """
local n = 0
for _, k in ipairs(ARGV) do
  n = n + redis.call('DEL', k)
  redis.call('ZREM', KEYS[1], k)
  local size = redis.call('HGET', KEYS[2], k)
  if size then
    redis.call('HDEL', KEYS[2], k)
    redis.call('DECRBY', KEYS[3], size)
  end
end
return n
"""


class RedisBackend:
    """Entries as plain Redis strings with a TTL (`PX`), under `<prefix><tenant-hash>:<route>:<key>`
    so invalidation by route or tenant is a SCAN over a pattern, bounded by `max_bytes` (least recently
    used first) through the index above. Several gateways pointing at the same Redis and prefix share
    entries and the bound. The index needs one Redis (not a cluster), as the budgets' store does."""

    name = "redis"

    def __init__(self, url: str, prefix: str, timeout: float, max_bytes: int, max_entry_bytes: int | None = None,
                 secret: bytes | None = None) -> None:
        import redis.asyncio as aioredis

        from tierwise.dispatch.connection import tls_built_early

        self.prefix = prefix
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_bytes if max_entry_bytes is None else max_entry_bytes
        # `redis_signing_key_env`: whoever can write under the prefix could store any answer for any question in any
        # tenant's scope (review32a); with a secret, an entry ends in HMAC-SHA256(secret, its key + value), so one
        # that was not written by a gateway holding the secret, or was moved to another key, is a miss.
        self.secret = secret
        if secret:
            self.max_entry_bytes += _TAG
        self.client = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._tls = tls_built_early(self.client)  # not inside the first lookup's connect timeout
        self.index = (f"{prefix}lru-order", f"{prefix}lru-sizes", f"{prefix}lru-bytes")
        self.sequence = f"{prefix}lru-seq"  # the order of use: a counter, not a clock (two puts in one ms)
        self._put = self.client.register_script(_PUT)
        self._get = self.client.register_script(_GET)
        self._drop = self.client.register_script(_DROP)

    @staticmethod
    def _tag(s: str) -> str:
        import hashlib

        return hashlib.blake2b(s.encode(), digest_size=6).hexdigest()

    def full_key(self, key: str, route: str, tenant: str) -> str:
        return f"{self.prefix}{self._tag(tenant)}:{self._tag(route)}:{key}"

    async def get(self, key: str, *, route: str, tenant: str) -> bytes | None:
        name = self.full_key(key, route, tenant)
        raw: bytes | None = await self._get(keys=[name, self.index[0], self.sequence], args=[self.max_entry_bytes])
        if raw is None or not self.secret:
            return raw
        body = raw[:-_TAG]
        if len(raw) < _TAG or not verifies(self.secret, name.encode() + body, raw[-_TAG:]):
            return None
        return body

    async def put(self, key: str, value: bytes, *, ttl: float, route: str, tenant: str) -> None:
        name = self.full_key(key, route, tenant)
        if self.secret:
            value += tag(self.secret, name.encode() + value)
        size = len(value)
        await self._put(keys=[name, *self.index, self.sequence],
                        args=[value, max(1, int(ttl * 1000)), size, self.max_bytes])

    async def _scan_delete(self, pattern: str) -> int:
        n, batch = 0, []
        async for name in self.client.scan_iter(match=pattern, count=500):
            batch.append(name)
            if len(batch) >= 500:
                n += await self._drop(keys=self.index, args=batch)
                batch = []
        if batch:
            n += await self._drop(keys=self.index, args=batch)
        return n

    def pattern(self, tenant: str | None = None, route: str | None = None) -> str:
        """The SCAN pattern of this cache's entries (of one tenant and/or route): the prefix taken literally and
        every part in the shape `full_key` makes it. `<prefix>*:*:*` also matched every other key under the
        prefix: with `redis_prefix: "tierwise:"`, `tierwise cache clear` deleted the budgets' counters
        (`tierwise:spend:...`), the dispatch queues and the approvals; and a prefix holding a glob character
        (`cache[eu]:`) matched other keys, not its own."""
        t = self._tag(tenant) if tenant is not None else _HEX12
        r = self._tag(route) if route is not None else _HEX12
        return _GLOB.sub(lambda m: "\\" + m.group(0), self.prefix) + f"{t}:{r}:{_HEX40}"

    async def invalidate(self, *, route: str | None = None, tenant: str | None = None) -> int:
        n = await self._scan_delete(self.pattern(tenant, route))
        if route is None and tenant is None:
            await self.client.delete(*self.index, self.sequence)  # what entries whose TTL ran out still held
        return n

    async def stats(self) -> dict[str, Any]:
        n = 0
        async for _ in self.client.scan_iter(match=self.pattern(), count=500):
            n += 1
        counted = int(await self.client.get(self.index[2]) or 0)
        return {"backend": "redis", "prefix": self.prefix, "entries": n, "bytes": counted, "max_bytes": self.max_bytes}

    async def probe(self) -> None:
        """One write that expires: a Redis out of memory (noeviction) answers PING but refuses every store."""
        await self.client.set(self.prefix + "health-probe", "1", px=60_000)

    async def close(self) -> None:
        await self.client.aclose()
