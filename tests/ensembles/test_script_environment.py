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


async def script_env_seen(service, project, monkeypatch, variables, **cfg):
    """The environment a trusted script agent runs with, the gateway's holding `variables`."""
    for k, v in variables.items():
        monkeypatch.setenv(k, v)
    (project / ".tierwise" / "ensembles" / "env.py").write_text(ENV_SCRIPT)
    write_ensemble(project, {"name": "envs", "agents": [{"name": "s", "script": "env.py", "timeout": 20}]})
    agent = (await service(trusted=("envs",), **cfg).run("envs", {})).agent("s")
    assert agent.status == "ok", agent.error
    return agent.output


async def test_a_trusted_script_gets_no_provider_or_gateway_key(service, project, upstream, monkeypatch):
    env = await script_env_seen(service, project, monkeypatch, {
        "OPENAI_API_KEY": "sk-proj-Zq8vN3kLm2Pp9Rr4Tt6Yy1Uu0", "TIERWISE_ADMIN_KEY": "adm-7c1e9f04b2d84e6a",
        "REDIS_URL": "redis://:hunter2hunter2@127.0.0.1:6379/7", "LC_ALL": "C.UTF-8"})
    leaked = {k for k in env if k in ("OPENAI_API_KEY", "TIERWISE_ADMIN_KEY", "REDIS_URL")}
    assert not leaked
    assert "sk-proj" not in json.dumps(env) and "hunter2" not in json.dumps(env)
    assert env.get("PATH") and env.get("LC_ALL") == "C.UTF-8"  # what a program needs to run still there


async def test_the_operator_names_what_else_a_trusted_script_gets(service, project, upstream, monkeypatch):
    env = await script_env_seen(service, project, monkeypatch, {
        "OPENAI_API_KEY": "sk-proj-Zq8vN3kLm2Pp9Rr4Tt6Yy1Uu0", "MYTOOL_HOST": "db.internal", "MYTOOL_PORT": "5432",
        "ANTHROPIC_API_KEY": "sk-ant-api03-abcdefghijklmnopqrstu"},
        ensembles={"script_env": ["OPENAI_API_KEY", "MYTOOL_*"]})
    assert env["OPENAI_API_KEY"] == "sk-proj-Zq8vN3kLm2Pp9Rr4Tt6Yy1Uu0"
    assert env["MYTOOL_HOST"] == "db.internal" and env["MYTOOL_PORT"] == "5432"
    assert "ANTHROPIC_API_KEY" not in env


@pytest.mark.parametrize("bad", ["A-B", "1X", "X*Y", "*", ""])
def test_script_env_names_are_variable_names(bad, tmp_path):
    from tests.harness import make_config
    from tierwise.errors import ConfigError

    with pytest.raises(ConfigError, match="environment variable name"):
        make_config({"ensembles": {"script_env": [bad]}}, tmp_path)




# A host script reading its parent's (the gateway's) /proc/<pid>/environ: /bin/sh, so that it runs as any user.
PARENT_SCRIPT = """#!/bin/sh
cat > /dev/null
data=$(base64 -w0 "/proc/$PPID/environ" 2>/dev/null) || data=denied
printf '{"success": true, "data": "%s", "error": null}\\n' "$data"
"""

# A gateway process running one host script, with its key in the environment it started with (what
# /proc/<pid>/environ shows). Started as root (the test's user here) it becomes uid 65534 before the run, as
# dumpable as a gateway started as that user is: a root script reads any process, nothing to refuse then.
GATEWAY = """
import asyncio, ctypes, json, os, sys
import asyncio.subprocess, asyncio.unix_events
import tierwise.ensembles.scripts as scripts, tierwise.sandbox.weak, tierwise.sandbox.backend
if os.geteuid() == 0:
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
prctl = ctypes.CDLL(None, use_errno=True).prctl
prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: (a change of user cleared it)
print(json.dumps(asyncio.run(scripts.run_script([sys.argv[1]], {}, 30))))
"""


def test_a_trusted_script_cannot_read_the_gateways_environment_through_proc():
    """The script's own environment is minimal, but /proc/<gateway>/environ (and /proc/<gateway>/mem) were its
    user's to read while the gateway was dumpable (a gateway crashing left its keys in a core file too)."""
    import base64
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:  # (pytest's tmp_path is in a folder only root may enter)
        os.chmod(folder, 0o755)
        script = Path(folder) / "parent.sh"
        script.write_text(PARENT_SCRIPT)
        script.chmod(0o755)
        src = str(Path(__file__).resolve().parents[2] / "src")
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": src, "HOME": folder,
               "OPENAI_API_KEY": "sk-proj-Zq8vN3kLm2Pp9Rr4Tt6Yy1Uu0"}
        out = subprocess.run([sys.executable, "-c", GATEWAY, str(script)], env=env, cwd=folder,
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout)
    if seen != "denied":
        seen = base64.b64decode(seen).decode(errors="replace")
    assert "sk-proj" not in seen, seen[:300]
    assert seen == "denied"


async def test_a_prefix_brings_no_key_the_operator_did_not_name(service, project, upstream, monkeypatch):
    """`OPENAI*` (for OPENAI_BASE_URL) or `MYTOOL_*` matched OPENAI_API_KEY and MYTOOL_TOKEN too: a prefix silently
    gave a host script the keys the minimal environment keeps out (review38c). A key is passed by its exact name."""
    env = await script_env_seen(service, project, monkeypatch, {
        "OPENAI_API_KEY": "sk-proj-Zq8vN3kLm2Pp9Rr4Tt6Yy1Uu0", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "MYTOOL_TOKEN": "tok-5b0c2e7a9d1f4e63", "MYTOOL_DSN": "postgres://app:hunter2hunter2@db.internal/app",
        "MYTOOL_HOST": "db.internal", "LC_AUTH": "x-8f2d6a1c4b7e9035"},
        ensembles={"script_env": ["OPENAI*", "MYTOOL_*"]})
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1" and env["MYTOOL_HOST"] == "db.internal"
    leaked = {k for k in env if k in ("OPENAI_API_KEY", "MYTOOL_TOKEN", "MYTOOL_DSN", "LC_AUTH")}
    assert not leaked
