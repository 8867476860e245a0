"""`tierwise eval ledger` reads a reflective route's evidence: the judge's verdicts on local answers and the
users' feedback, with the same counts `tierwise boundary` shows (before: it reported no evidence at all and
told the user to enable `shadow_rate` on a learned route)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.learning.test_reflective_route import SUMMARY, reflective_gateway, wait_for
from tierwise.learning.evidence import wilson


def test_eval_ledger_shows_the_reflective_routes_verdicts_and_feedback(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                       tmp_path):
    from tierwise.cli import main

    path, g, route = reflective_gateway(gateway, openai_up, anthropic_up, tmp_path)
    ids = []
    for i in range(8):
        raw = oai(g).chat.completions.with_raw_response.create(
            model="main", messages=[{"role": "user", "content": f"{SUMMARY} [{i}]"}])
        ids.append(raw.headers["x-tierwise-request-id"])
        assert wait_for(lambda: not route._background, timeout=30)
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


def test_report_counts_the_reflective_routes_evaluations_in_its_cost(gateway, openai_up, anthropic_up,  # noqa: F811
                                                                     tmp_path):
    # Before: judge calls and shadow runs (kind `eval`) were left out, so `report` showed the route saving
    # money while its judging cost more than the local answers saved.
    from tierwise.cli import main
    from tierwise.ledger.report import savings

    path, g, route = reflective_gateway(gateway, openai_up, anthropic_up, tmp_path)
    for i in range(6):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} [{i}]"}])
        assert wait_for(lambda: not route._background, timeout=30)
    g.flush()
    rows = g.ledger.iter_rows("SELECT kind, SUM(cost_usd) AS c, COUNT(*) AS n FROM requests WHERE route = 'main' "
                              "GROUP BY kind", [])
    by_kind = {r["kind"]: (float(r["c"] or 0), int(r["n"])) for r in rows}
    assert by_kind["eval"][0] > 0  # the judge is the (priced) frontier model
    [row] = [r for r in savings(g.ledger) if r.key == "main"]
    assert row.requests == by_kind["chat"][1]  # evaluations are not requests
    assert row.cost_usd == pytest.approx(by_kind["chat"][0] + by_kind["eval"][0])
    res = CliRunner().invoke(main, ["report", "-c", str(path), "--by", "locality", "--json"])
    assert res.exit_code == 0, res.output
    keys = {r["key"]: r for r in json.loads(res.output)["rows"]}
    assert keys["(evaluation)"]["requests"] == 0
    assert keys["(evaluation)"]["cost_usd"] == pytest.approx(by_kind["eval"][0])
