"""The real Claude Code CLI with a key the gateway does not take (session 34, newuser34b).

A user who points Claude Code at a keyed gateway by hand (`ANTHROPIC_BASE_URL=... claude`, not `tierwise claude`,
which checks the key first) with a wrong or stale key got nothing at all: Claude Code 2.1.197 retries a 401 up to
ten times with backoff (minutes, nothing printed in print mode), unless the answer says `x-should-retry: false`, as
Anthropic's own does. Now the gateway's own 401 and 403 say so, and Claude Code stops at the first answer and shows
the gateway's reason ("Failed to authenticate. API Error: 401 invalid or missing API key for this gateway").

`CLAUDE_CODE_MAX_RETRIES=2` only bounds the run without the fix (three requests instead of eleven with backoff).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.clients.test_claude_code import claude_bin, cli_env, run  # noqa: F401  (claude_bin: a fixture)
from tests.clients.test_claude_code_config_faults import doubles  # noqa: F401  (a fixture)
from tests.doubles.anthropic_double import AnthropicDouble
from tests.doubles.openai_double import OpenAIDouble
from tests.harness import GatewayServer, make_config, two_tier_config

KEY_ENV = "TIERWISE_TEST_GATEWAY_KEY_34B"


def test_a_wrong_gateway_key_stops_claude_code_at_the_first_answer(
    claude_bin: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    doubles: tuple[OpenAIDouble, AnthropicDouble],  # noqa: F811
) -> None:
    local, cloud = doubles
    monkeypatch.setenv(KEY_ENV, "tw-the-right-key-0123456789")
    cfg = two_tier_config(local.url, cloud.url)
    cfg["server"]["api_keys_env"] = [KEY_ENV]
    g = GatewayServer(make_config(cfg, tmp_path))
    posts: list[str] = []
    inner = g._server.config.app

    async def counting(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/v1/messages":
            posts.append(scope["path"])
        await inner(scope, receive, send)

    g._server.config.app = counting  # (uvicorn loads its app when it starts serving)
    g.start()
    try:
        env = cli_env(tmp_path / "home", g.url)
        env["ANTHROPIC_API_KEY"] = "tw-a-stale-key-9876543210"
        env["CLAUDE_CODE_MAX_RETRIES"] = "2"
        work = tmp_path / "project"
        work.mkdir()
        proc = run([claude_bin, "-p", "say hello"], work, env)
    finally:
        g.stop()
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert len(posts) == 1, (len(posts), out)
    assert "invalid or missing API key for this gateway" in out, out  # the gateway's reason, shown
    assert cloud.requests == [] and local.requests == [], out
