"""A learned route whose `validation` judge grades nothing says why (session 38, a first-time user): each shadow pair
keeps the reason, the console says it once, and `tierwise eval --ledger` names it. Before, a judge whose replies put
`verdict: good` mid-line (no grade read) left 85 pairs ungraded with nothing but info lines, and `eval --ledger`
told the user to "add `validation: {judge: MODEL}`" to a route that had one."""

from __future__ import annotations

import json
import logging

import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, gateway, openai_up  # noqa: F401
from tests.harness import two_tier_config
from tests.routers.test_online_validation import FIXTURE, four_shadowed
from tierwise.cli import main
from tierwise.evaluation.loaders import load_jsonl
from tierwise.routers import make_router, save_router


def test_pairs_the_judge_cannot_grade_say_why(gateway, openai_up, anthropic_up, tmp_path, caplog):  # noqa: F811
    router = str(save_router(make_router("linear").fit(load_jsonl(FIXTURE)), tmp_path / "router"))
    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"main": {
        "policy": "learned", "router": router, "strong": "frontier", "weak": "local", "target_share": 0.5,
        "shadow_rate": 1.0, "validation": {"window": 10, "min_pairs": 5}}})
    g = gateway(cfg)
    openai_up.default = Reply(text="local answer")
    # the judge's grade is quoted mid-line: parse_grade reads no verdict from it
    anthropic_up.default = lambda rec: Reply(text="Reasoning... verdict: good" if "You are grading" in json.dumps(
        rec.body) else "frontier answer")
    route = g.gateway.resolve("main")
    with caplog.at_level(logging.INFO, logger="tierwise"):
        shadows = four_shadowed(g, route)
    assert all("named no grade" in s.shadow["unjudged"] for s in shadows)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "is not judged" in r.getMessage()]
    assert len(warned) == 1 and "verdict: good|acceptable|poor" in warned[0].getMessage()
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    out = CliRunner().invoke(main, ["eval", "--ledger", "-c", str(tmp_path / "tierwise.yaml"), "--ci", "0"])
    assert out.exit_code != 0 and "Traceback" not in out.output
    assert "4 not judged: the judge's reply named no grade" in out.output, out.output
    assert "add `validation" not in out.output  # the route has a judge: adding one is not the fix
