"""`tierwise boundary` shows the boundary per task type and its history; the evidence read API."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, oai, openai_up  # noqa: F401
from tests.learning.test_reflective_route import SUMMARY, judge_or_answer, reflective_config, wait_for
from tierwise.learning import evidence


def test_boundary_command_and_evidence(gateway, openai_up, anthropic_up, tmp_path):  # noqa: F811
    from tierwise.cli import main

    cfg = reflective_config(openai_up, anthropic_up)
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    g = gateway(cfg)
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")
    route = g.gateway.resolve("main")
    for i in range(10):
        oai(g).chat.completions.create(model="main", messages=[{"role": "user", "content": f"{SUMMARY} [{i}]"}])
        wait_for(lambda: not route._background)
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
