"""Replay of the learning loop on RouteLLM's GPT-4 / Mixtral data: does the boundary converge, does it
pay for its evaluations, does it move back after a drift?

    nice -n 5 OMP_NUM_THREADS=1 .venv/bin/python bench/learning_loop.py [--target 0.85] [--seed 0]

With no flags the loop runs the `reflective` route's defaults (`ROUTE_DEFAULTS` in policies/reflective.py: value
sampling, served explorations, `watch: decide`, `within`, the text model at weight 1.0, the credible move back and,
since round 23, the change-point test's unchanged rate from the lower 0.90 credible edge; since round 29, the text
model let back onto a type moved back below the target while a check of its later verdicts allows it); a flag overrides one of them
(`--drift-p0-credible mean` gives rounds 17-23's D2, whose commands were written as the no-flag run). Rounds 1-16's commands were written against the replay's older defaults (shadow explorations,
`watch: confirm`, no `within`, no text model (weight 0.5 when named), the mean move back): add `--defaults replay16` to
reproduce them.

The stream is MMLU + GSM8K + MT-Bench (contaminated prompts dropped), shuffled once with the seed.
The recorded answers stand in for the two tiers: GPT-4-1106-preview is the frontier, Mixtral-8x7B
the local model. Quality of an answer is its recorded correctness (MMLU, GSM8K) or its MT-Bench
grade / 10. The judge's verdict on a local answer is taken from the same records: accepted when the
local answer is at least as good as the frontier's (same correctness; MT-Bench grade at most one
point lower), i.e. the judge is as strong as the frontier model and passes what it would not fault.

Task type: the benchmark's own labels (MMLU's 17 subject sub-categories, GSM8K, MT-Bench's 8
categories), not the triage classifier's output. The loop starts cold: every task type on the
frontier tier, no verdicts.

Money: RouteLLM's cost model (GPT-4 $24.7/M tokens, Mixtral $0.24/M, 95 input + 264 output tokens
per query). Every shadow run of the local tier and every judge call is charged at the frontier
price; a judge call reads a rubric (150 tokens), the prompt and the local answer (as the reflective
route's judge prompt does) and writes its reasoning and verdict (120 tokens).

Compared, on the same requests: all-frontier; random routing at the loop's frontier share; the
hindsight per-task-type choice (each type local or frontier, chosen from the whole data by its
mean gain, best-first: the curve a per-type boundary can reach at best); the `linear` learned
router, scored by 5-fold cross-validation over the whole stream (trained offline in hindsight).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np
from learning_loop_flags import parser  # other replays import it from here

from tierwise.evaluation.dataset import OutcomeDataset, concat
from tierwise.evaluation.loaders import load_benchmark
from tierwise.learning.loop import LearningLoop, LoopSettings
from tierwise.learning.order import comparison_of
from tierwise.policies.reflective import ROUTE_DEFAULTS

PF = 24.7 * 359 / 1e6  # one frontier query
PW = 0.24 * 359 / 1e6  # one local query
JUDGE = 24.7 * (150 + 95 + 264 + 120) / 1e6  # rubric + prompt + local answer in, reasoning + verdict out
SHADOW = PF  # the brief: a shadow call is charged at the frontier price
JUDGE_PAIR = 24.7 * (150 + 95 + 264 + 264 + 120) / 1e6  # `--order gain`: a shadow pair's judge reads both answers

MMLU_GROUP = {
    "math": "abstract_algebra college_mathematics elementary_mathematics high_school_mathematics high_school_statistics",
    "health": "anatomy clinical_knowledge college_medicine human_aging medical_genetics nutrition professional_medicine virology",
    "physics": "astronomy college_physics conceptual_physics high_school_physics",
    "business": "business_ethics management marketing",
    "biology": "college_biology high_school_biology",
    "chemistry": "college_chemistry high_school_chemistry",
    "computer_science": "college_computer_science computer_security high_school_computer_science machine_learning",
    "economics": "econometrics high_school_macroeconomics high_school_microeconomics",
    "engineering": "electrical_engineering",
    "philosophy": "formal_logic logical_fallacies moral_disputes moral_scenarios philosophy world_religions",
    "other": "global_facts miscellaneous professional_accounting",
    "history": "high_school_european_history high_school_us_history high_school_world_history prehistory",
    "geography": "high_school_geography",
    "politics": "high_school_government_and_politics public_relations security_studies us_foreign_policy",
    "psychology": "high_school_psychology professional_psychology",
    "culture": "human_sexuality sociology",
    "law": "international_law jurisprudence professional_law",
}
SUBJECT_GROUP = {s: g for g, subs in MMLU_GROUP.items() for s in subs.split()}


def load_stream(seed: int, task_types: str = "labels") -> tuple[OutcomeDataset, list[str], np.ndarray]:
    parts = []
    for name in ("mmlu", "gsm8k", "mt-bench"):
        d = load_benchmark(name)
        if name == "mt-bench":  # grades 1..10 -> 0.1..1
            d = OutcomeDataset(d.name, d.prompts, d.strong / 10.0, d.weak / 10.0, d.groups, d.subjects)
        else:
            d = OutcomeDataset(d.name, d.prompts, d.strong, d.weak, d.groups, d.subjects)
        parts.append(d)
    data = concat(parts, "mixed")
    types = []
    for g, s in zip(data.groups, data.subjects, strict=True):
        bench = g.split(":", 1)[0]
        types.append(f"mmlu/{SUBJECT_GROUP[s]}" if bench == "mmlu" else
                     ("gsm8k" if bench == "gsm8k" else f"mt-bench/{s}"))
    if task_types == "triage":  # the lexical triage classifier the reflective route uses
        from tierwise.canonical import Message, Request, TextBlock
        from tierwise.learning.triage import Triager

        tri = Triager()
        types = [tri.classify(Request(model="m", messages=[Message("user", [TextBlock(p)])])).task_type
                 for p in data.prompts]
    order = np.random.default_rng(seed).permutation(len(data))
    data = data.take(order)
    return data, [types[i] for i in order], order


VERDICT = {"mode": "relative"}
# `--within-signal FILE`: the within-type signal read from a file of per-question scores (bench/learning_loop_signal.py)
SIGNAL: dict[str, str | None] = {"path": None}


def accepted(strong: float, weak: float, mt: bool) -> float:
    if VERDICT["mode"] == "absolute":  # the local answer is right (MT-Bench: graded 8 or more)
        return float(weak >= (0.8 if mt else 0.5))
    return float(weak >= strong - (0.1 if mt else 0.0) - 1e-9)


@dataclass
class Run:
    frontier: np.ndarray  # 1 where the request was answered by the frontier tier
    quality: np.ndarray
    serve_cost: np.ndarray
    eval_cost: np.ndarray
    judged: int = 0
    shadows: int = 0
    moves: list = field(default_factory=list)
    loop: object = None
    by_reason: dict = field(default_factory=dict)  # schedule reason -> [count, USD]
    by_type: dict = field(default_factory=dict)  # task type -> [verdicts, USD]
    drift_type: str | None = None
    drift_at: int | None = None
    drift_back_after: int | None = None
    drift_back_at: int | None = None  # the request at which it moved back
    explored: int = 0  # frontier-routed requests answered locally to be judged (`explore: serve`)
    explore_loss: float = 0.0  # quality those answers gave up against the frontier's, summed
    plan_ns: int = 0  # CPU time spent in the loop's per-request decisions (`LearningLoop.plan`)


def replay(data: OutcomeDataset, types: list[str], settings: LoopSettings, *, drift_at: int | None = None,
           drift_type: str | None = None, drift_keep: float = 0.3, seed: int = 0, hindsight_pairs: bool = False,
           embed=None) -> Run:
    from learning_loop_signal import signal_of

    n = len(data)
    loop = LearningLoop("replay", settings)
    if embed is not None and loop.request_model is not None:
        loop.request_model.embed = embed  # the prompts' embeddings, computed once (bench/embed_cache.py)
    weak = data.weak.copy()
    mt = np.array([g.startswith("mt-bench") for g in data.groups])
    rng = np.random.default_rng(seed + 1)
    # the prompt-level signal the reflective route gives the loop: the log of the prompt's length
    signals = (None if not settings.within.enabled else
               np.log1p([len(p) for p in data.prompts]) if SIGNAL["path"] is None else signal_of(SIGNAL["path"], data.prompts))
    texts = data.prompts if settings.request_model.kind != "none" else None  # read by the request model only
    pairwise = settings.order.kind == "gain"  # a shadow pair's judge sees both answers and says which is better
    run = Run(np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n))
    if hindsight_pairs and loop.order is not None:
        # diagnostic: every type's three-way outcomes over the whole data, given to the order before the stream
        for t, s, w, m in zip(types, data.strong, data.weak, mt, strict=True):
            loop.order.record(t, comparison_of(w, s, 0.1 if m else 0.0))
    seen_after = 0
    for i in range(n):
        t = types[i]
        rid = f"req-{i}"
        if drift_at is not None and i == drift_at and drift_type is None:
            # drift the busiest task type that is local at this point
            local = [tt for tt, st in loop.boundary.states.items() if st.tier == "local"]
            drift_type = max(local, key=lambda tt: types[drift_at:].count(tt)) if local else None
            run.drift_type, run.drift_at = drift_type, drift_at
        if drift_type is not None and drift_at is not None and i >= drift_at and t == drift_type:
            # the local model gets worse on this type: most of its good answers turn bad
            if rng.random() > drift_keep:
                weak[i] = 0.0
            seen_after += 1
        t_plan = time.process_time_ns()
        plan = loop.plan(t, rid, signal=signals[i] if signals is not None else None,
                         text=texts[i] if texts is not None else None)
        run.plan_ns += time.process_time_ns() - t_plan
        if plan.explore:
            run.explored += 1
            run.explore_loss += float(data.strong[i] - weak[i])
        if plan.tier == "local":
            run.quality[i] = weak[i]
            run.serve_cost[i] = PW
        else:
            run.frontier[i] = 1
            run.quality[i] = data.strong[i]
            run.serve_cost[i] = PF
        judge = JUDGE_PAIR if pairwise and plan.shadow else JUDGE
        if plan.judge:
            r = run.by_reason.setdefault(plan.reason + (" (shadow)" if plan.shadow else ""), [0, 0.0])
            r[0] += 1
            r[1] += judge + (SHADOW if plan.shadow else 0.0)
            r = run.by_type.setdefault(t, [0, 0.0])
            r[0] += 1
            r[1] += judge + (SHADOW if plan.shadow else 0.0)
        if plan.shadow:
            run.eval_cost[i] += SHADOW
            run.shadows += 1
        if plan.judge:
            run.eval_cost[i] += judge
            run.judged += 1
            # the three-way verdict a judge seeing both answers would give (MT-Bench: a grade point is a tie),
            # consistent with `accepted` (not frontier better)
            comp = comparison_of(weak[i], data.strong[i], 0.1 if mt[i] else 0.0) if pairwise and plan.shadow else None
            move = loop.verdict(t, accepted(data.strong[i], weak[i], bool(mt[i])), request_id=rid, at=float(i),
                                comparison=comp)
            if move is not None:
                run.moves.append((i, move))
                if (drift_type is not None and move.task_type == drift_type and move.to == "frontier"
                        and run.drift_back_after is None and drift_at is not None and i >= drift_at):
                    run.drift_back_after = seen_after
                    run.drift_back_at = i
    run.loop = loop
    return run


def quality_at_share(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray, share: float) -> float:
    """Quality when the top `share` of requests by score go to the frontier (fractional at the edge)."""
    order = np.argsort(-scores, kind="stable")
    k = share * len(scores)
    kf = int(np.floor(k))
    q = weak.copy()
    q[order[:kf]] = strong[order[:kf]]
    base = q.mean()
    if kf < len(scores):
        j = order[kf]
        base += (k - kf) * (strong[j] - weak[j]) / len(scores)
    return float(base)


def type_scores(types: list[str], strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Hindsight per-type choice: each request scored by its type's mean gain over the whole data, plus a
    vanishing random tiebreak so the curve is the per-type curve with random partial inclusion."""
    gain: dict[str, list[float]] = {}
    for t, s, w in zip(types, strong, weak, strict=True):
        gain.setdefault(t, []).append(s - w)
    mean = {t: float(np.mean(v)) for t, v in gain.items()}
    rng = np.random.default_rng(7)
    return np.array([mean[t] for t in types]) + rng.random(len(types)) * 1e-9


def linear_cv_scores(data: OutcomeDataset) -> np.ndarray:
    from tierwise.evaluation.cv import cross_val_scores
    from tierwise.routers import make_router

    return cross_val_scores(data, lambda: make_router("linear"), k=5, seed=0)


# the replay's defaults before round 17, which rounds 1-16's commands were written against
REPLAY16_DEFAULTS = {"sampling": "value", "explore": "shadow", "watch": "confirm", "within": False,
                     "request_model": "none", "request_weight": 0.5, "move_back": "mean", "move_back_credible": None,
                     "drift_restart": "run", "drift_p0_credible": "mean", "move_back_keep": None, "returned": "full",
                     "reexplore": "full", "request_cap": "none",
                     "request_cap_credible": None, "request_after_move_back": "off"}


def route_defaults() -> dict[str, object]:
    """The flags `ROUTE_DEFAULTS` sets, as the replay's arguments."""
    d = ROUTE_DEFAULTS
    return {"sampling": d["sampling"], "explore": d["value"]["explore"], "watch": d["value"]["watch"],
            "within": d["within"]["enabled"], "request_model": d["request_model"]["kind"],
            "request_weight": d["request_model"]["weight"], "move_back": d["boundary"]["move_back"],
            "move_back_credible": d["boundary"].get("move_back_credible"),
            "drift_restart": d["boundary"].get("drift_restart", "run"),
            "drift_p0_credible": d["boundary"].get("drift_p0_credible", "mean"),
            "move_back_keep": d["boundary"].get("move_back_keep"),
            "returned": d["value"].get("returned", "full"),
            "reexplore": d["value"].get("reexplore", "full"),
            "request_cap": d["request_model"].get("cap", "none"),
            "request_cap_credible": d["request_model"].get("cap_credible"),
            "request_after_move_back": d["request_model"].get("after_move_back", "off")}


def parse_args(argv: list[str] | None = None, ap: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    args = (ap or parser()).parse_args(argv)
    fill = route_defaults() if args.defaults == "route" else REPLAY16_DEFAULTS
    for key, value in fill.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.discount is None:
        args.discount = 1.0 if args.sampling == "value" else 0.99
    SIGNAL["path"] = args.within_signal
    return args


def loop_settings(args: argparse.Namespace) -> LoopSettings:
    return LoopSettings.model_validate({
        "sampling": args.sampling,
        "value": {"horizon": args.horizon, "saving_usd": PF - PW, "judge_usd": JUDGE, "shadow_usd": SHADOW,
                  "settled": args.settled, "pooled_strength": args.pooled_strength, "pool": args.pool,
                  "pool_strength": args.pool_strength, "pooled_strength_max": args.pooled_strength_max,
                  "explore": args.explore, "explore_after": args.explore_after,
                  "audit": args.audit, "audit_stretch": args.audit_stretch, "audit_budget": args.audit_budget,
                  "audit_boost": args.audit_boost, "audit_boost_for": args.audit_boost_for,
                  "audit_charge": args.audit_charge, "audit_window": args.audit_window, "audit_goal": args.audit_goal,
                  "detect_within": args.detect_within,
                  "watch": args.watch, "returned": args.returned, "reexplore": args.reexplore, "confirmations": args.confirmations,
                  "per_request": args.per_request},
        "schedule": {"sample_rate": args.sample_rate, "audit_rate": args.audit_rate,
                     "shadow_audit_rate": args.shadow_audit_rate, "shadow_stop_quantile": args.stop_quantile,
                     "reprobe_uses": args.reprobe, "shadow_stop_after": args.stop_after},
        "boundary": {"quality_target": args.target, "discount": args.discount, "credible": args.credible,
                     "move_back": args.move_back, "move_back_credible": args.move_back_credible,
                     "drift_restart": args.drift_restart, "drift_p0_credible": None if args.drift_p0_credible in (None, "mean") else float(args.drift_p0_credible),
                     "move_back_keep": args.move_back_keep, "drift_p0_floor_after": args.drift_p0_floor_after,
                     "drift_window": args.drift_window},
        "within": {"enabled": args.within, "moved_back": args.within_moved_back, "near": args.within_near,
                   "near_band": args.within_near_band, "near_min_verdicts": args.within_near_min,
                   "pool": args.within_pool},
        "request_model": {"kind": args.request_model, "weight": args.request_weight,
                          "combine": args.request_combine, "bound": args.request_bound, "cap": args.request_cap,
                          "cap_credible": args.request_cap_credible,
                          "features": args.request_features, "type_weight": args.request_type_weight,
                          "frontier_label": args.request_frontier_label,
                          "after_move_back": args.request_after_move_back, "check_odds": args.request_check_odds,
                          "check_max": args.request_check_max,
                          "check_margin": args.request_check_margin,
                          "check_recheck": args.request_check_recheck == "on",
                          "type_offset": args.request_type_offset, "judge_served": args.request_judge_served,
                          "judge_served_rate": args.request_judge_served_rate},
        "order": {"kind": args.order}})


def main() -> None:
    args = parse_args()
    t0 = time.time()
    VERDICT["mode"] = args.verdict
    data, types, order = load_stream(args.seed, args.task_types)
    n = len(data)
    settings = loop_settings(args)
    embed = None
    if args.request_model != "none" and args.request_features != "hashed":
        import embed_cache

        table, _ = embed_cache.fill(args.embed_cache, data.prompts, settings.request_model.max_chars)
        embed = embed_cache.embedder(table, settings.request_model.max_chars)
    run = replay(data, types, settings, seed=args.seed, hindsight_pairs=args.order_hindsight, embed=embed)
    s, w = data.strong, data.weak
    tail = slice(n - args.tail, n)
    share_all = float(run.frontier.mean())
    share_tail = float(run.frontier[tail].mean())
    q_tail = float(run.quality[tail].mean())
    hind = type_scores(types, s, w)
    q_hind_tail = quality_at_share(hind[tail], s[tail], w[tail], share_tail)
    print(f"stream: {n} requests, {len(set(types))} task types, seed {args.seed}; target {args.target}, "
          f"sample {args.sample_rate}, audit {args.audit_rate}, shadow audit {args.shadow_audit_rate}, "
          f"discount {args.discount}, credible {args.credible}, sampling {args.sampling}"
          + (f" (horizon {args.horizon})" if args.sampling == "value" else ""))
    print(f"all-frontier quality {s.mean() * 100:.2f}, all-local {w.mean() * 100:.2f}")
    cost_front = n * PF
    serve = float(run.serve_cost.sum())
    ev = float(run.eval_cost.sum())
    savings = cost_front - serve
    print("\n| checkpoint (requests) | loop frontier share | loop quality | random at same share | "
          "loop cost incl. evaluation | all-frontier cost |")
    print("|---|---|---|---|---|---|")
    for c in list(range(2000, n, 2000)) + [n]:
        sh = run.frontier[:c].mean()
        rq = sh * s[:c].mean() + (1 - sh) * w[:c].mean()
        print(f"| {c} | {sh * 100:.1f}% | {run.quality[:c].mean() * 100:.2f} | {rq * 100:.2f} | "
              f"${run.serve_cost[:c].sum() + run.eval_cost[:c].sum():.2f} | ${c * PF:.2f} |")
    rq_tail = share_tail * s[tail].mean() + (1 - share_tail) * w[tail].mean()
    print(f"\nsteady state (last {args.tail}): frontier share {share_tail * 100:.1f}%, loop quality {q_tail * 100:.2f}; "
          f"hindsight per-type at that share {q_hind_tail * 100:.2f} (gap {(q_tail - q_hind_tail) * 100:+.2f} points); "
          f"random at that share {rq_tail * 100:.2f}; all-frontier {s[tail].mean() * 100:.2f}")
    if not args.no_router:
        from pathlib import Path

        cache = Path(args.router_cache) / f"linear_cv_seed{args.seed}.npy" if args.router_cache else None
        if cache is not None and cache.exists():
            lin = np.load(cache)
        elif args.router_folds_of is not None:
            # the router's CV scores computed for another seed's order (the same 5-fold CV over the same requests,
            # folds drawn in that order), put into this seed's order: no refit on a busy machine
            other, _, order_other = load_stream(args.router_folds_of)
            lin_other = np.load(Path(args.router_cache) / f"linear_cv_seed{args.router_folds_of}.npy")
            by_row = np.empty_like(lin_other)
            by_row[order_other] = lin_other
            lin = by_row[order]
        else:
            lin = linear_cv_scores(data)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.save(cache, lin)
        q_lin_tail = quality_at_share(lin[tail], s[tail], w[tail], share_tail)
        print(f"linear router (5-fold CV, whole stream) at that share: {q_lin_tail * 100:.2f} "
              f"(gap {(q_tail - q_lin_tail) * 100:+.2f} points)")
    print(f"whole stream: frontier share {share_all * 100:.1f}%, quality {run.quality.mean() * 100:.2f} "
          f"(all-frontier {s.mean() * 100:.2f}); serving ${serve:.2f} vs all-frontier ${cost_front:.2f}: "
          f"savings ${savings:.2f}; evaluation ${ev:.2f} ({run.judged} judge calls, {run.shadows} shadow runs) "
          f"= {ev / savings * 100:.1f}% of savings; net savings ${savings - ev:.2f}")
    sav_tail = float(run.frontier[tail].size * PF - run.serve_cost[tail].sum())
    ev_tail = float(run.eval_cost[tail].sum())
    print(f"steady state (last {args.tail}): evaluation ${ev_tail:.2f} = "
          f"{ev_tail / sav_tail * 100 if sav_tail else float('inf'):.1f}% of its savings ${sav_tail:.2f}")
    head = slice(0, min(args.tail, n))
    sav_head = float(run.frontier[head].size * PF - run.serve_cost[head].sum())
    print(f"cold start (first {args.tail}): evaluation ${float(run.eval_cost[head].sum()):.2f} of the stream's "
          f"${ev:.2f}; savings ${sav_head:.2f} of ${savings:.2f}")
    if run.explored:
        print(f"served explorations: {run.explored} requests, {run.explore_loss / n * 100:.2f} quality points of the "
              f"stream given up on them ({run.explore_loss / run.explored * 100:.1f} points per request)")
    print("evaluation by schedule rule: " + ", ".join(
        f"{k} {c} (${u:.2f})" for k, (c, u) in sorted(run.by_reason.items(), key=lambda kv: -kv[1][1])))
    print("evaluation by task type: " + ", ".join(
        f"{k} {c} (${u:.2f}, {run.loop.boundary.tier(k)}, mean {run.loop.boundary.state(k).mean():.3f})"
        for k, (c, u) in sorted(run.by_type.items(), key=lambda kv: -kv[1][1])))
    if settings.within.enabled:
        print("within-type slopes: " + ", ".join(f"{t} {run.loop.within.slope(t):+.2f}"
                                                 for t in sorted(run.loop.within.types) if run.loop.within.slope(t)))
    if run.loop.order is not None and settings.order.kind == "gain":
        g = run.loop.order
        print("local better among accepted shadow pairs (r): " + ", ".join(
            f"{t} {c[0]}/{c[0] + c[1]} ({g.better_share(t):.3f})" for t, c in sorted(g.pairs.items())))
    rm = run.loop.request_model
    print(f"decision CPU time: {run.plan_ns / n / 1e3:.1f} µs per request (LearningLoop.plan, process time)"
          + (f"; request model: {len(rm.rows)} training rows, {rm.fits} fits" if rm is not None else ""))
    print(f"moves: {len(run.moves)}")
    for i, m in run.moves[:60]:
        print(f"  @{i}: {m.task_type} -> {m.to} ({m.good} good of {m.judged} judged, lower {m.lower}, mean {m.mean})")
    if args.no_drift:
        print(f"\n({time.time() - t0:.0f} s)")
        return
    drift = replay(data, types, settings, drift_at=n // 2, seed=args.seed, hindsight_pairs=args.order_hindsight,
                   embed=embed)
    print(f"\ndrift at request {drift.drift_at} on {drift.drift_type} (70% of its local answers turn bad): "
          f"boundary moved back after {drift.drift_back_after} requests of that type")
    if drift.drift_back_at is not None:
        after = [j for j in range(drift.drift_back_at + 1, n) if types[j] == drift.drift_type]
        served = int(sum(1 - drift.frontier[j] for j in after))
        print(f"after the move back: {served} of {len(after)} requests of {drift.drift_type} still served locally "
              f"(by their own estimates)")
    print(f"drift run: evaluation {drift.eval_cost.sum() / (cost_front - drift.serve_cost.sum()) * 100:.1f}% of savings, "
          f"quality {drift.quality.mean() * 100:.2f}, frontier share {drift.frontier.mean() * 100:.1f}%")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
