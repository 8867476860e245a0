"""Issue 16, point 6: what a new user trips on.

An explicit config path that does not exist is an error; `/health` says which routes are degraded
or down; the console reports each failed request and each breaker change once, plus an access log
when asked; `serve` on a taken port fails before it claims to serve; tables are not cut to 80
columns outside a terminal; `report` in an empty folder creates nothing; `tierwise --help` shows
whole summaries without importing the heavy parts; `models` shows what each route leads to.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml
from click.testing import CliRunner

from tests.doubles import Fail, OpenAIDouble, Reply
from tests.harness import GatewayServer, free_port, make_config
from tierwise.cli import main as cli

TIERWISE = [sys.executable, "-m", "tierwise.cli"]


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and k not in ("TIERWISE_CONFIG", "COLUMNS")}
    env["HOME"] = str(tmp_path)
    env.update(extra)
    return env


def dead_url() -> str:
    """A loopback URL nothing listens on: every call fails fast with a refused connection."""
    return f"http://127.0.0.1:{free_port()}/v1"


# ------------------------------------------------------------------ explicit config paths


@pytest.mark.parametrize("how", ["flag", "env"])
def test_an_explicit_config_path_that_does_not_exist_is_an_error(tmp_path: Path, how: str) -> None:
    args, env = (["serve", "-c", "nope.yaml"], env_for(tmp_path)) if how == "flag" else (
        ["serve"], env_for(tmp_path, TIERWISE_CONFIG="nope.yaml"))
    p = subprocess.run(TIERWISE + args + ["--port", str(free_port())], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "nope.yaml" in p.stderr and "does not exist" in p.stderr
    assert "starter config" not in p.stderr and "serving on" not in p.stderr


def test_other_commands_refuse_a_missing_explicit_config_too(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERWISE_CONFIG", raising=False)
    for args in (["models", "-c", "nope.yaml"], ["report", "-c", "nope.yaml"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2 and "does not exist" in r.output, (args, r.output)
    r = CliRunner().invoke(cli, ["doctor", "-c", "nope.yaml"])
    assert r.exit_code == 1 and "does not exist" in r.output
    # Without a path, the starter config still helps a first run along.
    r = CliRunner().invoke(cli, ["models"])
    assert r.exit_code == 0 and "starter config" in r.output


# ------------------------------------------------------------------ /health


def health_config(local_url: str, other_url: str, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "ledger": {"enabled": False},
        "breaker": {"failures": 1, "cooldown": 600},
        "providers": {
            "box": {"kind": "openai", "base_url": local_url, "locality": "local", "timeouts": {"connect": 1}},
            "other": {"kind": "openai", "base_url": other_url, "locality": "local", "timeouts": {"connect": 1}},
        },
        "models": {"local": {"provider": "box", "model": "m1"}, "spare": {"provider": "other", "model": "m2"}},
        "routes": {
            "only-local": ["local"],
            "mixed": {"policy": "fallback", "targets": ["local", "spare"], "retries": 0},
            "via-mixed": ["mixed"],
            "only-spare": ["spare"],
        },
    }
    cfg.update(extra)
    return cfg


def test_health_reports_each_route_degraded_or_down(tmp_path: Path) -> None:
    up = OpenAIDouble().start()
    g = GatewayServer(make_config(health_config(dead_url(), up.url + "/v1"), tmp_path)).start()
    try:
        # Nothing listens where "local" lives: /health knows it before any request failed (its
        # probe found the port closed), where it used to answer "ok" on a closed, untried breaker.
        h = httpx.get(g.url + "/health").json()
        assert h["status"] == "degraded" and h["routes"]["only-local"] == {"status": "down", "unavailable": ["local"]}
        assert h["local_servers"] == {"box": "unreachable", "other": "reachable"}
        up.script(Reply("from the spare"))
        r = httpx.post(g.url + "/v1/chat/completions", timeout=20, json={
            "model": "mixed", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200  # the local model failed, its breaker opened, the spare answered
        h = httpx.get(g.url + "/health").json()
        assert h["status"] == "degraded"
        assert h["routes"]["only-local"] == {"status": "down", "unavailable": ["local"]}
        assert h["routes"]["mixed"] == {"status": "degraded", "unavailable": ["local"]}
        assert h["routes"]["via-mixed"]["status"] == "degraded"  # through the route it names
        assert h["routes"]["only-spare"] == {"status": "ok"}
        assert h["deployments"] == {"local": "open", "spare": "closed"}
        up.stop()  # now the spare goes too: every breaker is open
        r = httpx.post(g.url + "/v1/chat/completions", timeout=20, json={
            "model": "only-spare", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code >= 500
        h = httpx.get(g.url + "/health").json()
        assert h["status"] == "down" and all(v["status"] == "down" for v in h["routes"].values())
    finally:
        g.stop()
        up.stop()


def test_health_stays_terse_without_a_key(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("HEALTH_TEST_KEY", "k-123456")
    cfg = health_config(dead_url(), dead_url(), server={"api_keys_env": ["HEALTH_TEST_KEY"]})
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    try:
        for d in g.gateway.deployments.values():
            d.breaker.failure()  # failures: 1 → every breaker open
        assert httpx.get(g.url + "/health").json() == {"status": "down"}
        full = httpx.get(g.url + "/health", headers={"authorization": "Bearer k-123456"}).json()
        assert full["status"] == "down" and full["routes"]["mixed"]["status"] == "down"
        # `curl -I` and uptime checkers ask with HEAD: the GET's status and headers, no body (was: 405)
        head = httpx.head(g.url + "/health")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"].startswith("application/json")
    finally:
        g.stop()


# ------------------------------------------------------------------ the console


def _serve(tmp_path: Path, cfg: dict[str, Any], *extra: str) -> tuple[subprocess.Popen[str], str]:
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    port = free_port()
    proc = subprocess.Popen(TIERWISE + ["serve", "--port", str(port), *extra], cwd=tmp_path, env=env_for(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/health", timeout=1)
            return proc, url
        except httpx.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=30)[0]


def test_console_logs_each_failure_and_breaker_change_once(tmp_path: Path) -> None:
    up = OpenAIDouble().start()
    cfg = health_config(dead_url(), up.url + "/v1", breaker={"failures": 2, "cooldown": 600})
    proc, url = _serve(tmp_path, cfg)
    try:
        for _ in range(5):
            r = httpx.post(url + "/v1/chat/completions", timeout=20, json={
                "model": "only-local", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code >= 500
        rids = []
        up.script(Reply("fine"))
        r = httpx.post(url + "/v1/chat/completions", timeout=20, json={
            "model": "only-spare", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
        rids.append(r.headers["x-tierwise-request-id"])
    finally:
        out = _stop(proc)
        up.stop()
    failed = [ln for ln in out.splitlines() if "failed: HTTP" in ln]
    assert len(failed) == 5, out  # one line per failed request, none for the answered one
    assert all("only-local" in ln for ln in failed)
    assert rids[0] not in out
    opened = [ln for ln in out.splitlines() if "tierwise.breaker" in ln]
    assert len(opened) == 1 and "model local" in opened[0], out  # the change, once
    assert "Traceback" not in out


def test_access_log_can_be_switched_on(tmp_path: Path) -> None:
    up = OpenAIDouble().start()
    cfg = health_config(up.url + "/v1", up.url + "/v1")
    try:
        proc, url = _serve(tmp_path, cfg)  # off by default
        httpx.get(url + "/v1/models")
        quiet = _stop(proc)
        assert "GET /v1/models" not in quiet
        for extra, config_flag in (((), True), (("--access-log",), False)):
            cfg["server"] = {"access_log": config_flag}
            proc, url = _serve(tmp_path, cfg, *extra)
            up.script(Reply("fine"))
            r = httpx.post(url + "/v1/chat/completions", timeout=20, json={
                "model": "only-local", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
            httpx.get(url + "/v1/models")
            out = _stop(proc)
            rid = r.headers["x-tierwise-request-id"]
            line = next(ln for ln in out.splitlines() if "POST /v1/chat/completions" in ln)
            assert " 200 " in line and f"request={rid}" in line and "route=only-local" in line
            assert any("GET /v1/models 200" in ln for ln in out.splitlines()), out
    finally:
        up.stop()


def test_serve_on_a_taken_port_fails_before_saying_it_serves(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = subprocess.run(TIERWISE + ["serve", "--port", str(port)], cwd=tmp_path, env=env_for(tmp_path),
                           capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "serving on" not in p.stdout + p.stderr
    assert "already in use" in p.stderr and str(port) in p.stderr
    assert "Traceback" not in p.stderr


# ------------------------------------------------------------------ tables, report, help, models


LONG_ID = "organisation-with-a-long-name/model-family-v3-instruct-128k-context-q4_k_m-gguf-build-2026"


def test_tables_are_not_cut_to_80_columns_outside_a_terminal(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump({
        "providers": {"box": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}},
        "models": {"local": {"provider": "box", "model": LONG_ID}},
        "routes": {"main": ["local"]},
    }))
    out = CliRunner().invoke(cli, ["models"]).output
    assert any(LONG_ID in ln for ln in out.splitlines()), out  # on one line, not folded at column 80
    assert max(len(ln) for ln in out.splitlines()) > 80


def test_report_in_an_empty_folder_creates_no_ledger(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERWISE_CONFIG", raising=False)
    for args in (["report"], ["requests"], ["trace", "--last"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 1, r.output
        assert "no ledger" in r.output
    assert list(tmp_path.rglob("*.db")) == [] and not (tmp_path / ".tierwise").exists()


def test_help_is_whole_and_imports_nothing_heavy(tmp_path: Path) -> None:
    probe = ("import sys\nfrom click.testing import CliRunner\nfrom tierwise.cli import main\n"
             "r = CliRunner().invoke(main, ['--help'])\nprint(r.output)\n"
             "print('HEAVY:', sorted(m for m in ('numpy', 'aiohttp', 'pydantic', 'rich', 'uvicorn', 'sklearn') "
             "if m in sys.modules))\n")
    p = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env_for(tmp_path), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    # What makes help slow is importing the libraries the commands use: none of them may load.
    assert "HEAVY: []" in out
    assert "..." not in out.split("Commands:")[1]  # no summary clipped
    flat = " ".join(out.split())
    assert "or `ledger` (judged shadow pairs from the configured ledger)." in flat  # eval's whole summary
    for name in ("requests", "trace", "report", "serve", "models", "doctor"):
        assert f"\n  {name} " in out


def test_a_gateway_without_learned_routes_loads_no_numpy(tmp_path: Path) -> None:
    """Every gateway loads the policies; numpy (about 15-20 MB of a 65 MB process, and 40 ms of start-up) loads
    only for a route that uses it. The reflective policy's settings imported it for every gateway (session 18)."""
    cfg = tmp_path / "tierwise.yaml"
    cfg.write_text(yaml.safe_dump(health_config(dead_url(), dead_url())))
    probe = ("import sys\nfrom tierwise.config import load_config\nfrom tierwise.server.build import build_gateway\n"
             f"build_gateway(load_config({str(cfg)!r}))\nprint('NUMPY:', 'numpy' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env_for(tmp_path), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "NUMPY: False" in p.stdout


def test_models_lists_what_each_route_leads_to(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(health_config(dead_url(), dead_url())))
    out = CliRunner().invoke(cli, ["models"]).output
    rows = {ln.split("│")[1].strip(): ln for ln in out.splitlines() if ln.count("│") >= 4}
    assert "local, spare" in rows["mixed"] and "fallback" in rows["mixed"]
    assert "mixed" in rows["via-mixed"] and "local, spare" in rows["via-mixed"]  # and the models reached
    # a route that names models only: its "models reached" cell says so (it was empty, which read as "none")
    assert rows["mixed"].split("│")[4].strip() == "(the same)", rows["mixed"]


def test_failure_lines_carry_no_secret_and_no_control_characters(tmp_path: Path, monkeypatch: Any,
                                                                  caplog: Any) -> None:
    secret = "sk-upstream-" + "q" * 24
    monkeypatch.setenv("FIRST_RUN_UPSTREAM_KEY", secret)
    up = OpenAIDouble().start()
    cfg = health_config(up.url + "/v1", up.url + "/v1")
    cfg["providers"]["box"]["api_key_env"] = "FIRST_RUN_UPSTREAM_KEY"
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    try:
        up.script(Fail(500, f"key {secret} refused\n2026-01-01 WARNING forged line \x1b[2J"),
                  Fail(500, "again"))
        with caplog.at_level("WARNING", logger="tierwise"):
            r = httpx.post(g.url + "/v1/chat/completions", timeout=20, json={
                "model": "only-local", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code >= 500
            g.flush()
    finally:
        g.stop()
        up.stop()
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "tierwise.requests"]
    assert len(lines) == 1
    assert secret not in lines[0] and "\n" not in lines[0] and "\x1b" not in lines[0]


def test_console_says_once_when_an_upstream_refuses_the_key_or_the_model(tmp_path: Path) -> None:
    # A fallback hid both from the client and from the console: an Ollama model that was never pulled (404) and a
    # frontier key that is wrong (401) were answered by the next target, every time, without a word; the operator
    # believed the local model served (and paid the frontier instead).
    from tests.doubles import AnthropicDouble

    local, spare = OpenAIDouble().start(), OpenAIDouble().start()
    frontier = AnthropicDouble(api_key="the-right-key").start()
    try:
        local.default = Fail(404, "model 'qwen2.5:7b' not found, try pulling it first")
        spare.default = Reply("from the spare")
        cfg = {"providers": {"ollama": {"kind": "openai", "base_url": local.url + "/v1", "locality": "local"},
                             "anthropic": {"kind": "anthropic", "base_url": frontier.url,
                                           "api_key_env": "TW_TEST_FRONTIER_KEY"},
                             "spare": {"kind": "openai", "base_url": spare.url + "/v1", "locality": "local"}},
               "models": {"local": {"provider": "ollama", "model": "qwen2.5:7b"},
                          "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5"},
                          "backup": {"provider": "spare", "model": "s"}},
               "routes": {"main": {"policy": "fallback", "targets": ["local", "claude", "backup"], "retries": 0}}}
        (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
        port = free_port()
        proc = subprocess.Popen(TIERWISE + ["serve", "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env=env_for(tmp_path, TW_TEST_FRONTIER_KEY="a-wrong-key-1234"))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        try:
            for _ in range(3):
                r = httpx.post(url + "/v1/chat/completions", timeout=20, json={
                    "model": "main", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
                assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "from the spare"
        finally:
            out = _stop(proc)
    finally:
        local.stop()
        spare.stop()
        frontier.stop()
    missing = [ln for ln in out.splitlines() if "does not serve" in ln]
    refused = [ln for ln in out.splitlines() if "refused the gateway's key" in ln]
    assert len(missing) == 1 and "model local: provider ollama does not serve 'qwen2.5:7b'" in missing[0], out
    assert "ollama pull qwen2.5:7b" in missing[0]
    assert len(refused) == 1 and "model claude: provider anthropic" in refused[0], out
    assert "until TW_TEST_FRONTIER_KEY holds a key it accepts" in refused[0]
    assert "a-wrong-key-1234" not in out and "failed: HTTP" not in out and "Traceback" not in out


def test_console_tells_a_wrong_base_url_from_a_missing_model(tmp_path: Path, caplog: Any) -> None:
    # Before: base_url without its /v1 (and an Anthropic one with it) got "does not serve 'claude-sonnet-4-5' ...
    # fetch it (Ollama: `ollama pull claude-sonnet-4-5`)": a 404 for an unknown URL read as an unknown model,
    # with Ollama's advice for an Anthropic provider.
    from openai import OpenAI

    from tests.doubles import AnthropicDouble

    local, frontier, spare = OpenAIDouble().start(), AnthropicDouble().start(), OpenAIDouble().start()
    spare.default = Reply("from the spare")
    cfg = {"providers": {"ollama": {"kind": "openai", "base_url": local.url, "locality": "local"},
                         "anthropic": {"kind": "anthropic", "base_url": frontier.url + "/v1"},
                         "spare": {"kind": "openai", "base_url": spare.url + "/v1", "locality": "local"}},
           "models": {"local": {"provider": "ollama", "model": "qwen2.5:7b"},
                      "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5"},
                      "backup": {"provider": "spare", "model": "s"}},
           "routes": {"main": {"policy": "fallback", "targets": ["local", "claude", "backup"], "retries": 0}}}
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    try:
        with caplog.at_level("WARNING", logger="tierwise"):
            client = g.keep(OpenAI(base_url=g.url + "/v1", api_key="unused", max_retries=0))
            r = client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
            assert r.choices[0].message.content == "from the spare"
            g.flush()
    finally:
        g.stop()
        local.stop()
        frontier.stop()
        spare.stop()
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "tierwise.requests"]
    [lo] = [ln for ln in lines if ln.startswith("model local:")]
    [cl] = [ln for ln in lines if ln.startswith("model claude:")]
    assert f"its base_url {local.url} is likely wrong" in lo and "ollama pull" not in lo, lo
    assert f"its base_url {frontier.url}/v1 is likely wrong" in cl and "ollama pull" not in cl, cl


def test_console_gives_ollama_advice_only_to_a_local_openai_server(caplog: Any) -> None:
    from tierwise.console_log import upstream_refused

    with caplog.at_level("WARNING", logger="tierwise"):
        upstream_refused("c", "claude-x", "anthropic", "not_found", "model: claude-x", None,
                         "https://api.anthropic.com", ollama_like=False)
        upstream_refused("q", "qwen", "ollama", "not_found", "model 'qwen' not found", None,
                         "http://127.0.0.1:11434/v1", ollama_like=True)
    remote, local = (rec.getMessage() for rec in caplog.records)
    assert "does not serve 'claude-x'" in remote and "ollama pull" not in remote
    assert "does not serve 'qwen'" in local and "ollama pull qwen" in local


def test_requests_names_a_filter_the_config_does_not_have(tmp_path: Path, monkeypatch: Any) -> None:
    # Before: `tierwise requests --route mian` said "no requests match", which reads as "no traffic there".
    from openai import OpenAI

    up = OpenAIDouble().start()
    cfg = {"ledger": {"path": str(tmp_path / "ledger.db")},
           "providers": {"box": {"kind": "openai", "base_url": up.url + "/v1", "locality": "local"}},
           "models": {"local": {"provider": "box", "model": "m1"}}, "routes": {"main": ["local"]}}
    (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
    g = GatewayServer(make_config(cfg, tmp_path)).start()
    try:
        g.keep(OpenAI(base_url=g.url + "/v1", api_key="unused")).chat.completions.create(
            model="main", messages=[{"role": "user", "content": "hi"}])
        g.flush()
    finally:
        g.stop()
        up.stop()
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(cli, ["requests", "--route", "mian"]).output
    assert out.strip() == "no requests match: the config has no route 'mian' (did you mean `main`?)", out
    out = CliRunner().invoke(cli, ["requests", "--model", "locl"]).output
    assert "the config has no model 'locl' (did you mean `local`?)" in out, out
    out = CliRunner().invoke(cli, ["requests", "--route", "main", "--status", "503"]).output
    assert out.strip() == "no requests match", out  # a known name: nothing more to say
    assert "main" in CliRunner().invoke(cli, ["requests", "--route", "main"]).output
