"""The executor against a real OpenAI-compatible upstream on loopback, through the tierwise core."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.ensembles.conftest import write_ensemble, write_profile
from tests.ensembles.upstream import Fault


def overlap(a, b) -> bool:
    return a.started_s < b.ended_s and b.started_s < a.ended_s


async def test_independent_agents_overlap_and_dependents_wait(service, project, upstream):
    upstream.latency = 0.2
    upstream.answer = lambda model, prompt: f"<{model}>"
    write_ensemble(project, {"name": "dag", "agents": [
        {"name": "a", "model": "small", "prompt": "first"},
        {"name": "b", "model": "tiny", "prompt": "second"},
        {"name": "c", "model": "small", "depends_on": ["a", "b"], "prompt": "combine"},
    ]})
    run = await service().run("dag", "hello")
    a, b, c = run.agent("a"), run.agent("b"), run.agent("c")
    assert run.status == "ok" and [x.status for x in (a, b, c)] == ["ok"] * 3
    assert overlap(a, b), (a, b)
    assert c.started_s >= max(a.ended_s, b.ended_s)
    assert not overlap(a, c) and not overlap(b, c)
    # c saw both upstream outputs, keyed by agent name
    combine = next(s for s in upstream.seen if s.prompt.startswith("combine"))
    assert json.loads(combine.prompt.split("\n\n", 1)[1]) == {"a": "<small-model>", "b": "<tiny-model>"}
    assert run.output == "<small-model>"


def slow_split_then_fan_out(upstream, items: int, each_model: str = "tiny") -> list[dict]:
    """Agents `split` (answers a JSON list of `items`) and `each` (one call per item on `each_model`),
    against an upstream that takes 0.1 s per call, so concurrent calls overlap."""
    upstream.latency = 0.1
    upstream.answer = lambda model, prompt: json.dumps(list(range(items))) if "list" in prompt else "x"
    return [{"name": "split", "model": "small", "prompt": "list", "output": "json"},
            {"name": "each", "model": each_model, "fan_out": "split"}]


async def test_per_provider_limit_is_respected(service, project, upstream):
    write_ensemble(project, {"name": "fan", "agents": slow_split_then_fan_out(upstream, 6)})
    run = await service(limits={"gpu": 2}).run("fan", "go")
    assert run.agent("each").status == "ok"
    assert len(upstream.calls("tiny-model")) == 6
    assert upstream.max_in_flight == 2  # capped, and the cap was actually used


async def test_calls_through_a_route_respect_the_local_providers_limit(service, project, upstream):
    # `main`: a fallback route over `small` (gpu)
    write_ensemble(project, {"name": "routed", "agents": slow_split_then_fan_out(upstream, 6, each_model="main")})
    run = await service(limits={"gpu": 2}).run("routed", "go")
    assert run.agent("each").status == "ok" and len(upstream.calls("small-model")) == 7
    assert upstream.max_in_flight == 2


async def test_an_ensembles_own_limit_lowers_the_provider_limit_for_that_run_only(service, project, upstream):
    agents = slow_split_then_fan_out(upstream, 6)
    write_ensemble(project, {"name": "wide", "concurrency": {"gpu": 3}, "agents": agents})
    write_ensemble(project, {"name": "narrow", "concurrency": {"gpu": 1}, "agents": agents})
    write_ensemble(project, {"name": "plain", "agents": agents})
    svc = service(limits={"gpu": 2})
    for name, cap in (("wide", 2), ("narrow", 1), ("plain", 2)):  # never above the shared 2; no run leaks its own
        upstream.max_in_flight = 0
        run = await svc.run(name, "go")
        assert run.agent("each").status == "ok" and upstream.max_in_flight == cap, name


async def test_a_run_cap_replaces_the_default_but_not_a_configured_provider_limit(service, project, upstream):
    from tests.ensembles.conftest import stub_config

    agents = slow_split_then_fan_out(upstream, 8)
    write_ensemble(project, {"name": "wide", "concurrency": {"gpu": 6}, "agents": agents})
    write_ensemble(project, {"name": "plain", "agents": agents})
    svc = service()
    for name, cap in (("wide", 6), ("plain", 4)):  # 4: the default for a local provider
        upstream.max_in_flight = 0
        await svc.run(name, "go")
        assert upstream.max_in_flight == cap, name
    providers = stub_config(upstream.url)["providers"]
    providers["gpu"]["max_concurrency"] = 3  # the server's capacity, in the gateway config
    upstream.max_in_flight = 0
    await service(providers=providers).run("wide", "go")
    assert upstream.max_in_flight == 3


async def test_fan_out_gathers_in_upstream_order_with_item_status(service, project, upstream):
    # Later items answer sooner, so completion order is the reverse of input order.
    upstream.latency = lambda model, prompt: 0.3 - 0.05 * int(prompt[-1]) if model == "tiny-model" else 0
    upstream.answer = lambda model, prompt: (
        '["i0", "i1", "i2", "i3", "i4"]' if model == "small-model"
        else Fault(500, "bad item") if prompt.endswith("3") else prompt.upper())
    write_ensemble(project, {"name": "order", "agents": [
        {"name": "split", "model": "small"},
        {"name": "each", "model": "tiny", "fan_out": "split"},
    ]})
    run = await service().run("order", "go")
    each = run.agent("each")
    assert [i.index for i in each.items] == [0, 1, 2, 3, 4]
    assert [i.status for i in each.items] == ["ok", "ok", "ok", "failed", "ok"]
    assert each.output == ["I0", "I1", "I2", None, "I4"]
    assert "bad item" in each.items[3].error
    assert each.status == "partial" and run.status == "partial"


async def test_failure_is_reported_per_agent_and_dependents_skipped(service, project, upstream):
    upstream.answer = lambda model, prompt: Fault(500, "kaput") if prompt.startswith("boom") else "fine"
    write_ensemble(project, {"name": "fails", "agents": [
        {"name": "bad", "model": "small", "prompt": "boom"},
        {"name": "after_bad", "model": "small", "depends_on": ["bad"]},
        {"name": "good", "model": "tiny", "prompt": "calm"},
    ], "output": "good"})
    run = await service().run("fails", "x")
    assert run.agent("bad").status == "failed" and "kaput" in run.agent("bad").error
    assert run.agent("after_bad").status == "skipped" and "bad" in run.agent("after_bad").error
    assert run.agent("good").status == "ok"
    assert run.status == "partial" and run.output == "fine"


async def test_timeout_reported_and_fallback_profile_used(service, project, upstream):
    upstream.latency = {"small-model": 2.0, "tiny-model": 0.0}
    upstream.answer = lambda model, prompt: f"from {model}"
    write_profile(project, "slow", model="small", timeout=0.2)
    write_profile(project, "quick", model="tiny")
    write_ensemble(project, {"name": "slow", "agents": [
        {"name": "no_fallback", "profile": "slow"},
        {"name": "with_fallback", "profile": "slow", "fallback_profile": "quick"},
    ], "output": "with_fallback"})
    run = await service().run("slow", "x")
    nf, wf = run.agent("no_fallback"), run.agent("with_fallback")
    assert nf.status == "timeout" and "0.2" in nf.error
    assert wf.status == "ok" and wf.output == "from tiny-model" and wf.fallback_used == "quick"


async def test_when_guard_input_key_schema_and_nested(service, project, upstream):
    upstream.answer = lambda model, prompt: (
        '{"label": "urgent", "items": ["x", "y"]}' if prompt.startswith("classify") else f"done:{prompt[-20:]}")
    write_ensemble(project, {"name": "inner", "agents": [{"name": "only", "model": "tiny", "prompt": "inner"}]})
    schema = {"type": "object", "required": ["label"], "properties": {"label": {"enum": ["urgent", "normal"]}}}
    write_ensemble(project, {"name": "outer", "agents": [
        {"name": "classify", "model": "small", "prompt": "classify", "output_schema": schema},
        {"name": "escalate", "model": "small", "depends_on": ["classify"], "when": "classify.label == 'urgent'",
         "input_key": "items.1", "prompt": "escalate"},
        {"name": "ignore", "model": "small", "depends_on": ["classify"], "when": "classify.label == 'normal'"},
        {"name": "sub", "ensemble": "inner", "depends_on": ["escalate"]},
    ]})
    run = await service().run("outer", "text")
    assert run.agent("classify").output == {"label": "urgent", "items": ["x", "y"]}
    assert run.agent("escalate").status == "ok" and run.agent("escalate").output.endswith("escalate\n\ny")
    assert run.agent("ignore").status == "skipped"
    sub = run.agent("sub")
    assert sub.status == "ok" and sub.nested["ensemble"] == "inner" and sub.input_tokens > 0
    assert run.status == "ok"


async def test_output_schema_violation_fails_the_agent(service, project, upstream):
    upstream.answer = lambda model, prompt: '{"label": "weird"}'
    schema = {"type": "object", "properties": {"label": {"enum": ["urgent", "normal"]}}}
    write_ensemble(project, {"name": "schema", "agents": [
        {"name": "classify", "model": "small", "output_schema": schema}]})
    run = await service().run("schema", "x")
    a = run.agent("classify")
    assert a.status == "failed" and "schema" in a.error and "label" in a.error
    assert run.status == "failed"


SCRIPT = """
import json, sys, time, os
req = json.load(sys.stdin)
mode = req["input"]["mode"]
if mode == "ok":
    print(json.dumps({"success": True, "data": {"upper": req["input"]["text"].upper()}, "error": None}))
elif mode == "fail":
    print(json.dumps({"success": False, "data": None, "error": "no can do"}))
elif mode == "garbage":
    print("not json")
else:
    open(os.environ["PIDFILE"], "w").write(str(os.getpid()))
    time.sleep(30)
"""


@pytest.mark.parametrize("mode,status,error", [
    ("ok", "ok", None), ("fail", "failed", "no can do"), ("garbage", "failed", "did not print JSON"),
    ("hang", "timeout", "within 0.5s"),
])
async def test_script_agents(service, project, upstream, mode, status, error, monkeypatch):
    pidfile = project / "pid"
    monkeypatch.setenv("PIDFILE", str(pidfile))
    (project / ".tierwise" / "ensembles" / "tool.py").write_text(SCRIPT)
    write_ensemble(project, {"name": "scripted", "agents": [
        {"name": "s", "script": "tool.py", "timeout": 0.5}]})
    run = await service(trusted=("scripted",), ensembles={"script_env": ["PIDFILE"]}).run(
        "scripted", {"mode": mode, "text": "abc"})
    s = run.agent("s")
    assert s.status == status
    if error:
        assert error in s.error
    else:
        assert s.output == {"upper": "ABC"}
    if mode == "hang":  # the script was killed, not left running
        pid = int(pidfile.read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


COUNTING_SCRIPT = """
import json, os, sys, time
req = json.load(sys.stdin)
d = os.environ["SLOTDIR"]
mine = os.path.join(d, str(os.getpid()))
open(mine, "w").close()
time.sleep(0.5)
seen = len(os.listdir(d))
os.remove(mine)
print(json.dumps({"success": True, "data": seen, "error": None}))
"""


async def test_a_script_fan_out_runs_a_bounded_number_of_processes_at_once(service, project, upstream, monkeypatch):
    from tierwise.ensembles import executor

    monkeypatch.setattr(executor, "SCRIPT_SLOTS", 3)
    slots = project / "slots"
    slots.mkdir()
    monkeypatch.setenv("SLOTDIR", str(slots))
    (project / ".tierwise" / "ensembles" / "count.py").write_text(COUNTING_SCRIPT)
    upstream.answer = lambda model, prompt: json.dumps(list(range(9)))
    write_ensemble(project, {"name": "many", "agents": [
        {"name": "split", "model": "small", "output": "json"},
        {"name": "each", "script": "count.py", "fan_out": "split", "timeout": 20}]})
    run = await service(trusted=("many",), ensembles={"script_env": ["SLOT*"]}).run("many", "go")
    each = run.agent("each")
    assert each.status == "ok" and len(each.output) == 9
    assert 2 <= max(each.output) <= 3  # scripts overlapped, and never more than the cap


async def test_cancelling_a_run_cancels_agents(service, project, upstream):
    import asyncio
    upstream.latency = 5.0
    write_ensemble(project, {"name": "long", "agents": [{"name": "a", "model": "small"}]})
    svc = service()
    task = asyncio.ensure_future(svc.run("long", "x"))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_script_path_uses_this_python(tmp_path: Path):
    from tierwise.ensembles.scripts import command_for
    (tmp_path / "t.py").write_text("")
    assert command_for("t.py", tmp_path) == [sys.executable, str(tmp_path / "t.py")]


async def test_unexpected_errors_fail_one_agent_and_the_run_goes_on(service, project, upstream):
    from tierwise.ensembles.executor import Executor
    from tierwise.ensembles.schema import load_ensemble
    upstream.answer = lambda model, prompt: '{"a": 1}'
    tool = project / ".tierwise" / "ensembles" / "tool"
    tool.write_text("echo no shebang\n")
    tool.chmod(0o755)
    p = write_ensemble(project, {"name": "odd", "agents": [
        {"name": "noshebang", "script": "tool"},
        {"name": "ghost", "model": "ghost"},
        {"name": "badref", "model": "small", "output": "json"},
        {"name": "calm", "model": "tiny"},
    ], "output": "calm"})
    svc = service(trusted=("odd",))
    ens = load_ensemble(p)
    ens.agent("badref").output_schema = {"$ref": "#/$defs/missing"}  # as if validation had been skipped
    run = await Executor(svc.caller, svc.library).run(ens, "x")  # the service would refuse the unknown model
    assert run.agent("noshebang").status == "failed" and "Exec format error" in run.agent("noshebang").error
    assert run.agent("ghost").status == "failed" and "unknown model or route 'ghost'" in run.agent("ghost").error
    assert run.agent("badref").status == "failed" and "cannot be checked" in run.agent("badref").error
    assert run.agent("calm").status == "ok" and run.status == "partial"


async def test_unexpected_error_in_a_fan_out_item_fails_only_that_item(service, project, upstream, monkeypatch):
    upstream.answer = lambda model, prompt: '["i0", "i1", "i2"]' if model == "small-model" else prompt.upper()
    write_ensemble(project, {"name": "fanbug", "agents": [
        {"name": "split", "model": "small"}, {"name": "each", "model": "tiny", "fan_out": "split"}]})
    svc = service()
    real = svc.caller.call

    async def buggy(profile, prompt, **kw):
        if prompt.endswith("i1"):
            raise RuntimeError("a bug")
        return await real(profile, prompt, **kw)

    monkeypatch.setattr(svc.caller, "call", buggy)
    run = await svc.run("fanbug", "go")
    each = run.agent("each")
    assert [i.status for i in each.items] == ["ok", "failed", "ok"]
    assert each.items[1].error == "RuntimeError: a bug" and each.status == "partial"
    assert run.artifact_json and Path(run.artifact_json).is_file()


async def test_an_error_escaping_an_agent_cancels_the_others(service, project, upstream, monkeypatch):
    import asyncio

    from tierwise.ensembles.executor import Executor
    upstream.latency = {"small-model": 5.0}
    write_ensemble(project, {"name": "crash", "agents": [
        {"name": "slow", "model": "small"}, {"name": "bad", "model": "tiny"}]})
    real = Executor._agent
    slow_task: list[asyncio.Task] = []

    async def agent(self, ens, a, *args):
        if a.name == "bad":
            await asyncio.sleep(0.2)
            raise RuntimeError("escaped")
        slow_task.append(asyncio.current_task())
        await real(self, ens, a, *args)

    monkeypatch.setattr(Executor, "_agent", agent)
    with pytest.raises(RuntimeError, match="escaped"):
        await service().run("crash", "x")
    assert slow_task[0].done() and slow_task[0].cancelled()


async def test_skip_after_a_failure_propagates_but_a_false_guard_does_not(service, project, upstream):
    upstream.answer = lambda model, prompt: Fault(500, "kaput") if prompt.startswith("boom") else "fine"
    write_ensemble(project, {"name": "chain", "agents": [
        {"name": "a", "model": "small", "prompt": "boom"},
        {"name": "b", "model": "small", "depends_on": ["a"]},
        {"name": "c", "model": "small", "depends_on": ["b"]},
        {"name": "g", "model": "small", "depends_on": ["c"], "when": "input == 'never'"},
        {"name": "h", "model": "small", "when": "input == 'never'"},
        {"name": "after_guard", "model": "small", "depends_on": ["h"]},
    ], "output": "c"})
    run = await service().run("chain", "x")
    assert run.agent("b").status == "skipped" and run.agent("b").error == "dependency 'a' failed"
    c = run.agent("c")
    assert c.status == "skipped" and c.output is None and "dependency 'b' skipped" in c.error and "'a' failed" in c.error
    assert run.agent("g").status == "skipped" and "'a' failed" in run.agent("g").error
    assert run.agent("after_guard").status == "ok"  # skipped by its guard, h does not block its dependents
    assert run.status == "failed" and run.output is None


FORKER = """
import json, os, subprocess, sys
json.load(sys.stdin)
child = subprocess.Popen(["sleep", "30"])  # inherits stdout, so the reader never sees EOF
open(os.environ["PIDFILE"], "w").write(str(child.pid))
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")  # a killed orphan may linger as a zombie until init reaps it
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


async def test_timed_out_script_kills_children_holding_stdout_after_it_exited(service, project, upstream,
                                                                              monkeypatch):
    import asyncio
    pidfile = project / "pid"
    monkeypatch.setenv("PIDFILE", str(pidfile))
    (project / ".tierwise" / "ensembles" / "forker.py").write_text(FORKER)
    write_ensemble(project, {"name": "forks", "agents": [{"name": "s", "script": "forker.py", "timeout": 0.5}]})
    run = await service(trusted=("forks",), ensembles={"script_env": ["PIDFILE"]}).run("forks", {})
    assert run.agent("s").status == "timeout"
    pid = int(pidfile.read_text())
    for _ in range(100):
        if not alive(pid):
            break
        await asyncio.sleep(0.02)
    else:
        os.kill(pid, 9)
        pytest.fail("the script's child outlived the timeout")


async def test_a_fan_out_over_a_huge_model_made_array_is_refused_before_any_item_call(service, project, upstream):
    """A model (or a prompt injection in its input) answers a 20,000-item list: no 20,000 calls."""
    write_ensemble(project, {"name": "fan", "agents": slow_split_then_fan_out(upstream, 20_000)})
    upstream.latency = 0
    run = await service().run("fan", "go")
    each = run.agent("each")
    assert each.status == "failed" and "max_items" in (each.error or "")
    assert upstream.calls("tiny-model") == []
