"""The real Claude Code CLI offers tierwise's MCP tools in its first turn.

Claude Code starts `tierwise mcp` over stdio and lists, in its first request to the model, the
tools of the MCP servers ready by then: it asks for the tool, prompt and resource lists and
registers a server's tools when all have come back. Print mode waits for servers up to
MCP_CONNECT_TIMEOUT_MS (5 s by default); an interactive session starts without waiting. The MCP
SDK alone took 1.5-2 s to load; `tierwise mcp` now answers those requests before loading it
(tierwise/mcp_fast.py; the deterministic proof is tests/mcp/test_mcp_startup.py, this is the
real client end to end). The scripted upstream records which tools each request offered.

Print mode in 2.1.197 does not wait at all by default: it connects `--mcp-config` servers "fully
async (nonblocking)" (its debug log) and sends the first turn with whatever has connected by then,
so under load the first turn raced the server's start and lost (session 31). The wait is turned on
with MCP_CONNECTION_NONBLOCKING=0, as docs/mcp.md tells users, and its bound raised so that a
loaded machine never decides the outcome. The server here starts late on purpose (a pause before
it runs), so the test shows the wait is in force rather than depending on who wins the race."""

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
# What docs/mcp.md tells a `claude -p` user; the bound only has to outlast a loaded machine's start.
WAIT_FOR_MCP = {"MCP_CONNECTION_NONBLOCKING": "0", "MCP_CONNECT_TIMEOUT_MS": "300000"}
# `tierwise mcp`, begun after the CLI would have sent its first turn had it not waited (~1.5 s idle).
LATE_START = "import sys, time; time.sleep(4); from tierwise.cli import main; main(sys.argv[1:], prog_name='tierwise')"


def test_the_first_turn_offers_the_tierwise_tools(claude_bin, workdir, tmp_path, upstream, gateway):  # noqa: F811
    (workdir / ".tierwise" / "ensembles").mkdir(parents=True)
    servers = {"mcpServers": {"tierwise": {
        "type": "stdio", "command": sys.executable,
        # no tierwise.yaml: the starter config; started late, as on a loaded machine
        "args": ["-c", LATE_START, "mcp", "--project", str(workdir)],
        "env": {"PYTHONPATH": str(SRC)}}}}
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps(servers))
    env = cli_env(tmp_path / "home", gateway.url)
    env.update(WAIT_FOR_MCP)
    proc = run([claude_bin, *PRINT_ARGS, "--mcp-config", str(config), "--strict-mcp-config"], workdir, env)
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0, detail
    main_turns = [e for e in upstream.exchanges if "Write" in e.tool_names]
    assert main_turns, (detail, upstream.kinds())
    first = main_turns[0].tool_names
    assert "mcp__tierwise__invoke_ensemble" in first and "mcp__tierwise__route_task" in first, first
