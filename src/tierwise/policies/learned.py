"""Learned routing: a trained router scores each request; at or above the threshold it goes to
the strong (frontier) target, below it to the weak (local) one. The score, threshold and
tier are recorded on the trace.

The threshold is fixed in the config or derived from a target strong-call share: first the
training prompts' quantile saved with the router, then (by default, `refit_threshold`) re-fitted
to that share's quantile of the route's recent scores (routers/refit.py), since live traffic rarely
scores like the training prompts. With `shadow_rate`, that share of requests also runs
on the other tier as a background task, off the response path; the pair is written to the
ledger as a `shadow` record (`shadow.strong` / `shadow.weak` with each answer) for later
judging and retraining (see `tierwise.evaluation.loaders.load_ledger`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from tierwise.budgets.background import BudgetSkipped, charge_background
from tierwise.canonical import BlockDelta, Request, Response, StreamChunk, TextBlock
from tierwise.errors import ConfigError, ContextOverflow, UpstreamError
from tierwise.learning.background import BackgroundWork
from tierwise.learning.eval_record import submit_spent
from tierwise.learning.judge_privacy import judge_may_see
from tierwise.policies.base import Context, Target, drain_background, privacy_refusal
from tierwise.policies.learned_config import (
    PLACEMENT,
    PLACEMENT_BANK,
    PLACEMENT_JUDGED,
    REFIT_KEY_SHARE,
    REFIT_MIN,
    REFIT_WINDOW,
    AdaptConfig,
    ShiftConfig,
    ValidationConfig,
)
from tierwise.policies.reflective import MAX_JUDGED_CHARS, _clipped
from tierwise.policies.registry import Builder, PolicyConfig, PolicyType, register
from tierwise.providers.image_urls import FETCHED
from tierwise.trace import Trace

if TYPE_CHECKING:  # numpy and the routers load only when a learned route is built
    from tierwise.evaluation.online import OnlineValidator
    from tierwise.routers.adapt import LiveAdapter
    from tierwise.routers.base import Router
    from tierwise.routers.guard import RouteGuard
    from tierwise.routers.refit import ThresholdRefit
    from tierwise.routers.route_memory import RouteMemory
    from tierwise.routers.window import RoutePlacement

log = logging.getLogger("tierwise")


class LearnedConfig(PolicyConfig):
    policy: str = "learned"
    router: str = Field(description="path of a saved router (.json beside its .npz), relative to the config")
    strong: str = Field(description="target (model or route) for requests scored at or above the threshold")
    weak: str = Field(description="target for requests scored below the threshold")
    threshold: float | None = Field(None, description="fixed score threshold")
    target_share: float | None = Field(None, ge=0, le=1, description="share of requests to send to `strong`")
    shadow_rate: float = Field(0.0, ge=0, le=1, description="share of requests also run on the other tier")
    max_pending: int = Field(32, ge=1, le=1024, description=(
        "shadow runs (with their judging) in flight at once, half of them at most started by one gateway key; "
        "beyond that a shadow run is skipped and counted"))
    on_router_error: Literal["weak", "strong"] = Field(
        "weak", description="tier for a request the router fails to score (the request is answered either way)")
    reference: str | None = None
    refit_threshold: bool | None = Field(
        None, description="re-fit the threshold to `target_share` on the route's recent scores (default: on when "
                          "the route has a target_share; false keeps the training prompts' quantile)")
    refit_window: int | None = Field(None, ge=10, le=100_000,
                                     description=f"recent scores the threshold is re-fitted on (default {REFIT_WINDOW})")
    refit_min: int | None = Field(None, ge=10, description=f"scores seen before the first re-fit (default {REFIT_MIN})")
    refit_key_share: float = Field(
        REFIT_KEY_SHARE, gt=0, le=1, description="most of the re-fit window one gateway key's scores may hold "
                                                 "(at least refit_min scores), of the shift window (at least its min_requests) and of the "
                                                 "online estimate's judged pairs (at least validation.min_pairs): one "
                                                 "client cannot move everyone's threshold nor demote the route")
    remember: bool = Field(True, description=(
        "keep the re-fit window, the shift window, the demotion and the online estimate's judged pairs across "
        "restarts, in a file beside the ledger (routers/route_memory.py; nothing is kept without an on-disk ledger)"))
    placement: Literal["none", "window", "window-tokens"] = Field(PLACEMENT, description=(
        "transferred routers: each score pulled towards the mean score of its nearest neighbours among the route's "
        "recent requests (routers/window.py): neighbours in the router's training-profile LSA (window: needs the "
        "profile) or in its static token vectors (window-tokens: `transfer`); none: each request as scored"))
    placement_judged: bool = Field(PLACEMENT_JUDGED, description=(
        "with `validation` and a windowed placement: each score also moves by the judged gains (strong − weak "
        "outcome) of its nearest judged past requests, less the judged window's mean (routers/window.py)"))
    placement_bank: float = Field(PLACEMENT_BANK, ge=0.0, le=4.0, description=(
        "with `placement: window-tokens`: each score also moves by this weight × the gain of the request's nearest "
        "training questions (the router's training bank, routers/bank.py), z-scored over the placement window's past "
        "requests and scaled to the spread of their raw scores; 0: off"))
    shift: ShiftConfig | None = Field(None, description="shift detection and safe demotion (off when absent)")
    validation: ValidationConfig | None = Field(None, description="online validation from judged shadow pairs "
                                                                  "(off when absent; needs shadow_rate > 0)")
    adapt: AdaptConfig | None = Field(None, description="adapt the router to the judged shadow pairs (off when "
                                                        "absent; needs validation and target_share)")

    @model_validator(mode="after")
    def _one_threshold(self) -> LearnedConfig:
        if (self.threshold is None) == (self.target_share is None):
            raise ValueError("give exactly one of `threshold` or `target_share`")
        refit, window, least = self.refit_settings()
        if refit and self.target_share is None:
            raise ValueError("refit_threshold needs `target_share`")
        if least > window:
            raise ValueError("refit_min must not exceed refit_window")
        if self.placement_bank > 0 and self.placement != "window-tokens":
            raise ValueError("placement_bank needs `placement: window-tokens` (the bank is read by the router's static "
                             "token vectors)")
        if self.validation is not None and self.shadow_rate <= 0:
            raise ValueError("validation needs shadow_rate > 0: the judged shadow pairs are its evidence")
        if self.adapt is not None:
            if self.validation is None or self.target_share is None:
                raise ValueError("adapt needs `validation` (its judged pairs are the evidence) and `target_share` "
                                 "(the threshold is re-fitted on adapted scores to it)")
            if self.adapt.window > self.validation.window:
                raise ValueError("adapt.window must not exceed validation.window")
        return self

    def refit_settings(self) -> tuple[bool, int, int]:
        """(re-fit?, window, minimum): each key from the route level or `shift` (giving one in both places with
        different values is an error); re-fitting is on by default for a `target_share`."""
        got: dict[str, Any] = {}
        for key in ("refit_threshold", "refit_window", "refit_min"):
            here = getattr(self, key)
            there = getattr(self.shift, key) if self.shift is not None and key in self.shift.model_fields_set else None
            if here is not None and there is not None and here != there:
                raise ValueError(f"`{key}` is given at the route level ({here}) and in `shift` ({there}): give it once")
            got[key] = here if here is not None else there
        refit = self.target_share is not None if got["refit_threshold"] is None else bool(got["refit_threshold"])
        return refit, got["refit_window"] or REFIT_WINDOW, got["refit_min"] or REFIT_MIN


class LearnedRoute:
    def __init__(self, name: str, router: Router, threshold: float, strong: Target, weak: Target, *,
                 shadow_rate: float = 0.0, on_router_error: str = "weak", rng: random.Random | None = None,
                 guard: RouteGuard | None = None, fallback: Target | None = None,
                 validator: OnlineValidator | None = None, judge: Target | None = None,
                 rubric: str | None = None, refit: ThresholdRefit | None = None,
                 threshold_source: str = "training", memory: RouteMemory | None = None,
                 max_pending: int = 32, adapter: LiveAdapter | None = None,
                 placement: RoutePlacement | None = None) -> None:
        self.name = name
        self.placement = placement  # the windowed placement of its scores (routers/window.py); None: off
        self.router = router
        self.threshold = threshold
        self.threshold_source = threshold_source  # "config" (a fixed threshold), "training", or recent traffic
        self.refit = refit  # re-fits the threshold when there is no guard (the guard holds its own)
        self.memory = memory  # the live state kept across restarts (routers/route_memory.py); None: not kept
        self.strong = strong
        self.weak = weak
        self.shadow_rate = shadow_rate
        self.on_router_error = on_router_error
        self._rng = rng or random.Random()
        # shadow runs in flight: each is a call of the other tier (the frontier, for an answer the local tier gave)
        # and, with validation, two judge calls, which no budget pays for: bounded per route and per key
        self.work = BackgroundWork(max_pending)
        self._background = self.work.tasks
        self.guard = guard  # shift detection and safe demotion (routers/guard.py); None: off
        self.fallback = fallback or strong
        self.validator = validator  # online validation (evaluation/online.py); None: off
        self.judge = judge or strong
        self.adapter = adapter  # adaptation on the judged pairs (routers/adapt.py); None: off
        self._judge_prompt: Any = None
        self._unjudged_said = False
        if validator is not None:
            from tierwise.verifiers.judge import LlmJudgeVerifier

            self._judge_prompt = LlmJudgeVerifier(self.judge.name, rubric=rubric)

    def choose(self, req: Request, ctx: Context) -> tuple[Target, str, str, float]:
        prompt = req.last_user_text()
        key = ctx.notes.get("key_name") or ""  # whose score it is: one key's scores hold a bounded share
        t0 = time.perf_counter()
        try:
            score = raw = float(self.router.score_text(prompt))
            if score != score:
                raise ValueError("the router's score is NaN")
            if self.placement is not None:
                score = self.placement.place(prompt, raw, key)
        except Exception as e:  # a broken router must not fail the request: answer from the configured tier
            tier = self.on_router_error
            target = self.strong if tier == "strong" else self.weak
            log.warning("route %s: router failed (%s); answering from %s", self.name, type(e).__name__, target.name)
            ctx.trace.decide(self.name, f"router failed ({type(e).__name__}) -> {target.name}",
                             detail={"tier": tier, "router": self.router.kind, "router_error": type(e).__name__})
            return target, tier, prompt, float("nan")
        guarded = self.guard.observe(prompt, score, key) if self.guard is not None else None
        if guarded is not None:
            self.threshold, self.threshold_source = guarded.threshold, guarded.threshold_source
        elif self.refit is not None:
            self.threshold, self.threshold_source = self.refit.add(score, key), self.refit.source
        if self.memory is not None:
            self.memory.changed()
        adapted = self.adapter.decide(prompt, score, key) if self.adapter is not None else None
        ms = (time.perf_counter() - t0) * 1000.0
        by, thr = (score, self.threshold) if adapted is None else adapted
        tier = "strong" if by >= thr else "weak"
        target = self.strong if tier == "strong" else self.weak
        op = "≥" if tier == "strong" else "<"
        reason = f"router score {score:.4f} {op} threshold {self.threshold:.4f} -> {target.name}"
        detail: dict[str, Any] = {"threshold": self.threshold, "threshold_source": self.threshold_source,
                                  "tier": tier, "router": self.router.kind, "decision_ms": round(ms, 3)}
        if self.placement is not None:
            detail["placement"] = {"raw_score": raw, "window": len(self.placement.window)}
        if self.adapter is not None:
            detail["adapt"] = self.adapter.detail(adapted, "strong" if score >= self.threshold else "weak")
            if adapted is not None:
                ctx.notes["adapted"] = {"score": by, "threshold": thr, "pairs": detail["adapt"]["pairs"]}
                reason = (f"adapted score {by:.4f} {op} threshold {thr:.4f} ({detail['adapt']['pairs']} judged "
                          f"pairs; router score {score:.4f}) -> {target.name}")
        if guarded is not None:
            detail["shift"] = {"percentile": guarded.percentile, "share_far": round(guarded.share_far, 4),
                               "window": guarded.window_n, "demoted": guarded.demoted,
                               "threshold_source": guarded.threshold_source}
            if guarded.changed:
                log.warning("route %s: %s", self.name, guarded.reason)
            if guarded.demoted:
                detail.update(demoted=True, demotion_reason=guarded.reason, router_tier=tier)
                target = self.fallback
                tier = "strong" if target is self.strong else "weak" if target is self.weak else "fallback"
                detail["tier"] = tier
                reason = f"demoted: {guarded.reason} -> {target.name} (router said {reason})"
                ctx.notes["demotion_reason"] = reason
            elif guarded.changed:
                detail["promoted"] = True
                reason = f"{guarded.reason}; {reason}"
        if self.validator is not None:
            detail["online"] = self.validator.latest.brief()
        ctx.trace.decide(self.name, reason, score=score, detail=detail)
        ctx.notes["router_score"] = score
        ctx.notes["router_threshold"] = self.threshold
        return target, tier, prompt, score

    def _other(self, target: Target, tier: str, err: ContextOverflow, ctx: Context) -> tuple[Target, str]:
        """The chosen tier cannot hold the request: the other tier may (usually the frontier's window)."""
        other_tier = "weak" if tier == "strong" else "strong"
        other = self.weak if tier == "strong" else self.strong
        if other is target or tier not in ("strong", "weak"):
            raise err
        ctx.trace.decide(self.name, f"{target.name} cannot hold the request ({err.message}) -> {other.name}",
                         detail={"tier": other_tier, "overflow": True})
        return other, other_tier

    @staticmethod
    def _keep_demotion(ctx: Context, tier: str) -> None:
        """A fallback that is a route (e.g. `reflective`) records its own decision after ours: the request's
        reason keeps why this route was demoted, followed by the fallback's choice."""
        if tier == "fallback" and ctx.trace.reason != ctx.notes.get("demotion_reason"):
            ctx.trace.reason = f"{ctx.notes['demotion_reason']}; {ctx.trace.reason}"

    def _kept_local(self, target: Target, ctx: Context, first: int) -> tuple[Target, str] | None:
        """The chosen tier failed because the privacy boundary refused to send it this request (a `local_only`
        class, a region): the weak tier serves it, as a fallback's local target would; else None."""
        why = privacy_refusal(ctx, first) if target is not self.weak else None
        if why is None:
            return None
        ctx.trace.decide(self.name, f"{why} -> {self.weak.name}", detail={"tier": "weak", "privacy": True})
        return self.weak, "weak"

    async def complete(self, req: Request, ctx: Context) -> Response:
        target, tier, prompt, score = self.choose(req, ctx)
        first = len(ctx.trace.steps)
        try:
            resp = await target.complete(req, ctx)
        except ContextOverflow as e:
            target, tier = self._other(target, tier, e, ctx)
            resp = await target.complete(req, ctx)
        except UpstreamError:
            if (kept := self._kept_local(target, ctx, first)) is None:
                raise
            target, tier = kept
            resp = await target.complete(req, ctx)
        self._keep_demotion(ctx, tier)
        if self._shadow_due(tier):
            self._spawn_shadow(req, ctx, tier, prompt, score, resp.text())
        return resp

    async def stream(self, req: Request, ctx: Context) -> AsyncIterator[StreamChunk]:
        target, tier, prompt, score = self.choose(req, ctx)
        first = len(ctx.trace.steps)
        try:
            it = await target.stream(req, ctx)
        except ContextOverflow as e:
            target, tier = self._other(target, tier, e, ctx)
            it = await target.stream(req, ctx)
        except UpstreamError:
            if (kept := self._kept_local(target, ctx, first)) is None:
                raise
            target, tier = kept
            it = await target.stream(req, ctx)
        self._keep_demotion(ctx, tier)
        if not self._shadow_due(tier):
            return it
        return self._collect_then_shadow(it, req, ctx, tier, prompt, score)

    async def _collect_then_shadow(self, it: AsyncIterator[StreamChunk], req: Request, ctx: Context, tier: str,
                                   prompt: str, score: float) -> AsyncIterator[StreamChunk]:
        parts: list[str] = []
        try:
            async for chunk in it:
                parts.extend(e.value for e in chunk.events if isinstance(e, BlockDelta) and e.delta_type == "text")
                yield chunk
        finally:
            await it.aclose()  # type: ignore[attr-defined]
        self._spawn_shadow(req, ctx, tier, prompt, score, "".join(parts))

    async def drain(self, timeout: float = 5.0) -> None:
        """At shutdown: let shadow runs in flight finish (their pairs are worth keeping), then cancel the rest."""
        await drain_background(self._background, timeout)
        if self.memory is not None:
            await self.memory.close()

    def privacy_ready(self, boundary: Any) -> None:
        """The gateway's privacy boundary (built after the routes): the route's kept prompts pass it."""
        if self.memory is not None:
            self.memory.clean_prompts(boundary)

    def _shadow_due(self, tier: str = "strong") -> bool:
        return self.shadow_rate > 0 and tier in ("strong", "weak") and self._rng.random() < self.shadow_rate

    @property
    def dropped(self) -> int:
        """Shadow runs skipped: the route's or the key's places were all taken."""
        return self.work.dropped

    def _spawn_shadow(self, req: Request, ctx: Context, tier: str, prompt: str, score: float, answer: str) -> None:
        key = ctx.notes.get("key_name") or ""
        if not self.work.start(self._shadow(req, ctx, tier, prompt, score, answer), key):
            log.info("route %s: shadow run of %s skipped (%d in flight, %d of key %r)", self.name,
                     ctx.trace.request_id, len(self.work.tasks), self.work.by_key.get(key, 0), key)

    async def _shadow(self, req: Request, ctx: Context, tier: str, prompt: str, score: float, answer: str) -> None:
        """Run the other tier and store both answers; failures are logged, never surfaced."""
        other_tier = "weak" if tier == "strong" else "strong"
        other = self.weak if tier == "strong" else self.strong
        rid = ctx.trace.request_id
        threshold = float(ctx.notes.get("router_threshold", self.threshold))  # the one the request was routed by
        sctx = Context(Trace(f"{rid}-shadow", self.name), ctx.resolve, ctx.client_format, services=ctx.services)
        sctx.notes[FETCHED] = ctx.notes.setdefault(FETCHED, {})  # the request's image URLs: fetched once
        charge_background(sctx, ctx, "shadow")  # its calls count in the route's, global and model budgets
        skipped = None
        try:
            # one answer: the pair keeps one, and a client's `n` (up to server.limits.max_n) multiplied a run no
            # budget pays for
            other_answer = (await other.complete(req.with_changes(stream=False, n=1), sctx)).text()
            ok = True
        except BudgetSkipped as e:  # a budget refused the run: a pair with no other answer, marked skipped
            log.info("shadow run of %s for %s skipped: %s", other.name, rid, e.message)
            other_answer, ok, skipped = "", False, e.message
        except Exception as e:  # the shadow must never affect the live request
            log.info("shadow run of %s for %s failed: %s", other.name, rid, type(e).__name__)
            other_answer, ok = "", False
        pair = {
            "of": rid, "prompt": prompt, "score": score, "threshold": threshold, "routed": tier,
            "key": ctx.notes.get("key_name") or "",  # whose request: `tierwise eval ledger` counts it as the route does
            tier: {"target": (self.strong if tier == "strong" else self.weak).name, "answer": answer, "outcome": None},
            other_tier: {"target": other.name, "answer": other_answer, "ok": ok, "outcome": None},
        }
        if skipped is not None:
            pair["skipped"] = skipped
        if "adapted" in ctx.notes:
            pair["adapted"] = ctx.notes["adapted"]
        if ok and self.validator is not None and score == score:
            await self._validate(req, sctx, pair, ctx.notes.get("key_name") or "")
        record_shadow(ctx.services, sctx.trace, pair)

    def _unjudged(self, pair: dict[str, Any], why: str) -> None:
        """Say in the pair (so the ledger, `tierwise eval --ledger` and `boundary` can) why it stays unjudged, and on
        the console once per route: a judge that always fails or never names a grade left no trace but info lines."""
        pair["unjudged"] = why
        if not self._unjudged_said:
            self._unjudged_said = True
            log.warning("route %s: the shadow pair of %s is not judged: %s (said once; the ledger's shadow pairs "
                        "keep the reason)", self.name, pair["of"], why)
        else:
            log.info("route %s: the shadow pair of %s is not judged: %s", self.name, pair["of"], why)

    async def _validate(self, req: Request, sctx: Context, pair: dict[str, Any], key: str) -> None:
        """Grade both answers of a shadow pair (outcomes into the pair, so the ledger keeps them) and feed the
        route's online estimate, counted under `key` (the request's gateway key name: one key's pairs hold a
        bounded share). A judge failure or an unparseable verdict leaves the pair unjudged."""
        from tierwise.evaluation.online import PROMPT_CHARS, JudgedPair
        from tierwise.verifiers.judge import SCORES, parse_grade

        assert self.validator is not None and self._judge_prompt is not None
        if not await judge_may_see(sctx, req, self.judge):  # both tiers local, the judge remote: the whole request
            log.info("route %s: the shadow pair of %s not judged: the privacy policy keeps it local", self.name,
                     pair["of"])
            pair["unjudged"] = "the privacy policy keeps it from the judge"
            return
        clipped = _clipped(req)
        outcomes = {}
        for side in ("strong", "weak"):
            text = str(pair[side]["answer"])[:MAX_JUDGED_CHARS]
            jreq = self._judge_prompt.judge_request(clipped, Response(id=f"{pair['of']}-{side}", model="",
                                                                      content=[TextBlock(text)]))
            try:
                grade = parse_grade((await self.judge.complete(jreq, sctx)).text())
            except BudgetSkipped as e:  # the pair stays unjudged, marked skipped
                pair["skipped"] = e.message
                return
            except Exception as e:  # validation must never affect the live request
                self._unjudged(pair, f"the judge call failed ({type(e).__name__})")
                return
            if grade is None:
                self._unjudged(pair, f"the judge's reply named no grade (it must end with a line `verdict: "
                                     f"{'|'.join(SCORES)}`)")
                return
            outcomes[side] = SCORES[grade]
        for side, outcome in outcomes.items():  # both judged, or neither recorded
            pair[side]["outcome"] = outcome
        if self.placement is not None:  # on the event loop, as `choose` places: later requests see this verdict
            self.placement.verdict(pair["prompt"], outcomes["strong"], outcomes["weak"], key)
        prompt = str(pair["prompt"] or "")
        kept = await _kept_prompt(sctx.services, prompt[:PROMPT_CHARS]) if self.adapter is not None else ""
        est = await asyncio.to_thread(self.validator.add, JudgedPair(
            len(prompt), float(pair["score"]), float(pair["threshold"]), outcomes["strong"],
            outcomes["weak"], key, kept))
        pair["online"] = est.brief()
        if self.adapter is not None and self.adapter.due():  # one fit at a time, in a worker thread
            await asyncio.to_thread(self.adapter.refit)
        if self.memory is not None:
            self.memory.changed()


async def _kept_prompt(services: Any, prompt: str) -> str:
    """A judged pair's prompt as the route keeps it (memory, state file): cleaned as the ledger's copy is."""
    boundary = getattr(services, "privacy", None)
    if boundary is None or not prompt:
        return prompt
    return str(await asyncio.to_thread(boundary.clean_text, prompt) or "")


def record_shadow(services: Any, trace: Trace, pair: dict[str, Any]) -> None:
    ledger = getattr(services, "ledger", None)
    if ledger is None:
        return
    from tierwise.gateway import MAX_STORED_TEXT
    from tierwise.ledger.records import record_from_trace

    # the texts cut as `ledger.store_text` cuts a request's (an answer is bounded only by the upstream's
    # `max_response_bytes`, 64 MiB, and a pair holds two)
    pair = {**pair, "prompt": (pair.get("prompt") or "")[:MAX_STORED_TEXT]}
    for side in ("strong", "weak"):
        if isinstance(pair.get(side), dict):
            pair[side] = {**pair[side], "answer": str(pair[side].get("answer") or "")[:MAX_STORED_TEXT]}
    submit_spent(services, ledger, lambda: record_from_trace(
        trace, ts=time.time(), kind="shadow", decision=pair["weak" if pair["routed"] == "strong" else "strong"][
            "target"], shadow=pair, prompt=pair["prompt"]), "shadow pair for %s", pair.get("of"))


def _build(cfg: LearnedConfig, name: str, b: Builder) -> Target:
    from tierwise.routers.base import RouterError, load_router, threshold_for_share
    from tierwise.routers.window import route_placement

    path = Path(cfg.router)
    if not path.is_absolute():
        path = Path(b.base_dir) / path
    try:
        router = load_router(path)
    except RouterError as e:
        raise ConfigError(f"route {name!r}: {e}", path=f"routes.{name}.router") from None
    if cfg.threshold is not None:
        threshold = cfg.threshold
    else:
        if router.train_quantiles is None:
            raise ConfigError(f"route {name!r}: router {path} has no saved calibration; give `threshold` instead",
                              path=f"routes.{name}.target_share")
        threshold = threshold_for_share(router.train_quantiles, float(cfg.target_share or 0.0))
    strong = b.resolve(cfg.strong)
    validator = _validator(cfg, name)
    guard, fallback = (_guard(cfg, name, router, threshold, b) if cfg.shift is not None or validator is not None
                       else (None, None))
    refit_on, window, least = cfg.refit_settings()
    refit = None
    if guard is None and refit_on and cfg.target_share is not None:  # no profile filters: every score counts
        from tierwise.routers.refit import ThresholdRefit

        refit = ThresholdRefit(threshold, cfg.target_share, window=window, min_scores=least,
                               key_share=cfg.refit_key_share)
    adapter = None
    if cfg.adapt is not None and validator is not None and cfg.target_share is not None:
        from tierwise.routers.adapt import LiveAdapter

        ac = cfg.adapt
        adapter = LiveAdapter(validator, cfg.target_share, min_pairs=ac.min_pairs, prior_weight=ac.prior_weight,
                              window=ac.window, every=ac.every, refit_window=window, refit_min=least,
                              key_share=cfg.refit_key_share)
    if guard is not None and validator is not None and cfg.validation is not None and cfg.validation.demote:
        guard.checks.append(adapter.check if adapter is not None else validator.check)
    vc = cfg.validation
    placement = route_placement(cfg.placement, router, name, cfg.refit_key_share,
                                judged=cfg.placement_judged and validator is not None, bank_weight=cfg.placement_bank)
    memory = _memory(cfg, name, path, b, refit=refit, guard=guard, validator=validator, adapter=adapter,
                     window=placement.window if placement is not None else None,
                     judged=placement.judged if placement is not None else None)
    route = LearnedRoute(name, router, threshold, strong, b.resolve(cfg.weak), shadow_rate=cfg.shadow_rate,
                         on_router_error=cfg.on_router_error, guard=guard, fallback=fallback, validator=validator,
                         judge=b.resolve(vc.judge) if vc is not None and vc.judge else None,
                         rubric=vc.rubric if vc is not None else None, refit=refit,
                         threshold_source="config" if cfg.threshold is not None else "training", memory=memory,
                         max_pending=cfg.max_pending, adapter=adapter, placement=placement)
    if memory is not None and memory.refit is not None and memory.restored:
        route.threshold, route.threshold_source = memory.refit.threshold, memory.refit.source
    if adapter is not None and memory is not None and memory.restored and adapter.live is None:
        adapter.refit()  # the saved pairs' prompts (a file saved without the adaptation's own state)
    return route


def _memory(cfg: LearnedConfig, name: str, router_path: Path, b: Builder, **parts: Any) -> RouteMemory | None:
    from tierwise.routers.route_memory import open_memory

    return open_memory(cfg.remember, getattr(b.services, "cfg", None), name, router_path, cfg.target_share, **parts)


def _validator(cfg: LearnedConfig, name: str) -> OnlineValidator | None:
    from tierwise.evaluation.online import OnlineValidator

    vc = cfg.validation
    if vc is None:
        return None
    try:
        return OnlineValidator(window=vc.window, min_pairs=vc.min_pairs, rounds=vc.rounds, level=vc.level,
                               key_share=cfg.refit_key_share, prompts_kept=cfg.adapt.window if cfg.adapt else 0,
                               prompts_floor=cfg.adapt.min_pairs if cfg.adapt else 0,
                               promote_margin=vc.promote_margin)
    except ValueError as e:
        raise ConfigError(f"route {name!r}: {e}", path=f"routes.{name}.validation") from None


def _guard(cfg: LearnedConfig, name: str, router: Router, threshold: float,
           b: Builder) -> tuple[RouteGuard, Target | None]:
    """Shift detection (with `shift`) and the demotion seam every check goes through (also for `validation`)."""
    from tierwise.routers.guard import RouteGuard
    from tierwise.routers.shift import ShiftWindow, router_embedding

    sc = cfg.shift
    refit, window, least = cfg.refit_settings()
    if sc is None:  # online validation only: no distance measured, every score re-fits the threshold
        return RouteGuard(None, threshold=threshold, target_share=cfg.target_share, refit_threshold=refit,
                          refit_window=window, refit_min=least, refit_key_share=cfg.refit_key_share), None
    profile = getattr(router, "profile", None)
    if profile is None:
        raise ConfigError(f"route {name!r}: router {cfg.router} carries no training profile, which `shift` needs; "
                          "re-save it with `tierwise eval DATA -r SPEC --no-cv --save PATH`", path=f"routes.{name}.shift")
    try:
        guard = RouteGuard(profile, space=sc.space, embedding=router_embedding(router), demote=sc.demote,
                           window=ShiftWindow(window=sc.window, min_requests=sc.min_requests,
                                              far_quantile=sc.far_quantile, demote_above=sc.demote_above,
                                              promote_below=sc.promote_below, key_share=cfg.refit_key_share),
                           threshold=threshold, target_share=cfg.target_share, refit_threshold=refit,
                           refit_window=window, refit_min=least, refit_key_share=cfg.refit_key_share)
    except ValueError as e:
        raise ConfigError(f"route {name!r}: {e}", path=f"routes.{name}.shift") from None
    return guard, b.resolve(sc.fallback) if sc.fallback else None


register(
    PolicyType(
        "learned",
        LearnedConfig,
        _build,
        lambda c: [c.strong, c.weak] + ([c.reference] if c.reference else [])
        + ([c.shift.fallback] if c.shift is not None and c.shift.fallback else [])
        + ([c.validation.judge] if c.validation is not None and c.validation.judge else []),
    )
)
