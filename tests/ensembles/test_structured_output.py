"""An agent's `output_schema` reaches the upstream as `response_format`, so a local server can
constrain its output; a failed agent's artifact keeps the answer it rejected.

The upstreams are the protocol doubles (tests/doubles), which record each request as received."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles import AnthropicDouble, OpenAIDouble, Reply
from tests.ensembles.conftest import write_ensemble
from tests.harness import make_config, two_tier_config
from tierwise.ensembles.library import Library
from tierwise.ensembles.service import EnsembleService
from tierwise.gateway import Gateway

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"urgency": {"enum": ["low", "urgent"]}, "topic": {"type": "string"}},
    "required": ["urgency", "topic"],
    "additionalProperties": False,
}


@pytest.fixture
def doubles() -> Iterator[tuple[OpenAIDouble, AnthropicDouble]]:
    o, a = OpenAIDouble(), AnthropicDouble()
    o.start()
    a.start()
    yield o, a
    o.stop()
    a.stop()


@pytest.fixture
async def service(project: Path, doubles: tuple[OpenAIDouble, AnthropicDouble]) -> AsyncIterator[EnsembleService]:
    o, a = doubles
    gw = Gateway(make_config(two_tier_config(o.url, a.url), project))
    yield EnsembleService(gw, Library(project, global_dir=project / "global"))
    await gw.close()


def ensemble(project: Path, model: str, **agent: Any) -> None:
    write_ensemble(project, {"name": "classify", "agents": [
        {"name": "classify.v1", "model": model, "prompt": "Classify:", **agent}]})


async def test_output_schema_goes_to_an_openai_upstream_as_response_format(service, project, doubles):
    o, _ = doubles
    o.script(Reply(text='{"urgency": "urgent", "topic": "billing"}'))
    ensemble(project, "local", output_schema=SCHEMA)
    run = await service.run("classify", "Pay by Friday or else.")
    assert run.status == "ok", run.agents[0].error
    assert run.output == {"urgency": "urgent", "topic": "billing"}
    sent = o.last.body
    assert sent["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "classify_v1", "schema": SCHEMA}}


async def test_an_agent_without_a_schema_sends_no_response_format(service, project, doubles):
    o, _ = doubles
    o.script(Reply(text='["a", "b"]'))
    ensemble(project, "local", output="json")  # often an array: json_object mode would forbid it
    run = await service.run("classify", "x")
    assert run.status == "ok" and run.output == ["a", "b"]
    assert "response_format" not in o.last.body


async def test_output_schema_reaches_an_anthropic_upstream_as_an_instruction(service, project, doubles):
    _, a = doubles
    a.script(Reply(text='{"urgency": "low", "topic": "support"}'))
    ensemble(project, "frontier", output_schema=SCHEMA)
    run = await service.run("classify", "How do I reset my password?")
    assert run.status == "ok", run.agents[0].error
    system = a.last.body["system"]
    text = system if isinstance(system, str) else "".join(b["text"] for b in system)
    assert json.dumps(SCHEMA, separators=(",", ":")) in text
    assert "response_format" not in a.last.body


@pytest.mark.parametrize("answer,why", [
    ("Sure! It looks urgent to me.", "the answer is not JSON"),
    ('{"urgency": "soon", "topic": "billing"}', "output does not match its schema at urgency"),
])
async def test_a_failed_agents_artifact_keeps_the_raw_answer(service, project, doubles, answer, why):
    o, _ = doubles
    o.script(Reply(text=answer))
    ensemble(project, "local", output_schema=SCHEMA)
    run = await service.run("classify", "Pay by Friday.")
    agent = run.agents[0]
    assert run.status == "failed" and why in (agent.error or "")
    assert agent.raw_output == answer
    data = json.loads(Path(run.artifact_json).read_text())
    assert data["agents"][0]["raw_output"] == answer
    md = Path(run.artifact_md).read_text()
    assert "## Rejected answer of `classify.v1`" in md and answer in md


async def test_the_raw_answer_of_each_failed_fan_out_item_is_kept(service, project, doubles):
    o, _ = doubles
    o.script(Reply(text='["one", "two"]'), Reply(text='{"urgency": "low", "topic": "x"}'), Reply(text="no JSON here"))
    write_ensemble(project, {"name": "fan", "concurrency": {"localsrv": 1}, "agents": [  # items in order
        {"name": "split", "model": "local", "output": "json"},
        {"name": "each", "model": "local", "fan_out": "split", "output_schema": SCHEMA},
    ]})
    run = await service.run("fan", "x")
    items = run.agent("each").items
    assert [i.status for i in items] == ["ok", "failed"]
    assert items[1].raw_output == "no JSON here" and items[0].raw_output is None
    assert "`each` item 1" in Path(run.artifact_md).read_text()
