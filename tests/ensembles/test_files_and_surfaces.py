"""Validation messages, artifacts and ledger rows, the gateway route, the CLI and the examples."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest
import yaml
from click.testing import CliRunner

from tests.ensembles.conftest import stub_config, write_ensemble, write_profile
from tests.harness import GatewayServer, make_config
from tierwise.cli import main
from tierwise.ensembles.library import Library
from tierwise.ensembles.schema import load_ensemble, parse_ensemble
from tierwise.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ensembles"


@pytest.mark.parametrize("agents,expected", [
    ([{"name": "a", "model": "m", "depends_on": ["b"]}, {"name": "b", "model": "m", "depends_on": ["a"]}],
     "cycle: a -> b -> a"),
    ([{"name": "a", "model": "m", "depends_on": ["ghost"]}], "agent 'a': depends on unknown agent 'ghost'"),
    ([{"name": "a", "model": "m", "output_schema": {"type": "nonsense"}}], "agent 'a': output_schema is not a valid"),
    ([{"name": "a", "model": "m", "script": "x.py"}], "agent 'a': needs exactly one of"),
    ([{"name": "a", "model": "m", "timeout": -1}], "agent 'a': timeout"),
    ([{"name": "a", "model": "m", "when": "__import__('os')"}], "agent 'a': when: "),
    ([{"name": "a", "model": "m"}, {"name": "b", "model": "m", "when": "a.x == 1"}], "does not depend on"),
    ([{"name": "a", "model": "m", "when": "not " * 1000 + "x"}], "agent 'a': when: the expression is nested too deeply"),
    ([{"name": "a", "model": "m", "when": "not " * 10000 + "x"}], "agent 'a': when: the expression is nested too deeply"),
    ([{"name": "a", "model": "m", "output_schema": {"$ref": "#/$defs/missing"}}],
     "agent 'a': output_schema: $ref '#/$defs/missing' points nowhere"),
])
def test_validation_names_file_agent_and_problem(agents, expected):
    with pytest.raises(ConfigError) as ei:
        parse_ensemble(yaml.safe_dump({"name": "e", "agents": agents}), file="ens/e.yaml")
    assert ei.value.message.startswith("ens/e.yaml: ")
    assert expected in ei.value.message


def test_unknown_profile_and_model_are_reported(project):
    p = write_ensemble(project, {"name": "refs", "agents": [
        {"name": "a", "profile": "missing"}, {"name": "b", "model": "nomodel"}]})
    problems = Library(project).problems(load_ensemble(p), lambda m: m == "small")
    assert "agent 'a': unknown profile 'missing'" in problems
    assert "agent 'b': unknown model or route 'nomodel'" in problems


async def test_artifacts_and_ledger_row(service, project, upstream):
    upstream.answer = lambda model, prompt: "answer text"
    write_profile(project, "big", model="frontier")
    write_ensemble(project, {"name": "art", "agents": [
        {"name": "local_step", "model": "small"}, {"name": "remote_step", "profile": "big", "depends_on": ["local_step"]}]})
    svc = service()
    run = await svc.run("art", "input words here")
    data = json.loads(Path(run.artifact_json).read_text())
    md = Path(run.artifact_md).read_text()
    remote = next(a for a in data["agents"] if a["name"] == "remote_step")
    expected = (remote["input_tokens"] * 3.0 + remote["output_tokens"] * 15.0) / 1e6
    assert remote["model"] == "big-model" and remote["cost_usd"] == pytest.approx(expected) and expected > 0
    assert next(a for a in data["agents"] if a["name"] == "local_step")["cost_usd"] == 0
    assert data["totals"]["cost_usd"] == pytest.approx(expected)
    assert data["totals"]["input_tokens"] == sum(a["input_tokens"] for a in data["agents"])
    assert "| remote_step | llm | ok | big-model |" in md and run.run_id in md
    svc.gateway.ledger.flush()
    rows = svc.gateway.ledger.query(kind="ensemble")
    assert len(rows) == 1 and rows[0].route == "ensemble:art"
    assert rows[0].cost_usd == pytest.approx(expected) and len(rows[0].steps) == 2


async def test_an_unpriced_remote_model_makes_the_run_cost_unknown_not_zero(service, project, upstream):
    """Issue 16 point 5: a remote model with no known price is unknown cost, never $0 or savings."""
    upstream.answer = lambda model, prompt: "answer text"
    models = {
        "small": {"provider": "gpu", "model": "small-model"},
        "mystery": {"provider": "cloud", "model": "no-such-model-anywhere-xyz"},  # remote, no price
    }
    write_ensemble(project, {"name": "unpriced", "agents": [
        {"name": "local_step", "model": "small"}, {"name": "remote_step", "model": "mystery",
                                                   "depends_on": ["local_step"]}]})
    svc = service(models=models)
    run = await svc.run("unpriced", "input words here")
    data = json.loads(Path(run.artifact_json).read_text())
    remote = next(a for a in data["agents"] if a["name"] == "remote_step")
    assert remote["cost_usd"] is None and remote["cost_unknown"] is True
    assert data["totals"]["cost_usd"] is None and data["totals"]["cost_unknown_agents"] == ["remote_step"]
    assert "cost unknown (no price for a model of remote_step)" in Path(run.artifact_md).read_text()
    svc.gateway.ledger.flush()
    (row,) = svc.gateway.ledger.query(kind="ensemble")
    assert row.cost_usd is None


def test_ensemble_route_through_the_gateway(project, upstream):
    upstream.answer = lambda model, prompt: f"[{model}] {prompt[-12:]}"
    write_ensemble(project, {"name": "pipeline", "agents": [
        {"name": "first", "model": "small"}, {"name": "second", "model": "tiny", "depends_on": ["first"]}]})
    data = stub_config(upstream.url)
    data["routes"]["ens"] = {"policy": "ensemble", "ensemble": "pipeline"}
    g = GatewayServer(make_config(data, project)).start()
    try:
        client = g.keep(openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0))
        r = client.chat.completions.create(model="ens", messages=[{"role": "user", "content": "hello there"}])
        assert r.choices[0].message.content.startswith("[tiny-model]")
        assert r.usage.prompt_tokens > 0
        rows = []
        for _ in range(200):  # the server records after the answer is sent
            g.flush()
            rows = g.ledger.query(route="ens")
            if rows:
                break
            time.sleep(0.02)
        rec = rows[0]
        assert {s.get("name") for s in rec.steps if s["kind"] == "call"} == {"small", "tiny"}
    finally:
        g.stop()


def test_ensemble_route_with_unknown_ensemble_fails_at_start(project, upstream):
    data = stub_config(upstream.url)
    data["routes"]["ens"] = {"policy": "ensemble", "ensemble": "nothere"}
    from tierwise.gateway import Gateway
    with pytest.raises(ConfigError, match="route 'ens': no ensemble named 'nothere'"):
        Gateway(make_config(data, project))


def test_cli_create_validate_run_artifacts_promote(project, upstream, monkeypatch):
    monkeypatch.setenv("TIERWISE_HOME", str(project / "global"))
    monkeypatch.chdir(project)
    (project / "tierwise.yaml").write_text(yaml.safe_dump(stub_config(upstream.url)))
    upstream.answer = lambda model, prompt: '["fact one"]' if prompt.startswith("List") else "summary"
    r = CliRunner()
    assert r.invoke(main, ["ensemble", "create", "notes", "--model", "small"]).exit_code == 0
    res = r.invoke(main, ["ensemble", "validate", "notes"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["ensemble", "list"])
    assert "notes" in res.output and "project" in res.output
    res = r.invoke(main, ["ensemble", "run", "notes", "--input", "text", "--json"])
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)
    assert run["status"] == "ok" and run["output"] == "summary"
    res = r.invoke(main, ["ensemble", "artifacts"])
    assert run["run_id"] in res.output
    res = r.invoke(main, ["ensemble", "artifacts", run["run_id"], "--markdown"])
    assert "# Ensemble run `notes`" in res.output
    res = r.invoke(main, ["ensemble", "promote", "notes", "--yes"])
    assert res.exit_code == 2 and "needs 3" in res.output
    lib = Library(project)
    for _ in range(3):
        lib.record_evaluation("notes", run["run_id"], "good")
    res = r.invoke(main, ["ensemble", "promote", "notes"], input="n\n")
    assert res.exit_code == 1 and not (project / "global" / "ensembles" / "notes.yaml").exists()
    res = r.invoke(main, ["ensemble", "promote", "notes"], input="y\n")
    assert res.exit_code == 0 and (project / "global" / "ensembles" / "notes.yaml").exists()
    res = r.invoke(main, ["ensemble", "validate", "missing"])
    assert res.exit_code == 2 and "no ensemble named 'missing'" in res.output


def test_cli_a_failed_run_prints_no_answer(project, upstream, monkeypatch):
    # Before: a failed run printed `null` on stdout (the run's missing output), which a pipe took for an answer.
    monkeypatch.setenv("TIERWISE_HOME", str(project / "global"))
    monkeypatch.chdir(project)
    (project / "tierwise.yaml").write_text(yaml.safe_dump(stub_config(upstream.url)))
    upstream.answer = lambda model, prompt: "not a JSON list"  # the skeleton's first agent wants one
    r = CliRunner()
    assert r.invoke(main, ["ensemble", "create", "notes", "--model", "small"]).exit_code == 0
    res = r.invoke(main, ["ensemble", "run", "notes", "--input", "text"])
    assert res.exit_code == 1 and ": failed; artifacts:" in res.stderr, res.output
    assert res.stdout == "", res.stdout


def test_promotion_refuses_hard_coded_paths(project):
    write_ensemble(project, {"name": "abs", "agents": [{"name": "s", "script": "/usr/local/bin/tool"}]})
    lib = Library(project, global_dir=project / "g")
    for _ in range(3):
        lib.record_evaluation("abs", None, "good")
    with pytest.raises(ConfigError, match="hard-coded paths.*/usr/local/bin/tool"):
        lib.promotion_plan("abs", "global")
    with pytest.raises(ConfigError, match="needs 5"):
        Library(project, library_dir=project / "l").promotion_plan("abs", "library")


@pytest.mark.parametrize("agent,refused", [
    ({"name": "a", "model": "m", "prompt": "answer in ~50 words; say /skip to pass"}, None),
    ({"name": "a", "script": "tools/x.py"}, None),
    ({"name": "a", "script": "../../x.py"}, "../../x.py"),
    ({"name": "a", "script": ["python3", "~/x.py"]}, "~/x.py"),
    ({"name": "a", "ensemble": "$HOME/x.yaml"}, "$HOME/x.yaml"),
])
def test_hard_coded_paths_are_looked_for_where_paths_are(project, agent, refused):
    import re
    write_ensemble(project, {"name": "paths", "agents": [agent]})
    lib = Library(project, global_dir=project / "g")
    for _ in range(3):
        lib.record_evaluation("paths", None, "good")
    if refused is None:
        assert lib.promotion_plan("paths", "global")["ensemble"] == "paths"
    else:
        with pytest.raises(ConfigError, match="hard-coded paths.*" + re.escape(refused)):
            lib.promotion_plan("paths", "global")


@pytest.mark.parametrize("case", ["script", "symlinked_folder", "profile"])
def test_promotion_never_writes_outside_the_destination(project, case):
    dest = project / "deep" / "g"
    agent: dict = {"name": "a", "script": "../../escaped/x.py"}
    if case == "script":
        (project / "escaped").mkdir()
        (project / "escaped" / "x.py").write_text("")
        outside = project / "deep" / "escaped" / "x.py"
    elif case == "symlinked_folder":
        (project / ".tierwise" / "ensembles" / "tools").mkdir()
        (project / ".tierwise" / "ensembles" / "tools" / "x.py").write_text("")
        (dest / "ensembles").mkdir(parents=True)
        (project / "elsewhere").mkdir()
        (dest / "ensembles" / "tools").symlink_to(project / "elsewhere")
        agent = {"name": "a", "script": "tools/x.py"}
        outside = project / "elsewhere" / "x.py"
    else:
        write_profile(project, "../../x", model="small")  # lands in the project folder itself
        agent = {"name": "a", "profile": "../../x"}
        outside = project / "deep" / "x.yaml"
    write_ensemble(project, {"name": "esc", "agents": [agent]})
    lib = Library(project, global_dir=dest)
    for _ in range(3):
        lib.record_evaluation("esc", None, "good")
    with pytest.raises(ConfigError, match="hard-coded paths|outside|not plain names"):
        lib.promote("esc", "global")
    assert not outside.exists()
    assert not (dest / "ensembles" / "esc.yaml").exists()


def test_evaluations_are_recorded_by_ensemble_name_never_by_a_path(project):
    stray = project / "elsewhere" / "stray.yaml"
    stray.parent.mkdir()
    stray.write_text(yaml.safe_dump({"name": "stray", "agents": [{"name": "a", "model": "m"}]}))
    lib = Library(project)
    with pytest.raises(ConfigError, match="not a plain ensemble name"):
        lib.record_evaluation(str(stray), None, "good")
    assert list(stray.parent.iterdir()) == [stray] and not lib.evaluations_dir.exists()
    write_ensemble(project, {"name": "stray", "agents": [{"name": "a", "model": "m"}]})
    rec = lib.record_evaluation("stray", None, "good")
    assert rec["ensemble"] == "stray" and lib.good_count("stray") == 1
    assert [p.name for p in lib.evaluations_dir.iterdir()] == ["stray.jsonl"]


@pytest.mark.parametrize("name", ["document-triage", "code-review-swarm", "redact-then-summarise"])
def test_examples_validate(name):
    lib = Library(EXAMPLES, global_dir=EXAMPLES / "none")
    ens = load_ensemble(EXAMPLES / f"{name}.yaml")
    assert lib.problems(ens, make_config((EXAMPLES / "tierwise.yaml").read_text(), EXAMPLES).models.__contains__) == []
    assert len(ens.agents) >= 3


async def test_redact_then_summarise_runs_end_to_end(service, project, upstream):
    """The example runs as shipped: its built-in redact step really redacts before any model sees the text."""
    import shutil
    folder = project / ".tierwise" / "ensembles"
    shutil.copy(EXAMPLES / "redact-then-summarise.yaml", folder)
    upstream.answer = lambda model, prompt: '["call back"]' if "JSON array" in prompt else "ok"
    svc = service()  # nothing to trust: no script runs
    ens = load_ensemble(folder / "redact-then-summarise.yaml")
    ens.profiles["summariser"].model = "small"
    text = "Mail jane@example.com or +46 70 123 45 67 to call back, card 4111 1111 1111 1111."
    run = await svc.run(ens, text)
    assert run.status == "ok", [(a.name, a.error) for a in run.agents]
    out = run.agent("redact").output
    assert out["redacted"] == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1, "CREDIT_CARD": 1}
    assert "<EMAIL_ADDRESS_1>" in out["text"] and "<PHONE_NUMBER_1>" in out["text"]
    for value in ("jane@example.com", "+46 70 123 45 67", "4111 1111 1111 1111"):
        assert all(value not in s.prompt for s in upstream.seen)
    assert any("<EMAIL_ADDRESS_1>" in s.prompt for s in upstream.seen)
    assert run.agent("actions").output == ["call back"]
