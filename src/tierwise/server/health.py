"""`GET /health`: what is known about each route and deployment.

A model is unavailable while its breaker is open or half-open, while its provider's API key is not
set, and while its provider is local and a probe found nothing listening. A local deployment that never served a request has a closed breaker, which says nothing: with
Ollama not running, `/health` used to answer "ok" while `tierwise doctor` knew better. For each
provider with `locality: local`, `/health` now opens a TCP connection to its `base_url` (no HTTP,
no key sent) and reports the provider `reachable`, `unreachable` or `unknown` (no answer yet).

Bounded, so that no client can make `/health` slow or make it probe without end: one probe per
provider at a time, a result is reused for `TTL_S`, and `/health` waits at most `WAIT_S` for the
probes it started itself (one still running is reported `unknown`; its result serves the next
call).
Remote providers are not probed (a probe would carry the key to the upstream): their breakers
speak for them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import orjson

from tierwise.route_map import models_of, overall, route_health

TTL_S = 10.0  # a result is reused this long
WAIT_S = 1.0  # /health waits at most this long for the probes it started
CONNECT_S = 3.0  # a probe gives up after this long (the provider's connect timeout if shorter)


def _address(base_url: str) -> tuple[str, int] | None:
    try:
        u = urlsplit(base_url)
        port = u.port or (443 if u.scheme == "https" else 80)
    except ValueError:
        return None
    return (u.hostname, port) if u.hostname else None


async def _connects(host: str, port: int, timeout: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


class Reachability:
    """Cached TCP probes of the local providers of one gateway."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._known: dict[str, tuple[bool, float]] = {}  # provider -> (reachable, when)
        self._running: dict[str, asyncio.Task[bool]] = {}
        self.probes = 0  # how many were started (for tests)

    def _start(self, name: str, cfg: Any) -> asyncio.Task[bool] | None:
        if name in self._running:
            return None  # started by an earlier call: not waited for again (its result serves later calls)
        addr = _address(cfg.base_url)
        if addr is None:
            return None
        self.probes += 1
        timeout = min(CONNECT_S, float(getattr(cfg.timeouts, "connect", CONNECT_S) or CONNECT_S))
        task = asyncio.get_running_loop().create_task(_connects(*addr, timeout))

        def done(t: asyncio.Task[bool], name: str = name) -> None:
            self._running.pop(name, None)
            if not t.cancelled():
                self._known[name] = (t.result(), self._clock())

        task.add_done_callback(done)
        self._running[name] = task
        return task

    async def local(self, providers: dict[str, Any]) -> dict[str, str]:
        """provider name -> "reachable" | "unreachable" | "unknown", for the local ones of
        `providers` (name -> ProviderConfig)."""
        now = self._clock()
        waiting = []
        for name, cfg in providers.items():
            if cfg.locality != "local":
                continue
            known = self._known.get(name)
            if known is None or now - known[1] >= TTL_S:
                task = self._start(name, cfg)
                if task is not None:
                    waiting.append(task)
        if waiting:
            await asyncio.wait(waiting, timeout=WAIT_S)
        out = {}
        for name, cfg in providers.items():
            if cfg.locality != "local":
                continue
            known = self._known.get(name)
            fresh = known is not None and (self._clock() - known[1] < TTL_S or name not in self._running)
            out[name] = ("reachable" if known[0] else "unreachable") if known is not None and fresh else "unknown"
        return out


def _operator(app: Any, headers: dict[str, str]) -> bool:
    """An admin or viewer key: it sees every route, deployment and local server (it saw only the bare status,
    less than a client's key, on the gateway it operates)."""
    try:
        return app.roles.reader(headers, dashboard=False).role in ("admin", "viewer")
    except Exception:  # no key this gateway knows
        return False


async def health(app: Any, scope: dict[str, Any], send: Any) -> None:
    gw = app.gw
    breakers = {n: d.breaker.state for n, d in gw.deployments.items()}
    probes = await app.reachability.local(gw.cfg.providers)
    # A model with an open (or half-open: its last call failed) breaker is unavailable, and so is
    # one whose provider's API key is not set (every call fails, and no breaker ever opens for
    # it), and one on a local server that a probe found not listening; a route is down when every
    # model it can reach is, degraded when some are.
    unavailable = {n for n, d in gw.deployments.items()
                   if d.provider.missing_key() or probes.get(d.provider.name) == "unreachable"
                   or breakers[n] != "closed"}
    routes = route_health(gw.cfg, lambda m: m not in unavailable)
    # The budget store (Redis) unavailable: the routes its budgets and rate limits cover are refused (fail_closed:
    # down) or answered uncounted (fail_open: degraded). Before, /health said ok while every such request got 503.
    store = await gw.spend.store_health(sorted({s.name for _, s in app.keyring.keys})) if gw.spend.active else None
    if store is not None and store[0]["status"] != "ok":
        down = store[0]["on_store_error"] == "fail_closed"
        for r in store[1]:
            routes[r] = {**routes[r], "status": "down" if down else ("degraded" if routes[r]["status"] == "ok"
                                                                     else routes[r]["status"]),
                         "budget_store": "unavailable"}
    # The answer cache's store (Redis, sqlite) unavailable: its routes are answered, uncached, at full price.
    # Before, an outage showed only as misses.
    cache = await gw.cache.store_health() if gw.cache is not None else None
    if cache is not None and cache[0]["status"] != "ok":
        for r in cache[1]:
            if r in routes:
                routes[r] = {**routes[r], "status": "degraded" if routes[r]["status"] == "ok" else routes[r]["status"],
                             "answer_cache": "unavailable"}
    status = overall([r["status"] for r in routes.values()] if routes else
                     ["down" if n in unavailable else "ok" for n in breakers])
    # Breaker states tell an outsider when a probe slot is open: only key holders see them (a client key those of
    # its own routes).
    if app.auth_required:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = app.keyring.find(headers)
        if key is None and not _operator(app, headers):
            await app.send_json(send, 200, orjson.dumps({"status": status}))
            return
    if app.auth_required and key is not None:
        routes = {n: r for n, r in routes.items() if key.visible(n, gw.deployments)}
        # a key limited to some routes sees the deployments those routes reach (their `unavailable` names
        # them already), not every deployment's name and breaker state
        reach = {n for n in gw.deployments if key.visible(n, gw.deployments)}
        for r in routes:
            reach.update(models_of(gw.cfg, r))
        breakers = {n: s for n, s in breakers.items() if n in reach}
        visible = {gw.deployments[n].provider.name for n in reach if n in gw.deployments}
        probes = {p: v for p, v in probes.items() if p in visible}
    body = {"status": status, "routes": routes, "deployments": breakers, "local_servers": probes}
    if store is not None:
        body["budget_store"] = store[0]
    if cache is not None:
        body["answer_cache"] = cache[0]
    if gw.ledger is not None:  # what waits for the ledger's writer; records dropped past its bound
        body["ledger"] = gw.ledger.backlog()
    await app.send_json(send, 200, orjson.dumps(body))
