"""Every MCP tool, driven through the SDK's client: in memory and over stdio (`tierwise mcp`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp import Client, StdioServerParameters

from tests.ensembles.conftest import stub_config, write_ensemble, write_profile
from tests.ensembles.upstream import StubUpstream
from tests.harness import make_config
from tierwise.ensembles.library import Library
from tierwise.ensembles.service import EnsembleService
from tierwise.gateway import Gateway
from tierwise.ledger.store import Ledger
from tierwise.mcp_server import build_mcp_server

TOOLS = {"list_ensembles", "check_ensemble_runnable", "create_ensemble", "validate_ensemble", "invoke_ensemble",
         "analyze_execution", "get_provider_status", "list_profiles", "promote_ensemble", "route_task",
         "record_evaluation", "savings_report"}

NEW_ENSEMBLE = """name: shout
description: summarise text loudly
agents:
  - name: facts
    profile: worker
    prompt: facts
  - name: final
    profile: worker
    depends_on: [facts]
    prompt: final
"""


@pytest.fixture
def upstream() -> Any:
    u = StubUpstream(answer=lambda model, prompt: prompt.split("\n")[0].upper(), latency=0.01).start()
    yield u
    u.stop()


@pytest.fixture
def project(tmp_path: Path, upstream: StubUpstream) -> Path:
    (tmp_path / ".tierwise" / "ensembles").mkdir(parents=True)
    (tmp_path / ".tierwise" / "profiles").mkdir(parents=True)
    write_profile(tmp_path, "worker", model="small", system_prompt="be brief", temperature=0)
    write_ensemble(tmp_path, {"name": "triage", "description": "classify and summarise documents",
                              "agents": [{"name": "only", "profile": "worker", "prompt": "triage"}]})
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(stub_config(upstream.url)))
    return tmp_path


@asynccontextmanager
async def connect(transport: str, project: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client]:
    monkeypatch.setenv("TIERWISE_HOME", str(project / "global"))
    monkeypatch.setenv("TIERWISE_LIBRARY", str(project / "lib"))
    if transport == "memory":
        cfg = make_config(stub_config_text(project), project)
        gw = Gateway(cfg, ledger=Ledger.open(str(project / "ledger.db")))
        server = build_mcp_server(EnsembleService(gw, Library(project)))
        try:
            async with Client(server) as c:
                yield c
        finally:
            await gw.close()
    else:
        exe = Path(sys.executable).parent / "tierwise"
        params = StdioServerParameters(
            command=str(exe), args=["mcp", "-c", str(project / "tierwise.yaml"), "--project", str(project)],
            env={"TIERWISE_HOME": str(project / "global"), "TIERWISE_LIBRARY": str(project / "lib"),
                 "PATH": str(exe.parent), **({"PYTHONPATH": os.environ["PYTHONPATH"]}  # a worktree's code
                                             if os.environ.get("PYTHONPATH") else {})}, cwd=str(project))
        async with Client(params, read_timeout_seconds=30) as c:
            yield c


def stub_config_text(project: Path) -> str:
    return (project / "tierwise.yaml").read_text()


async def call(c: Client, tool: str, /, **args: Any) -> dict[str, Any]:
    r = await c.call_tool(tool, args)
    assert not r.is_error, r.content
    if r.structured_content is not None:
        return r.structured_content
    return json.loads(r.content[0].text)  # type: ignore[union-attr]


async def call_error(c: Client, tool: str, /, **args: Any) -> str:
    r = await c.call_tool(tool, args)
    assert r.is_error
    return " ".join(getattr(b, "text", "") for b in r.content)


@pytest.mark.parametrize("transport", ["memory", "stdio"])
async def test_every_tool(transport: str, project: Path, upstream: StubUpstream, monkeypatch):
    async with connect(transport, project, monkeypatch) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert TOOLS <= names

        listed = await call(c, "list_ensembles")
        assert [e["name"] for e in listed["ensembles"]] == ["triage"]

        profiles = (await call(c, "list_profiles"))["profiles"]
        assert profiles[0]["name"] == "worker" and profiles[0]["model"] == "small" and profiles[0]["model_known"]

        bad = await call(c, "validate_ensemble", yaml_text="name: x\nagents:\n  - name: a\n    profile: nope\n")
        assert not bad["valid"] and any("unknown profile 'nope'" in p for p in bad["problems"])
        assert (await call(c, "validate_ensemble", ensemble="triage"))["valid"]

        created = await call(c, "create_ensemble", name="shout", yaml_text=NEW_ENSEMBLE)
        assert created["created"] and created["problems"] == []
        err = await call_error(c, "create_ensemble", name="broken", yaml_text="name: broken\nagents: []\n")
        assert "agents" in err

        runnable = await call(c, "check_ensemble_runnable", ensemble="shout")
        assert runnable["runnable"] and runnable["providers"]["gpu"]["reachable"]

        run = await call(c, "invoke_ensemble", ensemble="shout", input="some text")
        assert run["status"] == "ok" and run["output"] == "FINAL"
        assert [a["status"] for a in run["agents"]] == ["ok", "ok"]

        analysis = await call(c, "analyze_execution", run_id=run["run_id"])
        assert [a["name"] for a in analysis["agents"]] == ["facts", "final"]
        assert all(a["input_tokens"] > 0 and a["output_tokens"] > 0 and a["model"] == "small-model"
                   for a in analysis["agents"])
        assert analysis["totals"]["input_tokens"] == sum(a["input_tokens"] for a in analysis["agents"])
        assert "no run" in await call_error(c, "analyze_execution", run_id="nope")

        status = await call(c, "get_provider_status")
        assert status["providers"]["gpu"]["locality"] == "local" and status["providers"]["gpu"]["reachable"]
        assert "api_key" not in json.dumps(status)

        advice = await call(c, "route_task", task="extract the invoice numbers and classify each document")
        assert advice["tier"] == "local" and advice["model"] in ("small", "tiny")
        assert any(m["ensemble"] == "triage" for m in advice["ensembles"])
        hard = await call(c, "route_task", task="design the architecture of a distributed system and plan it")
        assert hard["tier"] == "frontier"

        assert "needs 3" in await call_error(c, "promote_ensemble", ensemble="shout", to="global")
        for _ in range(3):
            ev = await call(c, "record_evaluation", ensemble="shout", verdict="good", run_id=run["run_id"])
        assert ev["good_evaluations"] == 3 and ev["promotable_to"] == ["global"]
        assert ev["recorded"]["ledger_feedback"]["rating"] == "good"  # the run's ledger row has it as feedback
        assert "good" in await call_error(c, "record_evaluation", ensemble="shout", verdict="meh")

        plan = await call(c, "promote_ensemble", ensemble="shout", to="global")
        assert plan["needs_confirmation"] and not (project / "global" / "ensembles" / "shout.yaml").exists()
        done = await call(c, "promote_ensemble", ensemble="shout", to="global", confirm=True)
        assert done["promoted"] and (project / "global" / "ensembles" / "shout.yaml").exists()
        assert (project / "global" / "profiles" / "worker.yaml").exists()

        report = await call(c, "savings_report", by="route")
        assert any(r["key"] == "ensemble:shout" and r["requests"] == 1 for r in report["rows"])


async def test_analyze_execution_refuses_malformed_artifacts(project: Path, monkeypatch):
    folder = project / ".tierwise" / "artifacts" / "triage"
    folder.mkdir(parents=True)
    (folder / "a-list.json").write_text("[1, 2]")
    (folder / "no-agents.json").write_text(json.dumps({"run_id": "no-agents", "ensemble": "triage"}))
    async with connect("memory", project, monkeypatch) as c:
        for run_id in ("a-list", "no-agents"):
            assert "not a run artifact" in await call_error(c, "analyze_execution", run_id=run_id)


async def test_invoke_ensemble_reports_an_agent_that_cannot_start(project: Path, monkeypatch):
    tool = project / ".tierwise" / "ensembles" / "tool"
    tool.write_text("#!/bin/sh\necho not executable\n")
    tool.chmod(0o644)
    write_ensemble(project, {"name": "broken", "agents": [
        {"name": "s", "script": "tool"}, {"name": "after", "profile": "worker", "depends_on": ["s"]}]})
    async with connect("memory", project, monkeypatch) as c:
        run = await call(c, "invoke_ensemble", ensemble="broken", input="x")
    assert run["status"] == "failed"
    assert run["agents"][0]["status"] == "failed" and "Permission denied" in run["agents"][0]["error"]
    assert run["agents"][1]["status"] == "skipped"
    assert Path(run["artifact_json"]).is_file()


async def test_record_evaluation_rates_only_the_named_ensembles_own_runs(project: Path, upstream: StubUpstream,
                                                                        monkeypatch):
    """MCP arguments are untrusted (a prompt-injected agent): `record_evaluation` with a gateway client's request
    id rated that client's answer (request ids are a process prefix and a counter) as evidence no key share caps,
    so an agent could move the boundary every client is served by. Only the named ensemble's own runs link."""
    from tierwise.ledger.records import LedgerRecord

    ledger_path = project / "ledger.db"
    other = Ledger.open(str(ledger_path))
    other.submit(LedgerRecord(request_id="req_0a1b2c3d4e5f000000000007", ts=1.0, route="assist", kind="chat",
                              locality="local", decision="small", extra={"key": "team-b", "task_type": "code"}))
    other.flush()
    other.close()
    async with connect("memory", project, monkeypatch) as c:
        run = await call(c, "invoke_ensemble", ensemble="triage", input="some text")
        ev = await call(c, "record_evaluation", ensemble="triage", verdict="bad",
                        run_id="req_0a1b2c3d4e5f000000000007")
        assert ev["recorded"]["ledger_feedback"] is None
        await call(c, "create_ensemble", name="shout", yaml_text=NEW_ENSEMBLE)
        ev = await call(c, "record_evaluation", ensemble="shout", verdict="bad", run_id=run["run_id"])
        assert ev["recorded"]["ledger_feedback"] is None  # another ensemble's run
        ev = await call(c, "record_evaluation", ensemble="triage", verdict="good", run_id=run["run_id"])
        assert ev["recorded"]["ledger_feedback"]["rating"] == "good"
    ledger = Ledger.open(str(ledger_path))
    try:
        assert "feedback" not in (ledger.get("req_0a1b2c3d4e5f000000000007").extra or {})
        assert [f["rating"] for f in ledger.get("ens_" + run["run_id"]).extra["feedback"]] == ["good"]
    finally:
        ledger.close()


async def test_savings_report_by_feature_does_not_repeat_a_key_stored_by_an_older_version(project: Path, monkeypatch):
    # A row written before session 29 kept a key a client sent as its feature tag (the ledger now scrubs it on
    # write); `tierwise report --by feature` scrubs what it prints, the MCP tool returned the group key as stored.
    import sqlite3
    import time

    pasted = "sk-proj-" + "7f3a9c" * 8
    Ledger.open(str(project / "ledger.db")).close()  # the schema
    with sqlite3.connect(project / "ledger.db") as db:
        db.execute("INSERT INTO requests (request_id, ts, route, kind, feature, status) VALUES (?, ?, ?, ?, ?, ?)",
                   ("req_old", time.time(), "main", "chat", pasted, 200))
    async with connect("memory", project, monkeypatch) as c:
        report = await call(c, "savings_report", by="feature")
    assert report["rows"], report  # the row is there, its feature redacted
    assert pasted[:20] not in json.dumps(report) and "[redacted]" in json.dumps(report)
