"""`order: {kind: gain}`: three-way verdicts on shadow pairs (local better / tie / frontier better), a per-type share
of "local better" among accepted pairs, and the acceptance rule's frontier share filled by gain. Hand-computed
figures on scripted streams through `GainOrder` and `LearningLoop`, the comparison judge's parsing, and the live
route's comparison judge over HTTP (official openai SDK, upstream doubles)."""

from __future__ import annotations

import copy
import json
import math

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import wait_for
from tests.learning.test_reflective_route import SUMMARY, reflective_config
from tierwise.learning.loop import LearningLoop, LoopSettings
from tierwise.learning.order import GainOrder, OrderSettings, comparison_of
from tierwise.verifiers.judge import parse_comparison


def scripted_order(**settings) -> GainOrder:
    g = GainOrder(OrderSettings(kind="gain", **settings))
    for c in ["local", "local", "local", "tie", "frontier", "frontier"]:
        g.record("a", c)
    for c in ["tie"] * 4 + ["frontier"]:
        g.record("b", c)
    return g


def test_local_better_share_is_pooled_by_hand() -> None:
    g = scripted_order()
    # frontier-better pairs are rejections (the boundary's) and add nothing: a 3 local / 1 tie, b 0 / 4
    assert g.pairs == {"a": [3, 1], "b": [0, 4]}
    r0 = (3 + 1) / (3 + 5 + 2)  # the route's pooled share: 0.4
    assert g.better_share("a") == pytest.approx((3 + 4 * r0) / (4 + 4))  # 0.575
    assert g.better_share("b") == pytest.approx((0 + 4 * r0) / (4 + 4))  # 0.2
    assert g.better_share("c") == pytest.approx(r0)  # a type without pairs: the pool
    assert g.score("a", 0.7) == pytest.approx(0.7 * 1.575)


def test_the_acceptance_rules_share_is_filled_by_score_by_hand() -> None:
    g = scripted_order(window=3)
    # b at 0.8 (acceptance rule: local), score 0.96: alone in the window, the rule's share is 0 -> local
    assert g.tier_local("b", 0.8, 0.75, u=0.9)
    # a at 0.7 (rule: frontier), score 1.1025: share 1/2, one local place, nothing above it -> local
    assert g.tier_local("a", 0.7, 0.75, u=0.9)
    # b again (0.96): share 1/3, two local places; one score above it and two tied at 0.96, so the tie is split:
    # local when 1 + 2u < 2
    g2 = copy.deepcopy(g)
    assert g.tier_local("b", 0.8, 0.75, u=0.49)
    assert not g2.tier_local("b", 0.8, 0.75, u=0.51)
    # a at 0.6 (rule: frontier), score 0.945; the window drops the first b: [a 1.1025 F, b 0.96 L, a 0.945 F]:
    # one local place, two scores above -> frontier
    assert not g.tier_local("a", 0.6, 0.75, u=0.0)


def test_comparison_of_graded_answers() -> None:
    assert comparison_of(1.0, 0.0) == "local" and comparison_of(0.0, 1.0) == "frontier"
    assert comparison_of(1.0, 1.0) == "tie" and comparison_of(0.0, 0.0) == "tie"
    # MT-Bench: within one grade point (0.1) is a tie; the rejection rule is the replay's `accepted`
    assert comparison_of(0.8, 0.7, 0.1) == "tie" and comparison_of(0.6, 0.7, 0.1) == "tie"
    assert comparison_of(0.9, 0.7, 0.1) == "local" and comparison_of(0.5, 0.7, 0.1) == "frontier"


def gain_loop(kind: str) -> LearningLoop:
    return LearningLoop("r", LoopSettings.model_validate({
        "boundary": {"quality_target": 0.75, "discount": 1.0}, "within": {"enabled": True}, "order": {"kind": kind}}))


def give_evidence(loop: LearningLoop) -> None:
    """x: 40 accepted of 50, every accepted pair a tie; y: 35 of 50, 30 of the accepted pairs won by the local
    answer (a type where the frontier model is often wrong). Mixed in so no run of rejections trips anything."""
    for i in range(50):
        loop.verdict("x", 0.0 if i % 5 == 4 else 1.0, request_id=f"ex{i}",
                     comparison="frontier" if i % 5 == 4 else "tie")
        rejected = i % 10 in (3, 7, 9)
        loop.verdict("y", 0.0 if rejected else 1.0, request_id=f"ey{i}",
                     comparison="frontier" if rejected else ("tie" if i % 10 == 1 else "local"))


def test_gain_order_swaps_two_types_at_the_same_frontier_share() -> None:
    served: dict[str, dict[str, list[str]]] = {}
    for kind in ("gain", "acceptance"):
        loop = gain_loop(kind)
        give_evidence(loop)
        x, y = loop.boundary.state("x"), loop.boundary.state("y")
        assert x.mean() == pytest.approx(41 / 52) and y.mean() == pytest.approx(36 / 52)
        assert x.tier == y.tier == "frontier"  # neither type moved: the boundary is untouched
        served[kind] = {"x": [], "y": []}
        for i in range(60):
            t = "x" if i % 2 == 0 else "y"
            p = loop.plan(t, f"{kind}-{i}", signal=math.log1p(100))
            if p.judge:  # judged stays the type's decision; a judged request on the frontier gets its shadow run
                assert p.shadow == (p.tier == "frontier")
            if i >= 20:
                served[kind][t].append(p.tier)
    # by acceptance: x (0.788) local, y (0.692) frontier. By gain, with r_x = 4 r0 / 44 and r_y = (30 + 4 r0) / 39,
    # r0 = 31 / 77: x scores 0.817, y 1.253 -> the half of the traffic the rule sends to the frontier is x's
    assert served["acceptance"] == {"x": ["local"] * 20, "y": ["frontier"] * 20}
    assert served["gain"]["y"] == ["local"] * 20
    # x's requests tie with each other: the (k+1)-th is local with probability 1 / (k + 1) (about one of these 20)
    assert served["gain"]["x"].count("frontier") >= 16
    loop = gain_loop("gain")
    give_evidence(loop)
    assert loop.order.better_share("y") == pytest.approx((30 + 4 * 31 / 77) / 39)


def test_comparisons_count_only_on_a_gain_route_and_not_from_feedback() -> None:
    loop = gain_loop("gain")
    loop.verdict("x", 1.0, request_id="f1", comparison="local", feedback=True)
    loop.verdict("x", 1.0, request_id="v1")  # no comparison (a verifier, a served answer judged alone)
    loop.verdict("x", 0.0, request_id="v2", comparison="frontier")
    assert loop.order.pairs == {}
    loop.verdict("x", 1.0, request_id="v3", comparison="local")
    assert loop.order.pairs == {"x": [1, 0]}
    plain = gain_loop("acceptance")
    plain.verdict("x", 1.0, request_id="v3", comparison="local")
    assert plain.order is None and plain.boundary.state("x").total_judged == 1


def test_saved_state_keeps_the_pairs_and_the_window(tmp_path) -> None:
    a = gain_loop("gain")
    give_evidence(a)
    for i in range(30):
        a.plan("x" if i % 2 else "y", f"w{i}", signal=math.log1p(100))
    a.save(tmp_path / "s.json")
    b = gain_loop("gain")
    assert b.restore(tmp_path / "s.json")
    assert b.order.pairs == a.order.pairs and b.order.better_share("y") == a.order.better_share("y")
    for i in range(20):
        t = "x" if i % 2 else "y"
        assert b.plan(t, f"n{i}", signal=math.log1p(100)).tier == a.plan(t, f"n{i}", signal=math.log1p(100)).tier
    c = gain_loop("gain")
    c.load({"version": 1, "route": "r", "order": {"pairs": {"x": [1, -2], "y": "no", "z": [2, 3]},
                                                 "window": [[1, "nan"], [0, float("inf")], [1, 0.5], "bad"]}})
    assert c.order.pairs == {"z": [2, 3]} and c.order.dump()["window"] == [[1, 0.5]]


@pytest.mark.parametrize(("reply", "winner"), [
    ("Both are fine, answer 2 is more complete.\nVERDICT: 2", "2"),
    ("VERDICT: 1", "1"),
    ("**Verdict:** Answer 1", "1"),
    ("They are equivalent.\nVERDICT: tie", "tie"),
    ("verdict = same", "tie"),
    ('{"reasoning": "x", "verdict": "answer_2"}', "2"),
    ('{"winner": 1}', "1"),
    ("I compared them.\n2", "2"),
    ("Answer 1 is shorter, answer 2 longer.", None),
    ("VERDICT: 12", None),
    ("verdict" + " " * 100_000, None),
    ("", None),
])
def test_parse_comparison(reply: str, winner: str | None) -> None:
    assert parse_comparison(reply) == winner


def comparing_judge(says: str):
    """The frontier double: a comparison prompt is answered by naming the local answer better / worse (by its
    position in the prompt, which the route alternates) or a tie, in varying formats; anything else is answered."""
    styles = ["The first covers more.\nVERDICT: {w}", '{{"verdict": "{w}"}}', "Compared.\n**Verdict:** Answer {w}"]
    calls = []

    def reply(rec):
        text = json.dumps(rec.body)
        if "You are comparing" not in text:
            return Reply(text="frontier answer")
        local_pos = "1" if text.find("local summary") < text.find("frontier answer") else "2"
        other = "2" if local_pos == "1" else "1"
        w = {"better": local_pos, "worse": other, "tie": "tie"}[says]
        calls.append(local_pos)
        return Reply(text=styles[len(calls) % len(styles)].format(w=w))
    return reply, calls


@pytest.mark.parametrize(("says", "comparison", "grade"), [
    ("better", "local", "good"), ("tie", "tie", "acceptable"), ("worse", "frontier", "poor")])
def test_live_route_asks_the_judge_to_compare_shadow_pairs(gateway, openai_up, anthropic_up,  # noqa: F811
                                                            says, comparison, grade):
    g = gateway(reflective_config(openai_up, anthropic_up, order={"kind": "gain"},
                                  boundary={"credible": 0.99}))
    openai_up.default = Reply(text="local summary")
    reply, calls = comparing_judge(says)
    anthropic_up.default = reply
    route = g.gateway.resolve("main")
    client = oai(g)
    for i in range(5):
        r = client.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (#{i})"}])
        assert r.choices[0].message.content == "frontier answer"
        assert wait_for(lambda: not route._background, timeout=30)
    judged = [json.dumps(r.body) for r in anthropic_up.requests if "You are comparing" in json.dumps(r.body)]
    assert len(judged) == len(calls) == 5  # every shadow pair compared, no grading prompt
    assert all("local summary" in t and "frontier answer" in t for t in judged)  # the judge saw both answers
    assert not any("You are grading" in json.dumps(r.body) for r in anthropic_up.requests)
    g.flush()
    evals = [e.extra["evaluation"] for e in g.ledger.query(kind="eval")]
    assert [(e["comparison"], e["grade"], e["accepted"], e["shadow"]) for e in evals] == \
        [(comparison, grade, comparison != "frontier", True)] * 5
    st = route.loop.boundary.state("summarisation")
    assert st.total_judged == 5 and st.total_good == (0 if comparison == "frontier" else 5)
    assert route.loop.order.pairs == ({} if comparison == "frontier" else
                                     {"summarisation": [5, 0] if comparison == "local" else [0, 5]})


def test_live_route_without_gain_order_grades_the_local_answer_alone(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(reflective_config(openai_up, anthropic_up, within={"enabled": True}))
    openai_up.default = Reply(text="local summary")
    reply, calls = comparing_judge("better")
    anthropic_up.default = reply
    route = g.gateway.resolve("main")
    oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": SUMMARY}])
    assert wait_for(lambda: not route._background, timeout=30)
    assert not calls and route.loop.order is None
    assert any("You are grading" in json.dumps(r.body) for r in anthropic_up.requests)


def test_a_comparison_reply_without_a_winner_records_no_verdict(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(reflective_config(openai_up, anthropic_up, order={"kind": "gain"}))
    openai_up.default = Reply(text="local summary")

    def reply(rec):
        if "You are comparing" in json.dumps(rec.body):
            return Reply(text="Answer 1 is terse and answer 2 is long; both are good.")
        return Reply(text="frontier answer")
    anthropic_up.default = reply
    route = g.gateway.resolve("main")
    oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": SUMMARY}])
    assert wait_for(lambda: not route._background, timeout=30)
    g.flush()
    ev = g.ledger.query(kind="eval")[0].extra["evaluation"]
    assert ev["comparison"] is None and ev["grade"] is None and ev["accepted"] is None
    assert route.loop.boundary.state("summarisation").total_judged == 0 and route.loop.order.pairs == {}


def share_loop(order: str, model: str = "text", weight: float = 0.5) -> LearningLoop:
    from tests.learning.test_request_model import feed

    loop = LearningLoop("r", LoopSettings.model_validate({
        "schedule": {"first_uses": 1000, "shadow_stop_after": 10_000},
        "boundary": {"quality_target": 0.75, "discount": 1.0}, "within": {"enabled": True},
        "request_model": {"kind": model, "min_rows": 20, "refit_every": 5, "alpha": 0.3, "weight": weight},
        "order": {"kind": order}}))
    if model == "text":  # the text model learns (from a third type's verdicts) that EASY prompts pass and HARD fail
        feed(loop, "train", 20, 20)
        assert loop.request_model.ready
    give_evidence(loop)  # x at 0.788 (the acceptance rule: local), y at 0.692 (frontier), no training rows
    return loop


@pytest.mark.parametrize(("x_text", "y_text", "expect"), [
    # the text model favours y's prompts: `share` sends y local and x to the frontier (which requests)
    ("HARD", "EASY", {"share": ("frontier", "local"), "acceptance": ("frontier", "local"),
                      "no model": ("local", "frontier")}),
    # it favours both: the blend alone sends both local; `share` keeps the rule's half on the frontier (how many)
    ("EASY", "EASY", {"share": ("local", "frontier"), "acceptance": ("local", "local"),
                      "no model": ("local", "frontier")}),
])
def test_share_order_lets_the_text_model_choose_which_requests_not_how_many(x_text, y_text, expect) -> None:
    from tests.learning.test_request_model import EASY, HARD, WORDS

    texts = {"EASY": EASY, "HARD": HARD}
    got = {}
    for name, order, model in (("share", "share", "text"), ("acceptance", "acceptance", "text"),
                               ("no model", "share", "none")):
        loop = share_loop(order, model)
        tiers: dict[str, list[str]] = {"x": [], "y": []}
        for i in range(80):
            t = "x" if i % 2 == 0 else "y"
            text = texts[x_text if t == "x" else y_text].format(w=WORDS[i % len(WORDS)])
            p = loop.plan(t, f"{name}-{i}", signal=math.log1p(len(text)), text=text)
            if i >= 40:
                tiers[t].append(p.tier)
        got[name] = tuple(max(set(v), key=v.count) for v in (tiers["x"], tiers["y"]))
        if name == "share" or name == "no model":  # the rule's half of the traffic on the frontier
            assert tiers["x"].count("frontier") + tiers["y"].count("frontier") in range(17, 24)
    assert got == expect


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_share_order_leaves_a_type_without_enough_verdicts_to_the_loops_own_estimate(weight) -> None:
    """A new type z (4 verdicts of its own, under `min_verdicts` 5: not reordered) whose prompts the text model
    likes: under `share` its requests take the tier the loop's own estimate gives (the type's posterior mean, under
    the target: frontier), as without a request model; the blend alone (`acceptance` with the model at weight 1.0)
    would send them local before z has evidence of its own (RESULTS, "Issue 21, session 19 (round 9)": the leak)."""
    from tests.learning.test_request_model import EASY, WORDS

    got = {}
    for name, order, model in (("share", "share", "text"), ("acceptance", "acceptance", "text"),
                               ("no model", "share", "none")):
        loop = share_loop(order, model, weight)
        for i in range(4):  # 3 of 4 accepted: the type's own mean stays under the target
            loop.verdict("z", 0.0 if i == 3 else 1.0, request_id=f"ez{i}")
        assert loop.boundary.state("z").total_judged == 4
        tiers = []
        for i in range(40):
            text = EASY.format(w=WORDS[i % len(WORDS)])
            tiers.append(loop.plan("z", f"{name}-z{i}", signal=math.log1p(len(text)), text=text).tier)
        got[name] = tiers
    assert got["no model"] == ["frontier"] * 40
    assert got["share"] == got["no model"]  # the old code: local on the blend (both weights)
    if weight == 1.0:
        assert got["acceptance"] == ["local"] * 40  # the blend alone: the text model decides
