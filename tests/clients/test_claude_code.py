"""The real Claude Code CLI (print mode) completes a tool-using task through the gateway.

The gateway serves Claude Code's Anthropic Messages traffic from an OpenAI-compatible upstream
(tests/clients/scripted_agent.py) that asks for the `Write` tool and then answers in text, so a
passing run proves the whole round trip: Anthropic tools -> OpenAI tools, an OpenAI tool call ->
an Anthropic `tool_use` block Claude Code executes, and its `tool_result` -> an OpenAI `tool` message.

Install the CLI with `scripts/install-claude-code.sh`, or point TIERWISE_CLAUDE_BIN at a binary.
Without it these tests skip, except under CI=true where a missing CLI is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.clients.scripted_agent import ScriptedAgentUpstream, WriteFileScript
from tests.harness import GatewayServer, make_config, unavailable
from tierwise.cli import main
from tierwise.commands.claude import claude_env

ROOT = Path(__file__).resolve().parents[2]
INSTALL_PREFIX = ROOT / ".tools" / "claude-code" / "node_modules"
CANDIDATES = [
    INSTALL_PREFIX / ".bin" / "claude",
    INSTALL_PREFIX / "@anthropic-ai" / "claude-code" / "bin" / "claude",
    INSTALL_PREFIX / "@anthropic-ai" / "claude-code-linux-x64" / "claude",
    INSTALL_PREFIX / "@anthropic-ai" / "claude-code-linux-arm64" / "claude",
]
CLI_TIMEOUT_S = 240  # a hang must fail the test, not the suite; this is no performance threshold
FILE_CONTENT = "hello from tierwise\n"
FINAL_TEXT = "Done: hello.txt now greets you from tierwise."
TASK = "Create a file named hello.txt in the current directory containing: hello from tierwise"


def find_claude() -> str | None:
    explicit = os.environ.get("TIERWISE_CLAUDE_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for c in CANDIDATES:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    return None


@pytest.fixture(scope="module")
def claude_bin() -> str:
    exe = find_claude()
    if exe is None:
        unavailable("the Claude Code CLI is not installed (scripts/install-claude-code.sh, or set TIERWISE_CLAUDE_BIN)")
    return exe


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = (tmp_path / "project").resolve()
    d.mkdir()
    return d


@pytest.fixture
def upstream(workdir: Path) -> Iterator[ScriptedAgentUpstream]:
    script = WriteFileScript(path=str(workdir / "hello.txt"), content=FILE_CONTENT, final_text=FINAL_TEXT)
    up = ScriptedAgentUpstream(script.decide).start()
    yield up
    up.stop()


def agent_config(tmp_path: Path, upstream: ScriptedAgentUpstream) -> dict[str, Any]:
    return {
        # Claude Code asks for its own model names (claude-sonnet-*, claude-haiku-*); a pattern route
        # catches them and the default route catches anything else.
        "server": {"default_route": "agent"},
        "ledger": {"path": str(tmp_path / "ledger.db")},
        "providers": {"scripted": {"kind": "openai", "base_url": upstream.url + "/v1", "locality": "local"}},
        "models": {"agent": {"provider": "scripted", "model": upstream.model}},
        "routes": {"claude-*": {"policy": "fallback", "targets": ["agent"], "retries": 0}},
    }


@pytest.fixture
def gateway(tmp_path: Path, upstream: ScriptedAgentUpstream) -> Iterator[GatewayServer]:
    g = GatewayServer(make_config(agent_config(tmp_path, upstream), tmp_path)).start()
    yield g
    g.stop()


def cli_env(home: Path, gateway_url: str) -> dict[str, str]:
    """A clean environment: no real keys or user config leak in, nothing leaves loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "OPENAI_"))}
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "ANTHROPIC_BASE_URL": gateway_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-not-a-real-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    })
    return env


# Write is allowed explicitly; no bypass mode, which Claude Code refuses to run as root.
PRINT_ARGS = ["-p", TASK, "--allowedTools", "Write", "--permission-mode", "acceptEdits"]


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)


def assert_tool_round_trip(proc: subprocess.CompletedProcess[str], workdir: Path, upstream: ScriptedAgentUpstream,
                           gateway: GatewayServer) -> None:
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}\n" \
             f"upstream saw: {upstream.kinds()}"
    assert proc.returncode == 0, detail
    assert FINAL_TEXT in proc.stdout, detail
    assert (workdir / "hello.txt").read_text() == FILE_CONTENT, detail

    kinds = upstream.kinds()
    assert "tool_call" in kinds and "final" in kinds, detail
    asked = next(e for e in upstream.exchanges if e.kind == "tool_call")
    assert "Write" in asked.tool_names  # Claude Code's tools reached the upstream as OpenAI tools
    done = next(e for e in upstream.exchanges if e.kind == "final")
    [result] = [m for m in done.tool_results if m.get("tool_call_id") == "call_write_1"]
    assert "hello.txt" in str(result.get("content")), result  # Claude Code's tool_result came back

    gateway.flush()
    records = gateway.ledger.query()
    ours = [r for r in records if r.client_format == "anthropic" and r.model == upstream.model]
    assert len(ours) >= 2, [r.to_dict() for r in records]
    assert all(r.status == 200 for r in ours), [(r.status, r.error_message) for r in ours]
    assert {r.route for r in ours} == {"claude-*"}  # Claude Code's model names matched the pattern route


def test_claude_code_print_mode_uses_a_tool_through_the_gateway(
    claude_bin: str, workdir: Path, tmp_path: Path, upstream: ScriptedAgentUpstream, gateway: GatewayServer
) -> None:
    proc = run([claude_bin, *PRINT_ARGS], workdir, cli_env(tmp_path / "home", gateway.url))
    assert_tool_round_trip(proc, workdir, upstream, gateway)


def test_tierwise_claude_launches_the_cli_against_the_gateway(
    claude_bin: str, workdir: Path, tmp_path: Path, upstream: ScriptedAgentUpstream, gateway: GatewayServer
) -> None:
    env = cli_env(tmp_path / "home", "http://127.0.0.1:1")  # `tierwise claude` must replace this
    del env["ANTHROPIC_BASE_URL"]
    env["PATH"] = os.pathsep.join([str(Path(claude_bin).parent), env.get("PATH", "")])
    link_dir = tmp_path / "bin"  # `tierwise claude` looks `claude` up on PATH by that exact name
    if Path(claude_bin).name != "claude":
        link_dir.mkdir()
        (link_dir / "claude").symlink_to(claude_bin)
        env["PATH"] = os.pathsep.join([str(link_dir), env["PATH"]])
    cmd = [sys.executable, "-m", "tierwise.cli", "claude", "--url", gateway.url, "--", *PRINT_ARGS]
    proc = run(cmd, workdir, env)
    assert_tool_round_trip(proc, workdir, upstream, gateway)


def on_path_as_claude(claude_bin: str, tmp_path: Path, env: dict[str, str]) -> None:
    """`tierwise claude` looks `claude` up on PATH by that exact name."""
    env["PATH"] = os.pathsep.join([str(Path(claude_bin).parent), env.get("PATH", "")])
    if Path(claude_bin).name != "claude":
        link_dir = tmp_path / "bin"
        link_dir.mkdir()
        (link_dir / "claude").symlink_to(claude_bin)
        env["PATH"] = os.pathsep.join([str(link_dir), env["PATH"]])


def test_tierwise_claude_hands_claude_code_the_gateway_key_not_the_upstream_key(
    claude_bin: str, workdir: Path, tmp_path: Path, upstream: ScriptedAgentUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's shell: ANTHROPIC_API_KEY holds the upstream key the gateway uses, and the gateway
    wants client keys. Claude Code must be given the gateway's key, or every request is a 401 that
    it retries in silence."""
    cfg = agent_config(tmp_path, upstream)
    cfg["server"]["api_keys_env"] = ["TW_TEST_GATEWAY_KEY"]
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    env = cli_env(tmp_path / "home", "http://127.0.0.1:1")
    del env["ANTHROPIC_BASE_URL"]
    env["ANTHROPIC_API_KEY"] = "sk-ant-upstream-key-the-gateway-holds"
    env["TW_TEST_GATEWAY_KEY"] = "tw-gateway-key-0123456789"
    on_path_as_claude(claude_bin, tmp_path, env)
    monkeypatch.setenv("TW_TEST_GATEWAY_KEY", env["TW_TEST_GATEWAY_KEY"])  # for the in-process gateway
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    try:
        cmd = [sys.executable, "-m", "tierwise.cli", "claude", "-c", str(tmp_path / "tierwise.yaml"),
               "--url", g.url, "--", *PRINT_ARGS]
        assert_tool_round_trip(run(cmd, workdir, env), workdir, upstream, g)
    finally:
        g.stop()


def test_tierwise_claude_stops_at_once_when_no_gateway_answers(claude_bin: str, workdir: Path, tmp_path: Path,
                                                               upstream: ScriptedAgentUpstream) -> None:
    """Before: the real CLI was started against a gateway nobody had started and retried the connection for
    minutes with nothing on the screen. Now `tierwise claude` says what to start, and claude never runs."""
    from tests.harness import free_port

    cfg = agent_config(tmp_path, upstream)
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    env = cli_env(tmp_path / "home", "http://127.0.0.1:1")
    on_path_as_claude(claude_bin, tmp_path, env)
    url = f"http://127.0.0.1:{free_port()}"
    proc = run([sys.executable, "-m", "tierwise.cli", "claude", "-c", str(tmp_path / "tierwise.yaml"), "--url", url,
                "--", *PRINT_ARGS], workdir, env)
    assert proc.returncode == 1, proc.stderr
    assert f"no gateway answers at {url}" in proc.stderr and "tierwise serve -c" in proc.stderr, proc.stderr
    assert not upstream.kinds()  # nothing was sent anywhere


def test_tierwise_claude_says_which_key_to_set_when_the_gateway_wants_one(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TW_TEST_GATEWAY_KEY", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no claude: the key is checked first
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump({
        "server": {"api_keys_env": [{"env": "TW_TEST_GATEWAY_KEY", "routes": ["m"]}]},
        "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "locality": "local"}},
        "models": {"m": {"provider": "p", "model": "m"}}}))
    res = CliRunner().invoke(main, ["claude", "-c", str(tmp_path / "tierwise.yaml"), "-p", "hi"])
    assert res.exit_code == 1
    assert "TW_TEST_GATEWAY_KEY" in res.output and "401" in res.output


def test_claude_env_points_claude_code_at_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", raising=False)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://api.anthropic.com")
    env = claude_env("http://127.0.0.1:4000", haiku_model="local", subagent_model="frontier")
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:4000"
    assert env["ANTHROPIC_AUTH_TOKEN"]  # Claude Code refuses to start without some key
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "local"
    assert env["CLAUDE_CODE_SUBAGENT_MODEL"] == "frontier"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"


def test_claude_env_gives_a_gateway_on_this_machine_no_key_of_the_users(monkeypatch: pytest.MonkeyPatch) -> None:
    """newuser38b: the gateway forwards no client key; the user's key only reached Claude Code's shell tool."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-user-chosen")
    monkeypatch.delenv("TIERWISE_KEY", raising=False)
    env = claude_env("http://127.0.0.1:4000", haiku_model=None, subagent_model=None)
    assert "ANTHROPIC_API_KEY" not in env
    assert env["ANTHROPIC_AUTH_TOKEN"] == "tierwise"
    assert "sk-user-chosen" not in env.values()
    assert "ANTHROPIC_DEFAULT_HAIKU_MODEL" not in env


def test_claude_env_gives_the_gateways_key_as_a_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """newuser38b: an ANTHROPIC_API_KEY Claude Code has not seen makes its interactive start ask "Do you want to use
    this API key?" with No preselected; ANTHROPIC_AUTH_TOKEN does not (Claude Code 2.1.197 in a pty)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-upstream")
    env = claude_env("http://127.0.0.1:4000", haiku_model=None, subagent_model=None, key="tw-gateway-key")
    assert env["ANTHROPIC_AUTH_TOKEN"] == "tw-gateway-key"
    assert "ANTHROPIC_API_KEY" not in env



def test_claude_code_betas_and_fields_pass_the_default_forwarding_policy(claude_bin: str, workdir: Path,
                                                                         tmp_path: Path) -> None:
    """Through an Anthropic upstream (the same-format pass-through), Claude Code's beta flags and
    body fields are on the default allow-list (server.forwarding), so it works unconfigured."""
    from tests.doubles import AnthropicDouble, Reply

    up = AnthropicDouble()
    up.start()
    try:
        up.default = Reply(text=FINAL_TEXT)
        cfg = {"server": {"default_route": "m"}, "ledger": {"enabled": False},
               "providers": {"a": {"kind": "anthropic", "base_url": up.url}},
               "models": {"m": {"provider": "a", "model": "claude-upstream"}}}
        g = GatewayServer(make_config(cfg, tmp_path)).start()
        try:
            proc = run([claude_bin, "-p", "say hi"], workdir, cli_env(tmp_path / "home", g.url))
        finally:
            g.stop()
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert FINAL_TEXT in proc.stdout
        sent = [r for r in up.requests if r.path.endswith("/v1/messages")]
        assert sent
        betas = sent[-1].headers.get("anthropic-beta", "")
        assert "claude-code-" in betas  # Claude Code's flags arrived (it sends them on every request)
    finally:
        up.stop()


@pytest.mark.parametrize("url", ["http://10.0.0.7:4000", "http://gateway.internal:4000", "https://[2001:db8::1]:4000"])
def test_claude_env_never_sends_the_users_provider_key_to_another_host(monkeypatch: pytest.MonkeyPatch,
                                                                       url: str) -> None:
    """The gateway forwards no client key: a user's own ANTHROPIC_API_KEY (or auth token) kept for an open
    gateway on another host went there with every request, in clear text over http."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-users-real-key")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "users-oauth-token")
    monkeypatch.delenv("TIERWISE_KEY", raising=False)
    env = claude_env(url, haiku_model=None, subagent_model=None)
    assert "ANTHROPIC_API_KEY" not in env
    assert env["ANTHROPIC_AUTH_TOKEN"] == "tierwise"
