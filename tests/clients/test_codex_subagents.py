"""The real Codex CLI's subagents reach the local model through a `subagent: true` rule.

Codex (0.171.0) delegates with its `multi_agent_v1.spawn_agent` tool: the spawned thread's turns carry
`x-openai-subagent: collab_spawn` (Claude Code's carry `X-Claude-Code-Agent-Id`). A coding-agent user who
writes the rule the README and `tierwise init` show for subagents, `{match: {subagent: true}, target: <local>}`,
expects Codex's delegated work on the local model; before session 35 the rule only knew Claude Code's header and
every Codex subagent turn went to the frontier model.

The main conversation's upstream (the frontier double) asks Codex to spawn a subagent with a task, waits for it,
and answers. The subagent's own turn must reach the local double, whose answer Codex hands back to the main agent.
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
from tests.clients.test_codex import CLI_TIMEOUT_S, codex_bin, codex_home  # noqa: F401  (fixture)
from tests.harness import GatewayServer, make_config

SUBTASK = "SUBTASK-7f3: count the lines of README"
SUB_ANSWER = "the subagent's answer: 42 lines"
FINAL_TEXT = "Done: the subagent reported back."


def tool_output(messages: list[dict[str, Any]], call_id: str) -> str | None:
    for m in messages:
        if m.get("role") == "tool" and m.get("tool_call_id") == call_id:
            c = m.get("content")
            return c if isinstance(c, str) else "".join(p.get("text", "") for p in c or [] if isinstance(p, dict))
    return None


def call(name: str, args: dict[str, Any], call_id: str) -> Decision:
    return "tool_call", {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}


def main_agent(body: dict[str, Any]) -> Decision:
    """Spawn a subagent, wait for it, then finish. A turn without the spawn tool (a subagent's turn that
    reached this upstream) gets a text that says so."""
    messages = body.get("messages") or []
    offered = {t.get("function", {}).get("name") for t in body.get("tools") or []}
    if "multi_agent_v1__spawn_agent" not in offered:
        return "side", {"role": "assistant", "content": "the frontier model answered the subagent"}
    spawned = tool_output(messages, "call_spawn")
    if spawned is None:
        return call("multi_agent_v1__spawn_agent", {"message": SUBTASK}, "call_spawn")
    if tool_output(messages, "call_wait") is None:
        agent_id = json.loads(spawned)["agent_id"]
        return call("multi_agent_v1__wait_agent", {"targets": [agent_id], "timeout_ms": 60000}, "call_wait")
    return "final", {"role": "assistant", "content": FINAL_TEXT}


def local_agent(body: dict[str, Any]) -> Decision:
    return "final", {"role": "assistant", "content": SUB_ANSWER}


@pytest.fixture
def upstreams() -> Iterator[tuple[ScriptedAgentUpstream, ScriptedAgentUpstream]]:
    frontier = ScriptedAgentUpstream(main_agent).start()
    local = ScriptedAgentUpstream(local_agent).start()
    yield frontier, local
    frontier.stop()
    local.stop()


def user_texts(body: dict[str, Any]) -> str:
    return json.dumps([m.get("content") for m in body.get("messages") or [] if m.get("role") == "user"])


def rules_config(tmp_path, frontier: ScriptedAgentUpstream, local: ScriptedAgentUpstream) -> dict[str, Any]:
    return {
        "ledger": {"path": str(tmp_path / "ledger.db")},
        "providers": {
            "cloud": {"kind": "openai", "base_url": frontier.url + "/v1", "locality": "remote",
                      "timeouts": {"read": 60}},
            "llama": {"kind": "openai", "base_url": local.url + "/v1", "locality": "local",
                      "timeouts": {"read": 60}},
        },
        "models": {"big": {"provider": "cloud", "model": "scripted-agent", "price": {"input": 1, "output": 2}},
                   "small": {"provider": "llama", "model": "scripted-agent", "context_window": 131072}},
        "routes": {"main": {"policy": "rules",
                            "rules": [{"name": "subagents", "match": {"subagent": True}, "target": "small"}],
                            "default": "big"}},
    }


def codex_env(tmp_path, gateway: GatewayServer) -> dict[str, str]:
    home = codex_home(tmp_path, gateway.url)
    (home / "config.toml").write_text((home / "config.toml").read_text().replace('"local"', '"main"', 1))
    env = {**os.environ, "CODEX_HOME": str(home), "TIERWISE_KEY": "unused", "NO_COLOR": "1", "RUST_LOG": "error"}
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    return env


def test_codex_subagent_turns_go_to_the_local_model(codex_bin, tmp_path, upstreams):  # noqa: F811
    frontier, local = upstreams
    g = GatewayServer(make_config(rules_config(tmp_path, frontier, local), tmp_path)).start()
    workdir = (tmp_path / "project").resolve()
    workdir.mkdir()
    try:
        proc = subprocess.run(
            [codex_bin, "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
             "-C", str(workdir), "Delegate the line count to a subagent."],
            env=codex_env(tmp_path, g), capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        assert FINAL_TEXT in proc.stdout, out[-4000:]
        # the subagent's turn reached the local model, and only it
        assert [SUBTASK in user_texts(e.body) for e in local.exchanges] == [True], out[-4000:]
        assert not any(SUBTASK in user_texts(e.body) for e in frontier.exchanges), out[-4000:]
        # its answer went back to the main agent through Codex's wait_agent
        last = frontier.exchanges[-1].body["messages"]
        assert SUB_ANSWER in (tool_output(last, "call_wait") or ""), out[-4000:]
        g.flush()
        rows = g.ledger.query()
        subs = [r for r in rows if r.model == "scripted-agent" and r.locality == "local"]
        assert len(subs) == 1 and subs[0].route == "main" and subs[0].status == 200, rows
        assert all(r.locality == "remote" for r in rows if r is not subs[0]), rows
    finally:
        g.stop()


def test_codex_review_stays_on_the_main_agents_model(codex_bin, tmp_path, upstreams):  # noqa: F811
    """`codex review` sends the review the user asked for as a subagent of kind `review`: the session's own task,
    so the same `subagent: true` rule leaves it on the route's default (the frontier model)."""
    frontier, local = upstreams
    g = GatewayServer(make_config(rules_config(tmp_path, frontier, local), tmp_path)).start()
    repo = (tmp_path / "repo").resolve()
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / "app.py").write_text('print("hi")\n')
    subprocess.run([*git, "add", "app.py"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    (repo / "app.py").write_text('print("bye")\n')
    try:
        proc = subprocess.run([codex_bin, "review", "--uncommitted"], cwd=repo, env=codex_env(tmp_path, g),
                              capture_output=True, text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        assert local.exchanges == [], out[-4000:]
        assert frontier.exchanges and "the frontier model answered" in proc.stdout, out[-4000:]
    finally:
        g.stop()


GUARDIAN = "You are judging one planned coding-agent action"  # the start of Codex's guardian prompt (0.171.0)


def guardian_verdict(model: str) -> Decision:
    return "final", {"role": "assistant", "content": json.dumps(
        {"outcome": "allow", "risk_level": "low", "rationale": f"reviewed by the {model} model"})}


def is_guardian(body: dict[str, Any]) -> bool:
    return any(m.get("role") == "system" and GUARDIAN in json.dumps(m.get("content")) for m in body.get("messages") or [])


def asks_to_escalate(body: dict[str, Any]) -> Decision:
    if is_guardian(body):
        return guardian_verdict("frontier")
    messages = body.get("messages") or []
    out = tool_output(messages, "call_x")
    if out is None:
        return call("exec_command", {"cmd": "touch outside.txt", "sandbox_permissions": "require_escalated",
                                     "justification": "the user asked for it"}, "call_x")
    return "final", {"role": "assistant", "content": "DONE " + out[:300]}


def test_codex_guardian_stays_on_the_main_agents_model(codex_bin, tmp_path):  # noqa: F811
    """With `approvals_reviewer = "auto_review"` Codex asks a guardian subagent (`x-openai-subagent: guardian`)
    whether an action needing approval may run; its verdict stands in for the user's. Under the `subagent: true`
    rule it went to the local model (review35e), which approved an escalated command; it now stays on the default."""
    frontier = ScriptedAgentUpstream(asks_to_escalate).start()
    local = ScriptedAgentUpstream(lambda body: guardian_verdict("local")).start()
    g = GatewayServer(make_config(rules_config(tmp_path, frontier, local), tmp_path)).start()
    workdir = (tmp_path / "project").resolve()
    workdir.mkdir()
    env = codex_env(tmp_path, g)
    home = Path(env["CODEX_HOME"])
    (home / "config.toml").write_text('approvals_reviewer = "auto_review"\napproval_policy = "on-request"\n'
                                      'sandbox_mode = "workspace-write"\n' + (home / "config.toml").read_text())
    try:
        proc = subprocess.run([codex_bin, "exec", "--skip-git-repo-check", "-C", str(workdir), "Touch the file."],
                              env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        assert [e for e in local.exchanges if is_guardian(e.body)] == [], out[-4000:]
        assert any(is_guardian(e.body) for e in frontier.exchanges), out[-4000:]
        assert (workdir / "outside.txt").exists(), out[-4000:]  # the frontier guardian's verdict let it run
    finally:
        g.stop()
        frontier.stop()
        local.stop()
