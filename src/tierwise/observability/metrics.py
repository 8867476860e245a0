"""Prometheus metrics: OTel GenAI names where the conventions have them, tierwise's own beside them.

One `Metrics` per gateway, on its own registry (no global state). In `serve --workers N` the
process-shared mode of prometheus-client is used (PROMETHEUS_MULTIPROC_DIR, set by `serve`) and a
scrape of any worker adds up all of them. Most values are fed from one place, `observe`, called
when the gateway records a finished request; other parts of tierwise use the small functions at
the end of this module (`count_cache`, `record_privacy_action`, `set_budget_remaining`, ...).
The request path does not touch prometheus-client (its lock and checks cost ~2 µs an operation):
it adds into plain dicts keyed by (metric, labels) — a counter's sum, a histogram's bucket
counts — and `flush` moves those into the prometheus-client children at each scrape (and, under
`--workers`, every second, so a scrape that lands on one worker sees the others' counts).
Everything runs on the event loop's thread, so the dicts need no lock.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as _mp

from tierwise.observability.vocab import Bounded, call_error_type, reason_label

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
        self.name = Bounded(cap)  # verifiers, roles, budgets, capabilities
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
        # Per worker process (a `pid` label, only under `serve --workers N`): how the load spreads.
        self.worker_requests = Gauge("tierwise_worker_requests", "Requests finished by each worker process",
                                     registry=r, multiprocess_mode="liveall") if self.mp else None
        self._children: dict[tuple[Any, ...], Any] = {}
        self._counts: dict[tuple[Any, tuple[str, ...]], float] = {}
        self._hists: dict[tuple[Any, tuple[str, ...]], list[float]] = {}
        self._armed = False
        self._reasons: dict[str, str] = {}

    # ------------------------------------------------------------------ label children

    def child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    def inc(self, metric: Any, labels: tuple[str, ...], v: float = 1.0) -> None:
        k = (metric, labels)
        c = self._counts
        c[k] = c.get(k, 0.0) + v
        if not self._armed and self.mp:
            self._arm()

    def _observe(self, metric: Any, labels: tuple[str, ...], v: float) -> None:
        k = (metric, labels)
        h = self._hists.get(k)
        if h is None:
            h = self._hists[k] = [0.0] * (len(metric._upper_bounds) + 1)
        h[0] += v
        h[1 + bisect_left(metric._upper_bounds, v)] += 1

    def _add(self, metric: Any, labels: tuple[str, ...], v: float = 1.0) -> None:
        k = (metric, labels)
        c = self._counts
        c[k] = c.get(k, 0.0) + v

    def _reason(self, reason: str) -> str:
        label = self._reasons.get(reason)
        if label is None:
            label = reason_label(reason)
            if len(self._reasons) < 10_000:  # reasons repeat (they name rules and models)
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
        counts, self._counts = self._counts, {}
        hists, self._hists = self._hists, {}
        for (metric, labels), v in counts.items():
            self.child(metric, *labels).inc(v)
        for (metric, labels), h in hists.items():
            ch = self.child(metric, *labels)
            ch._sum.inc(h[0])
            for i, n in enumerate(h[1:]):
                if n:
                    ch._buckets[i].inc(n)

    # ------------------------------------------------------------------ one finished request

    def observe(self, rec: Any) -> None:
        """Everything one finished request says (`rec` is an observer.Finished)."""
        if not self._armed and self.mp:
            self._arm()
        inc = self._add
        obs = self._observe
        route = self.route(rec.route)
        stream = "true" if rec.stream else "false"
        err = rec.error_type
        inc(self.requests, (route, rec.api, stream, STATUS_CLASS.get(rec.status // 100, "other"), err))
        if self.worker_requests is not None:
            self.worker_requests.inc()
        answered = rec.answered
        resp_model = self.model(answered.model) if answered is not None else ""
        obs(self.server_duration, (route, rec.api, resp_model, err), rec.latency_ms / 1000)
        upstream_ms = 0.0
        local_seen = False
        escalated = False
        for s in rec.steps:
            kind = s.kind
            if kind == "call":
                provider = self.provider(s.provider)
                model = self.model(s.model)
                cerr = call_error_type(s.ok, s.status, s.reason)
                ms = s.latency_ms or 0.0
                upstream_ms += ms
                obs(self.call_duration, ("chat", provider, model, model, route, cerr), ms / 1000)
                if s.ttft_ms is not None and rec.stream:
                    obs(self.call_ttft, ("chat", provider, model, model, route), s.ttft_ms / 1000)
                u = s.usage
                if u is not None:
                    obs(self.tokens, ("chat", provider, model, model, route, "input"), u.input_tokens)
                    obs(self.tokens, ("chat", provider, model, model, route, "output"), u.output_tokens)
                    if u.cache_read_tokens:
                        obs(self.tokens, ("chat", provider, model, model, route, "cache_read"), u.cache_read_tokens)
                if s.cost:
                    inc(self.cost, (route, provider, model), s.cost)
                role = s.detail.get("role") if s.detail else None
                if role is not None:
                    inc(self.helper_calls, (route, self.name(str(role))))
                elif s.locality == "local":
                    local_seen = True
                elif s.ok and s.locality == "remote" and local_seen:
                    escalated = True
                if s.ok is False and s.reason != "circuit open":
                    b = rec.breakers.get(s.name)
                    if b is not None:
                        self.child(self.breaker, self.model(s.name)).set(BREAKER_VALUES.get(b.breaker.state, 0))
            elif kind == "verdict":
                inc(self.verdicts, (self.name(s.name), "pass" if s.ok else "fail"))
            else:
                name = s.name
                inc(self.decisions, (route, self.name(name), self._reason(s.reason)))
                if name == "privacy" or name == "budget":
                    self._from_guard(name, s.detail)
        if escalated:
            inc(self.escalations, (route,))
        if rec.cache is not None:  # the answer cache's outcome: hit | semantic_hit | miss | bypass
            inc(self.cache, (self.name(str(rec.cache)),))
        if answered is not None:
            inc(self.answered, (route, resp_model, answered.locality or ""))
            if rec.stream and rec.ttft_ms is not None:
                obs(self.server_ttft, (route, self.provider(answered.provider), resp_model), rec.ttft_ms / 1000)
        if rec.reference_cost:
            inc(self.reference_cost, (route,), rec.reference_cost)
        overhead_ms = rec.latency_ms - upstream_ms
        if overhead_ms >= 0:
            obs(self.overhead, (route, stream), overhead_ms / 1000)

    def _from_guard(self, name: str, detail: dict[str, Any]) -> None:
        """Privacy crossings and budget refusals, from the decision steps those guards record."""
        if name == "privacy":
            p = detail.get("privacy")
            if isinstance(p, dict):
                action = self.name(str(p.get("action", "other")))
                classes = p.get("classes") or ["none"]  # {class: count} or a list of classes
                for c in classes if isinstance(classes, (list, dict)) else [classes]:
                    self.inc(self.privacy, (action, self.name(str(c))))
        elif detail.get("action") == "refuse":
            self.inc(self.budget_refusals, (self.name(str(detail.get("budget", "unknown"))),))

    # ------------------------------------------------------------------ scrape

    def refresh_breakers(self, deployments: dict[str, Any]) -> None:
        for name, d in deployments.items():
            self.child(self.breaker, self.model(name)).set(BREAKER_VALUES.get(d.breaker.state, 0))

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
        m.child(m.workers, m.name(capability)).set(count)
