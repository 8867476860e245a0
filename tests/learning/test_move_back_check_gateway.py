"""`request_model.after_move_back: checked` (an option of a reflective route since round 29) on the live gateway path,
not only the replay: a type the below-target rule moved back, restored from the route's saved state as after a
restart, is served by the local tier for a request the text model rates above the target; that answer is judged off
the response path (a `move-back-check` evaluation, its cost in the ledger as evaluation cost), the verdict counts in
the saved state, and `tierwise boundary` says why the model serves the type."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.harness import two_tier_config, wait_for
from tests.learning.test_reflective_route import judge_or_answer
from tests.learning.test_request_after_move_back import PROMPT, WORDS
from tierwise.canonical import Message, Request, TextBlock
from tierwise.learning.loop import LearningLoop
from tierwise.learning.triage import task_type_of

# the route's defaults with `after_move_back: checked`, a small text model and a boundary the scripted history moves
ROUTE = {"policy": "reflective", "local": "local", "frontier": "frontier", "quality_target": 0.75,
         "schedule": {"first_uses": 0, "shadow_stop_after": 10_000},
         "boundary": {"credible": 0.6, "discount": 1.0, "drift_credible": 0.9999999999},
         "request_model": {"min_rows": 20, "refit_every": 5, "alpha": 3.0, "after_move_back": "checked"}}


def probe_text(j: int) -> str:
    return PROMPT.format(j=j, w="window")


def moved_back_state(loop: LearningLoop, qa: str) -> dict:
    """A history in the route's own settings: `good` (0.90) fills the text model's rows and stays local; `qa` (the
    type triage gives the probe prompts) moves local, then is rejected until the below-target rule moves it back."""
    def ask(task_type: str, j: int, x: float):
        rid = f"{task_type}-{j}"
        loop.plan(task_type, rid, text=PROMPT.format(j=j, w=WORDS[j % len(WORDS)]))
        return loop.verdict(task_type, x, request_id=rid)

    for j in range(120):
        ask("good", j, 0.0 if j % 10 == 9 else 1.0)
    for j in range(5):
        ask(qa, j, 1.0)
    assert loop.boundary.tier(qa) == "local"
    j, move = 1000, None
    while move is None:
        move = ask(qa, j, 0.0)
        j += 1
        assert j < 1100
    assert move.why == "below-target"
    return loop.dump()


def test_a_moved_back_type_is_served_locally_and_judged_off_the_response_path(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                              tmp_path) -> None:
    from tierwise.cli import main

    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": ROUTE})
    cfg["ledger"]["store_text"] = True
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    qa = task_type_of(Request(model="main", messages=[Message("user", [TextBlock(probe_text(999))])]))
    first = gateway(cfg)
    route = first.gateway.resolve("main")
    assert route.loop.settings.request_model.after_move_back == "checked"
    log_path = tmp_path / "ledger.db.boundary.jsonl"
    state = moved_back_state(LearningLoop("main", route.loop.settings, log_path=str(log_path)), qa)
    first.stop()
    # the state as the route saved it before a restart (the boundary log's move included)
    with open(route.state_path, "w", encoding="utf-8") as fh:
        json.dump(state, fh)
    g = gateway(cfg)
    route = g.gateway.resolve("main")
    st = route.loop.boundary.state(qa)
    assert st.tier == "frontier" and st.sent_back == 1 and st.judged == 0  # restored: moved back, check undecided
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = judge_or_answer("good")
    r = oai(g).chat.completions.with_raw_response.create(
        model="main", messages=[{"role": "user", "content": probe_text(999)}])
    assert r.parse().choices[0].message.content == "local answer"  # the text model serves the moved-back type
    rid = r.headers["x-tierwise-request-id"]
    assert wait_for(lambda: not route._background, timeout=30)
    assert (st.judged, st.good) == (1, 1)  # the check's verdict, since the move back
    g.flush()
    rec = g.ledger.get(rid)
    step = next(s for s in rec.steps if s["kind"] == "decision")
    assert step["detail"]["tier"] == "local" and step["detail"]["schedule"].startswith("move-back-check")
    evals = [e for e in g.ledger.query(kind="eval") if e.extra["evaluation"]["of"] == rid]
    assert len(evals) == 1
    ev = evals[0].extra["evaluation"]
    assert ev["schedule"].startswith("move-back-check") and ev["shadow"] is False and ev["grade"] == "good"
    assert evals[0].extra["local_answer"] == "local answer" and evals[0].cost_usd > 0  # paid, as evaluation
    # the verdict reached the saved state (a restart keeps the check where it stands)
    route.save_state_now()
    saved = json.loads(open(route.state_path, encoding="utf-8").read())["boundary"][qa]
    assert (saved["judged"], saved["good"], saved["sent_back"]) == (1, 1, 1)
    res = CliRunner().invoke(main, ["boundary", "-c", str(tmp_path / "tierwise.yaml")])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.strip().startswith(qa))
    assert "frontier" in line and "2 move(s)" in line, res.output
    assert "the text model serves its requests it rates above 0.75, each judged: its check is undecided (1 good of 1 " \
        "judged since its move back" in line, res.output
