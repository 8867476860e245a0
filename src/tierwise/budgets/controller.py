"""The request path's seam for budgets and rate limits.

`admit` runs once per chat request, after routing: it reserves the request's worst-case cost
(estimated input tokens x the dearest input price the route can reach + max output tokens x the
dearest output price, per choice) in every budget that covers it, and counts it in every rate
limit, in one store call. A spent budget refuses the request (429 in the client's schema,
naming the budget and when it resets) or downgrades it to the route's local tier; a rate limit
refuses with Retry-After. `settle` runs where the request's ledger row is made: it replaces
the reservation with what the frontier calls really cost (a cancelled stream: what it
produced), once per request id.

Local models never consume a frontier budget: only calls to `locality: remote` providers are
counted, and a route that reaches no remote model reserves nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from tierwise import pricing
from tierwise.budgets.background import BILLED, COVERS
from tierwise.budgets.checks import (
    BudgetCheck,
    RateCheck,
    RateSettlement,
    Refusal,
    Settlement,
)
from tierwise.budgets.config import BudgetsConfig, RateLimitsConfig
from tierwise.budgets.dimension_values import OVERFLOW, DimensionValues
from tierwise.budgets.downgraded import Downgraded
from tierwise.budgets.plan import (
    Budget,
    RatePlan,
    RoutePlan,
    StaticCharge,
    compile_budget,
    dimension_value,
    key_part,
    owner_part,
    pair_part,
    reachable,
)
from tierwise.budgets.refusals import budget_spent, check_output_cap, rate_error
from tierwise.budgets.status_rows import bucket_row
from tierwise.budgets.store_health import StoreHealth
from tierwise.errors import TierwiseError
from tierwise.pricing import HOUR, NO_MARK, SEARCH_RESULT_TOKENS, cache_mark, searches_allowed, write_ratios
from tierwise.tokens import PER_FETCHED_DOCUMENT, estimate_request, fetched_documents_in, hidden_input

log = logging.getLogger("tierwise.budgets")

NOTE, SEARCHED = "spend", "budget_searched"  # ctx.notes keys: the held reservation; its searches' results
MILLION = 1_000_000
SETTLED_TTL = 600  # seconds a settlement marker stays (a repeated settlement comes seconds after the first)
ANONYMOUS = "anonymous"  # the key name of requests to a gateway without keys
MAX_RENEWED = 6 * 3600  # seconds a request's reservation is renewed at most (streams end within timeouts.stream_total)


class StoreUnavailable(TierwiseError):
    status = 503
    kind = "overloaded_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.retry_after = 5.0


@dataclass(slots=True)
class Held:
    """What admission took with check records, kept on the request's context until settlement (the
    memory store's `take` keeps its own handle there instead)."""

    rid: str
    budgets: list[BudgetCheck]
    models: list[str | None]  # per budget check: the model of a per-model budget
    rates: list[RateCheck]
    minute: int
    est_in: int
    plan: RoutePlan
    windows: list[Any] = field(default_factory=list)  # per budget check: its window (a rolling one's slot moves on)


class Refused:
    """The target of a request its budget refused: raises the refusal when called. The app puts it
    behind the answer cache, so a request the cache can answer ($0) is still served."""

    name = "budget"

    def __init__(self, error: TierwiseError) -> None:
        self.error = error

    async def complete(self, req: Any, ctx: Any) -> Any:
        raise self.error

    async def stream(self, req: Any, ctx: Any) -> Any:
        raise self.error


class SpendController:
    def __init__(self, budgets: BudgetsConfig | None, rates: RateLimitsConfig | None, gateway: Any) -> None:
        self.cfg = budgets or BudgetsConfig()
        self.rate_cfg = rates or RateLimitsConfig()
        self.gw = gateway
        self.budgets = [compile_budget(b) for b in self.cfg.limits]
        self.active = bool(self.budgets or self.rate_cfg.limits)
        sc = self.cfg.store
        self.prefix = sc.key_prefix
        self.fits = self.cfg.admit == "fits"
        self.default_out = self.cfg.default_max_output_tokens  # (read per request: a pydantic field is slow to read)
        self.max_out = self.cfg.max_output_tokens
        self.ttl = self.cfg.reservation_ttl
        self.fail_open = sc.on_store_error == "fail_open"
        self._plans: dict[tuple[str, str], RoutePlan] = {}
        self._call_plans: dict[tuple[str, str, str, bool], RoutePlan] = {}  # (route, key, model, background)
        self.values = DimensionValues(self.cfg.max_dimension_values)  # bounds the client-chosen buckets
        self._pending: set[asyncio.Task[Any]] = set()
        self._last_warn = 0.0
        self._uncounted = 0
        # Request ids holding a reservation in the shared store: their deadlines are renewed every third of
        # reservation_ttl, so the deadline reclaims only a dead gateway's reservations. Before, a request that
        # ran longer than reservation_ttl (streams may run for timeouts.stream_total, an hour) lost its
        # reservation while it ran, and the budget admitted others in its place.
        self._live: dict[str, float] = {}  # request id -> when admitted
        self._renewer: asyncio.Task[None] | None = None
        self.store: Any = None
        self.health = StoreHealth(self.fail_open)  # the shared store's outages: /health, one log line each
        if not self.active:
            return
        if sc.backend == "redis":
            from tierwise.budgets.store_redis import RedisStore

            self.store = RedisStore(sc.redis_url, sc.key_prefix, timeout=sc.timeout,
                                    count_dead=self.cfg.dead_reservations == "count",
                                    ledger_path=getattr(getattr(gateway, "ledger", None), "path", None))
        else:
            from tierwise.budgets.store_memory import MemoryStore

            self.store = MemoryStore()
        self._sync = not self.store.shared
        for name in self.cfg.routes if gateway is not None else ():  # a downgrade must have somewhere to go
            self.plan(name, "")

    # ------------------------------------------------------------------ plans

    def plan(self, route: str, key: str) -> RoutePlan:
        p = self._plans.get((route, key))
        if p is None:
            p = self._plans[(route, key)] = self._build_plan(route, key)
        return p

    def call_plan(self, route: str, key: str, model: str, background: bool = False) -> RoutePlan:
        """The budgets of one model call made for `route` outside its request's own reservation (an ensemble's
        member, a route's context summariser, background work: budgets/background.py): those that cover the
        route, priced at what `model` (a model or a route) can reach. No rate limits (the request counted
        once, its settlement reads the calls' tokens) and no downgrade (a spent budget refuses the call).
        `background`: only the global, route and model budgets, and the key's when `key` is named."""
        p = self._call_plans.get((route, key, model, background))
        if p is None:
            p = self._call_plans[(route, key, model, background)] = self._build_plan(route, key, model, background)
        return p

    def _build_plan(self, route: str, key: str, model: str | None = None, background: bool = False) -> RoutePlan:
        from tierwise.errors import ConfigError
        from tierwise.policies.registry import POLICY_TYPES

        cfg = self.gw.cfg
        deps = self.gw.deployments
        refs = lambda pc: POLICY_TYPES[pc.policy].references(pc)  # noqa: E731
        # (a route's context summariser is not in its plan: it runs on some requests only, and its calls are
        # admitted one by one when it does, budgets/background.py; in the plan, every request of a local route
        # reserved its price, and a spent budget refused requests that would spend nothing)
        models = reachable(route if model is None else model, cfg.routes, refs, deps)
        remote: dict[str, tuple[float, float]] = {}
        ctx_windows: list[int | None] = []
        outs: list[int | None] = []
        five = hour = 1.0
        search = call_fee = 0.0
        for m in models:
            d = deps[m]
            if d.locality != "remote":
                continue
            price = d.price
            remote[m] = (price.input, price.output) if price is not None else (0.0, 0.0)
            ctx_windows.append(d.cfg.context_window)
            outs.append(d.max_output)  # (config's, else the table of known models')
            if price is not None and price.request:
                call_fee = max(call_fee, price.request)
            if d.provider.kind == "anthropic" or pricing.claude_model(d.cfg.model):  # (OpenRouter's Claude too, since costs3)
                f, h = write_ratios(price)
                five, hour = max(five, f), max(hour, h)
                if price is not None and price.web_search:
                    search = max(search, price.web_search / 1000)
        plan = RoutePlan(remote, max((p[0] for p in remote.values()), default=0.0),
                         max((p[1] for p in remote.values()), default=0.0),
                         None if not ctx_windows or None in ctx_windows else max(ctx_windows))  # type: ignore[type-var]
        plan.five, plan.hour, plan.search, plan.call_fee = five, hour, search, call_fee
        plan.max_output = None if not outs or None in outs else max(outs)  # type: ignore[type-var]
        kname = key or ANONYMOUS
        for b in self.budgets:
            if not b.covers_route(route) or not remote:
                continue
            per = b.spec.per
            if background and (per in ("tag", "session", "workflow") or per == "key" and not key):
                continue  # a client's own budgets: background work is the operator's spend
            if per in ("tag", "session", "workflow"):
                plan.dynamic.append(b)
                continue
            if per == "model":
                plan.static += [StaticCharge(b, self._bucket(b, m), m, m) for m in remote if b.matches(m)]
                continue
            value = {"global": "*", "key": kname, "route": route}[per]
            if per == "global" or b.matches(value):
                plan.static.append(StaticCharge(b, self._bucket(b, value), value))
        plan.per_model = any(c.model is not None for c in plan.static)
        if model is not None:
            return plan
        for r in self.rate_cfg.limits:
            if r.routes is not None and route not in r.routes:
                continue
            value = {"global": "*", "key": kname, "route": route, "key_route": f"{kname}/{route}"}[r.per]
            if r.per != "global" and r.match is not None and not any(fnmatchcase(value, g) for g in r.match):
                continue
            part = pair_part(kname, route) if r.per == "key_route" else key_part(value)
            plan.rates.append(RatePlan(r, f"{self.prefix}rl:{r.name}:{part}", value,
                                       float(r.requests_per_minute or -1), float(r.tokens_per_minute or -1)))
        rs = self.cfg.routes.get(route)
        action = (rs.on_exhausted if rs is not None else None) or self.cfg.on_exhausted
        if action == "downgrade":
            to = (rs.downgrade_to if rs is not None else None) or next((m for m in models if deps[m].locality == "local"), None)
            if to is None and rs is not None and rs.on_exhausted == "downgrade":  # its own setting: checked at start
                raise ConfigError(f"budgets: route {route!r} downgrades when a budget is spent, but reaches no "
                                  "local model; set budgets.routes.<route>.downgrade_to", path=f"budgets.routes.{route}")
            if to is not None:  # (else the section's default on a route without a local model: refuse, not a 500)
                plan.downgrade, plan.downgrade_name = self.gw.resolve(to), to
        return plan

    def _bucket(self, b: Budget, value: str) -> str:
        return f"{self.prefix}b:{b.name}:{key_part(value)}"

    # ------------------------------------------------------------------ admission

    async def admit(self, req: Any, ctx: Any, route: str, target: Any, key: Any) -> Any:
        """The target that answers (the route's own, or its local tier); raises when refused."""
        kname = key.name if key is not None else ""
        plan = self._plans.get((route, kname)) or self.plan(route, kname)
        if not plan.static and not plan.dynamic and not plan.rates:
            return target
        return await self._admit(req, ctx, plan, target, kname)

    async def admit_call(self, req: Any, ctx: Any, route: str, model: str, target: Any, key: Any) -> Any:
        """Admit one model call an ensemble makes while serving a request of `route` (`ensemble:<name>` for
        a run of the CLI or MCP): it reserves its worst case in every budget covering the route, and is
        settled with `settle(ctx)` of the call's own context. Raises BudgetExceeded when one is spent."""
        kname = key.name if key is not None else ""
        plan = self.call_plan(route, kname, model)
        if not plan.static and not plan.dynamic:
            return target
        return await self._admit(req, ctx, plan, target, kname)

    async def _admit(self, req: Any, ctx: Any, plan: RoutePlan, target: Any, kname: str, dims: Any = None) -> Any:
        here = now = time.time()
        if not self._sync:  # windows on Redis's clock (a replica past midnight counted in tomorrow's empty bucket)
            if self.store.offset is None:
                try:
                    await self.store.learn_offset()
                except Exception as e:  # the shared store is unreachable
                    return self._store_failed(e, target, ctx)
            now += self.store.offset
        # Input tokens, bounded above: a third of the body's bytes (about 4 bytes make a token of prose or
        # code), or the character estimate when the body's length is unknown; never more than the largest
        # context window of the route's remote models.
        cl = req.headers.get("content-length")
        # (an image or a document named by URL is a few bytes of the body and up to a thousand tokens, or a whole
        # context window, of the upstream's count: a request of a hundred image URLs reserved a fiftieth of what
        # it cost, and concurrent ones overspent by as many times)
        if cl and cl.isdigit():
            est_in = int(cl) // 3 + 16 + hidden_input(req)
            if req.source_body is None:  # a Responses request: its stored conversation is not in the body
                est_in = max(est_in, estimate_request(req) + PER_FETCHED_DOCUMENT * fetched_documents_in(req))
        else:
            est_in = estimate_request(req) + PER_FETCHED_DOCUMENT * fetched_documents_in(req)
        out = req.max_tokens or self.default_out
        if plan.max_context is not None:  # no answer is longer than the window
            est_in, out = min(est_in, plan.max_context), min(out, plan.max_context)
        if plan.max_output is not None:  # (each call's max_tokens is lowered to its model's: providers/window.py)
            out = min(out, plan.max_output)
        if out > self.max_out and (plan.static or plan.dynamic):  # (a 400: refusals.py)
            check_output_cap(req, self.max_out)
        if plan.hour > 1.0 and (plan.static or plan.dynamic):
            # Cache writes bill the input at up to `five` (a five-minute write) or `hour` (a one-hour write) times its
            # price: reserved as such, or N such requests in flight overspent by N times the difference (one-hour
            # writes before review29c; five-minute writes and marks nested in a tool_result's content before costs2)
            mark = cache_mark(req)
            if mark != NO_MARK:
                est_in = int(est_in * (plan.hour if mark == HOUR else plan.five))
        if req.max_tokens is None and (plan.static or plan.dynamic):
            # The reservation counts `out` tokens of answer: the upstream is told to stop there. Left unset, an
            # OpenAI upstream wrote until its own limit (16,000 tokens for a 4,096-token reservation), and N
            # concurrent requests overspent by N times the difference (3 gateways, a $1 budget: $4.08 spent).
            req.max_tokens = out
        searches = searches_allowed(req) if plan.search else 0  # (billed per search, and their results as input)
        fetched = pricing.fetched_tokens_allowed(req) if plan.search else 0  # (web fetch: the pages, billed as input)
        if searches or fetched:  # (reserved, never billed: `settle` takes them off a cut call's input, review31c)
            est_in += ctx.notes.setdefault(SEARCHED, searches * SEARCH_RESULT_TOKENS + fetched)  # (one a context)
        n = req.n if req.n > 1 else 1
        worst = (est_in * plan.in_price + out * plan.out_price) * n / MILLION
        fee = (plan.search * searches + max(plan.call_fee, pricing.plugin_fee(req))) * n  # (OpenRouter's web plugin)
        worst += fee
        rid = ctx.trace.request_id
        if self._sync and not plan.dynamic:
            # One node, budgets known from the route and key: no check records (the common case).
            taken = self.store.take(rid, plan, est_in, out, n, worst, now, now + self.ttl, self.fits, fee)
            if taken is not None:  # the store's handle on the request: settled with `give`
                ctx.notes[NOTE] = taken
                ctx.notes[COVERS] = [n, req if dims is None else dims]  # its further calls: admitted one by one
                return target
            # refused: the records below find which limit, for the answer's message
        budgets: list[BudgetCheck] = []
        models: list[str | None] = []
        windows: list[Any] = []
        if plan.static or plan.dynamic:
            tok = (est_in + out) * n
            for c in plan.static:
                b, w = c.budget, c.budget.window
                usd = worst
                if c.model is not None:
                    pin, pout = plan.remote[c.model]
                    usd = (est_in * pin + out * pout) * n / MILLION + fee
                budgets.append(BudgetCheck(c.key, w.slot(now), w.nslots, b.usd_limit, b.tok_limit, usd, tok,
                                           w.expire_s))
                models.append(c.model)
                windows.append(w)
            src = req if dims is None else dims  # (a summariser's call: the client's request names the values)
            for b in plan.dynamic:
                v = dimension_value(b.spec.per, src.headers, src.metadata)
                if v is None or not b.matches(v):
                    continue
                w = b.window
                v = self.values.bucket_value(b.name, v, now, w.expire_s, kname)
                # A session or workflow is the naming key's own (and so is its overflow bucket): another key
                # naming the same value counted in it, and spent it (a tag is a label every key may share).
                bucket = self._bucket(b, v) if not kname or (b.spec.per == "tag" and v != OVERFLOW) \
                    else f"{self.prefix}b:{b.name}:{owner_part(kname)}/{key_part(v)}"
                budgets.append(BudgetCheck(bucket, w.slot(now), w.nslots, b.usd_limit, b.tok_limit,
                                           worst, tok, w.expire_s))
                models.append(None)
                windows.append(w)
        # A rate limit's tokens count the answer's cap at admission too (the settlement corrects it to the real
        # total): counting only the input, 180 concurrent clients over 3 gateways got 3.8x a tokens_per_minute
        # limit through, every admitted request's answer arriving after the admissions (bench/RESULTS.md).
        rates = [RateCheck(r.key, r.rpm, r.tpm, (est_in + out) * n) for r in plan.rates]
        if not budgets and not rates:
            return target
        minute = int(now // 60)
        frac = (now - minute * 60) / 60.0
        try:
            if self._sync:
                refusal = self.store.reserve_now(rid, budgets, rates, now=now, minute=minute, frac=frac,
                                                 deadline=now + self.ttl, fits=self.fits)
            else:
                refusal = await self.store.reserve(rid, budgets, rates, now=now, minute=minute, frac=frac,
                                                   deadline=now + self.ttl, fits=self.fits)
        except Exception as e:  # the shared store is unreachable (or answered nonsense)
            return self._store_failed(e, target, ctx)
        if self.health.down_since is not None:
            self.health.answered()
        if refusal is None:
            ctx.notes[NOTE] = Held(rid, budgets, models, rates, minute, est_in, plan, windows)
            if budgets:
                ctx.notes[COVERS] = [n, req if dims is None else dims]
            if not self._sync and budgets:
                self._live[rid] = here  # (this host's clock: the renewer's)
                if self._renewer is None:
                    self._renewer = asyncio.ensure_future(self._renew())
            return target
        if refusal.kind == "rate":
            raise rate_error(plan.rates[refusal.index], refusal, rates[refusal.index], frac)
        return await self._spent(req, ctx, plan, budgets, refusal, rates, now, minute, frac, est_in)

    async def _spent(self, req: Any, ctx: Any, plan: RoutePlan, budgets: list[BudgetCheck], refusal: Refusal,
                     rates: list[RateCheck], now: float, minute: int, frac: float, est_in: int) -> Any:
        err, msg, detail = await budget_spent(self, ctx, plan, budgets, refusal, now)
        if plan.downgrade is None:
            raise err
        ctx.trace.decide("budget", f"{msg}; answered by the local tier ({plan.downgrade_name})",
                         detail={**detail, "action": "downgrade", "to": plan.downgrade_name})
        if rates:  # the downgraded request still counts against the rate limits
            try:
                r = (self.store.reserve_now if self._sync else self.store.reserve)(
                    ctx.trace.request_id, [], rates, now=now, minute=minute, frac=frac, deadline=now + self.ttl,
                    fits=self.fits)
                refused = r if self._sync else await r
            except Exception as e:
                return self._store_failed(e, plan.downgrade, ctx)
            if refused is not None:
                raise rate_error(plan.rates[refused.index], refused, rates[refused.index], frac)
            ctx.notes[NOTE] = Held(ctx.trace.request_id, [], [], rates, minute, est_in, plan)
        return Downgraded(plan.downgrade, plan.downgrade_name, err)  # (refuses as spent if it cannot hold the request)

    def _store_failed(self, e: Exception, target: Any, ctx: Any) -> Any:
        self.health.failed(e)  # (one log line per outage: one per refused request flooded the log)
        if not self.fail_open:
            ctx.trace.decide("budget", "budget store unavailable; refused (fail_closed)")
            raise StoreUnavailable("the gateway cannot check its spend limits right now (budget store "
                                   "unavailable); retry shortly")
        self._warn(e)
        ctx.trace.decide("budget", "budget store unavailable; let through uncounted (fail_open)")
        return target

    def _warn(self, e: BaseException) -> None:
        self._uncounted += 1
        now = time.monotonic()
        if now - self._last_warn >= self.cfg.store.warn_interval or self._last_warn == 0.0:
            log.warning("budgets: STORE UNAVAILABLE (%s): %d request(s) let through WITHOUT budget or rate-limit "
                        "checks since the last warning (on_store_error: fail_open)", type(e).__name__,
                        self._uncounted)
            self._last_warn = now
            self._uncounted = 0

    # ------------------------------------------------------------------ settlement

    def settle(self, ctx: Any) -> None:
        """Replace the request's reservation with its real cost (called where its ledger row is made)."""
        held = ctx.notes.pop(NOTE, None)
        if held is None:
            return
        taken = type(held) is tuple  # `take`'s handle (MemoryStore.Taken: plan at [1][10], estimated input at [5])
        plan, est_in = (held[1][10], held[5]) if taken else (held.plan, held.est_in)
        est_in -= ctx.notes.pop(SEARCHED, 0)  # (a cut call was counted unrun searches' results: $3 for 100)
        remote = plan.remote
        usd_all = tok_all = 0.0
        per_model: dict[str, list[float]] | None = {} if plan.per_model else None
        tokens = 0  # every call's, local ones included: rate limits count them
        billed = ctx.notes.get(BILLED)  # steps admitted and settled on their own (a context summariser's)
        for s in ctx.trace.steps:
            if s.kind != "call":
                continue
            u = s.usage
            if billed is not None and id(s) in billed:
                if u is not None:
                    tokens += u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens
                continue
            price = remote.get(s.name)
            if u is None:
                if s.reason != "cancelled" or s.locality != "remote" or price is None:
                    continue
                # A call cut off while the frontier was answering (the client left: server/limits.py): the provider
                # bills the input it read, and nothing reports it. Counted as the estimated input, or a client could
                # buy frontier input for free by leaving before each answer.
                usd, t = est_in * price[0] / MILLION, est_in
            else:
                t = u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens
                if s.locality != "remote" or price is None:
                    tokens += t
                    continue
                usd = s.cost
                if usd is None:  # a call that failed mid-stream: its cost was not worked out
                    usd = (u.input_tokens * price[0] + u.output_tokens * price[1]) / MILLION
                read = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens  # (all written: no input count)
                if read == 0 and u.output_tokens or s.reason == "cancelled" and (
                        read == 0 or "input_estimated" in s.detail):
                    # An answer without its input count: a call cut or failed before the upstream reported it
                    # (OpenAI reports usage at a stream's end), or an upstream that reports no usage at all; the
                    # provider still bills it. A cut call's estimate is in its ledger row (providers/deployment.py);
                    # the budget counts the larger of it and the reservation's (which also reads the body's length).
                    extra = max(0, est_in - read)
                    usd += extra * price[0] / MILLION
                    t += extra
            tokens += t
            usd_all += usd
            tok_all += t
            if per_model is not None:
                pm = per_model.setdefault(s.name, [0.0, 0.0])
                pm[0] += usd
                pm[1] += t
        now = time.time()
        if taken:  # admitted by the store's `take`
            self.store.give(ctx.trace.request_id, held, (usd_all, tok_all), per_model, tokens - held[3], now, SETTLED_TTL)
            return
        settlements = []
        wnow = now if self._sync else now + (self.store.offset or 0.0)  # (the windows' clock: Redis's)
        for c, m, w in zip(held.budgets, held.models, held.windows, strict=True):
            usd, tok = (usd_all, tok_all) if m is None or per_model is None else per_model.get(m, (0.0, 0.0))
            slot, r_usd, r_tok = c.slot, c.usd, c.tok
            if w.nslots > 1 and w.slot(wnow) - slot >= w.nslots:
                # The request outlasted its rolling window: its reservation's slot is no longer counted, and its
                # cost settled there was counted nowhere (a client whose streams outlast the window spent without
                # limit, before costs2). Counted in the current slot, the reservation left where it lapsed.
                slot, r_usd, r_tok = w.slot(wnow), 0.0, 0
            settlements.append(Settlement(c.key, slot, r_usd, r_tok, usd, int(tok), c.expire_s))
        rates = [RateSettlement(r.key, held.minute, tokens - r.tok) for r in held.rates]
        if self._sync:
            self.store.settle_now(held.rid, settlements, rates, now=now, settled_ttl=SETTLED_TTL)
            return
        self._live.pop(held.rid, None)
        task = asyncio.ensure_future(self._settle_shared(held.rid, settlements, rates, now))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _settle_shared(self, rid: str, settlements: list[Settlement], rates: list[RateSettlement],
                             now: float) -> None:
        try:  # (the store keeps a settlement a store error held back, and tries it again until Redis takes it)
            await self.store.settle(rid, settlements, rates, now=now, settled_ttl=SETTLED_TTL)
        except Exception as e:
            log.warning("budgets: could not settle request %s (%s); its reservation is released after "
                        "reservation_ttl", rid, type(e).__name__)

    async def _renew(self) -> None:
        every = self.ttl / 3
        while True:
            await asyncio.sleep(every)
            if not self._live:
                continue
            old = time.time() - MAX_RENEWED
            for rid in [r for r, t in self._live.items() if t < old]:  # never settled (a bug): left to expire
                del self._live[rid]
            try:
                await self.store.renew(list(self._live), self.ttl, int(self.ttl) + 3600)
            except Exception as e:  # Redis is away: the next turn tries again (a third of the TTL is left)
                log.warning("budgets: could not renew the reservations of %d request(s) in flight (%s)",
                            len(self._live), type(e).__name__)

    # ------------------------------------------------------------------ status and lifecycle

    async def status(self, only_global: bool = False) -> dict[str, Any]:
        """Usage and what remains of every budget bucket in its current window (reservations included); of the
        global budgets only when `only_global` (the metrics gauge: their one bucket each is read by its key, where
        the others are found by a SCAN of the store's whole database)."""
        now = time.time()
        if self.store is not None and not self._sync:
            await self.store.sweep()  # a killed replica's reservations past their deadline are not in flight
            now += self.store.offset if self.store.offset is not None else await self.store.learn_offset()
        rows: list[dict[str, Any]] = []
        for b in self.budgets:
            base = f"{self.prefix}b:{b.name}:"
            glob = b.spec.per == "global"
            if only_global and not glob:
                continue
            found = {} if self.store is None else await self.store.buckets_for(base + "*", exact=True) if glob \
                else await self.store.buckets_for(base)
            if not found and b.spec.per == "global":
                found = {base + "*": {}}
            rows.extend(bucket_row(b, key[len(base):], fields, now) for key, fields in sorted(found.items()))
        held = await self.store.reservations_count() if self.store is not None else 0
        return {"backend": self.cfg.store.backend, "reservations_in_flight": held, "budgets": rows,
                "rate_limits": [r.model_dump(exclude_none=True) for r in self.rate_cfg.limits]}

    async def store_health(self, key_names: list[str]) -> tuple[dict[str, Any], list[str]] | None:
        """For `/health`: the shared store's state, and the routes whose requests (of a key in `key_names`) the
        budgets or rate limits cover, which an unavailable store refuses or lets through uncounted. None without
        a shared store (the memory store cannot be unavailable)."""
        if not self.active or self._sync:
            return None
        state = await self.health.status(self.store.probe, self.cfg.store.timeout)
        covered = []
        if state["status"] != "ok":
            for route in self.gw.cfg.routes:
                plans = [self.plan(route, k) for k in key_names or [""]]
                if any(p.static or p.dynamic or p.rates for p in plans):
                    covered.append(route)
        return state, covered

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=5)
        if self.store is not None:
            await self.store.close()

