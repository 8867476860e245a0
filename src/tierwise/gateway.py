"""The core both the HTTP server and the library use: targets built from a Config, route
resolution by requested model name, per-request contexts, and ledger recording.

No global state: everything hangs off a `Gateway` built from one `Config`.
"""

from __future__ import annotations

import functools
import logging
import time
from fnmatch import fnmatchcase
from typing import Any

import aiohttp

from tierwise import console_log, observability, sandbox
from tierwise.budgets.controller import SpendController
from tierwise.canonical import Request, Usage, WireFormat
from tierwise.config import Config
from tierwise.errors import ConfigError, NotFound, TierwiseError
from tierwise.ids import new_id
from tierwise.ledger.records import record_from_trace
from tierwise.ledger.store import Ledger
from tierwise.policies.base import Context, Target
from tierwise.policies.registry import POLICY_TYPES, Builder
from tierwise.policies.rules import feature_of
from tierwise.pricing import ONLINE, Price, Pricer, anthropic_price, claude_model, cost, online_price
from tierwise.providers import image_urls
from tierwise.providers.breaker import CircuitBreaker
from tierwise.providers.deployment import Deployment
from tierwise.providers.http import Provider
from tierwise.providers.sent_clock import StampingConnector
from tierwise.secret_scrub import register_config
from tierwise.trace import Trace

log = logging.getLogger("tierwise")

ZERO = Price(input=0, output=0, cache_read=0, cache_write=0)
MAX_MODEL_NAME = 256  # the requested name is the client's text: kept in the ledger, bounded


def _privacy_install(gw: Gateway) -> Any:
    from tierwise.privacy.boundary import install

    return install(gw)


MAX_STORED_TEXT = 256_000  # characters of a prompt or an answer kept in the ledger (`ledger.store_text`)


def stored_text(req: Request, answer: Any) -> tuple[str | None, str | None]:
    """The request's last user turn and its answer, as `ledger.store_text` keeps them (bounded)."""
    if isinstance(answer, list):  # a stream's text deltas
        answer = "".join(answer)
    prompt = req.last_user_text() or None
    return (prompt[:MAX_STORED_TEXT] if prompt else None,
            answer[:MAX_STORED_TEXT] if isinstance(answer, str) and answer else None)


def new_request_id() -> str:
    return new_id("req_")


class Gateway:
    def __init__(self, cfg: Config, *, ledger: Ledger | None = None, pricer: Pricer | None = None) -> None:
        self.cfg = cfg
        register_config(cfg)  # before anything can fail or log: the scrubber must know the keys
        self.pricer = pricer or Pricer()
        self.ledger = ledger
        self.store_text = ledger is not None and cfg.ledger.store_text  # prompts and answers in the ledger
        # One pooled session per provider: its connector holds at most the provider's `max_connections`,
        # so a hung upstream fills its own pool, not one other providers draw from.
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self.providers = {n: Provider(n, p, functools.partial(self._get_session, n)) for n, p in cfg.providers.items()}
        self.deployments: dict[str, Deployment] = {}
        for name, m in cfg.models.items():
            prov = self.providers[m.provider]
            price = m.price or (ZERO if prov.locality == "local"
                                else self.pricer.price_for(m.model, prov.kind, prov.cfg.base_url))
            if prov.locality == "remote" and m.model.endswith(ONLINE):  # (genai-prices knows it without the suffix)
                price = online_price(price or self.pricer.price_for(m.model[:-len(ONLINE)], prov.kind,
                                                                    prov.cfg.base_url))
            if price is not None and prov.locality == "remote" and (prov.kind == "anthropic" or claude_model(m.model)):
                price = anthropic_price(price, searches=prov.kind == "anthropic")
            self.deployments[name] = Deployment(
                name,
                m,
                prov,
                CircuitBreaker(cfg.breaker.failures, cfg.breaker.cooldown, on_change=functools.partial(
                    console_log.breaker_changed, name, failures_to_open=cfg.breaker.failures,
                    cooldown=cfg.breaker.cooldown)),
                price,
                cost if m.max_reported_cost is None else functools.partial(cost, unpriced_max=m.max_reported_cost),
            )
        # http(s) image URLs: refused, forwarded or fetched, per provider (providers/image_urls.py)
        self.image_fetcher = image_urls.install(self)
        self._routes: dict[str, Target] = {}
        # Live per-model statistics (tierwise.dispatch.blackboard): made here when asked for, else by
        # the first route that reads them (`board()`); None costs the request path nothing.
        self.blackboard: Any = None
        if cfg.blackboard.enabled is True:
            self.board()
        # before the routes: code verifiers check it
        sandbox.configure(**cfg.sandbox.model_dump(), host_scripts=bool(cfg.ensembles.trusted))
        self._builder = Builder(self.resolve, self, cfg.base_dir)
        # Requested names that are patterns (e.g. `claude-*`) are matched in order after exact names.
        self._patterns = [n for n in cfg.routes if any(c in n for c in "*?[")]
        for name in cfg.routes:  # build eagerly so config errors surface at start
            self.resolve(name)
        if cfg.ledger.enabled and cfg.ledger.path != ":memory:":  # learned routes' state files no route reads
            from tierwise.routers.route_memory import report_orphans

            report_orphans(cfg.ledger.resolved_path(cfg.base_dir), self._routes.values())
        # The privacy boundary (docs/privacy.md): in front of every remote deployment; None costs nothing.
        self.privacy: Any = _privacy_install(self) if cfg.privacy is not None else None
        for route in self._routes.values() if self.privacy is not None else ():  # what routes keep passes it too
            ready = getattr(getattr(route, "inner", route), "privacy_ready", None)
            if ready is not None:
                ready(self.privacy)
        self.spend = SpendController(cfg.budgets, cfg.rate_limits, self)  # budgets, rate limits: off if unset
        self.cache: Any = None
        self.compressor: Any = None
        if cfg.compression.routes:
            from tierwise.compression.compressor import Compressor

            self.compressor = Compressor(cfg.compression)
        if cfg.cache.enabled:
            from tierwise.cache.answer_cache import AnswerCache

            self.cache = AnswerCache(cfg.cache, cfg.base_dir, self)
        self.observer = observability.build(self)  # metrics, spans, dashboard feed (all off by default)
        self.approvals: Any = None  # human approval gates (tierwise.dispatch.approvals); None costs nothing
        if cfg.approvals is not None:
            from tierwise.dispatch.approvals import Approvals, build_store

            fallback = cfg.budgets.store.redis_url if cfg.budgets is not None else None
            self.approvals = Approvals(cfg.approvals, build_store(cfg.approvals, fallback), privacy=self.privacy)

    # ------------------------------------------------------------------ lifecycle

    def board(self) -> Any:
        """The blackboard, made on first use (policies that read statistics call this when built)."""
        if self.blackboard is None:
            if self.cfg.blackboard.enabled is False:
                raise ConfigError("a route reads live statistics but `blackboard.enabled` is false")
            from tierwise.dispatch import blackboard

            self.blackboard = blackboard.build(self.cfg, self.deployments)
        return self.blackboard

    async def start(self) -> None:
        """Background work that needs the event loop (the blackboard's exchange with the other replicas, the budget
        store's spend kept in the ledger's file)."""
        if self.blackboard is not None:
            await self.blackboard.start()
        if (start := getattr(self.spend.store, "start", None)) is not None:
            start()

    def _get_session(self, provider: str) -> aiohttp.ClientSession:
        session = self._sessions.get(provider)
        if session is None or session.closed:
            limit = self.cfg.providers[provider].max_connections
            connector = StampingConnector(limit=limit, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=30)
            session = self._sessions[provider] = aiohttp.ClientSession(
                connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",)
            )
        return session

    async def close(self) -> None:
        for route in list(self._routes.values()):  # background work (shadow runs) before the session goes
            drain = getattr(route, "drain", None)
            if drain is not None:
                await drain()
        await self.spend.close()
        if self.approvals is not None:
            await self.approvals.close()
        if self.blackboard is not None:
            await self.blackboard.close()
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()
        if self.image_fetcher is not None:
            await self.image_fetcher.close()
        if self.cache is not None:
            await self.cache.close()
        if self.ledger is not None:
            self.ledger.close()
        if self.privacy is not None:
            self.privacy.close()
        await self.observer.aclose()

    # ------------------------------------------------------------------ resolution

    def built(self, name: str) -> Target | None:
        """The route `name` if it has been built already (None otherwise: nothing is built for a reader)."""
        return self._routes.get(name)

    def resolve(self, name: str) -> Target:
        if name in self.deployments:
            return self.deployments[name]
        t = self._routes.get(name)
        if t is not None:
            return t
        pc = self.cfg.routes.get(name)
        if pc is None:
            raise NotFound(f"unknown model or route {name[:200]!r}")
        t = POLICY_TYPES[pc.policy].build(pc, name, self._builder)
        if self.cfg.approvals is not None and name in self.cfg.approvals.routes:
            from tierwise.dispatch.gated_route import GatedRoute

            t = GatedRoute(name, t, self)  # waits for an approval however the route is reached
        if self.cfg.privacy is not None and name in self.cfg.privacy.routes:
            from tierwise.privacy.route_rule import RuledRoute

            t = RuledRoute(name, t, self)  # its privacy rule holds however the route is reached
        self._routes[name] = t
        return t

    def routes_built(self) -> dict[str, Target]:
        return dict(self._routes)

    def route_for(self, requested: str) -> tuple[str, Target]:
        """The route a client's `model` names: exact route, exact model, pattern, then default."""
        if requested in self.cfg.routes or requested in self.deployments:
            return requested, self.resolve(requested)
        for pat in self._patterns:
            if fnmatchcase(requested, pat):
                return pat, self.resolve(pat)
        default = self.cfg.server.default_route
        if default:
            return default, self.resolve(default)
        names = sorted(set(self.cfg.routes) | set(self.deployments))
        raise NotFound(
            f"unknown model or route {requested[:200]!r}; this gateway serves: {', '.join(names) or 'nothing yet'}"
        )

    def reference_price(self, route: str) -> tuple[str | None, Price | None]:
        pc = self.cfg.routes.get(route)
        ref = getattr(pc, "reference", None) or self.cfg.reference_model
        if ref and ref in self.deployments:
            d = self.deployments[ref]
            return ref, d.price
        return None, None

    def cached(self, target: Target, ctx: Context, tenant: str, req: Request, client_format: str) -> Target:
        """The route's target behind context compression and the answer cache (each only when configured).

        The cache keys the request as the client sent it; on a miss the compressed request goes on."""
        if self.compressor is not None:
            target = self.compressor.wrap(target, ctx)
        return target if self.cache is None else self.cache.wrap(target, ctx, tenant, req, client_format)

    def context(self, route: str, request_id: str, client_format: WireFormat | None, requested: str,
                req: Request | None = None) -> Context:
        """A request's context; `req`, the client's request, bounds what every remote call made for it may carry
        (privacy/origin.py)."""
        ctx = Context(Trace(request_id, route), self.resolve, client_format, services=self)
        if self.blackboard is not None and self.blackboard.idle:  # a library or worker: no server start-up
            self.blackboard.start_soon()
        ctx.notes["requested_model"] = requested
        if self.privacy is not None:
            self.privacy.guard(ctx).origin = req  # ctx.privacy
        return ctx

    # ------------------------------------------------------------------ ledger

    def record(
        self,
        ctx: Context,
        req: Request,
        *,
        status: int,
        stream: bool,
        latency_ms: float,
        ttft_ms: float | None = None,
        error: TierwiseError | None = None,
        shadow: dict[str, Any] | None = None,
    ) -> None:
        if self.spend.active:
            self.spend.settle(ctx)  # the real cost replaces the reservation (once per request id)
        trace = ctx.trace
        if status >= 400 and status != 499:  # once per request, where its ledger row is made (499: client left)
            message = error.message if error else None
            if self.privacy is not None:  # the console line never shows a protected value
                message = self.privacy.clean_text(message)
            console_log.request_failed(trace.request_id, trace.route, status, error.kind if error else None,
                                       message, trace.header_summary())
        self.observer.finished(ctx, req, status=status, stream=stream, latency_ms=latency_ms, ttft_ms=ttft_ms, error=error)
        if self.ledger is None:
            return
        # The call whose answer the client got: the last successful one that was not a helper
        # call (a verifier's check, an advisor consult, a summary), which carry a `role`.
        answered = next(
            (s for s in reversed(trace.steps) if s.kind == "call" and s.ok and "role" not in s.detail), None
        )
        ref_model, ref_price = self.reference_price(trace.route)
        ref_cost = cost(ref_price, answered.usage or Usage()) if (answered and ref_price) else None
        if answered is not None and "saved_usd" in answered.detail:  # a cache hit: what it saved
            ref_cost = answered.detail["saved_usd"]
        feature = feature_of(req)
        try:
            rec = record_from_trace(
                trace,
                ts=time.time(),
                client_format=ctx.client_format or "",
                stream=stream,
                status=status,
                error_kind=error.kind if error else None,
                error_message=error.message if error else None,
                decision=answered.name if answered else None,
                locality=answered.locality if answered else None,
                model=answered.model if answered else None,
                provider=answered.provider if answered else None,
                feature=feature[:MAX_MODEL_NAME] if feature else None,  # the client's text: bounded
                requested_model=str(ctx.notes.get("requested_model") or req.model)[:MAX_MODEL_NAME],
                reference_model=ref_model,
                reference_cost_usd=ref_cost,
                latency_ms=latency_ms,
                ttft_ms=ttft_ms,
                shadow=shadow,
                # learning/triage; who decided an approval and why (tierwise.dispatch.approvals)
                extra={k: ctx.notes[k] for k in ("task_type", "complexity", "approval") if k in ctx.notes}
                | ({"key": ctx.notes["key_name"]} if ctx.notes.get("key_name") else {}),  # who asked: feedback's owner
                arm=ctx.notes.get("arm"),  # the `split` policy's arm
            )
            if self.store_text:
                rec.prompt, rec.answer = stored_text(req, ctx.notes.get("answer_text"))
            self.ledger.submit(rec)
        except Exception:  # the ledger must never break a request
            log.exception("ledger: could not record request %s", trace.request_id)
