"""One run's model calls are bounded in all, however fan-outs multiply through nesting (session 22, attack-mcp).

`max_items` bounds one fan-out (at most 1,000), and nesting is at most 8 levels, but a fan-out whose
items are nested runs that fan out again multiplies: an MCP client can write such ensembles
(`create_ensemble`), and the arrays are model output. One `invoke_ensemble` made 20 + 20 x 21 calls
here; with a thousand items at each of three levels, a billion. Real HTTP to the upstream double.
"""

from __future__ import annotations

import json

from tests.ensembles.conftest import write_ensemble
from tierwise.ensembles.schema import parse_ensemble


def nested_fan_out(project, upstream, items: int, **top) -> None:
    upstream.latency = 0.0
    upstream.answer = lambda model, prompt: json.dumps(list(range(items))) if prompt.startswith("list") else "x"
    inner = [{"name": "split", "model": "small", "prompt": "list", "output": "json"},
             {"name": "each", "model": "small", "fan_out": "split", "max_items": 1000}]
    write_ensemble(project, {"name": "inner", "agents": inner})
    outer = [{"name": "split", "model": "small", "prompt": "list", "output": "json"},
             {"name": "each", "ensemble": "inner", "fan_out": "split", "max_items": 1000}]
    write_ensemble(project, {"name": "outer", **top, "agents": outer})


async def test_nested_fan_outs_stop_at_the_runs_max_calls(service, project, upstream):
    nested_fan_out(project, upstream, 20, max_calls=100)
    run = await service().run("outer", "go")
    # (before: 440 calls, every one made)
    assert len(upstream.seen) <= 100, len(upstream.seen)
    each = run.agent("each")
    assert each.status in ("partial", "failed")
    assert "max_calls (100" in json.dumps(run.to_dict())


async def test_a_fan_out_past_what_is_left_starts_no_item(service, project, upstream):
    upstream.latency = 0.0
    upstream.answer = lambda model, prompt: json.dumps(list(range(50))) if prompt.startswith("list") else "x"
    write_ensemble(project, {"name": "wide", "max_calls": 30, "agents": [
        {"name": "split", "model": "small", "prompt": "list", "output": "json"},
        {"name": "each", "model": "small", "fan_out": "split", "max_items": 1000}]})
    run = await service().run("wide", "go")
    assert len(upstream.seen) == 1  # the split only: 50 items do not fit in the 29 calls left
    assert run.status == "failed" and "max_calls (30" in run.agent("each").error


def test_max_calls_has_a_default_and_a_ceiling():
    import pytest

    from tierwise.ensembles.schema import MAX_CALLS_CAP
    from tierwise.errors import ConfigError

    ens = parse_ensemble("name: a\nagents: [{name: x, model: m}]\n")
    assert ens.max_calls == 2000
    with pytest.raises(ConfigError, match="max_calls"):
        parse_ensemble(f"name: a\nmax_calls: {MAX_CALLS_CAP + 1}\nagents: [{{name: x, model: m}}]\n")


async def test_the_default_bound_holds_for_an_ensemble_that_sets_none(service, project, upstream):
    nested_fan_out(project, upstream, 50)  # 50 + 50 x 51 = 2,600 calls asked for
    run = await service().run("outer", "go")
    # (before: all 2,600 made)
    assert len(upstream.seen) <= 2000, len(upstream.seen)
    assert "max_calls (2000" in json.dumps(run.to_dict())
