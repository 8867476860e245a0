"""Why one seed of the learning-loop replay misses a goal: the gap to `linear` by task type (a), and the drifted
type's verdicts after the drift (c).

    PYTHONPATH=src HF_HUB_OFFLINE=1 TIERWISE_DATA=/work/shared/data OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python \
        bench/learning_loop_attribution.py --seed N [--router-cache DIR] [--mode tail|drift|both] [replay flags]

Takes every flag of `bench/learning_loop.py` (so a candidate is attributed with the same settings it is replayed
with).

`tail` (goal (a)): the main replay's last 2,000 requests against `linear` at the loop's own frontier share there,
split by task type: each type's part of the gap (its requests' quality under the loop less under `linear`, in points
of the tail), the share of its requests each sent to the frontier, its true acceptance over the whole stream (the
replay's verdict on every request), and the loop's state of the type at the end (tier, posterior mean, verdicts since
its last move and in all, moves back below the target). Then the moves back of the stream.

`drift` (goal (c)): the drift replay's verdicts on the drifted type after the drift, numbered by the type's requests
since the drift (the goal: back on the frontier within 200), with the plan's reason and the change-point statistic
before each verdict: whether the first rejection came late (audit luck) or the change-watch ended before the test
fired (the statistic back at zero).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from learning_loop import accepted, linear_cv_scores, load_stream, loop_settings, parse_args, parser, replay

from tierwise.learning.loop import LearningLoop


def tail(args: argparse.Namespace) -> None:
    data, types, _ = load_stream(args.seed)
    run = replay(data, types, loop_settings(args), seed=args.seed)
    n, s, w = len(data), data.strong, data.weak
    cache = Path(args.router_cache) / f"linear_cv_seed{args.seed}.npy" if args.router_cache else None
    lin = np.load(cache) if cache is not None and cache.exists() else linear_cv_scores(data)
    t0 = n - args.tail
    share = float(run.frontier[t0:].mean())
    order = np.argsort(-lin[t0:], kind="stable")
    k = share * args.tail
    lin_front = np.zeros(args.tail)
    lin_front[order[:int(k)]] = 1.0
    if int(k) < args.tail:
        lin_front[order[int(k)]] = k - int(k)  # the fractional request at the edge, as `quality_at_share` counts it
    q_lin = w[t0:] + lin_front * (s[t0:] - w[t0:])
    q_loop = run.quality[t0:]
    tt = np.array(types[t0:])
    every = np.array(types)
    mt = np.array([g.startswith("mt-bench") for g in data.groups])
    print(f"seed {args.seed}: frontier share {share * 100:.1f}% (last {args.tail}), gap "
          f"{(q_loop.mean() - q_lin.mean()) * 100:+.2f} points")
    print("| type | part of the gap | tail requests | loop frontier | linear frontier | true acceptance | tier | mean | "
          "verdicts since move / all | moves back below target |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for t in sorted(set(tt)):
        m, all_t = tt == t, every == t
        true = float(np.mean([accepted(a, b, bool(x)) for a, b, x in zip(s[all_t], w[all_t], mt[all_t], strict=True)]))
        st = run.loop.boundary.state(t)
        rows.append(((q_loop[m].sum() - q_lin[m].sum()) / args.tail * 100, t, int(m.sum()),
                     float(run.frontier[t0:][m].mean()), float(lin_front[m].mean()), true, st.tier, st.mean(),
                     st.judged, st.total_judged, st.sent_back))
    for r in sorted(rows):
        print("| {1} | {0:+.2f} | {2} | {3:.2f} | {4:.2f} | {5:.3f} | {6} | {7:.3f} | {8} / {9} | {10} |".format(*r))
    for i, mv in run.moves:
        if mv.to == "frontier":
            print(f"moved back @{i}: {mv.task_type} ({mv.good} good of {mv.judged}, mean {mv.mean}, {mv.why})")


def drift(args: argparse.Namespace) -> None:
    data, types, _ = load_stream(args.seed)
    settings = loop_settings(args)
    n = len(data)
    first = replay(data, types, settings, drift_at=n // 2, seed=args.seed)  # which type drifts, and when
    rows: list[list[object]] = []
    plan, verdict = LearningLoop.plan, LearningLoop.verdict

    def probe_plan(loop, task_type, request_id, **kw):  # type: ignore[no-untyped-def]
        p = plan(loop, task_type, request_id, **kw)
        i = int(request_id.split("-")[1])
        if i >= n // 2 and task_type == first.drift_type:
            rows.append([i, p.tier, p.judge, p.reason, None, loop.boundary.state(task_type).cusum.s])
        return p

    def probe_verdict(loop, task_type, x, **kw):  # type: ignore[no-untyped-def]
        if rows and rows[-1][0] == int(str(kw.get("request_id", "-0")).split("-")[1]):
            rows[-1][4] = x
        return verdict(loop, task_type, x, **kw)

    LearningLoop.plan, LearningLoop.verdict = probe_plan, probe_verdict  # type: ignore[method-assign]
    try:
        run = replay(data, types, settings, drift_at=n // 2, seed=args.seed)
    finally:
        LearningLoop.plan, LearningLoop.verdict = plan, verdict  # type: ignore[method-assign]
    print(f"seed {args.seed}: drift at {run.drift_at} on {run.drift_type}, back after {run.drift_back_after}")
    for k, (i, tier, judged, reason, x, stat) in enumerate(rows, 1):
        if judged:
            print(f"  #{k} (request {i}) {tier} {reason}: {'accepted' if x else 'rejected'}, statistic before {stat:.2f}")
        if run.drift_back_after is not None and k >= run.drift_back_after:
            break


def main() -> None:
    ap = parser()
    ap.add_argument("--mode", choices=["tail", "drift", "both"], default="both")
    args = parse_args(None, ap)
    if args.mode in ("tail", "both"):
        tail(args)
    if args.mode in ("drift", "both"):
        drift(args)


if __name__ == "__main__":
    main()
