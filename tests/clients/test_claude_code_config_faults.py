"""The real Claude Code CLI in front of a gateway whose own configuration is wrong (session 29's new user): the
frontier upstream refuses the gateway's key, the local server lacks the model. Before, every request got a 503
`overloaded_error` and Claude Code retried it with backoff (16 requests in 200 s, nothing printed, then killed);
and once it gave up, the upstream's "invalid x-api-key" made it say "Invalid API key · Fix external API key", about
a key that the gateway had accepted. Now it stops at the first answer and prints the gateway's reason.

`CLAUDE_CODE_MAX_RETRIES=2` only bounds the run without the fix (three requests instead of ten with backoff).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.test_claude_code import claude_bin, cli_env, run  # noqa: F401  (claude_bin: a fixture)
from tests.doubles.anthropic_double import AnthropicDouble
from tests.doubles.openai_double import OpenAIDouble
from tests.doubles.script import Fail
from tests.harness import GatewayServer, make_config, two_tier_config


@pytest.fixture
def doubles() -> Iterator[tuple[OpenAIDouble, AnthropicDouble]]:
    local, cloud = OpenAIDouble(), AnthropicDouble()
    local.start()
    cloud.start()
    yield local, cloud
    local.stop()
    cloud.stop()


def test_claude_code_stops_at_once_and_names_the_gateways_fault(
    claude_bin: str,  # noqa: F811
    tmp_path: Path,
    doubles: tuple[OpenAIDouble, AnthropicDouble],
) -> None:
    local, cloud = doubles
    cloud.default = Fail(401, "invalid x-api-key", error_type="authentication_error")
    local.default = Fail(404, 'model "qwen-local" not found, try pulling it first')
    cfg = two_tier_config(local.url, cloud.url)
    cfg["server"]["default_route"] = "main"  # Claude Code asks for its own model ids
    cfg["models"]["local"]["context_window"] = (
        200_000  # (its ~18,000-token first turn fits: the local is asked)
    )
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    try:
        env = cli_env(tmp_path / "home", g.url)
        env["CLAUDE_CODE_MAX_RETRIES"] = "2"
        work = tmp_path / "project"
        work.mkdir()
        proc = run([claude_bin, "-p", "say hello"], work, env)
    finally:
        g.stop()
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert len(cloud.requests) == 1 and len(local.requests) == 1, (
        len(cloud.requests),
        len(local.requests),
        out,
    )
    assert "Invalid API key" not in out, out
    assert "gateway's key" in out and "not found, try pulling it first" in out, out
