"""What the dashboard's topology shows: providers, deployments (breaker, live latency and error
rate) and workers with their presence.

Workers come from a pluggable `PresenceSource`; the one here reads Redis keys
`tierwise:presence:<worker>` (a JSON value or a hash, expiring when the worker stops renewing
it), which is how distributed workers announce themselves. Another source only needs
`async workers() -> list[dict]`.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import time
from typing import Any, Protocol

import orjson

log = logging.getLogger("tierwise.observability")

PRESENCE_PREFIX = "tierwise:presence:"
MAX_WORKERS = 500
# A presence record is written by the worker itself (untrusted): a larger one is listed without being read.
MAX_RECORD_BYTES = 64 << 10
# The fields of a hash record the list shows: only these are measured (HSTRLEN) and read (HMGET), so neither an
# unknown field of any size or name nor a Redis refusing `MEMORY USAGE` (obs5's bound: every hash record then read
# as too big) changes what an honest record shows (session 34, review34e).
HASH_FIELDS = ("capabilities", "capability", "status", "locality", "region", "tenant", "version")
CACHE_S = 0.5  # seconds the worker list is reused by default (observability.dashboard.presence_refresh)
# A caller (a dashboard poll, a scrape) waits at most this long for a walk of the presence keys, then takes the list
# the last walk left: a slow Redis must not hold /metrics past a scraper's timeout.
WAIT_S = 2.0
# A walk is given up after this long (and the next caller starts another): one that never finished (a source that
# hangs: a Redis answering a byte at a time within its socket timeout, a PresenceSource of another kind) kept the
# last list shown for ever, with no error, and no walk ever started again (session 34, review34e).
WALK_S = 30.0


def _set_by_any_process(gauge: Any) -> set[str]:
    """The capabilities any process of this gateway (`serve --workers N`) last set above 0 on `gauge`. Its value is
    the most recent any process set (`livemostrecent`): a process that never saw a capability must zero it too,
    or a scrape it answers shows another process's last count for as long as that one answers none (review30a)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    from tierwise.observability.metrics import MULTIPROC_ENV

    files = glob.glob(os.path.join(os.environ.get(MULTIPROC_ENV, ""), "gauge_livemostrecent_*.db"))
    name = gauge._name
    return {s.labels["capability"] for m in MultiProcessCollector.merge(files, accumulate=False) if m.name == name
            for s in m.samples if s.value and "capability" in s.labels}


class PresenceSource(Protocol):
    async def workers(self) -> list[dict[str, Any]]: ...


# A presence key's name is `<prefix>presence:<tenant>:<worker>`, each part at most 64 characters: a longer name
# (planted: Redis takes names up to 512 MB) is dropped inside Redis, so no SCAN reply carries it (session 34).
MAX_KEY_BYTES = 512
# One SCAN step, its names filtered by length in Redis: the reply holds only names a worker could have written.
# A longer name is removed (UNLINK, where this Redis user may): SCAN copies each name into the script, so one
# planted name of 8 MB cost Redis 37 ms of CPU at every walk, every `presence_refresh`, for as long as it lived
# (session 35, obs6: session 34's left item). No worker can have written it; a worker's own record expires anyway.
_SCAN_SHORT = """
local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local keep, limit = {}, tonumber(ARGV[4])
for _, k in ipairs(r[2]) do
  if #k <= limit then keep[#keep + 1] = k else pcall(redis.call, 'UNLINK', k) end
end
return {r[1], keep}
"""


def _noperm_hint(e: Exception) -> str:
    """What to do when the refusal is an ACL one: a script's refused command comes back as a plain ResponseError
    ("The user executing the script can't run this command"), which named no cause and no user (session 35)."""
    from redis.exceptions import NoPermissionError

    said = str(e).lower()
    if isinstance(e, NoPermissionError) or "can't run this command" in said or "no permissions" in said:
        return (": NOPERM, this Redis user may not run SCAN/EVALSHA; log in as the presence reader "
                "(`tierwise worker -c <config> --acl presence` prints its ACL SETUSER line; docs/distributed.md)")
    return ""

class RedisPresence:
    def __init__(self, url: str | None, prefix: str = PRESENCE_PREFIX, tenant: str | None = None,
                 client: Any = None) -> None:
        """`tenant`: only that tenant's records (`<prefix><tenant>:*`), as the dispatch section's tenant sees its
        workers; None lists every tenant's (an operator's view). `client`: a Redis client of the caller's own
        (`tierwise worker --list`) instead of one made from `url`."""
        import redis.asyncio as redis

        if client is None:
            assert url is not None
            client = redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.client = client
        self.prefix = prefix
        self.match = f"{prefix}{tenant}:*" if tenant else prefix + "*"  # (names hold no glob characters: config)
        self._scan_short: Any = self.client.register_script(_SCAN_SHORT)
        self._scripts = True  # False once Redis refused the script (a user without EVAL, scripting disabled)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def workers(self) -> list[dict[str, Any]]:
        """The presence records, read in four round trips whatever their number (SCAN, then three pipelines) (each record took four
        round trips of its own: 500 workers, 132 ms of the gateway's CPU and 565 ms a read on this machine, longer
        than `presence_refresh`; session 34, obs5)."""
        out = [self._record(*item) for item in await self.read()]
        out.sort(key=lambda w: w["id"])
        return out

    async def read(self) -> list[tuple[Any, str, Any, Any]]:
        """(key, type, value, TTL) of each presence key of a string or hash type, bounded as `workers` says: the
        value is None for a record too large to read (b"" for one gone since the walk began), a hash's value the
        HMGET of HASH_FIELDS."""
        keys = await self._keys()
        if not keys:
            return []
        heads = await self._each(keys, lambda p, k: p.type(k).ttl(k), per=None)
        kinds = [k.decode() if isinstance(k, bytes) else k for k, _ in heads]
        ttls = [t for _, t in heads]

        def size(p: Any, key: Any, kind: Any) -> Any:
            # A string by its length; a hash by the lengths of the fields shown (HGETALL read 8 MB fields whole).
            if kind == "string":
                return p.strlen(key)
            for f in HASH_FIELDS:
                p.hstrlen(key, f)
            return p

        readable = [i for i, kind in enumerate(kinds) if kind in ("string", "hash")]
        sizes = await self._each([(keys[i], kinds[i]) for i in readable], lambda p, kk: size(p, *kk), per=None)
        small: list[int] = []
        for i, got in zip(readable, sizes, strict=True):
            if all(isinstance(n, int) for n in got) and sum(got) <= MAX_RECORD_BYTES:
                small.append(i)
        values = dict(zip(small, await self._each(
            [(keys[i], kinds[i]) for i in small], lambda p, kk: p.get(kk[0]) if kk[1] == "string" else p.hmget(kk[0], HASH_FIELDS)),
            strict=True))
        got = {i: b"" if v is None else v for i, v in values.items()}  # (a string gone since the walk began: b"")
        return [(keys[i], kinds[i], got.get(i), ttls[i]) for i in readable]

    async def _keys(self) -> list[Any]:
        """The presence keys' names, at most MAX_WORKERS, none longer than MAX_KEY_BYTES: a planted name of many
        megabytes came back in every SCAN reply and went out again in each of the walk's pipelines."""
        from redis.exceptions import ResponseError

        keys: list[Any] = []
        if self._scripts:
            cursor: Any = 0
            try:
                while len(keys) < MAX_WORKERS:
                    cursor, got = await self._scan_short(args=[cursor, self.match, 200, MAX_KEY_BYTES])
                    keys += got
                    if int(cursor) == 0:
                        break
                return keys[:MAX_WORKERS]
            except ResponseError as e:  # refused (NOPERM, no scripting): the names filtered here instead
                log.warning("presence: Redis refused the SCAN script (%s); long key names are dropped after SCAN%s",
                            type(e).__name__, _noperm_hint(e))
                self._scripts = False
                keys = []
        async for key in self.client.scan_iter(match=self.match, count=200):
            if len(keys) >= MAX_WORKERS:
                break
            if len(key) <= MAX_KEY_BYTES:
                keys.append(key)
        return keys

    async def _each(self, items: list[Any], add: Any, per: int | None = 1) -> list[Any]:
        """One pipelined round trip: `add(pipe, item)` queues each item's command(s); the replies, one per item
        (a list per item when `per` is None), a Redis error as its exception (a key that changed type between
        two round trips reads as unreadable, not as a failed walk)."""
        pipe = self.client.pipeline(transaction=False)
        counts = []
        for item in items:
            before = len(pipe.command_stack)
            add(pipe, item)
            counts.append(len(pipe.command_stack) - before)
        replies = await pipe.execute(raise_on_error=False)
        if per == 1:
            return list(replies)
        out, at = [], 0
        for n in counts:
            out.append(replies[at:at + n])
            at += n
        return out

    def _record(self, key: Any, kind: str, raw: Any, ttl: Any) -> dict[str, Any]:
        k = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        info: dict[str, Any] = {}
        if kind == "hash" and isinstance(raw, list):
            info = {a: (b.decode("utf-8", "replace") if isinstance(b, bytes) else b)
                    for a, b in zip(HASH_FIELDS, raw, strict=False) if b is not None}
        elif kind == "string" and isinstance(raw, (bytes, str)) and raw:
            try:
                v = orjson.loads(raw)
                info = v if isinstance(v, dict) else {"value": v}
            except orjson.JSONDecodeError:
                info = {}
        caps = info.get("capabilities") or info.get("capability") or []
        if isinstance(caps, str):
            caps = [c for c in caps.split(",") if c]
        if not isinstance(caps, list):  # one record's odd shape must not hide every other worker
            caps = []
        w: dict[str, Any] = {"id": k[len(self.prefix):][:100], "capabilities": [str(c)[:50] for c in caps[:20]],
                             "status": str(info.get("status", "online"))[:30],
                             "ttl": ttl if isinstance(ttl, int) else -2}
        # What `tierwise worker` adds to its presence (docs/distributed.md), when present.
        for field in ("locality", "region", "tenant", "version"):
            if isinstance(info.get(field), str):
                w[field] = info[field][:50]
        for field in ("capacity", "in_flight"):
            if isinstance(info.get(field), int):
                w[field] = info[field]
        return w


class Topology:
    def __init__(self, gateway: Any, presence_url: str | None, source: PresenceSource | None = None,
                 refresh_s: float = CACHE_S) -> None:
        self.gw = gateway
        self.refresh_s = refresh_s
        dispatch = getattr(getattr(gateway, "cfg", None), "dispatch", None)
        # Workers announce themselves under the dispatch section's key prefix (tierwise: by default).
        prefix = f"{dispatch.prefix}presence:" if dispatch is not None else PRESENCE_PREFIX
        # With a dispatch section, its tenant's workers only: a gateway of tenant A listed tenant B's worker ids,
        # capabilities and locality and counted them in tierwise_workers_present (session 34, obs5's left item).
        tenant = dispatch.tenant if dispatch is not None else None
        self.source: PresenceSource | None = source or (
            RedisPresence(presence_url, prefix, tenant) if presence_url else None)
        self._workers: list[dict[str, Any]] = []
        self._at = 0.0
        self._gauged: dict[str, int] = {}  # capability label -> workers, as last set on tierwise_workers_present
        self.presence_error: str | None = None
        self._walk: asyncio.Future[None] | None = None  # the walk of the presence keys in progress
        self._closed = False

    async def close(self) -> None:
        """At the gateway's shutdown: the presence source's connections (left open, the collector found them after
        the loop had closed: "unclosed Connection", "Event loop is closed"). No walk starts after this: a poll or
        scrape arriving while (or after) it ran started one on the client being closed."""
        self._closed = True
        walk, self._walk = self._walk, None
        if walk is not None:
            walk.cancel()
            await asyncio.gather(walk, return_exceptions=True)
        close = getattr(self.source, "aclose", None)
        if close is not None:
            try:
                await close()
            except Exception as e:  # a Redis gone away: nothing left to close
                log.debug("closing the presence source: %s", type(e).__name__)

    async def workers(self) -> list[dict[str, Any]]:
        """The worker list, read again when older than `refresh_s`. One walk of the presence keys runs at a time,
        and a caller waits for it at most WAIT_S: every dashboard poll and scrape that found the list old started a
        walk of its own, on a connection of its own, and waited for all of it; with Redis slower than `refresh_s`
        a walk, the walks (and Redis connections) piled up, one more each poll (session 34, obs5)."""
        if self.source is None:
            return []
        if self._walk is None and time.monotonic() - self._at > self.refresh_s and not self._closed:
            self._walk = asyncio.ensure_future(self._read())
        if self._walk is not None:
            await asyncio.wait((self._walk,), timeout=WAIT_S)  # (not cancelled when this caller gives up)
            if self._walk is not None:  # the page says why the list is empty, or old
                self.presence_error = ("presence source slow (still reading the worker list)" if not self._at else
                                       f"presence source slow (the worker list is {time.monotonic() - self._at:.0f} s old)")
        return self._workers

    async def _read(self) -> None:
        assert self.source is not None
        try:
            async with asyncio.timeout(WALK_S):
                self._workers = await self.source.workers()
            self.presence_error = None
        except Exception as e:  # Redis away: say so, keep the page working
            self.presence_error = f"presence source unavailable ({type(e).__name__})"
            self._workers = []
        finally:
            self._at = time.monotonic()
            self._walk = None

    async def refresh_workers(self, metrics: Any) -> None:
        if self.source is None:
            return
        counts: dict[str, int] = {}
        for w in await self.workers():
            for c in w["capabilities"] or ["any"]:
                counts[c] = counts.get(c, 0) + 1
        now: dict[str, int] = {}
        for c, n in counts.items():
            label = metrics.capability(c)
            now[label] = now.get(label, 0) + n  # (names past the label cap add up under `other`)
        # A capability whose workers are gone reads 0: its gauge kept the last count for ever (a scrape
        # showed workers present that had stopped, an alert on "no workers" never fired).
        gauged = self._gauged.keys() | (_set_by_any_process(metrics.workers) if metrics.mp else set())
        for label in gauged - now.keys():
            metrics.child(metrics.workers, label).set(0)
        for label, n in now.items():
            metrics.child(metrics.workers, label).set(n)
        self._gauged = now

    async def snapshot(self, live: Any) -> dict[str, Any]:
        stats: dict[str, list[float]] = {}
        cut = time.time() - 60
        for _, rec in list(live.recent)[-2000:]:
            if rec.wall < cut:
                continue
            for s in rec.steps:
                if s.kind == "call":
                    st = stats.setdefault(s.name, [0, 0, 0.0])
                    st[0] += 1
                    st[1] += s.ok is False
                    st[2] += s.latency_ms or 0.0
        deployments = []
        for name, d in self.gw.deployments.items():
            n, errs, ms = stats.get(name, [0, 0, 0.0])
            deployments.append({"name": name, "provider": d.provider.name, "model": d.cfg.model,
                                "locality": d.locality, "breaker": d.breaker.state, "calls_1m": int(n),
                                "error_rate_1m": (errs / n) if n else None,
                                "latency_ms_1m": (ms / n) if n else None})
        providers = [{"name": n, "kind": p.kind, "locality": p.locality} for n, p in self.gw.providers.items()]
        routes = [{"name": n, "policy": getattr(pc, "policy", None), **self._online(n)}
                  for n, pc in self.gw.cfg.routes.items()]
        return {"providers": providers, "deployments": deployments, "routes": routes,
                "workers": await self.workers(), "presence": self.source is not None,
                "presence_error": self.presence_error}

    def _online(self, name: str) -> dict[str, Any]:
        """A learned route's live online estimate (issue 22), for routes built so far."""
        validator = getattr(self.gw.built(name), "validator", None)
        return {} if validator is None else {"online": validator.latest.as_dict()}

    def extras(self, metrics: Any) -> dict[str, Any]:
        """Budgets, cache results and privacy actions, when metrics are on (they are recorded there)."""
        if metrics is None:
            return {}
        metrics.flush()

        def values(metric: Any) -> list[dict[str, Any]]:
            out = []
            for fam in metric.collect():
                for s in fam.samples:
                    if s.name.endswith("_created"):
                        continue
                    out.append({"labels": s.labels, "value": s.value})
            return out

        return {"budgets": values(metrics.budget_remaining), "cache": values(metrics.cache),
                "privacy": values(metrics.privacy), "verdicts": values(metrics.verdicts),
                "escalations": values(metrics.escalations)}
