"""How a worker runs a task: through the same tierwise core the gateway serves with.

The worker's config is an ordinary tierwise config; each capability names a model, a route or
an ensemble of it (an ensemble becomes a route of kind `ensemble`). A task's payload is an
OpenAI Chat Completions body: it is decoded with the gateway's own codec (so an untrusted
payload gets the gateway's validation), run through the Gateway's target with its context,
budgets, cache and ledger, and answered as a chat completion. `run` never raises: a failure is a
result with an error, in words that hold no secret.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from tierwise.config import Config
from tierwise.dispatch.config import WorkerConfig
from tierwise.errors import TierwiseError
from tierwise.route_map import models_of
from tierwise.secret_scrub import scrub
from tierwise.wire import openai_chat

ROUTE_PREFIX = "capability:"
MAX_ERROR_CHARS = 1000


def add_ensemble_routes(cfg: Config, worker: WorkerConfig) -> None:
    """Make each ensemble-backed capability a route, so the Gateway builds (and checks) it at start."""
    from tierwise.policies.ensemble import EnsembleRouteConfig

    for cap, cc in worker.capabilities.items():
        if cc.ensemble is not None:
            cfg.routes[ROUTE_PREFIX + cap] = EnsembleRouteConfig(policy="ensemble", ensemble=cc.ensemble)


def target_name(cap: str, worker: WorkerConfig) -> str:
    cc = worker.capabilities[cap]
    return cc.model or cc.route or ROUTE_PREFIX + cap


def check_targets(cfg: Config, worker: WorkerConfig) -> list[str]:
    """Capabilities whose model or route is not in the config."""
    problems = []
    for cap, cc in worker.capabilities.items():
        if cc.model is not None and cc.model not in cfg.models:
            problems.append(f"capability {cap!r}: unknown model {cc.model!r} (known: {', '.join(cfg.models) or 'none'})")
        if cc.route is not None and cc.route not in cfg.routes:
            problems.append(f"capability {cap!r}: unknown route {cc.route!r} (known: {', '.join(cfg.routes) or 'none'})")
    return problems


class CapabilityRunner:
    def __init__(self, gateway: Any, worker: WorkerConfig, worker_id: str) -> None:
        self.gw = gateway
        self.worker = worker
        self.worker_id = worker_id

    def models(self, cap: str) -> list[str]:
        """The models a capability can reach (every model of the config for an ensemble: its agents
        may name any)."""
        cc = self.worker.capabilities[cap]
        if cc.ensemble is not None:
            return list(self.gw.cfg.models)
        return models_of(self.gw.cfg, target_name(cap, self.worker))

    def all_local(self, cap: str) -> bool:
        """Whether every model the capability can reach runs on a local provider: only then may the
        worker read the capability's local-only tasks."""
        models = self.models(cap)
        return bool(models) and all(self.gw.deployments[m].locality == "local" for m in models)

    async def run(self, cap: str, body: Any, task_id: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        started = time.time()
        gw = self.gw
        name = target_name(cap, self.worker)
        req = None
        ctx = None
        try:
            if not isinstance(body, dict):
                raise TierwiseError("the task payload must be a chat completions body (a JSON object)", status=400,
                                    kind="invalid_request_error")
            body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
            body["model"] = name
            req = openai_chat.decode_request(body, {})
            ctx = gw.context(name, task_id, "openai", cap, req)
            target = gw.resolve(name)
            if gw.spend.active:
                target = await gw.spend.admit(req, ctx, name, target, None)
            target = gw.cached(target, ctx, gw.cfg.dispatch.tenant, req, "openai")
            resp = await target.complete(req, ctx)
            out = orjson.loads(openai_chat.encode_response(resp, cap))
            latency = (time.perf_counter() - t0) * 1000
            gw.record(ctx, req, status=200, stream=False, latency_ms=latency, ttft_ms=latency)
            answered = next((s for s in reversed(ctx.trace.steps) if s.kind == "call" and s.ok), None)
            return {"ok": True, "body": out, "worker": self.worker_id, "model": answered.model if answered else None,
                    "locality": answered.locality if answered else None, "cost": ctx.trace.total_cost(),
                    "latency_ms": round(latency, 3), "started": started, "finished": time.time()}
        except TierwiseError as e:
            if ctx is not None and req is not None:
                gw.record(ctx, req, status=e.status, stream=False, latency_ms=(time.perf_counter() - t0) * 1000,
                          error=e)
            return failure(e.status, e.kind, e.message, self.worker_id)
        except asyncio.CancelledError:  # stopped at its deadline or withdrawn by its caller: the calls it made
            if ctx is not None and req is not None:  # are settled against the budgets and kept in the ledger
                gw.record(ctx, req, status=499, stream=False, latency_ms=(time.perf_counter() - t0) * 1000)
            raise
        except Exception as e:  # a bug must not take the worker down; the caller hears a 500
            import logging

            logging.getLogger("tierwise.dispatch").exception("task %s (%s) failed", task_id, cap)
            return failure(500, "api_error", f"the worker failed running the task ({type(e).__name__})",
                           self.worker_id)

    def record_lost(self, cap: str, task_id: str, lost: int, result: dict[str, Any]) -> None:
        """A task delivered again: the workers of its earlier deliveries died (or stalled past
        `visibility_timeout`) while running it, and their upstream calls were in no ledger (a worker writes a
        task's row when it ends: a kill -9 at capacity 4 left 4 of 64 paid calls unrecorded; bench/RESULTS.md,
        session 35, review35d). One row per lost delivery in this worker's ledger, status 499, with this run's
        tokens and cost as the estimate (the same payload on the same target), marked `extra.estimated`; no cost
        when this run has none (it failed, or the task went to the dead-letter stream unrun)."""
        ledger = getattr(self.gw, "ledger", None)
        if ledger is None or lost <= 0:
            return
        from tierwise.ledger.records import LedgerRecord

        ok = bool(result.get("ok"))
        usage = (result.get("body") or {}).get("usage") if ok else None
        usage = usage if isinstance(usage, dict) else {}
        for k in range(1, lost + 1):
            ledger.submit(LedgerRecord(
                request_id=f"{task_id}:lost-{k}", ts=time.time(), route=target_name(cap, self.worker), status=499,
                error_kind="worker_lost", error_message=f"delivery {k} of task {task_id}: its worker stopped "
                "before answering", model=result.get("model") if ok else None,
                locality=result.get("locality") if ok else None,
                input_tokens=int(usage.get("prompt_tokens") or 0), output_tokens=int(usage.get("completion_tokens") or 0),
                tokens_estimated=True, cost_usd=result.get("cost") if ok else None,
                extra={"lost_delivery": k, "estimated": "this run's tokens and cost: the dead run's were never reported"
                       if ok else "unknown"}))


def failure(status: int, kind: str, message: str, worker: str | None = None) -> dict[str, Any]:
    return {"ok": False, "worker": worker,
            "error": {"status": int(status), "kind": str(kind)[:64], "message": scrub(str(message))[:MAX_ERROR_CHARS]}}
