"""The reflective route's learned state survives a restart, and judge verdicts go out as OpenTelemetry
`gen_ai.evaluation.result` events (through the loopback OTLP receiver)."""

from __future__ import annotations

import json

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.learning.test_reflective_route import SUMMARY, judge_or_answer, reflective_config, wait_for
from tests.observability.otlp_receiver import OTLPReceiver, attrs
from tierwise.learning.loop import LearningLoop
from tierwise.observability.spans import EVALUATION_EVENT


def learn(g, n: int) -> None:
    route = g.gateway.resolve("main")
    for i in range(n):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (#{i})"}])
        assert wait_for(lambda: not route._background, timeout=30)


def test_posteriors_survive_a_restart(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    cfg = reflective_config(openai_up, anthropic_up)
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    g = gateway(cfg)
    learn(g, 12)
    before = g.gateway.resolve("main").loop
    assert before.boundary.tier("summarisation") == "local"
    g.stop()
    state = tmp_path / "ledger.db.boundary.main.state.json"
    saved = json.loads(state.read_text())
    assert saved["boundary"]["summarisation"]["tier"] == "local"

    again = gateway(cfg).gateway.resolve("main").loop
    assert again.dump() == before.dump()  # posteriors, counts and the drift test, not only the tiers
    # same decisions from here on: replay the same requests through both
    ids = [("summarisation", f"n{i}") for i in range(40)] + [("chat", f"c{i}") for i in range(10)]
    assert [again.plan(t, r) for t, r in ids] == [before.plan(t, r) for t, r in ids]


def test_two_reflective_routes_keep_their_states_apart(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    # Before: both routes saved to `<ledger>.boundary.state.json`, so after a restart `other` started from the
    # posteriors `main` had learned (and the last writer's state was the only one left).
    cfg = reflective_config(openai_up, anthropic_up)
    cfg["routes"]["other"] = dict(cfg["routes"]["main"])
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    g = gateway(cfg)
    learn(g, 12)
    main_state = g.gateway.resolve("main").loop.dump()
    assert main_state["boundary"]["summarisation"]["tier"] == "local"
    g.stop()
    again = gateway(cfg).gateway
    assert again.resolve("main").loop.dump() == main_state
    assert again.resolve("other").loop.dump()["boundary"] == {}  # nothing learned on `other`


def test_a_state_saved_before_it_was_per_route_is_read_by_its_own_route_only(
        gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    cfg = reflective_config(openai_up, anthropic_up)
    cfg["routes"]["other"] = dict(cfg["routes"]["main"])
    old = LearningLoop("main")
    for i in range(20):
        old.plan("qa", f"q{i}")
        old.verdict("qa", 1.0)
    old.save(tmp_path / "ledger.db.boundary.state.json")  # the shared name earlier versions wrote
    gw = gateway(cfg).gateway
    assert gw.resolve("main").loop.dump()["boundary"] == old.dump()["boundary"]
    assert gw.resolve("other").loop.dump()["boundary"] == {}


def test_a_fresh_loop_without_the_state_decides_differently(tmp_path):
    """The check above is not vacuous: the move log alone restores the tier, not what the schedule knows."""
    a = LearningLoop("r")
    for i in range(40):
        a.plan("qa", f"q{i}")
        a.verdict("qa", 1.0)
    a.save(tmp_path / "s.json")
    b, c = LearningLoop("r"), LearningLoop("r")
    assert b.restore(tmp_path / "s.json") and not c.restore(tmp_path / "missing.json")
    ids = [f"x{i}" for i in range(30)]
    assert [b.plan("qa", r) for r in ids] == [a.plan("qa", r) for r in ids]
    assert [c.plan("qa", r) for r in ids] != [b.plan("qa", r) for r in ids]


def test_a_corrupt_state_file_is_ignored(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('{"version": 1, "boundary": {"qa": {"tier": "local", "a": "x"}}, "schedule": [{"key": 3}]}')
    loop = LearningLoop("r")
    assert loop.restore(p)
    assert loop.boundary.tier("qa") == "frontier"
    p.write_text("not json")
    assert not LearningLoop("r").restore(p)


def test_a_state_from_before_drifted_loads_and_a_hostile_drifted_count_skips_the_type(tmp_path):
    """loop29 saved `drifted` per task type: a state saved before has none (0); a count that is no count
    (text, 1e999, which json reads as inf) skips that type's whole state, as the docstring promises, and never
    fails the restore with an OverflowError (it did) nor leaves the type half restored (local, before)."""
    a = LearningLoop("r")
    for i in range(40):
        a.plan("qa", f"q{i}")
        a.verdict("qa", 1.0)
    assert a.boundary.tier("qa") == "local"
    saved = a.dump()
    del saved["boundary"]["qa"]["drifted"]
    p = tmp_path / "s.json"
    p.write_text(json.dumps(saved))
    old = LearningLoop("r")
    assert old.restore(p)
    assert old.boundary.tier("qa") == "local" and old.boundary.states["qa"].drifted == 0
    for bad in ('"x"', "1e999", "Infinity", "[1]"):
        p.write_text(json.dumps(saved).replace('"sent_back"', f'"drifted": {bad}, "sent_back"'))
        loop = LearningLoop("r")
        assert loop.restore(p), bad
        assert loop.boundary.tier("qa") == "frontier", bad
    p.write_text(json.dumps(saved).replace('"sent_back"', f'"drifted": {10 ** 30}, "sent_back"'))
    big = LearningLoop("r")
    assert big.restore(p) and big.boundary.states["qa"].drifted == 10 ** 30  # only read as "ever drifted"


@pytest.fixture
def receiver():
    r = OTLPReceiver().start()
    yield r
    r.stop()


def test_judge_verdicts_are_evaluation_events(gateway, openai_up, anthropic_up, receiver):  # noqa: F811
    cfg = reflective_config(openai_up, anthropic_up)
    cfg["observability"] = {"tracing": {"endpoint": receiver.url, "interval": 0.05}}
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    g = gateway(cfg)
    raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=[
        {"role": "user", "content": SUMMARY}])
    rid = raw.headers["x-tierwise-request-id"]
    assert wait_for(lambda: not g.gateway.resolve("main")._background, timeout=30)

    def evaluation_span():
        return next((s for s in receiver.spans if attrs(s.attributes).get("tierwise.request_id") == f"{rid}-eval"),
                    None)
    assert receiver.wait_for(lambda: evaluation_span() is not None and len(receiver.spans) >= 3)
    server = next(s for s in receiver.spans if attrs(s.attributes).get("tierwise.request_id") == rid)
    ev_span = evaluation_span()
    a = attrs(ev_span.attributes)
    assert a["tierwise.api"] == "evaluation" and a["tierwise.route"] == "main"
    # a child of the judged request's span, in its trace
    assert ev_span.trace_id == server.trace_id and ev_span.parent_span_id == server.span_id
    events = [e for e in ev_span.events if e.name == EVALUATION_EVENT]
    assert len(events) == 1
    e = attrs(events[0].attributes)
    assert e["gen_ai.evaluation.name"] == "judge" and e["gen_ai.evaluation.score.label"] == "pass"
    assert e["gen_ai.evaluation.score.value"] == 1.0 and "summarisation: good" in e["gen_ai.evaluation.explanation"]
    # its calls (the shadow run of the local tier and the judge call) are its client spans
    calls = [s for s in receiver.spans if s.parent_span_id == ev_span.span_id]
    assert sorted(attrs(c.attributes)["gen_ai.request.model"] for c in calls) == ["big-model", "qwen-local"]
    # the request itself carries no evaluation event: the verdict came after it answered
    assert not [e for e in server.events if e.name == EVALUATION_EVENT]


def test_verifier_verdicts_are_free_evidence_before_judge_calls(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    """The local tier is a cascade whose verifier checks its answers: those verdicts move the boundary and no
    judge call is paid, for shadow runs (frontier served) and for served local answers alike."""
    cfg = reflective_config(openai_up, anthropic_up, local="checked")
    cfg["routes"]["checked"] = {"policy": "cascade", "tiers": ["local", "frontier"], "max_escalations": 0,
                                "verify_last": True, "verifiers": [{"type": "regex", "pattern": "^SUMMARY:"}]}
    openai_up.default = Reply(text="SUMMARY: the council discussed the budget.")
    anthropic_up.default = judge_or_answer("poor")  # were the judge asked, the type would never move
    g = gateway(cfg)
    learn(g, 10)
    loop = g.gateway.resolve("main").loop
    assert loop.boundary.tier("summarisation") == "local"
    st = loop.boundary.state("summarisation")
    judged_before = st.total_judged
    assert not [r for r in anthropic_up.requests if "You are grading" in json.dumps(r.body)]
    # served locally now: each answer's own verifier verdict counts at once, judged or not by the schedule
    learn(g, 3)
    assert st.total_judged == judged_before + 3
    assert not [r for r in anthropic_up.requests if "You are grading" in json.dumps(r.body)]
    g.flush()
    assert {e.extra["evaluation"]["judge"] for e in g.ledger.query(kind="eval")} == {"verifier"}


def test_value_sampling_counts_a_users_first_rating_as_free_evidence(gateway, openai_up, anthropic_up):  # noqa: F811
    import httpx2 as httpx

    cfg = reflective_config(openai_up, anthropic_up, sampling="value",
                            value={"saving_usd": 0.01, "judge_usd": 0.01, "shadow_usd": 0.01})
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    g = gateway(cfg)
    route = g.gateway.resolve("main")
    for i in range(30):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (#{i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
        if route.loop.boundary.tier("summarisation") == "local":
            break
    assert route.loop.boundary.tier("summarisation") == "local"
    raw = oai(g).chat.completions.with_raw_response.create(model="main", messages=[
        {"role": "user", "content": f"{SUMMARY} (rated)"}])
    assert raw.parse().choices[0].message.content == "local summary"
    rid = raw.headers["x-tierwise-request-id"]
    assert wait_for(lambda: not route._background, timeout=30)
    g.flush()
    st = route.loop.boundary.state("summarisation")
    judged, good = st.total_judged, st.total_good
    judge_calls = len([r for r in anthropic_up.requests if "You are grading" in json.dumps(r.body)])

    def rate(rating):
        r = httpx.post(g.url + "/v1/tierwise/feedback", json={"request_id": rid, "rating": rating},
                       headers={"authorization": "Bearer test"})
        assert r.status_code == 200, r.text
        return r.json()
    body = rate("poor")
    assert body["evidence"] is True and body["judging"] is False and "first" not in body
    assert (st.total_judged, st.total_good) == (judged + 1, good)  # a verdict, and no judge call for it
    assert rate("poor")["evidence"] is False  # one rating per answer counts
    assert st.total_judged == judged + 1
    assert len([r for r in anthropic_up.requests if "You are grading" in json.dumps(r.body)]) == judge_calls


def test_value_sampling_learns_costs_from_streamed_answers_too(gateway, openai_up, anthropic_up):  # noqa: F811
    """With only streaming clients (Claude Code) the value of a verdict still needs what a frontier answer
    costs: the route follows streams to their end until it has a figure."""
    g = gateway(reflective_config(openai_up, anthropic_up, sampling="value"))
    anthropic_up.default = judge_or_answer("good")
    loop = g.gateway.resolve("main").loop
    assert loop.costs["frontier"] is None and loop.saving() == 0.0
    stream = oai(g).chat.completions.create(model="main", stream=True, messages=[{"role": "user", "content": SUMMARY}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "frontier answer"
    assert wait_for(lambda: loop.costs["frontier"] is not None)
    assert loop.costs["frontier"] > 0 and loop.saving() > 0


def test_one_keys_ratings_cannot_move_the_boundary_for_every_client(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                      monkeypatch):
    """With `sampling: value` a user's first rating of a local answer is free evidence. A client with its own key
    sends cheap requests that the local tier answers and rates every answer poor: each rating used to count, and
    twenty of them moved the task type back to the frontier for every client (a cost attack; rating every answer
    good would keep a type local for everyone). One key's ratings now count only up to
    `boundary.key_share` (0.25) of the type's latest evidence; the rest are kept in the ledger only."""
    import httpx2 as httpx

    monkeypatch.setenv("TW_RATE_VICTIM", "victim-key-1")
    monkeypatch.setenv("TW_RATE_ATTACKER", "attacker-key-2")
    cfg = reflective_config(openai_up, anthropic_up, sampling="value",
                            value={"saving_usd": 0.01, "judge_usd": 0.01, "shadow_usd": 0.01})
    cfg["server"]["api_keys_env"] = ["TW_RATE_VICTIM", "TW_RATE_ATTACKER"]
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    g = gateway(cfg)
    route = g.gateway.resolve("main")
    victim, attacker = oai(g, api_key="victim-key-1"), oai(g, api_key="attacker-key-2")
    for i in range(30):
        victim.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (#{i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
        if route.loop.boundary.tier("summarisation") == "local":
            break
    assert route.loop.boundary.tier("summarisation") == "local"
    counted = []
    for i in range(20):
        raw = attacker.chat.completions.with_raw_response.create(model="main", messages=[
            {"role": "user", "content": f"{SUMMARY} (attack #{i})"}])
        assert raw.parse().choices[0].message.content == "local summary"
        assert wait_for(lambda: not route._background, timeout=30)
        g.flush()
        r = httpx.post(g.url + "/v1/tierwise/feedback", headers={"authorization": "Bearer attacker-key-2"},
                       json={"request_id": raw.headers["x-tierwise-request-id"], "rating": "poor"})
        assert r.status_code == 200, r.text
        counted.append(r.json()["evidence"])
    st = route.loop.boundary.state("summarisation")
    assert 0 < sum(counted) <= 0.25 * st.total_judged + 1, (counted, st.total_judged)
    assert route.loop.boundary.tier("summarisation") == "local"
    r = victim.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (after)"}])
    assert r.choices[0].message.content == "local summary"
