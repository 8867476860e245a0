"""The `reflective` route over real HTTP: starts on the frontier, shadows and judges the local tier off
the response path, moves a task type local once the judge accepts enough, records the move."""

from __future__ import annotations

import json

import yaml

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config, wait_for  # noqa: F401 (other tests import it from here)
from tierwise.learning.boundary import read_moves

SUMMARY = "Summarize the following article in three sentences: the council met on Tuesday to discuss the budget."


def judge_or_answer(verdict: str):
    def reply(rec):
        text = json.dumps(rec.body)
        if "You are grading" in text:
            return Reply(text=f"The answer covers the main points.\nVERDICT: {verdict}")
        return Reply(text="frontier answer")
    return reply


# The loop's settings these tests were written for (the route's defaults before round 14: the fixed schedule, shadow
# runs, no within-type signal, no text model, a move back on the mean); a test's own keys are merged over them. The
# route's current defaults have their own tests (`test_the_default_route_*`).
SCHEDULE_ERA = {"sampling": "rules", "value": {"explore": "shadow"}, "within": {"enabled": False},
                "request_model": {"kind": "none", "weight": 0.5}, "boundary": {"credible": 0.8, "move_back": "mean"}}


def reflective_config(openai_up, anthropic_up, **route):  # noqa: F811
    keys = {k: ({**v, **route[k]} if isinstance(v, dict) and isinstance(route.get(k), dict) else route.get(k, v))
            for k, v in SCHEDULE_ERA.items()}
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "reflective", "local": "local", "frontier": "frontier", "quality_target": 0.6,
        **route, **keys}})
    cfg["ledger"]["store_text"] = True
    return cfg


def keyed_gateway(gateway, openai_up, anthropic_up, monkeypatch, cfg, frontier, keys):  # noqa: F811
    """A gateway on `cfg` that requires the gateway keys `keys` ({environment variable (the key's name): key},
    one client each), the local tier answering and `frontier` answering as the frontier tier (and judge):
    (gateway, route `main`, one openai client per key)."""
    for env, key in keys.items():
        monkeypatch.setenv(env, key)
    cfg["server"]["api_keys_env"] = list(keys)
    g = gateway(cfg)
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = frontier
    return g, g.gateway.resolve("main"), [oai(g, api_key=k) for k in keys.values()]


def reflective_gateway(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    """A gateway with the reflective route `main` (its config also written to tmp_path/tierwise.yaml for the
    CLI), the local tier answering and the judge accepting: (config path, gateway, route)."""
    cfg = reflective_config(openai_up, anthropic_up)
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    g = gateway(cfg)
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    return path, g, g.gateway.resolve("main")


def test_boundary_moves_local_after_accepted_shadows(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    g = gateway(reflective_config(openai_up, anthropic_up))
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    client = oai(g)
    route = g.gateway.resolve("main")
    answers, rids = [], []
    for i in range(12):
        r = client.chat.completions.with_raw_response.create(
            model="main", messages=[{"role": "user", "content": f"{SUMMARY} (#{i})"}])
        answers.append(r.parse().choices[0].message.content)
        rids.append(r.headers["x-tierwise-request-id"])
        assert wait_for(lambda: not route._background, timeout=30)
    assert answers[0] == "frontier answer"  # conservative start
    assert answers[-1] == "local summary"  # the local tier earned summarisation
    moves = read_moves(tmp_path / "ledger.db.boundary.jsonl")
    assert [(m.task_type, m.to) for m in moves] == [("summarisation", "local")]
    assert moves[0].judged == moves[0].good >= 3
    g.flush()
    evals = g.ledger.query(kind="eval")
    assert len(evals) >= moves[0].judged
    first = evals[0]
    ev = first.extra["evaluation"]
    assert ev["of"] == rids[0] and ev["task_type"] == "summarisation" and ev["grade"] == "good"
    assert ev["shadow"] is True and ev["schedule"] == "first-uses"
    assert first.extra["local_answer"] == "local summary" and first.extra["frontier_answer"] == "frontier answer"
    assert first.cost_usd is not None and first.cost_usd > 0  # the judge call is paid, as evaluation
    verdict = next(s for s in first.steps if s["kind"] == "verdict")
    assert verdict["ok"] is True and verdict["detail"]["grade"] == "good" and verdict["score"] == 1.0
    rec = g.ledger.get(rids[0])
    assert rec.extra["task_type"] == "summarisation" and "complexity" in rec.extra
    step = next(s for s in rec.steps if s["kind"] == "decision")
    assert step["detail"]["task_type"] == "summarisation" and step["detail"]["tier"] == "frontier"


def test_poor_verdicts_keep_the_frontier(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    g = gateway(reflective_config(openai_up, anthropic_up))
    openai_up.default = Reply(text="bad local summary")
    anthropic_up.default = judge_or_answer("poor")
    client = oai(g)
    route = g.gateway.resolve("main")
    for i in range(8):
        r = client.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} {i}"}])
        assert r.choices[0].message.content == "frontier answer"
        assert wait_for(lambda: not route._background, timeout=30)
    assert route.loop.boundary.tier("summarisation") == "frontier"
    assert not read_moves(tmp_path / "ledger.db.boundary.jsonl")
    g.flush()
    assert all(e.extra["evaluation"]["grade"] == "poor" for e in g.ledger.query(kind="eval"))


def test_streamed_answers_are_judged_too(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(reflective_config(openai_up, anthropic_up))
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    stream = oai(g).chat.completions.create(model="main", stream=True,
                                           messages=[{"role": "user", "content": SUMMARY}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "frontier answer"

    def judged():
        g.flush()
        return len(g.ledger.query(kind="eval")) == 1
    assert wait_for(judged)


def test_pairwise_judge_replaces_judge_calls_once_it_agrees(gateway, openai_up, anthropic_up):  # noqa: F811
    cfg = reflective_config(openai_up, anthropic_up)
    cfg["routes"]["main"].update({"quality_target": 0.97, "schedule": {"first_uses": 12},
                                  "pairwise_judge": {"enabled": True, "min_audited": 3, "audit_rate": 0.0}})
    g = gateway(cfg)
    openai_up.default = Reply(text="3 + 4 = 7, so the answer is 7")

    def reply(rec):
        if "You are grading" in json.dumps(rec.body):
            return Reply(text="Correct arithmetic.\nVERDICT: good")
        return Reply(text="She has 7 apples.")
    anthropic_up.default = reply
    route = g.gateway.resolve("main")
    for i in range(8):
        oai(g).chat.completions.create(model="main", messages=[
            {"role": "user", "content": f"Anna has 3 apples and gets 4 more; how many apples? ({i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
    judge_calls = [r for r in anthropic_up.requests if "You are grading" in json.dumps(r.body)]
    assert len(judge_calls) == 3  # audited until it had agreed 3 times, then the pairwise judge took over
    g.flush()
    evals = g.ledger.query(kind="eval")
    assert [e.extra["evaluation"]["judge"] for e in evals] == ["frontier"] * 3 + ["pairwise"] * 5
    assert all(e.extra["evaluation"]["grade"] == "good" and e.extra["evaluation"]["pairwise"] is True for e in evals)
    assert all(e.cost_usd is not None for e in evals[:3])


def test_within_type_sends_a_long_prompt_of_a_local_type_to_the_frontier(gateway, openai_up, anthropic_up):  # noqa: F811
    import math

    g = gateway(reflective_config(openai_up, anthropic_up, within={"enabled": True}, quality_target=0.75,
                                  boundary={"credible": 0.6, "discount": 1.0}))
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    short = SUMMARY
    long = SUMMARY + " The council discussed the budget line by line." * 60
    loop = g.gateway.resolve("main").loop
    # evidence as the loop would have gathered it: short prompts always accepted, long ones two times in three
    for i in range(60):
        text = long if i % 2 else short
        loop.plan("summarisation", f"e{i}", signal=math.log1p(len(text)))
        loop.verdict("summarisation", 0.0 if i % 6 == 5 else 1.0, request_id=f"e{i}")
    assert loop.boundary.tier("summarisation") == "local" and loop.within.slope("summarisation") < 0.0
    client = oai(g)
    for text, expect in ((short, "local summary"), (long, "frontier answer")):
        r = client.chat.completions.create(model="main", messages=[{"role": "user", "content": text}])
        assert r.choices[0].message.content == expect


def test_explore_serve_answers_a_judged_request_of_a_frontier_type_locally(gateway, openai_up, anthropic_up):  # noqa: F811
    g = gateway(reflective_config(
        openai_up, anthropic_up, sampling="value", boundary={"credible": 0.99, "discount": 1.0},
        value={"saving_usd": 0.01, "judge_usd": 0.015, "shadow_usd": 0.01, "explore": "serve", "explore_after": 2}))
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    route = g.gateway.resolve("main")
    answers = []
    for i in range(3):
        r = oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (#{i})"}])
        answers.append(r.choices[0].message.content)
        assert wait_for(lambda: not route._background, timeout=30)
    # two shadow-run verdicts first; the type is still on the frontier (3 of 3 is not enough at credible 0.99),
    # and the third judged request is answered by the local tier, its verdict taken without a shadow run
    assert route.loop.boundary.tier("summarisation") == "frontier"
    assert answers == ["frontier answer", "frontier answer", "local summary"]
    g.flush()
    evals = [e.extra["evaluation"] for e in g.ledger.query(kind="eval")]
    assert [(e["shadow"], e["schedule"]) for e in evals] == [(True, "value"), (True, "value"),
                                                            (False, "value (served)")]


def test_request_model_routes_a_request_it_favours_locally(gateway, openai_up, anthropic_up):  # noqa: F811
    """Through HTTP only: the judge accepts the local tier's summaries of council notes and rejects those of
    physics papers. Summarisation as a whole stays under the target (two accepted of three), so it stays on the
    frontier; the text model trained on those purchased verdicts sends the next council summary local. The same
    stream without the model keeps it on the frontier."""
    council = "Summarize the following council notes in three sentences: the council met on {d} to discuss the budget."
    physics = "Summarize the following physics paper in three sentences: quantum fields on {d} lattices, renormalised."
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "a holiday", "noon"]

    def reply(rec):
        text = json.dumps(rec.body)
        if "You are grading" in text:
            return Reply(text="Checked.\nVERDICT: " + ("poor" if "physics paper" in text else "good"))
        return Reply(text="frontier answer")

    answers = {}
    for kind in ("text", "none"):
        cfg = reflective_config(
            openai_up, anthropic_up, quality_target=0.75, boundary={"credible": 0.6, "discount": 1.0},
            schedule={"first_uses": 1000, "shadow_stop_after": 10_000},
            request_model={"kind": kind, "min_rows": 12, "refit_every": 3, "alpha": 0.3})
        cfg["ledger"]["path"] = f"ledger-{kind}.db"  # each gateway its own saved state
        g = gateway(cfg)
        openai_up.default = Reply(text="local summary")
        anthropic_up.default = reply
        route = g.gateway.resolve("main")
        client = oai(g)
        for i in range(18):
            prompt = (physics if i % 3 == 2 else council).format(d=days[i % len(days)])
            client.chat.completions.create(model="main", messages=[{"role": "user", "content": prompt}])
            assert wait_for(lambda r=route: not r._background, timeout=30)
        loop = route.loop
        assert loop.boundary.tier("summarisation") == "frontier"
        assert loop.boundary.state("summarisation").total_judged == 18
        if kind == "text":  # every verdict is a training row, and the model's refit (in a worker thread) is in
            assert len(loop.request_model.rows) == 18 and loop.request_model.ready
        r = client.chat.completions.create(model="main", messages=[
            {"role": "user", "content": council.format(d="the first of May")}])
        answers[kind] = r.choices[0].message.content
        if kind == "text":
            r = client.chat.completions.create(model="main", messages=[
                {"role": "user", "content": physics.format(d="square")}])
            assert r.choices[0].message.content == "frontier answer"
    assert answers == {"text": "local summary", "none": "frontier answer"}


def test_one_gateway_key_cannot_retrain_the_request_model_for_everyone(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                         monkeypatch):
    """A client with its own key floods the route with prompts carrying another client's words and an answer
    the judge rejects (the client chooses its prompts, and so whether the local answer passes). Its verdicts
    used to push every other row out of the request model's bounded rows, retraining it on the attacker's
    prompts alone; one key now holds at most `max_key_share` of the rows (here 24 × 0.25 → min_rows, 6)."""
    council = "Summarize the following council notes in three sentences: the council met on {d} to discuss the budget."
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "a holiday"]

    def reply(rec):
        text = json.dumps(rec.body)
        if "You are grading" in text:
            return Reply(text="Checked.\nVERDICT: " + ("poor" if "ZZTOP" in text else "good"))
        return Reply(text="frontier answer")

    cfg = reflective_config(  # every request judged (`key_share: 1`: the boundary's own cap is another test's)
        openai_up, anthropic_up, quality_target=0.75, boundary={"credible": 0.6, "discount": 1.0, "key_share": 1.0},
        schedule={"first_uses": 1000, "shadow_stop_after": 10_000},
        request_model={"kind": "text", "min_rows": 6, "max_rows": 24, "refit_every": 3, "alpha": 0.3})
    g, route, (victim, attacker) = keyed_gateway(gateway, openai_up, anthropic_up, monkeypatch, cfg, reply,
                                                 {"TW_RM_VICTIM": "victim-key-1", "TW_RM_ATTACKER": "attacker-key-2"})
    for i in range(6):
        victim.chat.completions.create(model="main", messages=[{"role": "user", "content": council.format(d=days[i])}])
        assert wait_for(lambda: not route._background, timeout=30)
    for i in range(30):
        attacker.chat.completions.create(model="main", messages=[
            {"role": "user", "content": council.format(d=days[i % len(days)]) + " ZZTOP"}])
        assert wait_for(lambda: not route._background, timeout=30)
    rm = route.loop.request_model
    assert len(rm.rows) == 12 and rm.key_rows == {"TW_RM_VICTIM": 6, "TW_RM_ATTACKER": 6}
    assert sorted(r[2] for r in rm.rows) == [0.0] * 6 + [1.0] * 6  # the victim's accepted verdicts are all kept


def test_one_gateway_key_cannot_push_a_task_type_to_the_frontier_for_everyone(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                               monkeypatch):
    """Cost attack on the boundary: once a type is local, a client with its own key floods it with requests whose
    local answers the judge rejects (the client chooses its prompts). Judged, each rejection is evidence on the
    type every client is served by, and the type went back to the frontier for all. One key now gives at most
    `boundary.key_share` of a type's latest evidence while other keys' evidence is among it: the rest of its
    requests are answered by the type's tier without being judged (reason `key-share`)."""

    def reply(rec):
        text = json.dumps(rec.body)
        if "You are grading" in text:
            return Reply(text="Checked.\nVERDICT: " + ("poor" if "ZZTOP" in text else "good"))
        return Reply(text="frontier answer")

    cfg = reflective_config(openai_up, anthropic_up, schedule={"first_uses": 1000, "shadow_stop_after": 10_000})
    g, route, (victim, attacker) = keyed_gateway(gateway, openai_up, anthropic_up, monkeypatch, cfg, reply,
                                                 {"TW_B_VICTIM": "victim-key-1", "TW_B_ATTACKER": "attacker-key-2"})
    for i in range(40):
        victim.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (#{i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
        if route.loop.boundary.tier("summarisation") == "local" and i >= 11:
            break
    assert route.loop.boundary.tier("summarisation") == "local"
    for i in range(30):
        attacker.chat.completions.create(model="main", messages=[
            {"role": "user", "content": f"{SUMMARY} ZZTOP (#{i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
    st = route.loop.boundary.state("summarisation")
    assert route.loop.boundary.tier("summarisation") == "local", st
    g.flush()
    evals = [e.extra["evaluation"] for e in g.ledger.query(kind="eval")]
    rejected = sum(1 for e in evals if e["accepted"] is False)
    assert 0 < rejected <= 0.25 * len(evals) + 1, (rejected, len(evals))
    r = victim.chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} (after)"}])
    assert r.choices[0].message.content == "local summary"


def test_two_gateway_keys_taking_turns_still_move_the_boundary(gateway, openai_up, anthropic_up,  # noqa: F811
                                                              monkeypatch):
    """The per-key cap on evidence must not stall learning for a team of a few keys. Before: with two keys taking
    turns, each key's second piece of evidence was over its 25% share, so after two verdicts nothing was judged
    again and the type stayed on the frontier for good."""
    g, route, clients = keyed_gateway(gateway, openai_up, anthropic_up, monkeypatch,
                                      reflective_config(openai_up, anthropic_up), judge_or_answer("good"),
                                      {"TW_T_ONE": "team-key-1", "TW_T_TWO": "team-key-2"})
    for i in range(60):
        clients[i % 2].chat.completions.create(model="main", messages=[
            {"role": "user", "content": f"{SUMMARY} (#{i})"}])
        assert wait_for(lambda: not route._background, timeout=30)
        if route.loop.boundary.tier("summarisation") == "local":
            break
    st = route.loop.boundary.state("summarisation")
    assert route.loop.boundary.tier("summarisation") == "local", st
    g.flush()
    judged = [e.extra["evaluation"] for e in g.ledger.query(kind="eval")]
    assert len(judged) > 2  # more than one verdict per key


def test_a_key_that_gave_much_alone_is_not_shut_out_when_another_arrives() -> None:
    """A key that gave a type's evidence alone holds most of its window when a second key arrives: it must get
    its turns back as the window ages (offers turned away take places in it), not be refused for good."""
    from tierwise.learning.loop import LearningLoop

    loop = LearningLoop("r")
    counted = {"A": 0, "B": 0}
    for i in range(200):
        key = "B" if i >= 10 and i % 4 == 3 else "A"  # A alone for 10 offers, then three of A's to one of B's
        if loop.counts_from("summarisation", key):
            loop._note_evidence("summarisation", key)
            counted[key] += 1
    assert counted["B"] >= 40 and counted["A"] >= 40, counted  # both keep giving evidence: no stall


def test_one_key_flooding_a_type_cannot_take_it_from_the_others(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                 monkeypatch):
    """The per-key share counted only while other keys' offers of evidence were among the type's last
    `key_window`: a client that floods the type (its offers turned away still take places) pushed the others out
    of the window, was then alone, and every one of its rejections counted; and its share alone (25%, or half
    with two clients) could pull an accepted type's mean under the target. The victim here keeps using the type
    (one request per eight of the attacker's, every one accepted); no single key now decides a move."""

    def reply(rec):
        text = json.dumps(rec.body)
        if "You are grading" in text:
            return Reply(text="Checked.\nVERDICT: " + ("poor" if "ZZTOP" in text else "good"))
        return Reply(text="frontier answer")

    cfg = reflective_config(openai_up, anthropic_up, boundary={"credible": 0.8, "key_window": 8},
                            schedule={"first_uses": 1000, "shadow_stop_after": 10_000})
    g, route, (victim, attacker) = keyed_gateway(gateway, openai_up, anthropic_up, monkeypatch, cfg, reply,
                                                 {"TW_F_VICTIM": "victim-key-1", "TW_F_ATTACKER": "attacker-key-2"})

    def ask(client, text):
        client.chat.completions.create(model="main", messages=[{"role": "user", "content": text}])
        assert wait_for(lambda: not route._background, timeout=30)

    for i in range(40):
        ask(victim, f"{SUMMARY} (#{i})")
        if route.loop.boundary.tier("summarisation") == "local" and i >= 11:
            break
    assert route.loop.boundary.tier("summarisation") == "local"
    for i in range(48):
        ask(attacker, f"{SUMMARY} ZZTOP (#{i})")
        if i % 8 == 7:
            ask(victim, f"{SUMMARY} (again #{i})")
    st = route.loop.boundary.state("summarisation")
    assert route.loop.boundary.tier("summarisation") == "local", st
    assert st.by_key["TW_F_ATTACKER"][1] > 1.0  # its rejections were counted: the decision, not the count, held
