"""The real Codex CLI under `secrets: redact` (the README's Claude Code setting, which a Codex user copies): Codex's
own prompt reaches the frontier model readable, and a key it reads still does not.

Codex (0.171.0) lists its skills in every prompt as `- skill-creator: ... (file: r0/skill-creator/SKILL.md)`. Before
session 35 (newuser35) the secrets detector took `r0/skill-creator/SKILL` (a digit, capitals, lower case) for a
random token: 3 of Codex's 4 skill paths reached the model as `<SECRET_n>.md`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.clients.scripted_agent import Decision, ScriptedAgentUpstream
from tests.clients.test_codex import codex_bin, codex_exec, codex_home  # noqa: F401  (fixture)
from tests.harness import GatewayServer, make_config

KEY = "sk-proj-Qm7vT2xW9kL4nB8cR1dF6gH3jP0sZ5yA"  # an OpenAI-shaped project key (not a real one)


def reads_env(body: dict[str, Any]) -> Decision:
    messages = body.get("messages") or []
    if any(m.get("role") == "tool" for m in messages):
        return "final", {"role": "assistant", "content": "Read it."}
    call = {"id": "call_env", "type": "function",
            "function": {"name": "exec_command", "arguments": json.dumps({"cmd": "cat .env"})}}
    return "tool_call", {"role": "assistant", "content": None, "tool_calls": [call]}


def test_codex_prompt_stays_readable_and_a_read_key_is_redacted(codex_bin, tmp_path):  # noqa: F811
    up = ScriptedAgentUpstream(reads_env).start()
    cfg = {
        "ledger": {"path": str(tmp_path / "ledger.db")},
        "providers": {"cloud": {"kind": "openai", "base_url": up.url + "/v1", "locality": "remote",
                                "timeouts": {"read": 60}}},
        "models": {"big": {"provider": "cloud", "model": "scripted-agent", "price": {"input": 1, "output": 2}}},
        "routes": {"main": ["big"]},
        "privacy": {"classes": {"secrets": {}}, "policy": {"secrets": "redact"}},
    }
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    workdir = (tmp_path / "project").resolve()
    workdir.mkdir()
    (workdir / ".env").write_text(f"OPENAI_API_KEY={KEY}\n")
    try:
        home = codex_home(tmp_path, g.url)
        (home / "config.toml").write_text((home / "config.toml").read_text().replace('"local"', '"main"', 1))
        codex_exec(codex_bin, home, workdir, "Show me .env")
        sent = json.dumps([e.body for e in up.exchanges])
        skills = re.findall(r"\(file: ([^)]*)\)", sent)
        assert skills, "Codex listed no skills in its prompt"
        assert not [s for s in skills if "SECRET" in s], skills  # every skill path readable
        assert KEY not in sent and "<SECRET_" in sent  # the key read from .env did not leave
    finally:
        g.stop()
        up.stop()
