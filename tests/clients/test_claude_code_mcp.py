"""The real Claude Code CLI offers tierwise's MCP tools in its first turn.

Claude Code starts `tierwise mcp` over stdio and lists, in its first request to the model, the
tools of the MCP servers ready by then: it asks for the tool, prompt and resource lists and
registers a server's tools when all have come back. Print mode waits for servers up to
MCP_CONNECT_TIMEOUT_MS (5 s by default); an interactive session starts without waiting. The MCP
SDK alone took 1.5-2 s to load; `tierwise mcp` now answers those requests before loading it
(tierwise/mcp_fast.py; the deterministic proof is tests/mcp/test_mcp_startup.py, this is the
real client end to end). The scripted upstream records which tools each request offered."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.clients.test_claude_code import (  # noqa: F401 (fixtures)
    PRINT_ARGS,
    claude_bin,
    cli_env,
    gateway,
    run,
    upstream,
    workdir,
)

SRC = Path(__file__).resolve().parents[2] / "src"


def test_the_first_turn_offers_the_tierwise_tools(claude_bin, workdir, tmp_path, upstream, gateway):  # noqa: F811
    (workdir / ".tierwise" / "ensembles").mkdir(parents=True)
    servers = {"mcpServers": {"tierwise": {
        "type": "stdio", "command": sys.executable,
        "args": ["-m", "tierwise.cli", "mcp", "--project", str(workdir)],  # no tierwise.yaml: the starter config
        "env": {"PYTHONPATH": str(SRC)}}}}
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps(servers))
    proc = run([claude_bin, *PRINT_ARGS, "--mcp-config", str(config), "--strict-mcp-config"], workdir,
               cli_env(tmp_path / "home", gateway.url))
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0, detail
    main_turns = [e for e in upstream.exchanges if "Write" in e.tool_names]
    assert main_turns, (detail, upstream.kinds())
    first = main_turns[0].tool_names
    assert "mcp__tierwise__invoke_ensemble" in first and "mcp__tierwise__route_task" in first, first
