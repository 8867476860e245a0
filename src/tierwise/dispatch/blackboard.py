"""The blackboard: every replica's live per-model statistics, merged, for policies to read.

Each deployment keeps its own statistics in this process (tierwise.providers.live_stats). The
blackboard reads them and, when a Redis is configured, publishes them every
`publish_interval_ms` from a background task and takes back the other replicas' (one round
trip, tierwise.dispatch.blackboard_redis). A policy's read (`value`) merges this replica's live
numbers with the other replicas' last published ones — averages weighted by the calls each
replica saw recently, in-flight calls summed, the largest queue depth (workers of a capability see
the same shared queue), a breaker open if it is open
anywhere — without awaiting anything: the request path never waits on Redis.

Redis unreachable: the merged view falls back to this replica's own statistics, with a loud
warning (once per `warn_interval`), and requests go on. Breakers: a peer's newer change (opened,
or closed after a successful probe) is adopted by this replica's breaker (`share_breakers`).

Workers use the same class: `Blackboard(cfg, {model: LiveStats(...)}, redis_url, role="worker")`, feed
the LiveStats (`begin`/`ok`/`failed`, `queue_depth`), `await start()` and `await close()`. A worker publishes
into its tenant's hash (`<key_prefix>workers:<tenant>`, the only board key its Redis user may write), which that
tenant's gateways read beside theirs (one hash for every tenant let a worker of one tenant set the queue depth
another tenant's gateways route on, and erase their workers' statistics: its user may HSET, HDEL and DEL it): a worker's statistics move the averages and the queue depth like a replica's, but its
breaker states are not adopted (a compromised worker held any model's breaker open on every gateway), and
no peer weighs more than a full `window` of calls.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import socket
import time
from typing import Any

import orjson

from tierwise.dispatch.blackboard_settings import BlackboardConfig
from tierwise.providers.live_stats import NAMES, LiveStats

log = logging.getLogger("tierwise.blackboard")

AVERAGED = ("latency_ms", "latency_p50_ms", "ttft_ms", "error_rate")
SUMMED = ("in_flight",)
# Tasks wait in the shared capability streams, so every worker of a capability sees the same backlog:
# the largest report is the depth (a sum would count one queue once per worker).
MAXED = ("queue_depth",)
MAX_MODELS = 1000  # models read from one peer's entry at most
MAX_ENTRY = 1 << 20  # bytes of one peer's entry at most
MAX_HOLD_S = 86_400.0  # a peer's 429 pause is read as at most a day (each breaker bounds it by its cooldown too)


def workers_key(key_prefix: str, tenant: str | None) -> str:
    """The workers' board hash of a tenant (None: a gateway without a dispatch section, which no worker serves)."""
    return f"{key_prefix}workers" if tenant is None else f"{key_prefix}workers:{tenant}"


def default_replica_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class PeerView:
    """The other replicas' statistics of one model, pre-summed at refresh so a read is a few operations."""

    __slots__ = ("weights", "sums", "totals", "highest", "breaker_open", "breaker_change", "held_until_ms")

    def __init__(self) -> None:
        self.weights = dict.fromkeys(AVERAGED, 0.0)
        self.sums = dict.fromkeys(AVERAGED, 0.0)
        self.totals = dict.fromkeys(SUMMED, 0.0)
        self.highest = dict.fromkeys(MAXED, 0.0)
        self.breaker_open = 0.0
        # The newest breaker change among the peers: (Redis time ms, opened?, cooldown left s).
        self.breaker_change: tuple[float, bool, float] | None = None
        self.held_until_ms = 0.0  # the latest end of a peer's 429 hold (Redis time ms; 0: none)

    def add(self, at_ms: int, e: dict[str, Any], max_weight: float, breakers: bool = True) -> None:
        w = min(_num(e.get("w")) or 0.0, max_weight)  # a replica's recent calls, at most a window of them
        if w > 0:
            for stat in AVERAGED:
                v = _num(e.get(stat))
                if v is not None:
                    self.weights[stat] += w
                    self.sums[stat] += w * v
        for stat in SUMMED:
            self.totals[stat] += max(0.0, _num(e.get(stat)) or 0.0)
        for stat in MAXED:
            self.highest[stat] = max(self.highest[stat], _num(e.get(stat)) or 0.0)
        if not breakers:  # (a worker's: its breakers guard its own upstreams, not the gateways')
            return
        is_open = bool(e.get("breaker_open"))
        self.breaker_open = max(self.breaker_open, 1.0 if is_open else 0.0)
        held = _num(e.get("breaker_held_s"))
        if held is not None and held > 0:
            self.held_until_ms = max(self.held_until_ms, at_ms + min(held, MAX_HOLD_S) * 1000)
        age = _num(e.get("breaker_age_ms"))
        if age is not None:
            change = (at_ms - age, is_open, max(0.0, _num(e.get("breaker_retry_s")) or 0.0))
            if self.breaker_change is None or change[0] > self.breaker_change[0]:
                self.breaker_change = change


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


class Blackboard:
    def __init__(self, cfg: BlackboardConfig, stats: dict[str, LiveStats], redis_url: str | None = None,
                 role: str = "replica", tenant: str | None = None) -> None:
        """`tenant`: the dispatch section's; its workers' hash is the only one this board reads or writes."""
        if role not in ("replica", "worker"):
            raise ValueError("a blackboard's role is replica (a gateway) or worker")
        self.cfg = cfg
        self.role = role
        self.tenant = tenant
        self.own = stats
        self.replica_id = cfg.replica_id or default_replica_id()
        self.redis_url = redis_url
        self.peers: dict[str, PeerView] = {}
        self.replicas = 0  # other live replicas seen at the last exchange
        self.exchanges = 0  # exchanges finished, with Redis or failed (tests wait on it)
        self.shared = 0  # of those, the ones that reached Redis
        self.degraded: str | None = None  # why the view is this replica's own only, when Redis is away
        self._transport: Any = None
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False
        self._starter: asyncio.Task[None] | None = None
        self._last_warn = 0.0
        self._unseen = 0  # exchanges failed since the last warning
        self._offset_ms = 0.0  # Redis time minus this process's monotonic time (ms), from the last exchange

    # ------------------------------------------------------------------ reads (the request path)

    def value(self, model: str, stat: str) -> float | None:
        """`stat` of `model` over every live replica; None when no replica has a sample of it."""
        own = self.own.get(model)
        peer = self.peers.get(model)
        if stat in SUMMED:
            v = own.value(stat) if own is not None else 0.0
            return (v or 0.0) + (peer.totals[stat] if peer is not None else 0.0)
        if stat in MAXED:
            v = own.value(stat) if own is not None else 0.0
            return max(v or 0.0, peer.highest[stat] if peer is not None else 0.0)
        if stat == "breaker_open":
            mine = own.breaker_open() if own is not None else 0.0
            return max(mine, peer.breaker_open) if peer is not None else mine
        if stat not in AVERAGED:
            raise KeyError(f"unknown statistic {stat!r} (known: {', '.join(NAMES)})")
        v = own.value(stat) if own is not None else None
        if peer is None or peer.weights[stat] <= 0:  # nothing to merge with (always, on a single node)
            return v
        w, sw = peer.weights[stat], peer.sums[stat]
        if v is not None and own is not None:
            mine = own.weight(time.monotonic(), self.cfg.half_life_s)
            w += mine
            sw += mine * v
        return sw / w

    def samples(self, model: str) -> float:
        """Recent calls behind `model`'s merged statistics (this replica's plus the peers', each
        discounted by its age: see LiveStats.weight)."""
        own = self.own.get(model)
        peer = self.peers.get(model)
        mine = own.weight(time.monotonic(), self.cfg.half_life_s) if own is not None else 0.0
        return mine + (peer.weights["latency_ms"] if peer is not None else 0.0)

    def snapshot(self) -> dict[str, Any]:
        """The merged view of every model, for the admin API, the dashboard and `tierwise top`."""
        models = sorted(set(self.own) | set(self.peers))
        return {"replica": self.replica_id, "shared": self.redis_url is not None, "replicas": self.replicas + 1,
                "degraded": self.degraded,
                "models": {m: {"samples": self.samples(m), **{s: self.value(m, s) for s in NAMES}} for m in models}}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Join the board: one exchange now (bounded by `timeout`), so the first requests already see
        the other replicas, then the background loop. Without Redis: nothing to do."""
        if self.redis_url is None or self._started or self._closed:
            return
        self._started = True
        from tierwise.dispatch.blackboard_redis import RedisBoard

        workers = workers_key(self.cfg.key_prefix, self.tenant)
        if self.role == "worker":
            self._transport = RedisBoard(self.redis_url, workers, timeout=self.cfg.timeout, workers=workers)
        else:
            self._transport = RedisBoard(self.redis_url, self.cfg.key_prefix + "replicas", timeout=self.cfg.timeout,
                                         read_also=workers, workers=workers)
        await self.exchange()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="tierwise-blackboard")

    @property
    def idle(self) -> bool:
        """Shared, but not exchanging yet (nobody called `start`)."""
        return not self._started and self.redis_url is not None

    def start_soon(self) -> None:
        """Start the exchange in the background, from inside a running event loop: a gateway used
        as a library, or inside a worker, has no server start-up to call `start` (Gateway.context
        calls this on the first request)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._starter is None:
            self._starter = loop.create_task(self.start())

    async def close(self) -> None:
        self._closed = True
        if self._starter is not None and not self._starter.done():
            self._starter.cancel()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._transport is not None:
            try:
                await asyncio.wait_for(self._transport.leave(self.replica_id), self.cfg.timeout)
            except Exception:  # Redis away: the entry expires with its TTL anyway
                pass
            await self._transport.close()
            self._transport = None

    async def _loop(self) -> None:
        interval = self.cfg.publish_interval_ms / 1000
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                await self.exchange()
            except Exception:  # a bug must not end the exchange for the life of the process
                log.exception("blackboard: exchange failed")

    # ------------------------------------------------------------------ publishing

    def payload(self) -> bytes:
        now = time.monotonic()
        models: dict[str, Any] = {}
        for name, st in self.own.items():
            e: dict[str, Any] = {"w": st.weight(now, self.cfg.half_life_s), "latency_ms": st.latency,
                                 "latency_p50_ms": st.p50(), "ttft_ms": st.ttft, "error_rate": st.errors,
                                 "in_flight": st.in_flight, "queue_depth": st.queue_depth}
            b = st.breaker
            if b is not None:
                e["breaker_open"] = b.opened_at is not None
                held = b.held_for()
                if held > 0:
                    e["breaker_held_s"] = held  # what is left of a 429's pause (Retry-After)
                if b.changed_at is not None:
                    e["breaker_age_ms"] = (now - b.changed_at) * 1000
                    e["breaker_retry_s"] = b.retry_in()
            models[name] = e
        return orjson.dumps({"models": models})

    async def exchange(self) -> None:
        """Publish this replica's statistics and take the others'; never raises (Redis away: own view only)."""
        try:
            await self._exchange_once()
        finally:
            self.exchanges += 1

    async def _exchange_once(self) -> None:
        try:
            now_ms, entries = await asyncio.wait_for(
                self._transport.exchange(self.replica_id, self.payload(), int(self.cfg.ttl_s * 1000)),
                self.cfg.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._lost(e)
            return
        self._offset_ms = now_ms - time.monotonic() * 1000
        self.shared += 1
        peers: dict[str, PeerView] = {}
        window = float(self.cfg.window)
        for rid, at_ms, body, from_worker in entries:
            if len(body) > MAX_ENTRY:
                continue
            try:
                doc = orjson.loads(body)
                models = doc["models"]
                if not isinstance(models, dict):
                    continue
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.debug("blackboard: unreadable entry from replica %s", rid[:100])
                continue
            breakers = not from_worker and self.role == "replica"
            for name, entry in list(models.items())[:MAX_MODELS]:
                if isinstance(entry, dict):
                    peers.setdefault(name, PeerView()).add(at_ms, entry, window, breakers)
        self.peers = peers  # one assignment: a concurrent read sees the old view or the new one
        self.replicas = len(entries)
        if self.degraded is not None:
            log.warning("blackboard: Redis reachable again; statistics are shared with %d other replica(s)",
                        self.replicas)
            self.degraded = None
            self._unseen = 0
        if self.cfg.share_breakers:
            self._adopt_breakers()

    def _adopt_breakers(self) -> None:
        for name, peer in self.peers.items():
            st = self.own.get(name)
            change = peer.breaker_change
            if st is None or st.breaker is None:
                continue
            b = st.breaker
            if peer.held_until_ms:  # a peer's 429 pause: what is left of it (from when the peer published)
                b.adopt_hold((peer.held_until_ms - (time.monotonic() * 1000 + self._offset_ms)) / 1000)
            if change is None:
                continue
            mine = None if b.changed_at is None else b.changed_at * 1000 + self._offset_ms
            if mine is None or change[0] > mine:
                b.adopt(change[1], change[2])

    def _lost(self, e: BaseException) -> None:
        self.peers = {}
        self.replicas = 0
        self._unseen += 1
        first = self.degraded is None
        self.degraded = f"Redis unavailable ({type(e).__name__}): routing on this replica's own statistics"
        now = time.monotonic()
        if first or now - self._last_warn >= self.cfg.warn_interval:
            log.warning("blackboard: REDIS UNAVAILABLE (%s): %d exchange(s) failed; policies read this "
                        "replica's own statistics only until it is back", type(e).__name__, self._unseen)
            self._last_warn = now
            self._unseen = 0


def redis_url_of(cfg: Any) -> str | None:
    """The blackboard's Redis: its own `redis_url`, else the one budgets, the cache or dispatch already use."""
    bb: BlackboardConfig = cfg.blackboard
    if bb.redis_url:
        return bb.redis_url
    if cfg.budgets is not None and cfg.budgets.store.backend == "redis":
        return str(cfg.budgets.store.redis_url)
    if cfg.cache.enabled and cfg.cache.backend == "redis":
        return str(cfg.cache.redis_url)
    if cfg.dispatch is not None:  # a worker, or a gateway that dispatches to workers
        return str(cfg.dispatch.redis_url)
    return None


def build(cfg: Any, deployments: dict[str, Any]) -> Blackboard:
    """The gateway's blackboard (a worker's, in a worker's config): live statistics attached to every deployment,
    shared when Redis is set."""
    bb: BlackboardConfig = cfg.blackboard
    stats: dict[str, LiveStats] = {}
    for name, d in deployments.items():
        d.stats = stats[name] = LiveStats(bb.ewma_alpha, bb.window, d.breaker)
    worker = cfg.dispatch is not None and cfg.dispatch.worker is not None
    return Blackboard(bb, stats, redis_url_of(cfg), role="worker" if worker else "replica",
                      tenant=cfg.dispatch.tenant if cfg.dispatch is not None else None)
