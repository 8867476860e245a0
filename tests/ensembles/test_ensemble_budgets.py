"""An ensemble's model calls spend the budgets like any other request (session 22, attack-mcp).

A route of `policy: ensemble` reaches models only through its ensemble's agents: the budgets saw no
remote model behind it and left it out of every budget, so an ensemble of frontier agents spent
without limit, through the gateway, a dispatch worker or the MCP tool. Now each model call of a run
is admitted and settled on its own. Real HTTP: the official OpenAI SDK against the gateway (and the
`mcp` SDK client against `tierwise mcp --transport http`), frontier agents answered by an upstream
double.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import yaml

from tests.ensembles.conftest import stub_config, write_ensemble
from tests.harness import GatewayServer, make_config

ANSWER = "x" * 4000  # ~1,000 output tokens at $15 per million: $0.015 an answer
BUDGET = 0.05  # three answers and a part; each call reserves 4,096 output tokens ($0.061) up front


def costly_route(project: Path, upstream, agents: list[dict]) -> dict:
    write_ensemble(project, {"name": "costly", "agents": agents})
    data = stub_config(upstream.url)
    data["routes"]["ens"] = {"policy": "ensemble", "ensemble": "costly"}
    data["budgets"] = {"limits": [{"name": "cap", "usd": BUDGET}]}
    return data


def ask(g) -> str:
    client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0))
    try:
        client.chat.completions.create(model="ens", messages=[{"role": "user", "content": "hi"}])
        return "answered"
    except openai.RateLimitError as e:
        assert e.status_code == 429 and "budget 'cap'" in e.body["message"], e.body
        assert int(e.response.headers["retry-after"]) > 0
        return "refused"


def test_a_budget_stops_an_ensemble_route_of_frontier_agents(project, upstream):
    upstream.answer = lambda model, prompt: ANSWER
    upstream.latency = 0.0
    g = GatewayServer(make_config(costly_route(project, upstream, [{"name": "ask", "model": "frontier"}]),
                                  project)).start()
    try:
        outcomes = [ask(g) for _ in range(10)]
        # (before: 10 answered, $0.15 against a $0.05 budget)
        assert "refused" in outcomes, f"{len(upstream.calls('big-model'))} frontier answers past a $0.05 budget"
        assert len(upstream.calls("big-model")) == 4  # "remaining" admission: the fourth starts with $0.005 left
    finally:
        g.stop()


def test_one_request_fanning_out_to_the_frontier_stops_at_the_budget(project, upstream):
    upstream.latency = 0.0
    upstream.answer = lambda model, prompt: json.dumps(list(range(30))) if prompt.startswith("list") else ANSWER
    agents = [{"name": "split", "model": "small", "prompt": "list", "output": "json"},
              {"name": "each", "model": "frontier", "fan_out": "split"}]
    g = GatewayServer(make_config(costly_route(project, upstream, agents), project)).start()
    try:
        ask(g)  # answered with the items the budget paid for (the run is partial)
        # (before: all 30 frontier calls of the one request, $0.45 against $0.05)
        assert len(upstream.calls("big-model")) <= 4
        outcomes = [ask(g) for _ in range(5)]
        # once every item is refused the run fails, and the client is told why (429, not 502)
        assert "refused" in outcomes and len(upstream.calls("big-model")) <= 4
    finally:
        g.stop()


def test_concurrent_ensemble_requests_overspend_by_at_most_one_reservation(project, upstream):
    upstream.answer = lambda model, prompt: ANSWER
    upstream.latency = 0.05
    g = GatewayServer(make_config(costly_route(project, upstream, [{"name": "ask", "model": "frontier"}]),
                                  project)).start()
    try:
        with ThreadPoolExecutor(12) as pool:
            outcomes = list(pool.map(lambda _: ask(g), range(12)))
        assert outcomes.count("answered") == len(upstream.calls("big-model")) <= 4, outcomes
    finally:
        g.stop()


def test_the_mcp_tool_runs_within_the_budgets_of_its_config(tmp_path: Path, upstream):
    """`invoke_ensemble` over real HTTP: its runs count under the route `ensemble:<name>`."""
    import asyncio

    from tests.mcp.http_server import client, start, tool_text

    upstream.answer = lambda model, prompt: ANSWER
    upstream.latency = 0.0
    proj = tmp_path / "proj"
    (proj / ".tierwise" / "ensembles").mkdir(parents=True)
    (proj / ".tierwise" / "profiles").mkdir(parents=True)
    data = costly_route(proj, upstream, [{"name": "ask", "model": "frontier"}])
    (proj / "tierwise.yaml").write_text(yaml.safe_dump(data))
    s = start(proj)

    async def run() -> list[str]:
        texts = []
        async with client(s.url) as c:
            for _ in range(8):
                is_error, text = await tool_text(c, "invoke_ensemble", ensemble="costly", input="hi")
                texts.append(text)
        return texts

    try:
        texts = asyncio.run(run())
    finally:
        s.proc.kill()
        s.proc.wait()
    assert len(upstream.calls("big-model")) == 4, f"{len(upstream.calls('big-model'))} answers past $0.05"
    assert "budget 'cap' is spent" in texts[-1]


def test_the_mcp_server_and_the_gateway_share_one_redis_budget(tmp_path: Path, upstream):
    """Two processes of one config (the gateway, `tierwise mcp`) with the Redis store count in one budget: what
    the gateway's ensemble requests spent, the MCP tool's runs cannot spend again (with the memory store each
    process spends the full cap: doctor and `tierwise mcp` say so, tests/budgets/test_cli.py)."""
    import asyncio
    import uuid

    from tests.budgets.conftest import REDIS_URL, STORE_TIMEOUT_S
    from tests.harness import drop_redis_keys
    from tests.mcp.http_server import client, start, tool_text

    upstream.answer = lambda model, prompt: ANSWER
    upstream.latency = 0.0
    proj = tmp_path / "proj"
    (proj / ".tierwise" / "ensembles").mkdir(parents=True)
    (proj / ".tierwise" / "profiles").mkdir(parents=True)
    prefix = f"tierwise-test:{uuid.uuid4().hex[:12]}:"
    data = costly_route(proj, upstream, [{"name": "ask", "model": "frontier"}])
    data["budgets"]["store"] = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix, "timeout": STORE_TIMEOUT_S}
    (proj / "tierwise.yaml").write_text(yaml.safe_dump(data))
    g = GatewayServer(make_config(data, proj)).start()
    s = None
    try:
        outcomes = [ask(g) for _ in range(6)]
        assert "refused" in outcomes and len(upstream.calls("big-model")) == 4
        s = start(proj)

        async def run() -> tuple[bool, str]:
            async with client(s.url) as c:
                return await tool_text(c, "invoke_ensemble", ensemble="costly", input="hi")

        _, text = asyncio.run(run())
        assert "budget 'cap' is spent" in text, text
        assert len(upstream.calls("big-model")) == 4  # the MCP process spent nothing more
    finally:
        g.stop()
        if s is not None:
            s.proc.kill()
            s.proc.wait()
        drop_redis_keys(REDIS_URL, prefix)
