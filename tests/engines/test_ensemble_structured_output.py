"""A real llama-server constrains an ensemble agent's output to its `output_schema`.

The tiny model answers every prompt with the same plain sentence (tests/engines/tiny_gguf.py),
so an agent that wants JSON only gets JSON when the schema reaches the server as
`response_format` and llama.cpp turns it into a grammar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.engines.conftest import LlamaServer
from tests.harness import make_config
from tierwise.ensembles.library import Library
from tierwise.ensembles.service import EnsembleService
from tierwise.gateway import Gateway

# No free strings or unbounded numbers: the tiny model would fill them until max_tokens.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"urgency": {"type": "string", "enum": ["low", "normal", "urgent"]}, "billing": {"type": "boolean"}},
    "required": ["urgency", "billing"],
    "additionalProperties": False,
}


async def test_llama_server_answers_in_the_agents_schema(llama_server: LlamaServer, tmp_path: Path):
    cfg = {
        "ledger": {"enabled": False},
        "providers": {"llama": {"kind": "openai", "base_url": llama_server.url + "/v1", "locality": "local",
                                "timeouts": {"connect": 2, "read": 60}}},
        "models": {"tiny": {"provider": "llama", "model": "tiny", "context_window": 4096}},
    }
    folder = tmp_path / ".tierwise" / "ensembles"
    folder.mkdir(parents=True)
    (folder / "triage.yaml").write_text(yaml.safe_dump({
        "name": "triage",
        "profiles": {"p": {"model": "tiny", "temperature": 0, "max_tokens": 400}},
        "agents": [{"name": "classify", "profile": "p", "prompt": "Classify this letter:", "output_schema": SCHEMA}],
    }))
    gw = Gateway(make_config(cfg, tmp_path))
    try:
        run = await EnsembleService(gw, Library(tmp_path, global_dir=tmp_path / "global")).run(
            "triage", "Your invoice is overdue; pay by Friday.")
    finally:
        await gw.close()
    agent = run.agent("classify")
    assert run.status == "ok", (agent.error, agent.raw_output, llama_server.log_tail())
    jsonschema.validate(run.output, SCHEMA)
