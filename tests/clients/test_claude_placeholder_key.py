"""`tierwise claude` gives the real Claude Code CLI a placeholder, never the user's own ANTHROPIC_API_KEY.

The gateway forwards no client key, so the user's provider key in Claude Code's environment served nothing: it
only reached Claude Code's shell tool (`env` prints it into the conversation) and every request's `x-api-key`.
Before session 38 (newuser38b) a gateway on this machine got the user's key. The first test stands a recording
Anthropic server where the gateway would be and reads the headers Claude Code sent; the second runs a session
through a real gateway with the placeholder and gets its answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.clients.anthropic_scripted import Captured, ScriptedAnthropicUpstream, text_reply
from tests.clients.claude_code_session import cli_env
from tests.clients.test_claude_code import claude_bin  # noqa: F401  (fixture)
from tests.doubles import AnthropicDouble, Reply
from tests.harness import GatewayServer, make_config

USER_KEY = "sk-ant-api03-UsersOwnProviderKey-" + "x" * 60 + "-AA"
ANSWER = "placeholder-answer: all good"
ROOT = Path(__file__).resolve().parents[2]


def tierwise_claude(claude: str, home: Path, url: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = cli_env(home, url)
    env.pop("TIERWISE_KEY", None)
    env.update(ANTHROPIC_API_KEY=USER_KEY, PYTHONPATH=str(ROOT / "src"),
               PATH=f"{Path(claude).parent}{os.pathsep}{env.get('PATH', '')}")
    work = home.parent / "project"
    work.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "tierwise.cli", "claude", "-c", str(config), "--url", url,
                           "--", "-p", "say hi"], cwd=work, env=env, capture_output=True, text=True, timeout=240,
                          stdin=subprocess.DEVNULL)


def open_config(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "tierwise.yaml"
    path.write_text(yaml.safe_dump({
        "server": {"default_route": "m"}, "ledger": {"enabled": False},
        "providers": {"a": {"kind": "anthropic", "base_url": base_url}},
        "models": {"m": {"provider": "a", "model": "claude-upstream"}}}))
    return path


def test_claude_code_sends_the_placeholder_not_the_users_key(claude_bin: str, tmp_path: Path) -> None:  # noqa: F811
    def decide(cap: Captured) -> dict:
        return text_reply(ANSWER)

    recorder = ScriptedAnthropicUpstream(decide).start()
    try:
        proc = tierwise_claude(claude_bin, tmp_path / "home", recorder.url, open_config(tmp_path, recorder.url))
        sent = recorder.messages()
    finally:
        recorder.stop()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert ANSWER in proc.stdout
    assert sent
    for cap in sent:
        assert USER_KEY not in " ".join(cap.headers.values())
        assert cap.headers.get("authorization") == "Bearer tierwise"
        assert "x-api-key" not in cap.headers


def test_a_claude_code_session_through_the_gateway_works_with_the_placeholder(claude_bin: str,  # noqa: F811
                                                                              tmp_path: Path) -> None:
    up = AnthropicDouble().start()
    up.default = Reply(text=ANSWER)
    try:
        config = open_config(tmp_path, up.url)
        g = GatewayServer(make_config(yaml.safe_load(config.read_text()), tmp_path)).start()
        try:
            proc = tierwise_claude(claude_bin, tmp_path / "home", g.url, config)
        finally:
            g.stop()
    finally:
        up.stop()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert ANSWER in proc.stdout
    assert [r for r in up.requests if r.path.endswith("/v1/messages")]
