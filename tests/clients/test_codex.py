"""The real OpenAI Codex CLI (`codex exec`) completes a tool-using task through the gateway's
Responses API, served by a local route on an OpenAI Chat-compatible upstream.

Codex speaks only the Responses API to a custom provider (`wire_api = "responses"`), so a passing
run proves the whole round trip: Codex's Responses request (developer messages, function and
namespace tools, hosted `web_search`, `store: false`, `include`) → an OpenAI chat request; the
upstream's streamed tool call → Responses `function_call` events Codex executes (`exec_command`
runs a shell command that writes the file); its `function_call_output` → an OpenAI `tool` message;
and the final text → `response.completed`.

Install the CLI with `scripts/install-codex.sh` (npm `@openai/codex`, a native build per platform),
or point TIERWISE_CODEX_BIN at a binary. Without it these tests skip, except under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clients.scripted_agent import Decision, ScriptedAgentUpstream
from tests.harness import GatewayServer, make_config, unavailable

ROOT = Path(__file__).resolve().parents[2]
CANDIDATE = ROOT / ".tools" / "codex" / "node_modules" / ".bin" / "codex"
CLI_TIMEOUT_S = 240  # a hang must fail the test, not the suite; this is no performance threshold
FILE_CONTENT = "hello from codex via tierwise"
FINAL_TEXT = "Done: hello.txt is written."
KEY = "codex-test-key"


def find_codex() -> str | None:
    explicit = os.environ.get("TIERWISE_CODEX_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return str(CANDIDATE) if CANDIDATE.is_file() and os.access(CANDIDATE, os.X_OK) else None


class ShellScript:
    """Play the model: ask Codex's `exec_command` tool to write the file, then answer in text."""

    call_id = "call_codex_1"

    def __init__(self, path: Path) -> None:
        self.path = path

    def decide(self, body: dict[str, Any]) -> Decision:
        messages = body.get("messages") or []
        if any(m.get("role") == "tool" and m.get("tool_call_id") == self.call_id for m in messages):
            return "final", {"role": "assistant", "content": FINAL_TEXT}
        offered = {t.get("function", {}).get("name") for t in body.get("tools") or []}
        if "exec_command" in offered:
            cmd = f"printf '%s' '{FILE_CONTENT}' > {self.path}"
            call = {"id": self.call_id, "type": "function",
                    "function": {"name": "exec_command", "arguments": json.dumps({"cmd": cmd})}}
            return "tool_call", {"role": "assistant", "content": None, "tool_calls": [call]}
        return "side", {"role": "assistant", "content": "ok"}


@pytest.fixture(scope="module")
def codex_bin() -> str:
    exe = find_codex()
    if exe is None:
        unavailable("the Codex CLI is not installed (scripts/install-codex.sh, or set TIERWISE_CODEX_BIN)")
    return exe


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = (tmp_path / "project").resolve()
    d.mkdir()
    return d


@pytest.fixture
def upstream(workdir: Path) -> Iterator[ScriptedAgentUpstream]:
    up = ScriptedAgentUpstream(ShellScript(workdir / "hello.txt").decide).start()
    yield up
    up.stop()


@pytest.fixture
def gateway(tmp_path: Path, upstream: ScriptedAgentUpstream, monkeypatch) -> Iterator[GatewayServer]:
    monkeypatch.setenv("TIERWISE_CODEX_TEST_KEY", KEY)
    cfg = {
        "server": {"api_keys_env": ["TIERWISE_CODEX_TEST_KEY"]},
        "ledger": {"path": str(tmp_path / "ledger.db")},
        "providers": {"llama": {"kind": "openai", "base_url": upstream.url + "/v1", "locality": "local",
                                "timeouts": {"connect": 2, "read": 60}}},
        "models": {"qwen": {"provider": "llama", "model": "scripted-agent", "context_window": 131072}},
        "routes": {"local": {"policy": "fallback", "targets": ["qwen"], "retries": 0}},
    }
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    yield g
    g.stop()


def codex_home(tmp_path: Path, gateway_url: str) -> Path:
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        'model = "local"\n'
        'model_provider = "tierwise"\n'
        "[model_providers.tierwise]\n"
        'name = "tierwise"\n'
        f'base_url = "{gateway_url}/v1"\n'
        'wire_api = "responses"\n'
        'env_key = "TIERWISE_KEY"\n'
    )
    return home


def codex_exec(codex_bin: str, home: Path, workdir: Path, prompt: str, key: str = "unused") -> tuple[Any, str]:
    """`codex exec` in `workdir` with CODEX_HOME `home` (no OpenAI key or base URL of the environment): the finished
    process and its output, asserted to have ended well."""
    env = {**os.environ, "CODEX_HOME": str(home), "TIERWISE_KEY": key, "NO_COLOR": "1", "RUST_LOG": "error"}
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    proc = subprocess.run(
        [codex_bin, "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
         "-C", str(workdir), prompt],
        env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return proc, out


def test_codex_exec_writes_a_file_through_the_responses_api(codex_bin, tmp_path, workdir, upstream, gateway):
    proc, out = codex_exec(codex_bin, codex_home(tmp_path, gateway.url), workdir,
                           "Create hello.txt in the current directory with a greeting.", KEY)
    assert (workdir / "hello.txt").read_text() == FILE_CONTENT, out[-4000:]
    assert FINAL_TEXT in proc.stdout, out[-4000:]
    kinds = upstream.kinds()
    assert "tool_call" in kinds and "final" in kinds, kinds
    final = next(e for e in upstream.exchanges if e.kind == "final")
    result = [m for m in final.body["messages"] if m.get("role") == "tool"]
    assert result and result[0]["tool_call_id"] == ShellScript.call_id
    # Codex's developer instructions reached the model as the system prompt
    assert final.body["messages"][0]["role"] == "system" and "Codex" in final.body["messages"][0]["content"]
    gateway.flush()
    rows = [r for r in gateway.ledger.query() if r.client_format == "responses"]
    assert len(rows) >= 2 and all(r.route == "local" and r.status == 200 for r in rows)


def test_codex_exec_tool_round_trip_on_an_anthropic_route(codex_bin, tmp_path, workdir):
    """The same task served by an Anthropic-format upstream (the Messages double), with extended
    thinking in each answer: Codex gets reasoning items, runs the tool call and finishes."""
    from tests.doubles import AnthropicDouble, Reply, ToolCall

    target = workdir / "hello.txt"
    up = AnthropicDouble()
    up.start()
    up.script(Reply(thinking="write the file with printf", tool_calls=[ToolCall(
                  "exec_command", {"cmd": f"printf '%s' '{FILE_CONTENT}' > {target}"}, id="toolu_codex_1")]),
              Reply(thinking="the command ran", text=FINAL_TEXT))
    cfg = {
        "ledger": {"path": str(tmp_path / "ledger.db")},
        "providers": {"claude": {"kind": "anthropic", "base_url": up.url, "timeouts": {"read": 60}}},
        "models": {"sonnet": {"provider": "claude", "model": "claude-sonnet-double"}},
        "routes": {"frontier": ["sonnet"]},
    }
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    try:
        home = codex_home(tmp_path, g.url)
        (home / "config.toml").write_text((home / "config.toml").read_text().replace('model = "local"',
                                                                                    'model = "frontier"'))
        proc, out = codex_exec(codex_bin, home, workdir, "Create hello.txt in the current directory with a greeting.")
        assert target.read_text() == FILE_CONTENT, out[-4000:]
        assert FINAL_TEXT in proc.stdout, out[-4000:]
        second = up.requests[1].body["messages"]
        # Codex sent the reasoning item back: the thinking block reaches Anthropic with its signature
        assistant = second[1]["content"]
        assert assistant[0]["type"] == "thinking" and assistant[0]["signature"] == "sig-double-0001"
        assert assistant[-1]["type"] == "tool_use" and assistant[-1]["name"] == "exec_command"
        result = second[2]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == assistant[-1]["id"]
    finally:
        g.stop()
        up.stop()
