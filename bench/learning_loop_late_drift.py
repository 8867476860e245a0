"""A drift on a frontier type the text model serves after its move-back check decided for the target (issue 21).

    PYTHONPATH=src TIERWISE_DATA=../shared/data OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python \
        bench/learning_loop_late_drift.py --seed N [--delay 0,2000] [learning_loop.py's flags]

`request_model.after_move_back: checked` lets the text model serve a type the below-target rule moved back while a
sequential test on the verdicts since the move back does not favour a drop; once the test favours the target the
type's served requests are no longer judged, and the change-point test does not run on a frontier type. The drift
replay of `bench/learning_loop.py` drifts the busiest *local* type, so it never exercises this case.

Here a first replay (no drift) finds, for every type moved back below the target, the request at which its check
first decided for the target, and how many of the type's later requests the text model served locally. The type
with the most of them is then drifted (as the drift replay does: 70% of its local answers turn bad) from that
request + `delay`, and the replay counts the type's requests served locally after the drift: before the first thing
that acts on it (the check re-opened (its served requests judged) or decided for the drop, or a boundary move of
the type), and in all.
"""

from __future__ import annotations

import argparse
import math
import time

from learning_loop import load_stream, loop_settings, parser, replay, route_defaults

from tierwise.learning.drift import drop_odds
from tierwise.learning.loop import LearningLoop


def _args() -> argparse.Namespace:
    ap = parser()
    ap.add_argument("--delay", default="0,2000", help="requests after the check's decision at which the drift starts")
    ap.add_argument("--case", default=None, help="TYPE@I: drift TYPE from request I + 1 + delay (no first replay; "
                                                 "to run another version's case on the same requests)")
    args = ap.parse_args()
    for key, value in route_defaults().items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.discount is None:
        args.discount = 1.0 if args.sampling == "value" else 0.99
    return args


class Probe:
    """Wraps `LearningLoop._model_back` and `.plan` (class-level, for one replay at a time) to record, per request,
    the type, the tier served, the boundary's tier and the model-back state for a moved-back type."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, int | None, float | None]] = []
        self._back: tuple[int | None, float | None] = (None, None)
        self._orig_back = LearningLoop._model_back
        self._orig_plan = LearningLoop.plan

    def __enter__(self) -> Probe:
        probe = self

        def model_back(loop, st):  # type: ignore[no-untyped-def]
            r = probe._orig_back(loop, st)
            # the check's statistic (before round 30's fix: the sum of the verdicts since the move back)
            llr = (getattr(st, "check", None) if hasattr(st, "check")
                   else drop_odds(st.good, st.judged, loop.settings.boundary.quality_target)) if st.sent_back else None
            probe._back = (r, llr)
            return r

        def plan(loop, task_type, request_id, **kw):  # type: ignore[no-untyped-def]
            probe._back = (None, None)
            tier_before = loop.boundary.tier(task_type)
            p = probe._orig_plan(loop, task_type, request_id, **kw)
            probe.rows.append((task_type, p.tier, tier_before, *probe._back))
            return p

        LearningLoop._model_back = model_back  # type: ignore[method-assign]
        LearningLoop.plan = plan  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        LearningLoop._model_back = self._orig_back  # type: ignore[method-assign]
        LearningLoop.plan = self._orig_plan  # type: ignore[method-assign]


def main() -> None:
    args = _args()
    t0 = time.time()
    data, types, _ = load_stream(args.seed, args.task_types)
    settings = loop_settings(args)
    n = len(data)
    h = math.log(settings.request_model.check_odds)
    if args.case:
        best, at0 = args.case.rsplit("@", 1)
        print(f"seed {args.seed}: after_move_back {settings.request_model.after_move_back}; case {args.case}")
        _drifts(args, data, types, settings, best, int(at0))
        print(f"({time.time() - t0:.0f} s)")
        return
    with Probe() as p:
        base = replay(data, types, settings, seed=args.seed)
    decided: dict[str, int] = {}
    for i, (t, _tier, btier, back, llr) in enumerate(p.rows):
        if btier == "frontier" and back is not None and llr is not None and llr <= -h + 1e-9 and t not in decided:
            decided[t] = i
    print(f"seed {args.seed}: after_move_back {settings.request_model.after_move_back}; {n} requests; "
          f"types whose check decided for the target: {len(decided)}")
    best, best_served = None, -1
    for t, i0 in sorted(decided.items(), key=lambda kv: kv[1]):
        after = [j for j in range(i0 + 1, n) if types[j] == t]
        served = sum(1 for j in after if p.rows[j][1] == "local" and p.rows[j][2] == "frontier")
        moves = [(i, m.to, m.why) for i, m in base.moves if m.task_type == t and i > i0]
        print(f"  {t}: decided at request {i0}; {len(after)} later requests, {served} served locally by the text model "
              f"while on the frontier; later moves {moves[:4]}")
        if served > best_served:
            best, best_served = t, served
    if best is None:
        print(f"no drift case on this seed ({time.time() - t0:.0f} s)")
        return
    _drifts(args, data, types, settings, best, decided[best])
    print(f"({time.time() - t0:.0f} s)")


def _drifts(args, data, types, settings, best: str, decided_at: int) -> None:  # type: ignore[no-untyped-def]
    n = len(data)
    for delay in (int(x) for x in args.delay.split(",")):
        at = decided_at + 1 + delay
        if at >= n:
            continue
        with Probe() as q:
            run = replay(data, types, settings, drift_at=at, drift_type=best, seed=args.seed)
        after = [j for j in range(at, n) if types[j] == best]
        first = None
        for k, j in enumerate(after):
            _t, _tier, btier, back, _llr = q.rows[j]
            if btier == "local" or back in (0, 2):
                first = k
                break
        moved = [(i, m.to, m.why) for i, m in run.moves if m.task_type == best and i >= at]
        mv = next((k for k, j in enumerate(after) if moved and j >= moved[0][0]), None)
        stop = min(x for x in (first, mv, len(after)) if x is not None)
        local = [q.rows[j][1] == "local" for j in after]
        # served locally while the text model was on the type (the check's part) and while it was off (the prompt
        # signal's `within` lift over a frontier type's mean: `within.moved_back`, the round-24 option)
        by_model = sum(1 for j in after if q.rows[j][1] == "local" and q.rows[j][3] in (1, 2))
        bad = sum(1 - run.quality[j] for j in after if q.rows[j][1] == "local")
        print(f"drift of {best} from request {at} (check's decision + {delay}): {len(after)} of its requests after; "
              f"served locally before anything acts on it: {sum(local[:stop])} (first action at its request "
              f"{stop}: {'model-back state ' + str(q.rows[after[stop]][3]) if stop < len(after) else 'none'}); "
              f"served locally in all: {sum(local)} ({bad:.0f} bad answers; {by_model} with the text model on the type); moves of the type after the drift: "
              f"{moved[:4]}; stream quality {run.quality.mean() * 100:.2f}, frontier share "
              f"{run.frontier.mean() * 100:.1f}%, verdicts {run.judged}")


if __name__ == "__main__":
    main()
