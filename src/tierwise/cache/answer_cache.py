"""The answer cache on the request path: one wrapper around a route's target.

`AnswerCache.wrap` is the only seam: the app calls it once per request with the route's target,
and gets back either the target itself (cache off for the route) or a `CachedTarget` that looks
the request up before calling through, replays a hit as a response or a stream, and stores a
miss's answer once it has ended well (a failed, incomplete or client-cancelled stream never is).

Every outcome leaves `ctx.notes["cache"]` = hit | miss | bypass (the `x-tierwise-cache` header)
and a hit leaves one trace step: a `call` named `cache` that cost $0 and whose `saved_usd` (what
the answer would cost again: at the reference model's prices when one is configured, else what
it cost when it was made) the ledger counts as saved.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tierwise.cache import entry as entries
from tierwise.cache.backends import Backend, MemoryBackend, RedisBackend, SqliteBackend
from tierwise.cache.keys import context_key, exact_key
from tierwise.cache.settings import CacheConfig, RouteCache
from tierwise.cache.store_health import CacheHealth
from tierwise.canonical import Request, Response, StreamChunk, ToolResultBlock, ToolUseBlock, Usage
from tierwise.errors import ConfigError
from tierwise.observability.observer import protected
from tierwise.policies.base import Context, Target
from tierwise.pricing import cost
from tierwise.signing import secret_from_env
from tierwise.wire import anthropic_messages, openai_chat

log = logging.getLogger("tierwise.cache")

HEADER = b"x-tierwise-cache"
NOTE = "cache"
EVENT_OVERHEAD = entries.EVENT_OVERHEAD
# Client formats the cache serves. The Responses API is left out: its answers are stored by id for
# `previous_response_id`, so a replayed answer would hand two clients one conversation.
CLIENT_CODECS: dict[str, Any] = {"openai": openai_chat, "anthropic": anthropic_messages}
_SPENT = ("downgrade", "refuse")  # budget decisions after which the cache only looks up


_HEADERS = {v: ((HEADER, v.encode()),) for v in ("hit", "miss", "bypass")}


def cache_header(ctx: Any) -> tuple[tuple[bytes, bytes], ...]:
    """The `x-tierwise-cache` header for a request's context (none when the cache is off)."""
    return _HEADERS.get(ctx.notes.get(NOTE), ())  # type: ignore[arg-type]


def make_backend(cfg: CacheConfig, base_dir: str) -> Backend:
    if cfg.backend == "sqlite":
        p = Path(cfg.sqlite_path)
        path = str(p if p.is_absolute() else Path(base_dir) / p)
        try:
            return SqliteBackend(path, cfg.max_bytes)
        except (OSError, sqlite3.Error) as e:  # a corrupt file, a folder that cannot be made: a line, not a traceback
            raise ConfigError(f"cannot open the answer cache at {path}: {getattr(e, 'strerror', None) or e}; point "
                              "cache.sqlite_path at a writable place (a file that is not a tierwise cache is "
                              "never overwritten)") from None
    if cfg.backend == "redis":
        secret = None
        if cfg.redis_signing_key_env:
            secret = secret_from_env(cfg.redis_signing_key_env, "cache.redis_signing_key_env", "the cache's prefix")
        return RedisBackend(cfg.redis_url, cfg.redis_prefix, cfg.redis_timeout, cfg.max_bytes, cfg.max_entry_bytes,
                            secret)
    return MemoryBackend(cfg.max_bytes)


def sampled(req: Request) -> bool:
    """Would the upstream sample? No temperature means the upstream's default, which samples."""
    return req.temperature is None or req.temperature > 0


def carries_tools(req: Request) -> bool:
    if req.tools:
        return True
    for m in req.messages:
        for b in m.content:
            if isinstance(b, (ToolUseBlock, ToolResultBlock)):
                return True
    return False


class AnswerCache:
    def __init__(self, cfg: CacheConfig, base_dir: str = ".", services: Any = None,
                 backend: Backend | None = None) -> None:
        self.cfg = cfg
        self.services = services
        self.backend = backend or make_backend(cfg, base_dir)
        # The memory backend keeps entries in this process: nothing to encode or wait for (a response
        # is decoded again only on a hit).
        self.keeps_entries = bool(getattr(self.backend, "keeps_entries", False))
        self.max_entry_bytes = cfg.max_entry_bytes
        self._rules: dict[str, _RouteRules | None] = {}  # per route, worked out on its first request
        self.counts = {"hit": 0, "semantic_hit": 0, "miss": 0, "bypass": 0, "stored": 0, "errors": 0}
        # A store outside this process (Redis, sqlite) can fail: /health, the metric, one log line per outage
        self.health = None if self.keeps_entries else CacheHealth()
        self._stats_task: asyncio.Future[dict[str, Any]] | None = None
        self.semantic: Any = None
        if any(rc.semantic for rc in cfg.routes.values()):
            from tierwise.cache.semantic import SemanticTier

            self.semantic = SemanticTier(cfg.semantic, base_dir=base_dir)

    # ------------------------------------------------------------------ seam

    def wrap(self, target: Target, ctx: Context, tenant: str, req: Request, client_format: str) -> Target:
        route = ctx.trace.route
        rules = self._rules.get(route, _UNSEEN)
        if rules is _UNSEEN:
            rules = self._rules[route] = _RouteRules.of(self, route)
        if rules is None:
            return self._bypass(target, ctx, "route is not cached")
        if client_format not in CLIENT_CODECS:
            return self._bypass(target, ctx, f"{client_format} API answers are not cached")
        if not rules.sampled and sampled(req):
            return self._bypass(target, ctx, "sampled request (temperature > 0 or unset); route did not opt in")
        if getattr(ctx, "privacy", None) is not None and protected(ctx, req):
            # Its answer holds the client's values as the privacy guard restored them: a sqlite file or a shared
            # Redis would keep them in plain text, where the ledger keeps only `<ENTITY>` markers.
            return self._bypass(target, ctx, "the request holds a value the privacy policy protects")
        key = exact_key(req, tenant=tenant, route=route, client_format=client_format, vary=rules.vary)
        # A spent budget (tierwise.budgets) swapped the route's target for its local tier or for a refusal:
        # a cached answer may still serve the request ($0), but the local tier's answer is not the route's.
        steps = ctx.trace.steps  # (none yet, on most requests)
        store = not steps or not any(s.kind == "decision" and s.name == "budget" and s.detail.get("action") in _SPENT
                                     for s in steps)
        return CachedTarget(self, target, rules.rc, key, tenant, route, client_format, store, rules.local, rules.ttl)

    def _bypass(self, target: Target, ctx: Context, why: str) -> Target:
        ctx.notes[NOTE] = "bypass"
        ctx.notes["cache_reason"] = why
        self.counts["bypass"] += 1
        return target

    # ------------------------------------------------------------------ storage

    def unpacked(self, v: Any) -> entries.Entry | None:
        """An entry a backend keeps in this process, decoded again when `keep` packed it (an entry
        that does not decode is a miss, never a failed request)."""
        if type(v) is not tuple:
            return v  # type: ignore[no-any-return]
        try:
            return entries.unpack(v, CLIENT_CODECS[v[2]].decode_response)
        except Exception as e:
            self.counts["errors"] += 1
            log.warning("cache: a kept entry did not decode (%s); serving uncached", type(e).__name__)
            return None

    async def load(self, key: str, route: str, tenant: str) -> entries.Entry | None:
        if self.keeps_entries:
            v = self.backend.get_entry(key)  # type: ignore[attr-defined]
            return None if v is None else self.unpacked(v)
        try:
            data = await self.backend.get(key, route=route, tenant=tenant)
        except Exception as e:  # a broken cache is a miss, never a failed request
            self.counts["errors"] += 1
            self.health.failed(e)  # type: ignore[union-attr]  # (logged once an outage, not once a lookup)
            return None
        if self.health.down_since is not None:  # type: ignore[union-attr]
            self.health.answered()  # type: ignore[union-attr]
        try:
            return entries.loads(data) if data is not None else None
        except Exception as e:  # an entry that does not decode: a miss
            self.counts["errors"] += 1
            log.warning("cache: a stored entry did not decode (%s); serving uncached", type(e).__name__)
            return None

    def keep(self, key: str, e: entries.Entry, rc: RouteCache, route: str, tenant: str) -> bool:
        """`store` for a backend that keeps entries as objects (synchronous: nothing to wait for)."""
        v = entries.pack(e)
        if v is not e:
            return self.keep_packed(key, v, rc, route, tenant)
        return self._put(key, v, entries.size(e), rc, route, tenant)

    def keep_packed(self, key: str, v: tuple[Any, ...], rc: RouteCache, route: str, tenant: str) -> bool:
        """`keep` for an entry already packed (`entry.packed`)."""
        return self._put(key, v, entries.packed_size(v), rc, route, tenant)

    def keep_answer(self, key: str, raw: bytes, client_format: str, steps: list[Any], ttl: float, route: str,
                    tenant: str) -> None:
        """`keep` for a miss's answer on an exact-only route, packed straight from its bytes and one pass
        over the trace (`_made`): no Entry and Usage objects on the way, and without the question and
        tools only a semantic tier reads."""
        size = entries.PACKED_OVERHEAD + len(raw)  # (`entry.packed_size`, without a question)
        if size > self.max_entry_bytes:
            return
        cost, usage, model = _made(steps)
        # (`entry.packed`'s flat tuple, made here: one call less on every stored miss)
        self.backend.put_entry(key, ("response", raw, client_format, "", False, cost, model, time.time(), *usage),  # type: ignore[attr-defined]
                               size, ttl=ttl, route=route, tenant=tenant)
        self.counts["stored"] += 1

    def _put(self, key: str, v: Any, size: int, rc: RouteCache, route: str, tenant: str) -> bool:
        if size > self.cfg.max_entry_bytes:
            return False
        self.backend.put_entry(key, v, size, ttl=rc.ttl or self.cfg.ttl,  # type: ignore[attr-defined]
                               route=route, tenant=tenant)
        self.counts["stored"] += 1
        return True

    async def store(self, key: str, e: entries.Entry, rc: RouteCache, route: str, tenant: str) -> bool:
        if self.keeps_entries:
            return self.keep(key, e, rc, route, tenant)
        try:
            data = entries.dumps(e)
        except Exception as err:
            self.counts["errors"] += 1
            log.warning("cache: an answer did not encode (%s); not cached", type(err).__name__)
            return False
        if len(data) > self.cfg.max_entry_bytes:
            return False
        try:
            await self.backend.put(key, data, ttl=rc.ttl or self.cfg.ttl, route=route, tenant=tenant)
        except Exception as err:
            self.counts["errors"] += 1
            self.health.failed(err)  # type: ignore[union-attr]
            return False
        if self.health.down_since is not None:  # type: ignore[union-attr]
            self.health.answered()  # type: ignore[union-attr]
        self.counts["stored"] += 1
        return True

    async def invalidate(self, *, route: str | None = None, tenant: str | None = None) -> int:
        n = await self.backend.invalidate(route=route, tenant=tenant)
        if self.semantic is not None:
            self.semantic.forget(route=route, tenant=tenant)
        return n

    async def stats(self) -> dict[str, Any]:
        # The backend's count can be a scan of the whole keyspace (Redis): callers asking at the same
        # time share one, so a flood of `GET /v1/tierwise/cache` is one scan at a time, not one each.
        if self._stats_task is None or self._stats_task.done():
            self._stats_task = asyncio.ensure_future(self.backend.stats())
        return {**(await asyncio.shield(self._stats_task)), **self.counts}

    async def store_health(self) -> tuple[dict[str, Any], list[str]] | None:
        """For `/health`: the store's state (probed when nothing was heard from it lately) and the routes the
        cache covers; None for the memory backend (nothing outside this process to fail)."""
        if self.health is None:
            return None
        # (sqlite too, since session 26: before, a file gone read-only, full, locked or corrupt was seen only by the
        # requests that met it, and its end never without one)
        probe = getattr(self.backend, "probe", None)
        if probe is None:  # (a backend of the caller's own without one)
            return self.health.seen(), list(self.cfg.routes)
        return await self.health.status(probe, self.cfg.redis_timeout), list(self.cfg.routes)

    async def close(self) -> None:
        await self.backend.close()

    def saved_usd(self, route: str, e: entries.Entry) -> float | None:
        """What serving `e` again would cost: at the reference model's prices, else its own cost."""
        ref = getattr(self.services, "reference_price", None)
        if ref is not None and e.usage is not None:
            _, price = ref(route)
            if price is not None:
                return cost(price, e.usage)
        return e.cost_usd


_UNSEEN: Any = object()


class _RouteRules:
    """A cached route's settings as plain attributes, read on each of its requests (a pydantic model's
    attributes are several times slower to read)."""

    __slots__ = ("rc", "sampled", "vary", "ttl", "local")

    def __init__(self, rc: RouteCache, sampled: bool, vary: list[str], ttl: float, local: bool) -> None:
        self.rc, self.sampled, self.vary, self.ttl, self.local = rc, sampled, vary, ttl, local

    @classmethod
    def of(cls, cache: AnswerCache, route: str) -> _RouteRules | None:
        """None when the route is not cached (no exact tier: the semantic tier reuses its entries)."""
        rc = cache.cfg.for_route(route)
        if rc is None or not rc.exact:
            return None
        # exact tier only, entries kept in this process: looked up and stored without an await
        local = cache.keeps_entries and (cache.semantic is None or not rc.semantic)
        return cls(rc, rc.sampled, rc.vary_headers, rc.ttl or cache.cfg.ttl, local)


class CachedTarget:
    """A route's target behind the cache (one per request: it carries the request's key)."""

    __slots__ = ("cache", "inner", "rc", "key", "tenant", "route", "client_format", "store", "local", "ttl")

    def __init__(self, cache: AnswerCache, inner: Target, rc: RouteCache, key: str, tenant: str, route: str,
                 client_format: str, store: bool, local: bool, ttl: float) -> None:
        self.cache = cache
        self.inner = inner
        self.rc = rc
        self.key = key
        self.tenant = tenant
        self.route = route
        self.client_format = client_format
        self.store = store  # False: look up only (a spent budget's stand-in answers a miss)
        self.local = local  # exact tier only, entries kept in this process: looked up and stored without an await
        self.ttl = ttl

    @property
    def name(self) -> str:
        return getattr(self.inner, "name", self.route)  # type: ignore[no-any-return]

    @property
    def codec(self) -> Any:
        return CLIENT_CODECS[self.client_format]

    # ------------------------------------------------------------------ lookup

    async def _lookup(self, req: Request, ctx: Context, kind: str) -> entries.Entry | None:
        t0 = time.perf_counter()
        if self.local:  # nothing to wait for
            v = self.cache.backend.get_entry(self.key)  # type: ignore[attr-defined]  # local: the memory backend
            return self._found(None if v is None else self.cache.unpacked(v), ctx, kind, "exact", t0)
        e = await self.cache.load(self.key, self.route, self.tenant)
        how = "exact"
        if e is None and self.cache.semantic is not None and self.rc.semantic and (
                self.rc.semantic_tools or not carries_tools(req)):
            sem_key = context_key(req, tenant=self.tenant, route=self.route, client_format=self.client_format,
                                  vary=self.rc.vary_headers)
            found = await self.cache.semantic.find(sem_key, req.last_user_text(), self.tenant, self.route)
            if found is not None:
                e = await self.cache.load(found, self.route, self.tenant)
                if e is not None and e.tools and not self.rc.semantic_tools:
                    e = None
                how = "semantic"
        return self._found(e, ctx, kind, how, t0)

    def _found(self, e: entries.Entry | None, ctx: Context, kind: str, how: str, t0: float) -> entries.Entry | None:
        if e is None or e.kind != kind:
            ctx.notes[NOTE] = "miss"
            self.cache.counts["miss"] += 1
            return None
        ctx.notes[NOTE] = "hit"
        self.cache.counts["semantic_hit" if how == "semantic" else "hit"] += 1
        saved = self.cache.saved_usd(self.route, e)
        step = ctx.trace.call("cache", ok=True, model=e.model, provider="tierwise", locality="cache", cost=0.0,
                              latency_ms=(time.perf_counter() - t0) * 1000, ttft_ms=None)
        step.reason = f"{how} hit"
        step.detail = {"cache": how, "key": self.key[:16]}
        if saved is not None:
            step.detail["saved_usd"] = saved
        ctx.trace.decision = "cache"
        ctx.trace.reason = f"answered from the cache ({how} match)"
        return e

    def _entry(self, kind: str, req: Request, ctx: Context, tools: bool) -> entries.Entry:
        cost, usage, model = _made(ctx.trace.steps)
        # The question and whether tools are involved are read only by a semantic tier (its index, its lookups):
        # an exact-only entry kept in this process goes without them.
        question = ""
        if not self.local:
            tools = tools or carries_tools(req)
            if self.cache.semantic is not None and self.rc.semantic:
                question = req.last_user_text()
        return entries.Entry(kind, None, None, question, tools, cost, Usage(*usage), model, time.time())

    async def _remember(self, e: entries.Entry, req: Request) -> None:
        if not self.store:
            return
        cache = self.cache
        if await cache.store(self.key, e, self.rc, self.route, self.tenant) and cache.semantic is not None and (
                self.rc.semantic):
            sem_key = context_key(req, tenant=self.tenant, route=self.route, client_format=self.client_format,
                                  vary=self.rc.vary_headers)
            await self.cache.semantic.add(sem_key, e.question, self.key, self.tenant, self.route)

    # ------------------------------------------------------------------ Target

    async def complete(self, req: Request, ctx: Context) -> Response:
        if self.local:  # nothing to wait for
            cache = self.cache
            v = cache.backend.get_entry(self.key)  # type: ignore[attr-defined]
            if v is None:  # (`_found`'s miss, inline: most requests of a cached route)
                ctx.notes[NOTE] = "miss"
                cache.counts["miss"] += 1
                e = None
            else:  # (the lookup's time: the entry's decoding, the dict's get is ~0.1 µs)
                e = self._found(cache.unpacked(v), ctx, "response", "exact", time.perf_counter())
        else:
            e = await self._lookup(req, ctx, "response")
        if e is not None and e.response is not None:
            return entries.served(e.response) if self.cache.keeps_entries else e.response
        resp = await self.inner.complete(req, ctx)
        if resp.raw is None or resp.raw_format != self.client_format:
            # Encoded once, here: the client and every later hit get the same bytes (same id).
            resp.raw, resp.raw_format = self.codec.encode_response(resp, req.model), self.client_format  # type: ignore[assignment]
        if resp.stop_reason != "error" and self.store and not _protected_now(ctx):
            if self.local:
                self.cache.keep_answer(self.key, resp.raw, self.client_format, ctx.trace.steps, self.ttl,  # type: ignore[arg-type]
                                       self.route, self.tenant)
            else:
                ent = self._entry("response", req, ctx, _calls_tools(resp.content))
                ent.response = resp
                await self._remember(ent, req)
        return resp

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        e = await self._lookup(req, ctx, "stream")
        if e is not None and e.chunks is not None:
            return _replay(e.chunks)
        it = await self.inner.stream(req, ctx)
        return self._recording(it, req, ctx)

    async def _recording(self, it: AsyncIterator[StreamChunk], req: Request,
                         ctx: Context) -> AsyncIterator[StreamChunk]:
        """Relay `it`, keeping its chunks; store them only when the stream ended with message_stop.

        Reaching the code after the loop means the upstream finished and the consumer asked
        for more: a cancelled relay (client gone) or an error raised mid-stream never gets there.
        """
        kept: list[StreamChunk] | None = []
        size = 0
        tools = False
        limit = self.cache.cfg.max_entry_bytes
        ended = False
        encoder: Any = None
        try:
            async for chunk in it:
                if encoder is None:
                    # Same format: the upstream's bytes pass through. Otherwise encoded once, here,
                    # so the client and every later hit get the same bytes (same ids).
                    encoder = False if chunk.raw is not None and chunk.raw_format == self.client_format else (
                        self.codec.StreamEncoder(req.model, req))
                if encoder is not False and chunk.events:
                    chunk = StreamChunk(chunk.events, b"".join([encoder.encode(ev) for ev in chunk.events]),
                                        self.client_format)  # type: ignore[arg-type]
                if kept is not None:
                    size += len(chunk.raw or b"") + EVENT_OVERHEAD * len(chunk.events)
                    for ev in chunk.events:
                        if ev.kind == "error":
                            kept = None  # a failed stream is never stored
                            break
                        if ev.kind == "block_start" and isinstance(ev.block, ToolUseBlock):
                            tools = True
                        ended = ev.kind == "message_stop"
                    if kept is not None:
                        if size > limit:
                            kept = None
                        else:
                            kept.append(chunk)
                yield chunk
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()
        if kept and ended and not _protected_now(ctx):
            ent = self._entry("stream", req, ctx, tools)
            ent.chunks = kept
            await self._remember(ent, req)


def _protected_now(ctx: Context) -> bool:
    """The privacy guard found a protected value while the call crossed (`wrap` asked before it: the local
    model detector, `privacy.llm_detector`, reads the request only then): its restored answer is not kept."""
    return bool(getattr(getattr(ctx, "privacy", None), "protected", False))


def _made(steps: list[Any]) -> tuple[float | None, tuple[int, int, int, int, bool], str | None]:
    """One pass over a trace (this runs on every stored miss): what the answer cost (None when a
    successful call had usage but no price: unknown, not $0), its usage summed over the calls as
    `Usage` fields, and the model of the call that answered (the last successful one that was not a
    side role)."""
    if len(steps) == 1:  # one call that answered (most requests): the loop below, unrolled
        s = steps[0]
        u = s.usage
        if s.kind == "call" and s.ok and u is not None and "role" not in s.detail:
            return s.cost, (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens,
                            u.estimated), s.model
    answered = None
    unpriced = False
    total = 0.0
    tin = tout = tcr = tcw = 0
    est = False
    for s in steps:
        if s.kind != "call":
            continue
        c = s.cost
        if c:
            total += c
        u = s.usage
        if u is not None:
            tin += u.input_tokens
            tout += u.output_tokens
            tcr += u.cache_read_tokens
            tcw += u.cache_write_tokens
            est = est or u.estimated
        if s.ok:
            if "role" not in s.detail:
                answered = s
            if c is None and u is not None:
                unpriced = True
    return None if unpriced else total, (tin, tout, tcr, tcw, est), answered.model if answered is not None else None


def _calls_tools(content: list[Any]) -> bool:
    for b in content:
        if isinstance(b, ToolUseBlock):
            return True
    return False


async def _replay(chunks: list[StreamChunk]) -> AsyncIterator[StreamChunk]:
    for c in chunks:
        yield c
