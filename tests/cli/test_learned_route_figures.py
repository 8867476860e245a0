"""What `report` and `eval ledger` say about a learned route with `shadow_rate` and no judge (a first-time
user's set-up, session 18):

- `report --by locality` counted the route's shadow runs (a frontier call each) in a `(none)` row, beside
  requests refused before any call, instead of in the `(evaluation)` row that holds learning spend;
- `eval ledger` said "enable `shadow_rate` on a learned route and judge the pairs" to a user whose route
  already had `shadow_rate`, without saying how to judge them (`validation`).
"""

from __future__ import annotations

import json
import time

import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.routers.test_learned_route import EASY, HARD, learned_config, router_path  # noqa: F401
from tierwise.cli import main


@pytest.fixture
def shadowed(gateway, openai_up, anthropic_up, router_path, tmp_path):  # noqa: F811
    """Every request served locally (threshold +100) and shadowed on the priced frontier model."""
    cfg = learned_config(openai_up, anthropic_up, router_path, target_share=None, threshold=100.0, shadow_rate=1.0)
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    for prompt in (EASY, HARD, EASY + " again"):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": prompt}])
    for _ in range(200):
        g.flush()
        if len(g.ledger.query(kind="shadow")) == 3:
            break
        time.sleep(0.02)
    assert len(g.ledger.query(kind="shadow")) == 3
    return path, g


def test_report_by_locality_counts_shadow_runs_as_evaluation(shadowed):
    path, g = shadowed
    shadow_cost = sum(r.cost_usd or 0 for r in g.ledger.query(kind="shadow"))
    assert shadow_cost > 0  # the shadow side is the priced frontier model
    res = CliRunner().invoke(main, ["report", "-c", str(path), "--by", "locality", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["key"]: r for r in json.loads(res.output)["rows"]}
    assert "(none)" not in rows, rows  # every request was answered: nothing was refused
    assert rows["(evaluation)"]["cost_usd"] == pytest.approx(shadow_cost)
    assert rows["(evaluation)"]["requests"] == 0
    assert rows["local"]["requests"] == 3


def test_eval_ledger_says_the_shadow_pairs_need_a_judge(shadowed):
    path, _ = shadowed
    res = CliRunner().invoke(main, ["eval", "ledger", "-c", str(path)])
    assert res.exit_code == 2
    assert "3 shadow pair(s) but no judge has graded them" in res.output, res.output
    assert "validation: {judge:" in res.output


def test_the_docs_say_shadow_pairs_keep_text_without_store_text(shadowed):
    # README said "No conversation text is kept unless you set `ledger: {store_text: true}`", but a learned
    # route's shadow pairs keep the prompt and both answers without it.
    from pathlib import Path

    _, g = shadowed
    assert g.cfg.ledger.store_text is False
    pair = g.ledger.query(kind="shadow")[0].shadow
    assert pair["prompt"] and pair["weak"]["answer"] == "local answer"
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    said = readme[readme.index("No conversation text is kept"):][:600]
    assert "shadow_rate" in said and "shadow pair" in said


def test_eval_ledger_with_judged_pairs_that_show_no_gap_still_prints_the_online_estimate(
        gateway, openai_up, anthropic_up, router_path, tmp_path):  # noqa: F811
    # Before: the judge graded both tiers `good` on every pair so far, and `eval ledger` printed only
    # "APGR is undefined when both models have the same quality" (exit 2), hiding the route's online estimate.
    from tests.learning.test_reflective_route import wait_for

    cfg = learned_config(openai_up, anthropic_up, router_path, shadow_rate=1.0,
                         validation={"window": 10, "min_pairs": 5, "rounds": 100})
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = lambda rec: Reply(
        text="Checked.\nVERDICT: good" if "You are grading" in json.dumps(rec.body) else "frontier answer")
    route = g.gateway.resolve("main")
    for prompt in (EASY, HARD, EASY + " again", HARD + " again", EASY + " once more"):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": prompt}])
        assert wait_for(lambda: not route._background, timeout=30)
    g.flush()
    assert all(s.shadow["strong"]["outcome"] == s.shadow["weak"]["outcome"] == 1
               for s in g.ledger.query(kind="shadow"))
    res = CliRunner().invoke(main, ["eval", "ledger", "-c", str(path)])
    assert res.exit_code == 0, res.output
    assert "main: online estimate: undefined on 5 judged pairs" in res.output, res.output
    assert "both tiers score 1 on average" in res.output
    res = CliRunner().invoke(main, ["eval", "ledger", "-c", str(path), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["online"]["main"]["n"] == 5


def test_the_dashboard_and_top_net_the_saving_of_learning_spend_as_report_does(
        gateway, openai_up, anthropic_up, router_path, tmp_path):  # noqa: F811
    # Before: `tierwise top` and the dashboard said "saved $0.0032" for the same requests `report` showed
    # losing $0.0025, because shadow runs and judge calls never reached the live totals.
    import httpx2 as httpx

    cfg = learned_config(openai_up, anthropic_up, router_path, target_share=None, threshold=100.0, shadow_rate=1.0)
    cfg["observability"] = {"dashboard": {"enabled": True}}
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg))
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer")
    anthropic_up.default = Reply(text="frontier answer")
    for prompt in (EASY, HARD):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": prompt}])
    for _ in range(200):
        g.flush()
        if len(g.ledger.query(kind="shadow")) == 2:
            break
        time.sleep(0.02)
    shadow_cost = sum(r.cost_usd or 0 for r in g.ledger.query(kind="shadow"))
    assert shadow_cost > 0
    totals = httpx.get(g.url + "/dashboard/api/summary").json()["totals"]
    assert totals["ref_cost"] > 0  # was 0 with the dashboard on and metrics off: reference prices were for metrics only
    assert totals["n"] == 2 and totals["learning_cost"] == pytest.approx(shadow_cost)
    report = json.loads(CliRunner().invoke(main, ["report", "-c", str(path), "--json"]).output)["total"]
    assert totals["ref_cost"] - totals["cost"] - totals["learning_cost"] == pytest.approx(report["savings_usd"])
    top = CliRunner().invoke(main, ["top", "-c", str(path), "--url", g.url, "--once"])
    assert top.exit_code == 0, top.output
    assert f"learning ${shadow_cost:.6f}" in top.output
    assert f"saved ${report['savings_usd']:.6f}" in top.output


def test_eval_ledger_with_a_route_the_config_does_not_have_names_it(shadowed):
    # Before (session 24): `--route` of a route not in the config (a typo) said "the ledger has no records with
    # both tiers' outcomes: give a learned route `shadow_rate` ...", advice for a route that exists; and `--route`
    # beside a data file was ignored without a word.
    path, _ = shadowed
    res = CliRunner().invoke(main, ["eval", "ledger", "-c", str(path), "--route", "mian"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "no route 'mian' in the config" in res.output and "main" in res.output, res.output
    from pathlib import Path

    fixture = str(Path(__file__).parents[1] / "evaluation" / "fixtures" / "tiny_outcomes.jsonl")
    res = CliRunner().invoke(main, ["eval", fixture, "--route", "main"])
    assert res.exit_code == 2 and "--route" in res.output and "ledger" in res.output, res.output
