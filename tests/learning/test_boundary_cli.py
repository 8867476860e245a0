"""`tierwise boundary` shows the boundary per task type and its history; the evidence read API."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.learning.test_reflective_route import SUMMARY, reflective_gateway, wait_for
from tierwise.learning import evidence


def test_boundary_command_and_evidence(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    from tierwise.cli import main

    _, g, route = reflective_gateway(gateway, openai_up, anthropic_up, tmp_path)
    for i in range(10):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} [{i}]"}])
        assert wait_for(lambda: not route._background, timeout=30)
    g.flush()
    res = CliRunner().invoke(main, ["boundary", "-c", str(tmp_path / "tierwise.yaml")])
    assert res.exit_code == 0, res.output
    assert "summarisation" in res.output and "local" in res.output
    assert "summarisation moved local on " in res.output and "good of" in res.output
    res = CliRunner().invoke(main, ["boundary", "-c", str(tmp_path / "tierwise.yaml"), "--json"])
    data = json.loads(res.output)["main"]
    row = data["task_types"][0]
    assert row["task_type"] == "summarisation" and row["tier"] == "local" and row["judged"] == row["good"] >= 3
    pairs = list(evidence.shadow_pairs(g.ledger, route="main"))
    assert pairs and all(p.frontier_answer == "frontier answer" and p.local_answer == "local summary" for p in pairs)
    res = CliRunner().invoke(main, ["boundary", "-c", str(tmp_path / "tierwise.yaml"), "--route", "nope"])
    assert res.exit_code != 0 and "not a reflective route" in res.output


def test_boundary_says_how_far_a_task_type_is_from_moving(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    # Before: "summarisation  frontier  3 good of 3 judged" and no word on why it had not moved, or what it needs.
    from tierwise.cli import main
    from tierwise.learning.boundary import beta_lower

    path, g, route = reflective_gateway(gateway, openai_up, anthropic_up, tmp_path)
    for i in range(2):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} [{i}]"}])
        assert wait_for(lambda: not route._background, timeout=30)
    g.stop()  # the learned state is saved at shutdown (and after each verdict)
    st = route.loop.boundary.states["summarisation"]
    lower = beta_lower(st.a, st.b, (1 - 0.8) / 2)  # the config's credible mass: 0.8
    assert lower < 0.6 and st.tier == "frontier"
    res = CliRunner().invoke(main, ["boundary", "-c", str(path)])
    assert res.exit_code == 0, res.output
    assert f"acceptance lower bound {lower:.2f}, moves local at 0.60" in res.output, res.output
    row = json.loads(CliRunner().invoke(main, ["boundary", "-c", str(path), "--json"]).output)["main"]["task_types"][0]
    assert row["acceptance"]["lower"] == round(lower, 3) and row["acceptance"]["target"] == 0.6


def test_boundary_says_when_the_judge_answers_without_a_grade(gateway, openai_up, anthropic_up, tmp_path,  # noqa: F811
                                                               caplog):
    # Before (newuser27): a judge whose replies carry no grade (a model that ignores the rubric, a proxy answering
    # something else) left every task type on the frontier for ever, and `tierwise boundary` said only "no evidence
    # yet": nothing told the user the judge had been asked, paid, and could not be read.
    from tests.doubles import Reply
    from tierwise.cli import main

    path, g, route = reflective_gateway(gateway, openai_up, anthropic_up, tmp_path)
    anthropic_up.default = Reply(text="Here is a summary of the council meeting.")  # as judge too: no VERDICT line
    for i in range(4):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} <{i}>"}])
        assert wait_for(lambda: not route._background, timeout=30)
    g.flush()
    assert g.ledger.query(kind="eval"), "no evaluation was recorded"
    res = CliRunner().invoke(main, ["boundary", "-c", str(path)])
    assert res.exit_code == 0, res.output
    assert "summarisation" in res.output and "without a grade" in res.output, res.output
    assert "judge" in res.output and "VERDICT" in res.output, res.output
    data = json.loads(CliRunner().invoke(main, ["boundary", "-c", str(path), "--json"]).output)["main"]
    row = data["task_types"][0]
    assert row["task_type"] == "summarisation" and row["judged"] == 0 and row["no_verdict"] >= 1, row
    said = [r for r in caplog.records if "answered without a grade" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING", said  # on the console, once
    assert "route main" in said[0].getMessage(), said[0].getMessage()


def test_boundary_lists_types_served_but_not_judged_and_why(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    # session 31 (newuser31): a new user's route served summaries (kept local by `pii: local_only`, so never judged)
    # and `tierwise boundary` listed no such type at all, nor why nothing was judged: the loop looked dead.
    import yaml

    from tests.doubles import Reply
    from tests.learning.test_reflective_route import judge_or_answer, reflective_config
    from tierwise.cli import main

    cfg = reflective_config(openai_up, anthropic_up, sampling="value")
    cfg["privacy"] = {"classes": {"pii": {"detectors": ["EMAIL_ADDRESS"]}}, "policy": {"pii": "local_only"}}
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    g = gateway(cfg)
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    route = g.gateway.resolve("main")
    for i in range(3):
        oai(g).chat.completions.create(model="main", messages=[
            {"role": "user", "content": f"{SUMMARY} Send it to jane.doe@example.com [{i}]"}])
        assert wait_for(lambda: not route._background, timeout=30)
    g.flush()  # the gateway still runs: its state file has not been written
    res = CliRunner().invoke(main, ["boundary", "-c", str(path)])
    assert res.exit_code == 0, res.output
    # (the privacy rule kept all three local, on a type that is itself on the frontier: said since session 37)
    assert "summarisation" in res.output and "3 request(s) (3 answered locally), 0 good of 0 judged" in res.output, \
        res.output
    assert "1 type(s) served but not judged yet (summarisation)" in res.output
    assert "`sampling: value`" in res.output and "keep local are never judged" in res.output
    row = json.loads(CliRunner().invoke(main, ["boundary", "-c", str(path), "--json"]).output)["main"]["task_types"][0]
    assert row["task_type"] == "summarisation" and row["requests"] == 3 and row["judged"] == 0
