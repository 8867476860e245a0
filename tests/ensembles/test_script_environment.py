"""A trusted script agent runs on the host with a minimal environment: the gateway's keys stay in the gateway."""

from __future__ import annotations

import json

import pytest

from tests.ensembles.conftest import write_ensemble

ENV_SCRIPT = """
import json, os, sys
json.load(sys.stdin)
print(json.dumps({"success": True, "data": dict(os.environ), "error": None}))
"""


async def test_a_trusted_script_gets_no_provider_or_gateway_key(service, project, upstream, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-Zq8vN3kLm2Pp9Rr4Tt6Yy1Uu0")
    monkeypatch.setenv("TIERWISE_ADMIN_KEY", "adm-7c1e9f04b2d84e6a")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2hunter2@127.0.0.1:6379/7")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    (project / ".tierwise" / "ensembles" / "env.py").write_text(ENV_SCRIPT)
    write_ensemble(project, {"name": "envs", "agents": [{"name": "s", "script": "env.py", "timeout": 20}]})
    run = await service(trusted=("envs",)).run("envs", {})
    env = run.agent("s").output
    assert run.agent("s").status == "ok", run.agent("s").error
    leaked = {k for k in env if k in ("OPENAI_API_KEY", "TIERWISE_ADMIN_KEY", "REDIS_URL")}
    assert not leaked
    assert "sk-proj" not in json.dumps(env) and "hunter2" not in json.dumps(env)
    assert env.get("PATH") and env.get("LC_ALL") == "C.UTF-8"  # what a program needs to run still there


async def test_the_operator_names_what_else_a_trusted_script_gets(service, project, upstream, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-Zq8vN3kLm2Pp9Rr4Tt6Yy1Uu0")
    monkeypatch.setenv("MYTOOL_HOST", "db.internal")
    monkeypatch.setenv("MYTOOL_PORT", "5432")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-abcdefghijklmnopqrstu")
    (project / ".tierwise" / "ensembles" / "env.py").write_text(ENV_SCRIPT)
    write_ensemble(project, {"name": "envs", "agents": [{"name": "s", "script": "env.py", "timeout": 20}]})
    svc = service(trusted=("envs",), ensembles={"script_env": ["OPENAI_API_KEY", "MYTOOL_*"]})
    env = (await svc.run("envs", {})).agent("s").output
    assert env["OPENAI_API_KEY"] == "sk-proj-Zq8vN3kLm2Pp9Rr4Tt6Yy1Uu0"
    assert env["MYTOOL_HOST"] == "db.internal" and env["MYTOOL_PORT"] == "5432"
    assert "ANTHROPIC_API_KEY" not in env


@pytest.mark.parametrize("bad", ["A-B", "1X", "X*Y", "*", ""])
def test_script_env_names_are_variable_names(bad, tmp_path):
    from tests.harness import make_config
    from tierwise.errors import ConfigError

    with pytest.raises(ConfigError, match="environment variable name"):
        make_config({"ensembles": {"script_env": [bad]}}, tmp_path)
