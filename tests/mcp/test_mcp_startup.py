"""`tierwise mcp` over stdio answers `initialize`, `tools/list` and `ping` before the MCP SDK and the
gateway have loaded (tierwise/mcp_fast.py), from a manifest that must equal what the SDK answers.

Claude Code starts its first turn without the tools of a server that has not listed them yet; the
SDK alone took 1.5-2 s to load. Figures: bench/mcp_startup.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tierwise import mcp_fast

DRIVER = Path(__file__).with_name("fast_driver.py")
REPO = Path(__file__).resolve().parents[2]


class Peer:
    """A client on the server's stdio pipe, reading answers by id."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + str(REPO), **(env or {})}
        full_env.pop("TIERWISE_CONFIG", None)
        self.proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.seen: list[dict[str, Any]] = []

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", **msg}) + "\n")
        self.proc.stdin.flush()

    def answer(self, msg_id: int) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            assert line, "the server closed the pipe: " + self.close()
            msg = json.loads(line)
            self.seen.append(msg)
            if msg.get("id") == msg_id:
                return msg

    def close(self) -> str:
        self.proc.kill()
        _, err = self.proc.communicate(timeout=30)
        return err


def init(version: str = "2025-06-18") -> dict[str, Any]:
    return {"id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".tierwise" / "ensembles").mkdir(parents=True)
    return tmp_path


def test_the_handshake_is_answered_before_the_server_is_built(project, tmp_path):
    gate = tmp_path / "gate"
    peer = Peer([sys.executable, str(DRIVER), str(gate), str(project)], project)
    try:
        peer.send(init())
        first = peer.answer(1)["result"]
        peer.send({"method": "notifications/initialized"})
        peer.send({"id": 2, "method": "tools/list"})
        tools = peer.answer(2)["result"]["tools"]
        peer.send({"id": 3, "method": "ping"})
        assert peer.answer(3)["result"] == {}
        peer.send({"id": 5, "method": "prompts/list"})  # Claude Code asks these too before it registers tools
        peer.send({"id": 6, "method": "resources/list"})
        assert peer.answer(5)["result"] == {"prompts": []} and peer.answer(6)["result"] == {"resources": []}
        peer.send({"id": 4, "method": "tools/call", "params": {"name": "list_ensembles", "arguments": {}}})
        assert not gate.exists()  # all of the above came while the build was still waiting
        gate.touch()
        call = peer.answer(4)["result"]  # a tool call waits for the SDK, then runs there
        assert call["isError"] is False and call["structuredContent"] == {"ensembles": []}
        recorded = mcp_fast.load_manifest()["versions"]["2025-06-18"]
        assert first == recorded["initialize"] and {"tools": tools} == recorded["tools/list"]
        assert {t["name"] for t in tools} >= {"list_ensembles", "invoke_ensemble", "route_task"}
        assert [m.get("id") for m in peer.seen] == [1, 2, 3, 5, 6, 4]  # the SDK's own initialize reply is dropped
    finally:
        err = peer.close()
    assert "mcp imported before serving: False" in err


def test_a_revision_not_in_the_manifest_gets_the_sdks_own_handshake(project, tmp_path):
    gate = tmp_path / "gate"
    gate.touch()
    peer = Peer([sys.executable, str(DRIVER), str(gate), str(project)], project)
    try:
        peer.send(init("1999-01-01"))
        result = peer.answer(1)["result"]
        assert result["protocolVersion"] in mcp_fast.load_manifest()["versions"]  # the SDK chose one
        peer.send({"method": "notifications/initialized"})
        peer.send({"id": 2, "method": "tools/list"})
        assert peer.answer(2)["result"]["tools"]
        assert [m.get("id") for m in peer.seen] == [1, 2]
    finally:
        peer.close()


def test_tierwise_mcp_serves_tools_end_to_end(project):
    peer = Peer([sys.executable, "-m", "tierwise.cli", "mcp", "--project", str(project)], project)
    try:
        peer.send(init("2025-11-25"))
        assert peer.answer(1)["result"]["serverInfo"]["name"] == "tierwise"
        peer.send({"method": "notifications/initialized"})
        peer.send({"id": 2, "method": "tools/call", "params": {"name": "route_task",
                                                                "arguments": {"task": "extract the dates"}}})
        assert peer.answer(2)["result"]["structuredContent"]["tier"] in ("local", "frontier")
    finally:
        peer.close()


def test_the_manifest_is_what_the_sdk_answers(project):
    """Regenerate with `PYTHONPATH=src python -m tierwise.mcp_fast --write` when a tool changes."""
    manifest = mcp_fast.load_manifest()
    assert manifest is not None, "no manifest for the installed MCP SDK: run python -m tierwise.mcp_fast --write"
    env_path = str(REPO / "src")
    argv = [sys.executable, "-c", f"import sys; sys.path.insert(0, {env_path!r}); from tierwise.cli import main; "
            "main()", "mcp", "--project", str(project)]
    assert mcp_fast.record(argv, str(project)) == manifest


def test_an_explicit_config_that_does_not_exist_stops_the_server(tmp_path):
    # Before: `tierwise mcp -c <typo>` served the built-in starter config without a word to the client.
    from click.testing import CliRunner

    from tierwise.cli import main

    res = CliRunner().invoke(main, ["mcp", "-c", str(tmp_path / "missing.yaml"), "--project", str(tmp_path)],
                             input="")
    assert res.exit_code == 2 and "missing.yaml (from --config) does not exist" in res.output, res.output
