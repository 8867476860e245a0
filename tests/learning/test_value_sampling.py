"""Sampling by value of information (`sampling: value`): exact decisions on a scripted stream."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from tierwise.learning.drift import threshold
from tierwise.learning.loop import LearningLoop, LoopSettings
from tierwise.learning.schedule import systematic, unit_hash
from tierwise.learning.value import evsi, worth_sampling


def value_loop(**value) -> LearningLoop:
    return LearningLoop("r", LoopSettings.model_validate({
        "sampling": "value",
        "value": {"horizon": 10_000, "saving_usd": 0.01, "judge_usd": 0.015, "shadow_usd": 0.01, **value},
        "schedule": {"audit_rate": 0.02, "shadow_audit_rate": 0.005},
        "boundary": {"quality_target": 0.75, "credible": 0.9, "discount": 1.0}}))


def test_a_common_cold_type_is_judged_and_shadowed_until_it_moves_then_only_audited() -> None:
    loop = value_loop()
    plans = []
    for i in range(200):
        p = loop.plan("qa", f"q{i}")
        plans.append(p)
        if p.judge:
            loop.verdict("qa", 1.0, request_id=f"q{i}")
        if loop.boundary.tier("qa") == "local" and loop.boundary.wrong_side("qa") < 0.05:
            break
    assert all(p.tier == "frontier" and p.judge and p.shadow and p.reason == "value" for p in plans[:10])
    # settled local: exactly every 50th use is audited (no shadow: the local tier answered)
    start = loop.seen["qa"]
    decided = [loop.plan("qa", f"s{i}") for i in range(200)]
    expect = [systematic(start + i + 1, 0.02, "r\x00qa") for i in range(200)]
    assert [p.judge for p in decided] == expect and sum(expect) == 4
    assert all(p.tier == "local" and not p.shadow for p in decided)
    assert {p.reason for p, e in zip(decided, expect, strict=True) if not e} == {"skip-settled"}
    assert {p.reason for p, e in zip(decided, expect, strict=True) if e} == {"audit"}


def test_a_rare_type_is_not_worth_judging() -> None:
    loop = value_loop()
    for i in range(5000):
        loop.plan("common", f"c{i}")
    p = loop.plan("rare", "x0")
    assert p.tier == "frontier" and not p.judge and p.reason == "skip-value"  # 2 requests at stake of 10,000
    # the same type, cold, at the start of the stream would have been judged
    assert value_loop().plan("rare", "x0").reason == "value"


def test_a_type_far_below_the_target_stops_being_shadowed() -> None:
    loop = value_loop(pooled_strength=0.0)
    for i in range(30):
        loop.plan("code", f"k{i}")
        loop.verdict("code", 1.0 if i % 3 == 0 else 0.0)
    assert loop.boundary.wrong_side("code") < 0.05
    start = loop.seen["code"]
    decided = [loop.plan("code", f"z{i}") for i in range(400)]
    expect = [systematic(start + i + 1, 0.005, "r\x00code") for i in range(400)]
    assert [p.judge for p in decided] == expect and sum(expect) == 2
    assert all(p.shadow == p.judge for p in decided)


def test_a_leaning_change_point_test_raises_judging_in_proportion() -> None:
    loop = value_loop()
    for i in range(300):
        loop.plan("qa", f"q{i}")
        loop.verdict("qa", 1.0)
    assert loop.boundary.tier("qa") == "local"
    loop.verdict("qa", 0.0)
    s = loop.boundary.state("qa").cusum.s
    assert 0.0 < s < threshold(0.999)
    decided = [loop.plan("qa", f"w{i}") for i in range(300)]
    watched = [unit_hash(f"w{i}", "watch") < s / threshold(0.999) for i in range(300)]
    assert [p.reason == "change-watch" for p in decided] == watched and any(watched)


def test_negative_feedback_is_always_judged() -> None:
    loop = value_loop()
    for i in range(5000):
        loop.plan("common", f"c{i}")
    assert loop.plan("rare", "x", negative_feedback=True).reason == "negative-feedback"


def test_evsi_is_larger_near_the_target_and_with_more_at_stake() -> None:
    # frontier tier: a type just under the target may well clear it, one far under will not
    near, far = (evsi(a, b, 0.75, 10, 100.0, tier="frontier", z_move=1.28) for a, b in ((14, 6), (8, 12)))
    assert near > 20 * far > 0
    # local tier: the value is the shortfall the verdicts can reveal
    assert evsi(8, 2, 0.75, 10, 100.0) < evsi(8, 4, 0.75, 10, 100.0)
    assert evsi(8, 2, 0.75, 10, 1000.0) == pytest.approx(10 * evsi(8, 2, 0.75, 10, 100.0))
    assert worth_sampling(3, 1, 0.75, 500.0, 0.02, tier="frontier", z_move=1.28)
    assert not worth_sampling(3, 1, 0.75, 0.05, 0.02, tier="frontier", z_move=1.28)
    assert not worth_sampling(300, 300, 0.75, 500.0, 0.02, tier="frontier", z_move=1.28)


def test_explore_serve_answers_a_judged_frontier_request_locally_once_the_type_has_evidence() -> None:
    # saving 0.01, shadow 0.01, target 0.75: serving locally costs 0.01 * (0.75 - m) / 0.25 at acceptance m,
    # less than a shadow run while m > 0.5
    loop = value_loop(explore="serve", explore_after=5, pooled_strength=0.0)
    plans = []
    for i, v in enumerate([1.0, 1.0, 1.0, 0.0, 1.0]):
        p = loop.plan("qa", f"q{i}")
        plans.append(p)
        loop.verdict("qa", v, request_id=f"q{i}")
    # the first 5 verdicts come from shadow runs: no traffic moves without evidence
    assert all(p.tier == "frontier" and p.judge and p.shadow and not p.explore for p in plans)
    assert loop.boundary.tier("qa") == "frontier"  # Beta(5, 2): mean 0.71, lower bound under the target
    p = loop.plan("qa", "q5")
    assert (p.tier, p.judge, p.shadow, p.reason, p.explore) == ("local", True, False, "value (served)", True)
    # the served answer's verdict counts like any other; three rejections put the mean at 5/10 = 0.5
    for i, v in enumerate([0.0, 0.0, 0.0]):
        loop.verdict("qa", v, request_id=f"r{i}")
    assert loop.boundary.state("qa").mean() == pytest.approx(0.5)
    p = loop.plan("qa", "q6")
    assert not p.explore and p.tier == "frontier" and p.shadow == p.judge


def test_explore_serve_is_off_by_default_and_waits_for_a_measured_shadow_cost() -> None:
    for loop in (value_loop(pooled_strength=0.0), value_loop(explore="serve", pooled_strength=0.0, shadow_usd=None)):
        for i in range(5):
            loop.plan("qa", f"q{i}")
            loop.verdict("qa", 1.0 if i != 3 else 0.0, request_id=f"q{i}")
        p = loop.plan("qa", "q5")
        assert p.judge and p.tier == "frontier" and not p.explore


def test_under_within_type_routing_the_request_s_own_estimate_decides_whether_it_is_explored() -> None:
    loop = LearningLoop("r", LoopSettings.model_validate({
        "sampling": "value", "within": {"enabled": True, "min_verdicts": 2},
        "value": {"horizon": 10_000, "saving_usd": 0.01, "judge_usd": 0.015, "shadow_usd": 0.01,
                  "explore": "serve", "explore_after": 5, "pooled_strength": 0.0},
        "boundary": {"quality_target": 0.75, "credible": 0.9, "discount": 1.0}}))
    # short prompts all accepted, long ones 2 of 5: a falling slope; 7 of 10 keeps the type on the frontier
    for i, (x, v) in enumerate([(3.0, 1.0), (6.0, 0.0), (3.0, 1.0), (6.0, 1.0), (3.0, 1.0), (6.0, 0.0),
                                (3.0, 1.0), (6.0, 0.0), (3.0, 1.0), (6.0, 1.0)]):
        loop.plan("qa", f"q{i}", signal=x)
        loop.verdict("qa", v, request_id=f"q{i}")
    assert loop.boundary.tier("qa") == "frontier" and loop.within.slope("qa") < 0
    # both are judged (the type's decision); the long one's own estimate is far under the target: a shadow run;
    # the short one's clears it: within-type routing serves it locally, and its verdict needs no shadow run
    long_, short = loop.plan("qa", "long", signal=6.0), loop.plan("qa", "short", signal=3.0)
    assert long_.judge and long_.shadow and long_.tier == "frontier" and not long_.explore
    assert short.judge and not short.shadow and short.tier == "local"


def test_explore_serve_under_the_fixed_schedule_serves_the_sampled_uses_after_the_first_five() -> None:
    loop = LearningLoop("r", LoopSettings.model_validate({
        "sampling": "rules", "schedule": {"first_uses": 5, "sample_rate": 0.1},
        "value": {"saving_usd": 0.01, "judge_usd": 0.015, "shadow_usd": 0.01, "explore": "serve", "explore_after": 5,
                  "pooled_strength": 0.0},
        "boundary": {"quality_target": 0.75, "credible": 0.99, "discount": 1.0}}))
    plans = []
    for i in range(60):
        p = loop.plan("qa", f"q{i}")
        plans.append(p)
        if p.judge:
            loop.verdict("qa", 0.0 if i == 2 else 1.0, request_id=f"q{i}")
    assert loop.boundary.tier("qa") == "frontier"
    assert [(p.tier, p.shadow, p.reason) for p in plans[:5]] == [("frontier", True, "first-uses")] * 5
    later = plans[5:]
    sampled = [unit_hash(f"q{i}", "sample") < 0.1 for i in range(5, 60)]
    assert [p.judge for p in later] == sampled and any(sampled)
    assert all((p.tier, p.shadow, p.reason, p.explore) == ("local", False, "sample (served)", True)
               for p in later if p.judge)
    assert all(p.tier == "frontier" and not p.judge for p in later if not p.judge)


def test_margin_audits_are_sparser_for_a_type_far_above_the_target() -> None:
    from tierwise.learning.value import audit_stretch

    assert audit_stretch(0.75, 0.75, 2.0) == 1.0 and audit_stretch(0.7, 0.75, 2.0) == 1.0
    # the change test needs ln(0.5/0.25) / ln(0.5/0.1) as many rejections at 0.9 as at the target
    assert audit_stretch(0.9, 0.75, 10.0) == pytest.approx(math.log(5.0) / math.log(2.0))
    assert audit_stretch(0.99, 0.75, 1.5) == 1.5
    audits = {}
    for mode in ("fixed", "margin"):
        loop = value_loop(audit=mode, audit_stretch=1.5)
        for i in range(200):
            p = loop.plan("qa", f"q{i}")
            if p.judge:
                loop.verdict("qa", 1.0, request_id=f"q{i}")
            if loop.boundary.tier("qa") == "local" and loop.boundary.wrong_side("qa") < 0.05:
                break
        start = loop.seen["qa"]
        assert audit_stretch(loop.boundary.state("qa").mean(), 0.75, 1.5) == 1.5  # the most: every 75th use
        decided = [loop.plan("qa", f"s{i}") for i in range(600)]
        assert {p.reason for p in decided if p.judge} == {"audit"}
        audits[mode] = [i for i, p in enumerate(decided) if p.judge]
        if mode == "fixed":
            assert [p.judge for p in decided] == [systematic(start + i + 1, 0.02, "r\x00qa") for i in range(600)]
    assert len(audits["fixed"]) == 12 and len(audits["margin"]) == 8
    # a systematic sample with the stretched step: the gaps stay bounded (74-76 uses, float accumulation)
    assert all(74 <= b - a <= 76 for a, b in pairwise(audits["margin"]))
    # the accumulated rate survives a restart
    loop.audit_credit["qa"] = 0.25
    again = LearningLoop("r", loop.settings)
    again.load(loop.dump())
    assert again.audit_credit == {"qa": 0.25}


def test_a_confirming_watch_stops_once_enough_accepted_verdicts_answer_a_lone_rejection() -> None:
    from tierwise.learning.drift import weights

    modes = {"lean": {"watch": "lean"}, "confirm1": {"watch": "confirm", "confirmations": 1},
             "confirm2": {"watch": "confirm", "confirmations": 2}}
    loops = {name: value_loop(**v) for name, v in modes.items()}
    for loop in loops.values():
        for i in range(300):  # 90% accepted, the last rejection long cleared
            loop.plan("qa", f"q{i}")
            loop.verdict("qa", 0.0 if i % 10 == 5 else 1.0)
        st = loop.boundary.state("qa")
        assert st.tier == "local" and st.cusum.s == 0.0
        loop.verdict("qa", 0.0)  # a lone rejected audit
    c = loops["lean"].boundary.state("qa").cusum
    rejection, acceptance = weights(c.p0, 0.75)
    assert c.s == pytest.approx(rejection) and acceptance < rejection < 3 * acceptance

    def watched(loop: LearningLoop, tag: str) -> None | list[bool]:
        """The change-watch decisions on 200 requests; None when they are exactly the lean rule's."""
        s = loop.boundary.state("qa").cusum.s
        decided = [loop.plan("qa", f"{tag}{i}") for i in range(200)]
        expect = [unit_hash(f"{tag}{i}", "watch") < s / threshold(0.999) for i in range(200)]
        got = [p.reason == "change-watch" for p in decided]
        assert got == expect or not any(got)
        assert {p.reason for p in decided if p.judge} <= {"change-watch", "audit"}
        return None if got == expect and any(expect) else got

    # the lone rejection: every mode watches in proportion to the statistic
    assert all(watched(loop, "w") is None for loop in loops.values())
    for loop in loops.values():
        loop.verdict("qa", 1.0)  # a first confirming verdict accepts the answer
    assert watched(loops["lean"], "v") is None and watched(loops["confirm2"], "v") is None
    assert watched(loops["confirm1"], "v") is not None  # stopped: only the audits are left
    for loop in loops.values():
        loop.verdict("qa", 1.0)  # a second one
    assert 0.0 < loops["lean"].boundary.state("qa").cusum.s < acceptance  # still leaning
    assert watched(loops["lean"], "u") is None
    assert watched(loops["confirm2"], "u") is not None and watched(loops["confirm1"], "t") is not None
    # a second rejection before the statistic is back at zero: past the floor, watched again
    for loop in loops.values():
        loop.verdict("qa", 0.0)
        assert loop.boundary.tier("qa") == "local" and watched(loop, "z") is None


def within_value_loop(per_request: bool) -> LearningLoop:
    return LearningLoop("r", LoopSettings.model_validate({
        "sampling": "value", "within": {"enabled": True},
        "value": {"horizon": 10_000, "saving_usd": 0.01, "judge_usd": 0.015, "shadow_usd": 0.01,
                  "pooled_strength": 0.0, "per_request": per_request},
        "boundary": {"quality_target": 0.75, "credible": 0.9, "discount": 1.0}}))


def test_per_request_value_matches_the_type_level_value_without_a_slope_and_shrinks_with_one() -> None:
    from tierwise.learning.value import evsi_per_request, normal_loss

    a, b, m, stake = 7.5, 2.5, 10, 100.0  # mean 0.75: at the target
    n = a + b
    sd_m = math.sqrt(a * b / (n * n * (n + 1.0)) * m / (n + m))
    assert evsi_per_request(a, b, 0.75, m, stake) == pytest.approx(stake * sd_m * normal_loss(0.0))
    assert evsi_per_request(a, b, 0.75, m, stake) == pytest.approx(evsi(a, b, 0.75, m, stake, tier="local"))
    # a steep within-type slope spreads the requests away from the target: fewer tiers hang on the verdicts
    flat, mild, steep = (evsi_per_request(a, b, 0.75, m, stake, s) for s in (0.0, 0.5, 1.5))
    assert flat > mild > steep > 0.0
    # a frontier type above the target: its requests are already local, so the value is only what the verdicts
    # can still send back, less than the type-level value of winning the move
    assert evsi_per_request(9.0, 2.0, 0.75, m, stake) < evsi(9.0, 2.0, 0.75, m, stake, tier="frontier", z_move=1.64)


def test_per_request_judges_the_first_uses_then_stops_once_the_requests_already_go_local() -> None:
    plans = {}
    for per_request in (False, True):
        loop = within_value_loop(per_request)
        plans[per_request] = []
        for i in range(12):
            p = loop.plan("qa", f"q{i}", signal=3.0)  # one signal: no slope
            plans[per_request].append(p)
            if p.judge:
                loop.verdict("qa", 1.0, request_id=f"q{i}")
    # the first five: judged from shadow runs while the type's requests are on the frontier, then served locally
    # (within-type routing by the type's mean, 1 + k accepted of 2 + k)
    assert [p.reason for p in plans[True][:5]] == ["first-use"] * 2 + ["first-use (within-type)"] * 3
    assert [p.shadow for p in plans[True][:5]] == [True] * 2 + [False] * 3
    assert all(p.tier == "local" for p in plans[True][2:])
    # the type-level value judges until the credible bound moves the type (10 verdicts), then it is settled;
    # per request, the move its requests have already made is not worth as many: 8 verdicts, and the requests
    # stay local by their own estimate while the type itself has not moved
    assert [p.judge for p in plans[False]] == [True] * 10 + [False] * 2
    assert plans[False][10].reason == "skip-settled"
    assert [p.judge for p in plans[True]] == [True] * 8 + [False] * 4
    assert {p.reason for p in plans[True][8:]} == {"within-type"}


def test_per_request_needs_within_type_routing() -> None:
    loop = value_loop(per_request=True)  # within disabled: the type-level rules apply unchanged
    ref = value_loop()
    for i in range(30):
        p, q = loop.plan("qa", f"q{i}"), ref.plan("qa", f"q{i}")
        assert (p.judge, p.reason, p.tier) == (q.judge, q.reason, q.tier)
        if p.judge:
            loop.verdict("qa", 1.0)
            ref.verdict("qa", 1.0)


def test_pooled_prior_is_the_method_of_moments_beta_of_the_spread_between_types() -> None:
    from tierwise.learning.value import pooled_prior

    # acceptances 0.9 (of 10) and 0.5 (of 10): m = 0.7, weighted spread 0.04, noise 0.21 / 20 = 0.0105,
    # between 0.0295, strength 0.21 / 0.0295 - 1
    m, k = pooled_prior([(9.0, 1.0), (5.0, 5.0)], 1.0, 100.0)
    assert m == pytest.approx(0.7) and k == pytest.approx(0.21 / 0.0295 - 1.0)
    # types that agree within their sampling noise: the pool counts as the most it may
    assert pooled_prior([(8.0, 2.0), (7.0, 3.0)], 4.0, 50.0) == pytest.approx((0.75, 50.0))
    # clipped below; one type alone has no spread to measure; no evidence, no pool
    assert pooled_prior([(10.0, 0.0), (0.0, 10.0)], 4.0, 50.0) == pytest.approx((0.5, 4.0))
    assert pooled_prior([(3.0, 1.0)], 4.0, 50.0) == pytest.approx((0.75, 4.0))
    assert pooled_prior([(0.0, 0.0)], 4.0, 50.0) is None


def test_a_parent_pool_starts_a_type_from_its_siblings_not_from_every_type() -> None:
    route, parent = value_loop(), value_loop(pool="parent")
    for loop in (route, parent):
        for i in range(10):
            loop.verdict("mmlu/law", 1.0, request_id=f"a{i}")
            loop.verdict("gsm8k", 0.0, request_id=f"b{i}")
            loop.verdict("mmlu/nested/x", 0.0, request_id=f"c{i}")  # not a sibling: another level
    # route: 10 accepted of 30 over every type, under the 1/1 prior; parent: mmlu/law's 10 of 10
    assert route._forecast("mmlu/health") == pytest.approx((4 * 11 / 32, 4 * 21 / 32))
    assert parent._forecast("mmlu/health") == pytest.approx((4 * 11 / 12, 4 * 1 / 12))
    # a type's own evidence is not its own pool: mmlu/law's siblings have none, so it falls back to the route's
    # pool, as does a type without a prefix or without siblings
    assert parent._forecast("mmlu/law") == pytest.approx((10 + 4 * 11 / 32, 4 * 21 / 32))
    assert parent._forecast("gsm8k") == route._forecast("gsm8k")
    assert parent._forecast("mt-bench/coding") == route._forecast("mt-bench/coding")
    # and the decision follows: a cold sibling of a type far above the target is forecast above it
    est = value_loop(pool="parent", pool_strength="estimated", pooled_strength=2.0, pooled_strength_max=30.0)
    for i in range(10):
        est.verdict("mmlu/law", 1.0 if i < 9 else 0.0, request_id=f"a{i}")
        est.verdict("mmlu/health", 1.0 if i < 8 else 0.0, request_id=f"b{i}")
    # law 0.9 and health 0.8 (of 10 each) are within their noise: the pool of mmlu/x counts as 30 verdicts
    assert est._forecast("mmlu/x") == pytest.approx((30 * 17 / 20, 30 * 3 / 20))
