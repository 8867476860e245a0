"""The replay's command-line flags (bench/learning_loop.py): one per setting of the loop it can override."""

from __future__ import annotations

import argparse


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=float, default=0.75)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample-rate", type=float, default=0.10)
    ap.add_argument("--audit-rate", type=float, default=0.02)
    ap.add_argument("--shadow-audit-rate", type=float, default=0.005)
    ap.add_argument("--discount", type=float, default=None,
                    help="posterior discount per verdict (default: 1.0 with value sampling, whose change-point test "
                         "resets a drifted type; 0.99 with the fixed rules)")
    ap.add_argument("--credible", type=float, default=0.60)
    ap.add_argument("--move-back", choices=["mean", "credible"], default=None,
                    help="a local type moves back when its posterior mean (mean) or the upper edge of its credible "
                         "interval (credible) falls below the target")
    ap.add_argument("--move-back-credible", type=float, default=None,
                    help="with --move-back credible: the credible mass a move back needs (default: --credible)")
    ap.add_argument("--drift-restart", choices=["run", "prior"], default=None,
                    help="a type the change-point test sends back keeps the test's run as its posterior (run), or "
                         "starts again from the prior (prior); boundary.drift_restart")
    ap.add_argument("--drift-p0-credible", default=None,
                    help="the change-point test's in-control acceptance: the lower edge of the posterior's credible "
                         "interval of this mass when its statistic leaves zero, or `mean` (the posterior mean: the "
                         "default before round 23, so `--drift-p0-credible mean` reproduces rounds 17-23's D2); "
                         "boundary.drift_p0_credible")
    ap.add_argument("--drift-window", type=int, default=None,
                    help="boundary.drift_window: verdicts after a run-opening rejection weighed before the run can end")
    ap.add_argument("--drift-p0-floor-after", type=int, default=None,
                    help="boundary.drift_p0_floor_after: verdicts since a move local after which the change test's "
                         "unchanged rate is at least the target")
    ap.add_argument("--move-back-keep", type=float, default=None,
                    help="a type sent back below the target keeps at most this many verdicts' worth of evidence, its "
                         "mean unchanged (boundary.move_back_keep)")
    ap.add_argument("--stop-quantile", type=float, default=0.70)
    ap.add_argument("--reprobe", type=int, default=5)
    ap.add_argument("--stop-after", type=int, default=20)
    ap.add_argument("--tail", type=int, default=2000)
    ap.add_argument("--sampling", choices=["value", "rules"], default=None,
                    help="judge by value of information (default) or by the fixed schedule rules")
    ap.add_argument("--settled", type=float, default=0.05,
                    help="value sampling: a type is only audited once P(its tier is on the wrong side) is below this")
    ap.add_argument("--pooled-strength", type=float, default=4.0,
                    help="value sampling: the route's pooled acceptance counts as this many verdicts in the forecast")
    ap.add_argument("--pool", choices=["route", "parent"], default="route",
                    help="value sampling: a type's forecast starts from the route's pooled acceptance or its "
                         "siblings' (types sharing its name prefix: the MMLU subjects)")
    ap.add_argument("--pool-strength", choices=["fixed", "estimated"], default="fixed",
                    help="value sampling: the pool counts as --pooled-strength verdicts, or as many as the spread "
                         "between its types says (empirical Bayes, up to --pooled-strength-max)")
    ap.add_argument("--pooled-strength-max", type=float, default=50.0)
    ap.add_argument("--horizon", type=int, default=10_000,
                    help="value sampling: requests over which a boundary decision must pay back its verdicts")
    ap.add_argument("--explore", choices=["shadow", "serve"], default=None,
                    help="value sampling: a frontier type's verdicts from shadow runs, or from served local answers "
                         "where the quality given up costs less than a shadow run (at the route's exchange rate)")
    ap.add_argument("--audit", choices=["fixed", "margin", "detect"], default="fixed",
                    help="value sampling: local audits every 1/audit-rate-th use, sparser far above the target "
                         "(margin), or spaced to detect a drift within --detect-within of the type's requests, the "
                         "change-watch then judging every request until the test decides (detect)")
    ap.add_argument("--detect-within", type=int, default=200, help="with --audit detect (value.detect_within)")
    ap.add_argument("--audit-budget", type=float, default=None,
                    help="audits of local types --audit-boost times as dense while the evaluation spent so far is under "
                         "this share of the savings so far (value.audit_budget; unset: off)")
    ap.add_argument("--audit-boost", type=float, default=2.0, help="with --audit-budget (value.audit_boost)")
    ap.add_argument("--audit-boost-for", choices=["local", "established", "mean"], default="local",
                    help="with --audit-budget: boost every local type, only established ones, or those with a "
                         "posterior mean over the established acceptance (value.audit_boost_for)")
    ap.add_argument("--audit-window", type=int, default=None,
                    help="with --audit-budget: the account forgets at 1/N per request (value.audit_window)")
    ap.add_argument("--audit-goal", type=float, default=None, help="with --audit-budget: value.audit_goal")
    ap.add_argument("--audit-charge", choices=["none", "watch"], default="none",
                    help="with --audit-budget: charge each extra audit with its expected change-watch verdicts "
                         "(value.audit_charge)")
    ap.add_argument("--audit-stretch", type=float, default=2.0,
                    help="with --audit margin: the most a type's audit interval is stretched")
    ap.add_argument("--watch", choices=["lean", "confirm", "decide"], default=None,
                    help="value sampling: change-watch until --confirmations accepted verdicts have answered a lone "
                         "rejection (confirm, the replay's default in rounds 6-16), or whenever the drift test leans (lean: "
                         "the earlier sections' figures), or on every request while it leans, until it is back at zero or fires "
                         "(decide: the route's default since round 16)")
    ap.add_argument("--returned", choices=["full", "light"], default=None,
                    help="value sampling: a local type sent back below the target before, while its mean is under "
                         "the target, is judged as any type (full) or with no value-of-information verdicts and the "
                         "change-watch at lean's rate (light); value.returned")
    ap.add_argument("--reexplore", choices=["full", "sample"], default=None,
                    help="a frontier type sent back below the target before: judged on every request the value of "
                         "information asks for (full) or on the sample_rate hash sample of them; value.reexplore")
    ap.add_argument("--confirmations", type=int, default=2, help="with --watch confirm (see above)")
    ap.add_argument("--explore-after", type=int, default=5,
                    help="with --explore serve: shadow-run verdicts a type needs before its requests are served")
    ap.add_argument("--verdict", choices=["relative", "absolute"], default="relative",
                    help="judge accepts a local answer as good as the frontier's, or any right answer")
    ap.add_argument("--task-types", choices=["labels", "triage"], default="labels",
                    help="the benchmarks' labels (26 types) or the triage classifier's (lexical)")
    ap.add_argument("--within", action=argparse.BooleanOptionalAction, default=None,
                    help="within-type signal: each request takes the tier its own acceptance estimate calls for "
                         "(its type's, moved by the prompt's length with a per-type slope learned from the verdicts)")
    ap.add_argument("--within-moved-back", choices=["signal", "type"], default="signal",
                    help="with --within: a type moved back to the frontier still split by its prompt signal (signal, "
                         "the default) or served on its type's tier until it moves local again (type)")
    ap.add_argument("--within-near", choices=["off", "rank", "held"], default="off",
                    help="with --within or the text model: a type near the target split by rank (within.near)")
    ap.add_argument("--within-pool", choices=["off", "partial"], default="off",
                    help="with --within: each type's slope shrunk toward the pooled one (within.pool)")
    ap.add_argument("--within-near-band", type=float, default=0.05, help="with --within-near rank (within.near_band)")
    ap.add_argument("--within-near-min", type=int, default=20,
                    help="with --within-near rank: a type's verdicts before it is split (within.near_min_verdicts)")
    ap.add_argument("--within-signal", default=None, help="with --within: the signal from this file of per-question "
                    "scores (bench/learning_loop_signal.py) instead of the log of the prompt's length (within.signal)")
    ap.add_argument("--per-request", action="store_true",
                    help="with --within: value a verdict by the requests whose tier it can change (value.per_request)")
    ap.add_argument("--request-model", choices=["none", "text"], default=None,
                    help="a text model of local acceptance trained only on the verdicts the loop bought, blended into "
                         "each request's estimate (request_model.kind)")
    ap.add_argument("--request-weight", type=float, default=None, help="with --request-model text: its share")
    ap.add_argument("--request-combine", choices=["blend", "within"], default="blend",
                    help="with --request-model text: blend it with the loop's own estimate, or let the type's "
                         "`within` slope move the blend (request_model.combine)")
    ap.add_argument("--request-bound", choices=["none", "count", "model"], default="none",
                    help="a request of a frontier type goes local only when the lower credible bound of its estimate "
                         "clears the target: a Beta with the type's evidence count (count), or the text model's own "
                         "posterior sd (model); request_model.bound")
    ap.add_argument("--request-cap", choices=["none", "credible", "half"], default=None,
                    help="with --request-model text: on a type credibly below the target, the text model's estimate "
                         "capped at the upper edge of the type's own credible interval, for every request (credible) or "
                         "for those it rates under its running mean on the type (half); request_model.cap")
    ap.add_argument("--request-cap-credible", type=float, default=None,
                    help="with --request-cap: the two-sided mass whose upper edge caps (request_model.cap_credible)")
    ap.add_argument("--request-features", choices=["hashed", "embedding", "both"], default="hashed",
                    help="with --request-model text: what it reads (request_model.features)")
    ap.add_argument("--request-type-weight", type=float, default=0.0,
                    help="with --request-model text: the type label's share of its kernel (request_model.type_weight)")
    ap.add_argument("--request-after-move-back", choices=["off", "below-target", "checked"], default=None,
                    help="with --request-model text: the text model stays off a type moved back to the frontier (off: "
                         "the route's default) or still serves one moved back only by the below-target rule "
                         "(below-target: round 28's C), or does so while the verdicts since the move back do not "
                         "favour a drop (checked: round 29's); request_model.after_move_back")
    ap.add_argument("--request-check-odds", type=float, default=10.0,
                    help="with --request-after-move-back checked: request_model.check_odds")
    ap.add_argument("--request-check-max", type=int, default=50,
                    help="with --request-after-move-back checked: request_model.check_max")
    ap.add_argument("--request-check-margin", type=float, default=None,
                    help="with --request-after-move-back checked: request_model.check_margin d (the target + d "
                         "against the target - d; undecided at check_max leaves the model off); unset: the drop 2t - 1")
    ap.add_argument("--request-check-recheck", choices=["on", "off"], default="on",
                    help="with --request-after-move-back checked: request_model.check_recheck (off: round 29's check)")
    ap.add_argument("--request-frontier-label", type=float, default=None,
                    help="with --request-model text: the type label's weight in its kernel for task types the boundary "
                         "has never moved (frontier types; request_model.frontier_label)")
    ap.add_argument("--request-type-offset", type=float, default=None,
                    help="with --request-model text: each request's estimate moves by its type's mean residual "
                         "against the model, shrunk as if this many more verdicts had none (request_model.type_offset)")
    ap.add_argument("--request-judge-served", type=int, default=None,
                    help="with --request-model text: a frontier type's request the text model serves locally is judged "
                         "among the first M of its type, then on a sample (request_model.judge_served)")
    ap.add_argument("--request-judge-served-rate", type=float, default=None,
                    help="with --request-judge-served: the sample after the first M (default: the schedule's "
                         "sample_rate; request_model.judge_served_rate)")
    ap.add_argument("--embed-cache", default="/tmp/loop13/emb",
                    help="folder keeping the prompts' embeddings (--request-features embedding|both)")
    ap.add_argument("--order", choices=["acceptance", "share", "gain"], default="acceptance",
                    help="with --within: the frontier share the loop's own estimate gives, filled by the request "
                         "model's blended estimate (share) or by gain from three-way verdicts on shadow pairs (gain: the "
                         "pair's judge reads both answers and is charged for it); order.kind")
    ap.add_argument("--order-hindsight", action="store_true",
                    help="diagnostic, with --order gain: each type's share of 'local better' among accepted pairs taken "
                         "from the whole data before the stream (hindsight), on top of the pairs the loop buys")
    ap.add_argument("--no-drift", action="store_true", help="skip the second replay (the injected drift)")
    ap.add_argument("--no-router", action="store_true", help="skip the learned router baseline (slow)")
    ap.add_argument("--router-cache", default=None, help="folder keeping the router's CV scores per seed")
    ap.add_argument("--router-folds-of", type=int, default=None,
                    help="where this seed's CV scores are not cached: use those cached for seed K, put into this seed's "
                         "order (the same requests; only the CV folds differ)")
    ap.add_argument("--defaults", choices=["route", "replay16"], default="route",
                    help="what the flags left out take: the reflective route's defaults (route: ROUTE_DEFAULTS), or "
                         "the replay's own before round 17 (replay16: the commands of rounds 1-16)")
    return ap
