"""examples/claude-code.yaml keeps a project's secrets from the frontier model (session 34, ccpriv34).

Before: the shipped example had no `privacy` section, so a Claude Code session that read a repo's `.env` sent every
key in it to Claude (bench/RESULTS.md, "A demanding Claude Code user", finding 2). Now it redacts the `secrets` class
for remote models, and only that class: `serve` neither announces nor loads spaCy's NER model for it (before, it
printed "loading the privacy detectors' NER model" for any privacy section while the NER extra was installed).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml

from tests.clients.anthropic_scripted import Captured, Reply, ScriptedAnthropicUpstream, text_reply
from tests.harness import GatewayServer, make_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "claude-code.yaml"
AWS = "AKIAIOSFODNN7EXAMPLE"
ENV = f"AWS_ACCESS_KEY_ID={AWS}\nLOG_LEVEL=debug\n"


def _example(tmp_path: Path, anthropic_url: str) -> dict[str, Any]:
    """The shipped example as written, with its upstreams on loopback (the local one: nothing listens)."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data["providers"]["anthropic"]["base_url"] = anthropic_url
    data["providers"]["ollama"]["base_url"] = "http://127.0.0.1:9/v1"
    data["ledger"] = {"path": str(tmp_path / "ledger.db")}
    return data


@pytest.mark.parametrize("stream", [False, True])  # Claude Code streams; the restore must hold in SSE too
def test_the_shipped_example_redacts_an_aws_key_read_from_dot_env_before_claude_sees_it(
    stream: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-upstream")

    def decide(cap: Captured) -> Reply:  # Claude quotes what it was sent: the client must get the real key back
        seen = re.search(r"AWS_ACCESS_KEY_ID=[^\\\s\"]+", json.dumps(cap.body))
        return text_reply("It holds " + (seen.group(0) if seen else "nothing"))

    up = ScriptedAnthropicUpstream(decide).start()
    g = GatewayServer(make_config(_example(tmp_path, up.url), tmp_path)).start()
    try:
        client = anthropic.Anthropic(base_url=g.url, api_key="sk-ant-test-client", max_retries=0)
        messages: list[Any] = [
            {"role": "user", "content": "show me .env"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_env_1", "name": "Read", "input": {"file_path": "/repo/.env"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_env_1", "content": ENV}]},
        ]
        if stream:
            with client.messages.stream(model="claude-opus-4-8", max_tokens=200, messages=messages) as s:
                text = "".join(s.text_stream)
        else:
            answer = client.messages.create(model="claude-opus-4-8", max_tokens=200, messages=messages)
            text = answer.content[0].text  # type: ignore[union-attr]
    finally:
        g.stop()
        up.stop()
    [sent] = [m for m in up.messages() if m.path == "/v1/messages"]
    assert sent.model == "claude-sonnet-4-5"  # the main turn went to the remote tier
    body = yaml.safe_dump(sent.body)
    assert AWS not in body, body
    assert "AWS_ACCESS_KEY_ID=<SECRET_" in body and "show me .env" in body and "LOG_LEVEL=debug" in body, body
    assert text == f"It holds AWS_ACCESS_KEY_ID={AWS}"


def test_serve_with_the_shipped_example_neither_announces_nor_loads_the_ner_model(tmp_path: Path) -> None:
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(_example(tmp_path, "http://127.0.0.1:9")))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "TIERWISE_CONFIG"}
    env["HOME"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "tierwise.cli", "serve", "--port", "0"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        while (line := proc.stderr.readline()) and "serving on" not in line:
            lines.append(line.strip())
        assert "serving on" in line, lines
        maps = Path(f"/proc/{proc.pid}/maps").read_text()  # the gateway's privacy detectors are built by now
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert not any("NER" in ln for ln in lines), lines
    assert "/spacy/" not in maps and "/thinc/" not in maps  # spaCy's compiled modules: not imported


@pytest.mark.parametrize("section, needs", [
    ({"classes": {"secrets": {}}}, False),
    ({"user": {"patterns": {"TICKET": [r"TCK-\d{6}"]}}, "classes": {"tickets": {"detectors": ["TICKET"]}}}, False),
    ({"classes": {"pii": {}}, "ner": {"enabled": False}}, False),
    ({"classes": {"pii": {}}}, True),
    ({"classes": {"places": {"detectors": ["LOCATION"]}}}, True),
    ({}, True),  # no `classes:`: the four presets, pii among them
])
def test_the_ner_model_is_needed_only_for_names_organisations_places_or_groups(
    section: dict[str, Any], needs: bool,
) -> None:
    from tierwise.privacy.detect import Detector
    from tierwise.privacy.detect_config import DetectionConfig

    cfg = DetectionConfig.model_validate(section)
    assert cfg.needs_ner_model() is needs
    if not needs:  # what `serve` says agrees with what the detector builds
        assert Detector(cfg).ner_active is False
