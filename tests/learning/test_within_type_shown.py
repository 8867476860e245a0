"""A frontier task type whose requests the within-type routing answers locally, as `tierwise boundary` and
`tierwise trace` tell it.

newuser37, following docs/library.md (its route: `reflective`, `sampling: rules`, the defaults otherwise): after
five good verdicts, requests 5-12 were answered by the local model, their traces read "summarisation: boundary
local (5 good of 5 judged)", and `tierwise boundary` listed the type as `frontier ... 0 move(s)`: two commands
disagreeing on the same type, and nothing said which requests went local or why. The trace now names the type's
tier and the request's own (with the reason), and `boundary` counts the type's requests answered locally."""

from __future__ import annotations

import asyncio

import yaml
from click.testing import CliRunner

from tests.doubles import Reply
from tests.gateway.conftest import anthropic_up, openai_up  # noqa: F401
from tests.harness import two_tier_config
from tests.learning.test_reflective_route import judge_or_answer
from tierwise.library import Tierwise


def test_boundary_and_trace_agree_on_requests_served_locally_within_a_frontier_type(openai_up, anthropic_up,  # noqa: F811
                                                                                     tmp_path):
    import orjson

    from tierwise.cli import main

    cfg = two_tier_config(openai_up.url, anthropic_up.url, routes={"chat": {
        "policy": "reflective", "local": "local", "frontier": "frontier", "quality_target": 0.8, "sampling": "rules"}})
    cfg["ledger"]["store_text"] = True
    cfg["server"]["default_route"] = "chat"
    config = tmp_path / "tierwise.yaml"
    config.write_text(yaml.safe_dump(cfg))
    openai_up.default = Reply(text="local summary")
    anthropic_up.default = judge_or_answer("good")

    async def app() -> list:
        async with Tierwise(config) as tw:
            out = []
            for i in range(12):
                out.append(await tw.chat("chat", [{"role": "user", "content": f"Summarize: the council met on day {i}."}]))
                await tw.idle()
            return out

    results = asyncio.run(app())
    local = [r for r in results if r.locality == "local"]
    assert local, [r.locality for r in results]  # the setting this test is about: some answered locally
    runner = CliRunner()
    shown = orjson.loads(runner.invoke(main, ["boundary", "-c", str(config), "--json"]).output)
    row = shown["chat"]["task_types"][0]
    assert row["tier"] == "frontier" and row["moves"] == 0, row  # the type itself has not moved
    assert row["requests"] == 12 and row["local_requests"] == len(local), row
    text = runner.invoke(main, ["boundary", "-c", str(config)]).output
    assert f"12 request(s) ({len(local)} answered locally)" in text, text
    trace = runner.invoke(main, ["trace", local[-1].request_id, "-c", str(config)]).output
    assert "boundary frontier" in trace and "this request local" in trace, trace
    assert "boundary local" not in trace, trace
