"""Prometheus metrics: OTel GenAI names where the conventions have them, tierwise's own beside them.

One `Metrics` per gateway, on its own registry (no global state). In `serve --workers N` the
process-shared mode of prometheus-client is used (PROMETHEUS_MULTIPROC_DIR, set by `serve`) and a
scrape of any worker adds up all of them. Most values are fed from one place, `observe`, called
when the gateway records a finished request; other parts of tierwise use the small functions at
the end of this module (`count_cache`, `record_privacy_action`, `set_budget_remaining`, ...).
The request path does not touch prometheus-client (its lock and checks cost ~2 µs an operation):
it adds into plain lists held per (metric, labels) — a counter's sum, a histogram's bucket
counts — found through memos keyed by the request's raw labels, and `flush` moves those into the
prometheus-client children at each scrape (and, under `--workers`, every second, so a scrape that
lands on one worker sees the others' counts). With the C extension `_metricspack` built (setup.py),
`observe` adds a request into those lists in C (`observe_python` is the same in Python: the fallback).
Everything runs on the event loop's thread, so the dicts need no lock.
"""

from __future__ import annotations

import asyncio
import os
import time
from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as _mp

from tierwise.observability.vocab import Bounded, call_error_type, reason_label

BUDGETS_EVERY = 5.0  # seconds between two reads of the global budgets for the gauge (one HGETALL each)
BUDGETS_WAIT = 2.0  # seconds a scrape waits for them at most

try:
    from tierwise.observability import _metricspack as native  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: `observe_python` does it all
    native = None

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# OTel GenAI recommended buckets.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
# The gateway's own time is sub-millisecond: finer buckets.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

STATUS_CLASS = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
BREAKER_VALUES = {"closed": 0, "half-open": 1, "half_open": 1, "open": 2}

CALL_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model",
               "route", "error_type")


FLUSH_S = 1.0  # under --workers: how stale another worker's counts can be in a scrape
MEMO_MAX = 10_000  # memoised label combinations (each bounded by `max_label_values` per label anyway)


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    def __init__(self, cap: int, *, routes: list[str], models: list[str], providers: list[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.mp = multiprocess()
        r = self.registry
        self.route = Bounded(cap, routes)
        self.model = Bounded(cap, models)
        self.provider = Bounded(cap, providers)
        self.name = Bounded(cap)  # verifiers, roles, budgets, cache results, privacy actions
        # Capabilities come from the workers' own presence records (untrusted): their own budget, so a
        # worker naming many cannot turn the names above into `other`.
        self.capability = Bounded(cap)
        self.requests = Counter("tierwise_requests", "Requests the gateway finished",
                                ("route", "api", "stream", "status_class", "error_type"), registry=r)
        self.server_duration = Histogram(
            "gen_ai_server_request_duration_seconds", "Time from request to the end of the answer (GenAI server)",
            ("route", "api", "gen_ai_response_model", "error_type"), buckets=DURATION_BUCKETS, registry=r)
        self.server_ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds", "Time to the first chunk of a streamed answer",
            ("route", "gen_ai_provider_name", "gen_ai_response_model"), buckets=TTFT_BUCKETS, registry=r)
        self.overhead = Histogram(
            "tierwise_gateway_overhead_seconds", "Gateway time excluding the time spent waiting on upstreams",
            ("route", "stream"), buckets=OVERHEAD_BUCKETS, registry=r)
        self.call_duration = Histogram(
            "gen_ai_client_operation_duration_seconds", "Upstream model call duration (GenAI client)",
            CALL_LABELS, buckets=DURATION_BUCKETS, registry=r)
        self.call_ttft = Histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds", "Upstream time to first chunk (streams)",
            CALL_LABELS[:5], buckets=TTFT_BUCKETS, registry=r)
        self.tokens = Histogram(
            "gen_ai_client_token_usage", "Tokens per upstream call by gen_ai_token_type (input, output, cache_read)",
            (*CALL_LABELS[:5], "gen_ai_token_type"), buckets=TOKEN_BUCKETS, registry=r)
        self.cost = Counter("tierwise_cost_usd", "USD spent on upstream calls",
                            ("route", "gen_ai_provider_name", "gen_ai_response_model"), registry=r)
        self.reference_cost = Counter(
            "tierwise_reference_cost_usd", "USD the answered calls would have cost on the reference model "
            "(savings = reference - cost)", ("route",), registry=r)
        self.decisions = Counter("tierwise_route_decisions", "Policy decisions by reason (closed vocabulary)",
                                 ("route", "policy", "reason"), registry=r)
        self.answered = Counter("tierwise_answered", "Requests by the model that answered and its locality",
                                ("route", "gen_ai_response_model", "locality"), registry=r)
        self.verdicts = Counter("tierwise_verifier_verdicts", "Verifier verdicts", ("verifier", "verdict"),
                                registry=r)
        self.escalations = Counter("tierwise_escalations", "Requests a local model started and a remote one "
                                   "answered", ("route",), registry=r)
        self.helper_calls = Counter("tierwise_helper_calls", "Calls made for a policy, not to answer "
                                    "(advisor, verify, judge, summary)", ("route", "role"), registry=r)
        self.cache = Counter("tierwise_cache_lookups", "Answer cache lookups by result", ("result",), registry=r)
        # The cache's store outside this process (Redis, sqlite): an outage was only misses, like a cold cache.
        self.cache_store_up = Gauge("tierwise_cache_store_up", "1 while the answer cache's store answers, 0 in an "
                                    "outage", registry=r, multiprocess_mode="livemin")
        self.cache_store_errors = Counter("tierwise_cache_store_errors", "Answer cache lookups and stores that "
                                          "failed (each served uncached)", registry=r)
        self.budget_remaining = Gauge("tierwise_budget_remaining_usd", "USD left in a budget", ("budget",),
                                      registry=r, multiprocess_mode="livemostrecent")
        self.budget_refusals = Counter("tierwise_budget_refusals", "Requests refused by a budget", ("budget",),
                                       registry=r)
        self.breaker = Gauge("tierwise_breaker_state", "Circuit breaker state (0 closed, 1 half-open, 2 open)",
                             ("deployment",), registry=r, multiprocess_mode="livemax")
        self.sandbox = Counter("tierwise_sandbox_runs", "Sandboxed code runs by outcome", ("outcome",), registry=r)
        self.privacy = Counter("tierwise_privacy_actions", "Privacy guard actions", ("action", "data_class"),
                               registry=r)
        self.workers = Gauge("tierwise_workers_present", "Workers present, by capability", ("capability",),
                             registry=r, multiprocess_mode="livemostrecent")
        self.spans_dropped = Counter("tierwise_trace_spans_dropped", "Traced requests dropped (export queue full "
                                     "or receiver failing)", registry=r)
        # The ledger's writer: what waits for it, and what the memory bound (ledger.max_queued) sent elsewhere.
        self.ledger_queued = Gauge("tierwise_ledger_queued_records", "Records held in memory for the ledger's "
                                   "writer", registry=r, multiprocess_mode="livesum")
        self.ledger_journal_only = Gauge("tierwise_ledger_journal_only_records", "Records waiting for the "
                                         "ledger's writer in the journal only", registry=r,
                                         multiprocess_mode="livesum")
        self.ledger_spilled = Counter("tierwise_ledger_records_spilled", "Records that waited in the journal "
                                      "only (the ledger's memory bound reached)", registry=r)
        self.ledger_dropped = Counter("tierwise_ledger_records_dropped", "Records not written to the ledger: "
                                      "its memory bound reached with no journal to take them", registry=r)
        self.ledger_journal_bytes = Gauge("tierwise_ledger_journal_bytes", "Disk used by the ledger's journal "
                                          "files (bounded by ledger.journal.max_bytes)", registry=r,
                                          multiprocess_mode="livesum")
        self.ledger_not_journaled = Counter("tierwise_ledger_records_not_journaled", "Records the ledger's journal "
                                            "refused: its disk bound reached, or the disk", registry=r)
        self._ledger_seen = {"spilled": 0, "dropped": 0, "not_journaled": 0}
        self._budgets_read = -BUDGETS_EVERY
        self._cache_errors_seen = 0
        # Per worker process (a `pid` label, only under `serve --workers N`): how the load spreads.
        self.worker_requests = Gauge("tierwise_worker_requests", "Requests finished by each worker process",
                                     registry=r, multiprocess_mode="liveall") if self.mp else None
        self._children: dict[tuple[Any, ...], Any] = {}
        # The request path's sums, kept between flushes (flush moves them out and zeroes them in place,
        # so the memos below can hold the lists themselves): counters [sum], histograms [sum, buckets...].
        self._counts: dict[tuple[Any, tuple[str, ...]], list[float]] = {}
        self._hists: dict[tuple[Any, tuple[str, ...]], list[float]] = {}
        # What a request or a call with the same labels updates, resolved once (see `observe`).
        self._req_memo: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._call_memo: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._misc_memo: dict[tuple[Any, ...], list[float]] = {}
        self._armed = False
        self._reasons: dict[str, str] = {}
        self.use_native(True)

    def use_native(self, on: bool) -> None:
        """`observe` in C when the extension was built (and `on`: tests and benchmarks turn it off), else in
        Python. The C updater falls back to `observe_python` for a record it declines (`fallbacks` counts them)."""
        self.native = native.Updater(
            self._req_memo, self._call_memo, self._misc_memo, self._req_miss, self._call_miss, self._verdict_miss,
            self._decision_miss, self._cache_miss, self._breaker_of, self._guard_cells,
            self._per_request_mp if self.mp else None, self.observe_python) if on and native is not None else None
        self.observe = self.native.observe if self.native is not None else self.observe_python

    # ------------------------------------------------------------------ label children

    def child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    def _cell(self, metric: Any, labels: tuple[str, ...]) -> list[float]:
        k = (metric, labels)
        c = self._counts.get(k)
        if c is None:
            c = self._counts[k] = [0.0]
        return c

    def _hist(self, metric: Any, labels: tuple[str, ...]) -> tuple[list[float], tuple[float, ...]]:
        k = (metric, labels)
        h = self._hists.get(k)
        if h is None:
            h = self._hists[k] = [0.0] * (len(metric._upper_bounds) + 1)
        return h, tuple(metric._upper_bounds)

    def inc(self, metric: Any, labels: tuple[str, ...], v: float = 1.0) -> None:
        self._cell(metric, labels)[0] += v
        if not self._armed and self.mp:
            self._arm()

    def _observe(self, metric: Any, labels: tuple[str, ...], v: float) -> None:
        h, bounds = self._hist(metric, labels)
        h[0] += v
        h[1 + bisect_left(bounds, v)] += 1

    def _reason(self, reason: str) -> str:
        label = self._reasons.get(reason)
        if label is None:
            label = reason_label(reason)
            if len(self._reasons) < MEMO_MAX:  # reasons repeat (they name rules and models)
                self._reasons[reason] = label
        return label

    def _arm(self) -> None:
        try:
            asyncio.get_running_loop().call_later(FLUSH_S, self._tick)
            self._armed = True
        except RuntimeError:  # no loop (library use): the next scrape flushes
            pass

    def _tick(self) -> None:
        self._armed = False
        self.flush()

    def flush(self) -> None:
        """Move the request path's sums into prometheus-client (call on the event loop's thread)."""
        for (metric, labels), c in self._counts.items():
            if c[0]:
                self.child(metric, *labels).inc(c[0])
                c[0] = 0.0
        for (metric, labels), h in self._hists.items():
            if not any(h):
                continue
            ch = self.child(metric, *labels)
            ch._sum.inc(h[0])
            for i in range(1, len(h)):
                if h[i]:
                    ch._buckets[i - 1].inc(h[i])
                    h[i] = 0.0
            h[0] = 0.0

    # ------------------------------------------------------------------ one finished request

    def _request_slots(self, rec: Any) -> tuple[Any, ...]:
        """What every request with these labels updates: resolved once, then memoised by `observe`."""
        route = self.route(rec.route)
        stream = "true" if rec.stream else "false"
        err = rec.error_type
        a = rec.answered
        resp_model = self.model(a.model) if a is not None else ""
        return (
            route,
            self._cell(self.requests, (route, rec.api, stream, STATUS_CLASS.get(rec.status // 100, "other"), err)),
            self._hist(self.server_duration, (route, rec.api, resp_model, err)),
            self._hist(self.overhead, (route, stream)),
            self._cell(self.answered, (route, resp_model, a.locality or "")) if a is not None else None,
            self._hist(self.server_ttft, (route, self.provider(a.provider), resp_model))
            if a is not None and rec.stream else None,
            self._cell(self.reference_cost, (route,)),
            self._cell(self.escalations, (route,)),
        )

    def _call_slots(self, route: str, s: Any, role: Any, stream: bool) -> tuple[Any, ...]:
        provider = self.provider(s.provider)
        model = self.model(s.model)
        cerr = call_error_type(s.ok, s.status, s.reason)
        labels5 = ("chat", provider, model, model, route)
        return (
            self._hist(self.call_duration, (*labels5, cerr)),
            self._hist(self.call_ttft, labels5) if stream else None,
            self._hist(self.tokens, (*labels5, "input")),
            self._hist(self.tokens, (*labels5, "output")),
            self._hist(self.tokens, (*labels5, "cache_read")),
            self._cell(self.cost, (route, provider, model)),
            self._cell(self.helper_calls, (route, self.name(str(role)))) if role is not None else None,
        )

    # The memo misses and the rarer per-step work, shared by both writers of the sums (the Python one below and
    # the C one, `_metricspack`, which calls these when a key is new): label values are resolved, and
    # `Bounded` names registered, in the same order either way.

    def _req_miss(self, rec: Any, key: tuple[Any, ...]) -> tuple[Any, ...]:
        r = self._request_slots(rec)
        if len(self._req_memo) < MEMO_MAX:
            self._req_memo[key] = r
        return r

    def _call_miss(self, route: str, s: Any, role: Any, stream: bool, key: tuple[Any, ...]) -> tuple[Any, ...]:
        c = self._call_slots(route, s, role, stream)
        if len(self._call_memo) < MEMO_MAX:
            self._call_memo[key] = c
        return c

    def _verdict_miss(self, s: Any, key: tuple[Any, ...]) -> list[float]:
        return self._misc(key, self.verdicts, (self.name(s.name), "pass" if s.ok else "fail"))

    def _decision_miss(self, route: str, s: Any, key: tuple[Any, ...]) -> list[float]:
        return self._misc(key, self.decisions, (route, self.name(s.name), self._reason(s.reason)))

    def _cache_miss(self, rec: Any, key: tuple[Any, ...]) -> list[float]:
        return self._misc(key, self.cache, (self.name(str(rec.cache)),))

    def _breaker_of(self, rec: Any, s: Any) -> None:
        """A failed call: its deployment's breaker state, as the gauge reads it now (a set: doing it twice is
        doing it once)."""
        if s.reason != "circuit open":
            br = rec.breakers.get(s.name)
            if br is not None:
                self.child(self.breaker, self.model(s.name)).set(BREAKER_VALUES.get(br.breaker.state, 0))

    def _per_request_mp(self) -> None:
        """Under `--workers`: the flush timer, and this worker's request count."""
        if not self._armed:
            self._arm()
        self.worker_requests.inc()  # type: ignore[union-attr]

    def observe_python(self, rec: Any) -> None:
        """Everything one finished request says (`rec` is an observer.Finished), in Python: `observe` when the
        C extension was not built, and for a record it declines (see `_metricspack.c`; the same sums).

        Label values are resolved once per combination (route, API, status, model, ...) and the
        result memoised: a request then costs a few dictionary look-ups and one bisect per histogram."""
        a = rec.answered
        stream = rec.stream
        rkey = (rec.route, rec.api, stream, rec.status, rec.error_type,
                (a.model, a.provider, a.locality) if a is not None else None)
        r = self._req_memo.get(rkey) or self._req_miss(rec, rkey)
        route, n_requests, (dur, dur_b), (ovh, ovh_b), answered, server_ttft, ref_cost, escalations = r
        n_requests[0] += 1
        if self.mp:
            self._per_request_mp()
        v = rec.latency_ms / 1000
        dur[0] += v
        dur[1 + bisect_left(dur_b, v)] += 1
        upstream_ms = 0.0
        local_seen = False
        escalated = False
        memo = self._call_memo
        misc = self._misc_memo
        for s in rec.steps:
            kind = s.kind
            if kind == "call":
                role = s.detail.get("role") if s.detail else None
                ok = s.ok
                ckey = (route, s.name, s.provider, s.model, ok, s.status, None if ok else s.reason, role, stream)
                c = memo.get(ckey) or self._call_miss(route, s, role, stream, ckey)
                ms = s.latency_ms or 0.0
                upstream_ms += ms
                (h, b) = c[0]
                v = ms / 1000
                h[0] += v
                h[1 + bisect_left(b, v)] += 1
                if c[1] is not None and s.ttft_ms is not None:
                    (h, b) = c[1]
                    v = s.ttft_ms / 1000
                    h[0] += v
                    h[1 + bisect_left(b, v)] += 1
                u = s.usage
                if u is not None:
                    (h, b) = c[2]
                    n = u.input_tokens
                    h[0] += n
                    h[1 + bisect_left(b, n)] += 1
                    (h, b) = c[3]
                    n = u.output_tokens
                    h[0] += n
                    h[1 + bisect_left(b, n)] += 1
                    if u.cache_read_tokens:
                        (h, b) = c[4]
                        n = u.cache_read_tokens
                        h[0] += n
                        h[1 + bisect_left(b, n)] += 1
                if s.cost:
                    c[5][0] += s.cost
                if role is not None:
                    c[6][0] += 1
                elif s.locality == "local":
                    local_seen = True
                elif ok and s.locality == "remote" and local_seen:
                    escalated = True
                if ok is False:
                    self._breaker_of(rec, s)
            elif kind == "verdict":
                key: tuple[Any, ...] = ("v", s.name, s.ok)
                cell = misc.get(key) or self._verdict_miss(s, key)
                cell[0] += 1
            else:
                name = s.name
                key = ("d", route, name, s.reason)
                cell = misc.get(key) or self._decision_miss(route, s, key)
                cell[0] += 1
                if name == "privacy" or name == "budget":
                    for cell in self._guard_cells(name, s.detail):
                        cell[0] += 1
        if escalated:
            escalations[0] += 1
        if rec.cache is not None:  # the answer cache's outcome: hit | semantic_hit | miss | bypass
            key = ("c", rec.cache)
            cell = misc.get(key) or self._cache_miss(rec, key)
            cell[0] += 1
        if answered is not None:
            answered[0] += 1
            if server_ttft is not None and rec.ttft_ms is not None:
                (h, b) = server_ttft
                v = rec.ttft_ms / 1000
                h[0] += v
                h[1 + bisect_left(b, v)] += 1
        if rec.reference_cost:
            ref_cost[0] += rec.reference_cost
        overhead_ms = rec.latency_ms - upstream_ms
        if overhead_ms >= 0:
            v = overhead_ms / 1000
            ovh[0] += v
            ovh[1 + bisect_left(ovh_b, v)] += 1

    def _misc(self, key: tuple[Any, ...], metric: Any, labels: tuple[str, ...]) -> list[float]:
        """The cell of a decision, verdict or cache result, memoised by its raw `key`."""
        c = self._cell(metric, labels)
        if len(self._misc_memo) < MEMO_MAX:
            self._misc_memo[key] = c
        return c

    def _guard_cells(self, name: str, detail: dict[str, Any]) -> list[list[float]]:
        """Privacy crossings and budget refusals, from the decision steps those guards record: the cells to add
        one to (one per data class crossed; the budget refusing)."""
        if name == "privacy":
            p = detail.get("privacy")
            if isinstance(p, dict):
                action = self.name(str(p.get("action", "other")))
                classes = p.get("classes") or ["none"]  # {class: count} or a list of classes
                return [self._cell(self.privacy, (action, self.name(str(c))))
                        for c in (classes if isinstance(classes, (list, dict)) else [classes])]
        elif detail.get("action") == "refuse":
            return [self._cell(self.budget_refusals, (self.name(str(detail.get("budget", "unknown"))),))]
        return []

    # ------------------------------------------------------------------ scrape

    def refresh_breakers(self, deployments: dict[str, Any]) -> None:
        for name, d in deployments.items():
            self.child(self.breaker, self.model(name)).set(BREAKER_VALUES.get(d.breaker.state, 0))

    async def refresh_budgets(self, spend: Any) -> None:
        """`tierwise_budget_remaining_usd` of each global budget with a USD cap, read from its store (with Redis,
        what every replica spent) at most every BUDGETS_EVERY seconds (the dashboard asks every second). Nothing
        set it: the gauge and the dashboard's budgets panel stayed empty. A store that does not answer leaves
        the last figures (/health says the store is unavailable)."""
        if spend is None or not spend.active or not spend.budgets:
            return
        now = time.monotonic()
        if now - self._budgets_read < BUDGETS_EVERY:
            return
        self._budgets_read = now
        try:
            st = await asyncio.wait_for(spend.status(only_global=True), BUDGETS_WAIT)  # no SCAN (session 24, review24c)
        except Exception:  # unreachable or slow: the scrape goes on without it
            return
        for row in st["budgets"]:
            if row["per"] == "global" and "usd_remaining" in row:
                self.child(self.budget_remaining, self.name(row["budget"])).set(row["usd_remaining"])

    async def refresh_cache(self, cache: Any) -> None:
        """`tierwise_cache_store_up` and `_errors` of the answer cache's store, probed (one expiring write, waited
        at most its `redis_timeout`) when nothing was heard from it for 10 s, so a scrape sees an outage, and its
        end, without traffic."""
        health = getattr(cache, "health", None)
        if health is None:  # no cache, or the memory backend: nothing outside this process to fail
            return
        await cache.store_health()
        self.cache_store_up.set(0 if health.down_since is not None else 1)
        self.cache_store_errors.inc(health.errors - self._cache_errors_seen)
        self._cache_errors_seen = health.errors

    def refresh_ledger(self, ledger: Any) -> None:
        if ledger is None:
            return
        b = ledger.backlog()
        self.ledger_queued.set(b["in_memory"])
        self.ledger_journal_only.set(b["in_journal_only"])
        self.ledger_journal_bytes.set(b["journal_bytes"])
        for name, counter in (("spilled", self.ledger_spilled), ("dropped", self.ledger_dropped),
                              ("not_journaled", self.ledger_not_journaled)):
            counter.inc(b[name] - self._ledger_seen[name])
            self._ledger_seen[name] = b[name]

    def exposition(self) -> bytes:
        if self.mp:  # (flushed by the caller, on the loop's thread)
            reg = CollectorRegistry()
            _mp.MultiProcessCollector(reg)
            return generate_latest(reg)
        return generate_latest(self.registry)


# ---------------------------------------------------------------------------- recording API
# For other parts of tierwise: pass the request's Context (or the Gateway); each call is one
# line and does nothing when metrics are off.


def _of(owner: Any) -> Metrics | None:
    gw = getattr(owner, "services", owner)  # a Context carries the gateway as `services`
    obs = getattr(gw, "observer", None)
    return getattr(obs, "metrics", None)


def count_cache(owner: Any, result: str) -> None:
    """`result`: hit, semantic_hit, miss, store, bypass."""
    m = _of(owner)
    if m is not None:
        m.inc(m.cache, (m.name(result),))


def record_privacy_action(owner: Any, action: str, data_class: str) -> None:
    """`action`: redact, keep_local, block, restore ...; `data_class`: the class that triggered it."""
    m = _of(owner)
    if m is not None:
        m.inc(m.privacy, (m.name(action), m.name(data_class)))


def set_budget_remaining(owner: Any, budget: str, usd: float) -> None:
    m = _of(owner)
    if m is not None:
        m.child(m.budget_remaining, m.name(budget)).set(usd)


def record_budget_refusal(owner: Any, budget: str) -> None:
    m = _of(owner)
    if m is not None:
        m.inc(m.budget_refusals, (m.name(budget),))


def record_sandbox_run(owner: Any, outcome: str) -> None:
    """`outcome`: passed, failed, timeout, refused, busy."""
    m = _of(owner)
    if m is not None:
        m.inc(m.sandbox, (m.name(outcome),))


def set_workers_present(owner: Any, capability: str, count: int) -> None:
    m = _of(owner)
    if m is not None:
        m.child(m.workers, m.capability(capability)).set(count)
