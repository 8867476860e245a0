"""The real Claude Code CLI on a `[local, frontier]` fallback route whose local tier's window is too
small for Claude Code's prompt (its system prompt and tool definitions alone are many thousand
tokens): the tool-using task completes, its turns land on the frontier model, and the ledger and
`tierwise trace` say why.

Two ways the gateway can know: the local model's configured `context_window` (it is then skipped
without a call), or, with no window configured, the local server's own refusal (a llama.cpp-style
HTTP 400 `exceed_context_size_error`), which must be read as an overflow, not a malformed request.

The frontier is the scripted agent upstream (tests/clients/scripted_agent.py) that drives the
`Write` tool round trip; the local tier is an OpenAI double that answers what fits and refuses
what does not, the way llama-server does (tests/doubles/overflow.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.clients.scripted_agent import ScriptedAgentUpstream, WriteFileScript
from tests.clients.test_claude_code import FILE_CONTENT, FINAL_TEXT, PRINT_ARGS, claude_bin, cli_env, run  # noqa: F401
from tests.doubles import OpenAIDouble, Reply
from tests.doubles.overflow import ContextLimit
from tests.harness import GatewayServer, make_config

LOCAL_WINDOW = 4096


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = (tmp_path / "project").resolve()
    d.mkdir()
    return d


@pytest.fixture
def frontier(workdir: Path) -> Iterator[ScriptedAgentUpstream]:
    script = WriteFileScript(path=str(workdir / "hello.txt"), content=FILE_CONTENT, final_text=FINAL_TEXT)
    up = ScriptedAgentUpstream(script.decide).start()
    yield up
    up.stop()


@pytest.fixture
def local() -> Iterator[OpenAIDouble]:
    d = OpenAIDouble(strict=False)  # llama.cpp is lax about tool definitions
    d.default = ContextLimit(LOCAL_WINDOW, "llamacpp", then=Reply(text="Greeting file"))
    d.start()
    yield d
    d.stop()


def config(tmp_path: Path, local: OpenAIDouble, frontier: ScriptedAgentUpstream, window: int | None) -> Path:
    route = {"policy": "fallback", "targets": ["local", "frontier"], "retries": 0}
    local_model: dict[str, Any] = {"provider": "llama", "model": "qwen-local"}
    if window is not None:
        local_model["context_window"] = window
    cfg = {
        "server": {"default_route": "tiers"},
        "ledger": {"path": str(tmp_path / "ledger.db")},
        "providers": {
            "llama": {"kind": "openai", "base_url": local.url + "/v1", "locality": "local"},
            "cloud": {"kind": "openai", "base_url": frontier.url + "/v1", "locality": "remote"},
        },
        "models": {"local": local_model, "frontier": {"provider": "cloud", "model": frontier.model}},
        "routes": {"tiers": route, "claude-*": route},
    }
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def trace_json(config_path: Path, request_id: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "tierwise.cli", "trace", "-c", str(config_path), "--json",
                           request_id], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("how", ["configured window", "local server refuses"])
def test_claude_code_task_lands_on_the_frontier_when_local_cannot_hold_it(
    claude_bin: str, workdir: Path, tmp_path: Path, local: OpenAIDouble,  # noqa: F811
    frontier: ScriptedAgentUpstream, how: str,
) -> None:
    cfg_path = config(tmp_path, local, frontier, LOCAL_WINDOW if how == "configured window" else None)
    g = GatewayServer(make_config(cfg_path.read_text(), tmp_path)).start()
    try:
        proc = run([claude_bin, *PRINT_ARGS], workdir, cli_env(tmp_path / "home", g.url))
        g.flush()
        records = g.ledger.query()
    finally:
        g.stop()
    detail = (f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}\n"
              f"frontier saw: {frontier.kinds()}\nledger: {[(r.route, r.status, r.decision, r.reason) for r in records]}")
    assert proc.returncode == 0, detail
    assert FINAL_TEXT in proc.stdout, detail
    assert (workdir / "hello.txt").read_text() == FILE_CONTENT, detail
    # The tool round trip (the turns carrying Claude Code's tools) happened on the frontier.
    assert "tool_call" in frontier.kinds() and "final" in frontier.kinds(), detail

    limit: ContextLimit = local.default
    if how == "configured window":
        # Skipped before the call: nothing too long for the window ever reached the local server.
        assert limit.refused == 0, detail
        assert all(not (r.body or {}).get("tools") for r in local.requests), detail
    else:
        assert limit.refused >= 2, detail  # both turns of the task were refused by the local server

    moved = [r for r in records if r.decision == "frontier" and r.status == 200]
    assert len(moved) >= 2, detail
    for r in moved:
        why = " | ".join(s.get("reason", "") for s in r.steps)
        if how == "configured window":
            assert "skipped local: prompt ~" in why and f"> window {LOCAL_WINDOW:,}" in why, why
        else:
            assert "fell back to frontier" in r.reason and "exceeds the available context size" in r.reason, why

    # `tierwise trace` tells the same story from the ledger on disk.
    shown = trace_json(cfg_path, moved[-1].request_id)
    assert shown["decision"] == "frontier"
    reasons = [s.get("reason", "") for s in shown["steps"]]
    if how == "configured window":
        skip = next(s for s in shown["steps"] if s["kind"] == "decision" and s["name"] == "local")
        assert skip["reason"].startswith("skipped local: prompt ~") and skip["detail"]["skipped"], reasons
        assert [s["name"] for s in shown["steps"] if s["kind"] == "call"] == ["frontier"], reasons
    else:
        call = next(s for s in shown["steps"] if s["kind"] == "call" and s["name"] == "local")
        assert call["status"] == 400 and "exceeds the available context size" in call["reason"], reasons


def test_claude_code_reads_the_gateways_overflow_as_prompt_too_long(
    claude_bin: str, workdir: Path, tmp_path: Path, local: OpenAIDouble,  # noqa: F811
    frontier: ScriptedAgentUpstream,
) -> None:
    """When no tier can hold the prompt, Claude Code gets Anthropic's "prompt is too long: N tokens >
    M maximum" and treats it as its own prompt-too-long case (the one it compacts for), numbers
    included, instead of a generic API failure. Its first turn is all system prompt and tools, so
    there is nothing to compact and it stops with that explanation."""
    frontier_window = 8000
    cfg_path = config(tmp_path, local, frontier, LOCAL_WINDOW)
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["models"]["frontier"]["context_window"] = frontier_window
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    try:
        proc = run([claude_bin, *PRINT_ARGS], workdir, cli_env(tmp_path / "home", g.url))
        g.flush()
        records = g.ledger.query()
    finally:
        g.stop()
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "prompt is too long" in out.lower(), out[-3000:]
    assert str(frontier_window) in out, out[-3000:]  # it read the widest window from the message
    assert frontier.exchanges == [] and local.default.refused == 0  # neither tier was called for it
    assert any(r.status == 400 and r.error_kind for r in records), [(r.status, r.error_kind) for r in records]
