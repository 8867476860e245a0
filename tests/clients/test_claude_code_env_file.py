"""The real Claude Code CLI reads a project's `.env` under `secrets: redact` (session 34, newuser34b).

The scripted upstream makes Claude Code's main agent call Read on `.env`; the next main turn carries the file as a
tool result. Before: `AWS_ACCESS_KEY_ID=AKIA...` reached the remote model verbatim (prefixed keys were looked for only
at the start of a `NAME=value` run). Now every key is a placeholder, and the user's words and the path stay readable.
(In the session a short path with a digit, `/tmp/nu34b/proj/.env`, also arrived as a placeholder, with `show me .env`:
pytest's long temporary path does not reproduce that; tests/privacy/test_split_tool_names.py pins it.)
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.clients.anthropic_scripted import (
    Captured,
    Reply,
    ScriptedAnthropicUpstream,
    text_reply,
    tool_reply,
)
from tests.clients.claude_code_session import cli_env, tool_results
from tests.clients.test_claude_code import claude_bin, run  # noqa: F401  (claude_bin: a fixture)
from tests.harness import GatewayServer, make_config

KEYS = {"OPENAI_API_KEY": "sk-live-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "DB_PASSWORD": "hunter2hunter2"}
ASK = "show me .env"
DONE = "ENV-DONE: read it."


def test_a_read_of_dot_env_reaches_the_remote_model_with_every_key_redacted_and_nothing_else(
    claude_bin: str, tmp_path: Path,  # noqa: F811
) -> None:
    work = (tmp_path / "project").resolve()
    work.mkdir()
    (work / ".env").write_text("".join(f"{k}={v}\n" for k, v in KEYS.items()))

    def decide(cap: Captured) -> Reply:
        if cap.body.get("tools") and not tool_results(cap.body):
            return tool_reply("toolu_env_1", "Read", {"file_path": str(work / ".env")})
        return text_reply(DONE)

    up = ScriptedAnthropicUpstream(decide).start()
    g = GatewayServer(make_config({
        "server": {"default_route": "cc"},
        "ledger": {"path": str(tmp_path / "ledger.db")},
        "providers": {"up": {"kind": "anthropic", "base_url": up.url, "locality": "remote"}},
        "models": {"frontier": {"provider": "up", "model": "claude-sonnet-4-5"}},
        "routes": {"cc": {"policy": "fallback", "targets": ["frontier"]}},
        "privacy": {"classes": {"secrets": {}}, "policy": {"secrets": "redact"}, "ner": {"enabled": False}},
    }, tmp_path)).start()
    try:
        env = cli_env(tmp_path / "home", g.url)
        proc = run([claude_bin, "-p", ASK, "--allowedTools", "Read"], work, env)
    finally:
        g.stop()
        up.stop()
    detail = f"exit {proc.returncode}: {proc.stdout[-1500:]} {proc.stderr[-1500:]}"
    assert proc.returncode == 0 and DONE in proc.stdout, detail
    bodies = [json.dumps(m.body) for m in up.messages()]
    after = [b for m, b in zip(up.messages(), bodies, strict=True) if tool_results(m.body)]
    assert after, detail  # the turn that carried the file
    for b in bodies:
        for value in KEYS.values():
            assert value not in b, value
    last = after[-1]
    assert "AWS_ACCESS_KEY_ID=<SECRET_" in last, last[-600:]
    assert ASK in last and str(work / ".env") in last, last[-600:]  # the user's words and the path stay readable
