"""`tierwise eval ledger` reads a reflective route's evidence: the judge's verdicts on local answers and the
users' feedback, with the same counts `tierwise boundary` shows (before: it reported no evidence at all and
told the user to enable `shadow_rate` on a learned route)."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.learning.test_reflective_route import SUMMARY, judge_or_answer, reflective_config, wait_for
from tierwise.learning.evidence import wilson


def test_eval_ledger_shows_the_reflective_routes_verdicts_and_feedback(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                       tmp_path):
    from tierwise.cli import main

    cfg = reflective_config(openai_up, anthropic_up)
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    g = gateway(cfg)
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    route = g.gateway.resolve("main")
    ids = []
    for i in range(8):
        raw = oai(g).chat.completions.with_raw_response.create(
            model="main", messages=[{"role": "user", "content": f"{SUMMARY} [{i}]"}])
        ids.append(raw.headers["x-tierwise-request-id"])
        wait_for(lambda: not route._background)
    g.flush()
    runner = CliRunner()
    res = runner.invoke(main, ["feedback", ids[-1], "poor", "--reason", "missed the date", "-c", str(path)])
    assert res.exit_code == 0, res.output

    boundary = json.loads(runner.invoke(main, ["boundary", "-c", str(path), "--json"]).output)["main"]
    judged = sum(r["judged"] for r in boundary["task_types"])
    good = sum(r["good"] for r in boundary["task_types"])
    assert judged >= 3

    res = runner.invoke(main, ["eval", "ledger", "-c", str(path), "--json"])
    assert res.exit_code == 0, res.output
    ev = json.loads(res.output)["reflective"]["main"]
    assert ev["task_types"] == boundary["task_types"]  # the boundary's own evidence, row for row
    assert (ev["judged"], ev["accepted"]) == (judged, good)
    assert ev["interval"] == list(wilson(good, judged))
    assert ev["shadow_judged"] >= 1
    tier = g.ledger.get(ids[-1]).locality
    assert ev["feedback"] == {tier: {"poor": 1}}

    res = runner.invoke(main, ["eval", "--ledger", "-c", str(path)])
    assert res.exit_code == 0, res.output
    assert f"main: {good} of {judged} judged local answers accepted" in res.output
    assert "summarisation" in res.output and f"feedback on {tier} answers: poor 1" in res.output

    # The evaluations in `tierwise requests`: the judge that answered and "(eval)", not "(None)".
    res = runner.invoke(main, ["requests", "-c", str(path), "--route", "main", "-n", "50"])
    assert res.exit_code == 0, res.output
    assert "(eval)" in res.output and "(None)" not in res.output, res.output


def test_wilson_interval():
    lo, hi = wilson(8, 10)
    assert 0.49 < lo < 0.50 and 0.94 < hi < 0.95  # the textbook 95% Wilson interval of 8/10: 0.490–0.943
    assert wilson(0, 0) is None
