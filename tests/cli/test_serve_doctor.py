"""`tierwise serve` on a machine with no model server and no keys, and what `doctor` says there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
from click.testing import CliRunner

from tests.harness import free_port
from tierwise.cli import main

TIERWISE = [sys.executable, "-m", "tierwise.cli"]


def bare_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "TIERWISE_CONFIG"}
    env["HOME"] = str(tmp_path)
    return env


def local_server_listening() -> bool:
    """Whether something listens on a port the starter config probes (Ollama, llama.cpp, LM Studio)."""
    from tierwise.starter import LOCAL_SERVERS, port_open

    return any(port_open(port) for _name, port, *_ in LOCAL_SERVERS)


def test_serve_starts_bare_and_answers_cleanly(tmp_path):
    port = free_port()
    proc = subprocess.Popen(TIERWISE + ["serve", "--port", str(port)], cwd=tmp_path, env=bare_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        assert r.status_code == 200
        r = httpx.post(f"http://127.0.0.1:{port}/v1/messages", timeout=30,
                       json={"model": "anything", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
        if not local_server_listening():
            # No local server and no key: a clean error in the Anthropic schema that says why.
            assert r.status_code in (502, 503)
            err = r.json()["error"]
            assert r.json()["type"] == "error" and err["message"]
        else:  # a model server on a usual port (llama.cpp on 8080, say) was found: its answer, or a clean error
            assert r.json()["type"] == ("message" if r.status_code == 200 else "error"), r.text
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode()
    assert "Traceback" not in out
    assert "starter config" in out


def test_doctor_on_bare_machine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for k in list(os.environ):
        if k.endswith("_API_KEY"):
            monkeypatch.delenv(k)
    res = CliRunner().invoke(main, ["doctor"])
    out = res.output
    assert res.exit_code == 1
    assert "tierwise init" in out
    assert "ANTHROPIC_API_KEY" in out
    assert "cannot connect" in out or "no API key" in out


def test_init_then_doctor_names_each_problem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    r = CliRunner().invoke(main, ["init"])
    assert r.exit_code == 0 and (tmp_path / "tierwise.yaml").exists()
    r = CliRunner().invoke(main, ["init"])
    assert r.exit_code != 0 and "--force" in r.output
    r = CliRunner().invoke(main, ["doctor"])
    assert "config: tierwise.yaml is valid" in r.output
    assert "export ANTHROPIC_API_KEY" in r.output


def test_doctor_reports_config_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tierwise.yaml").write_text("models:\n  x: {provider: nowhere, model: m}\n")
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 1 and "models.x.provider" in r.output and "nowhere" in r.output


def test_serve_bad_config_exits_with_message(tmp_path):
    (tmp_path / "tierwise.yaml").write_text("server:\n  port: many\n")
    p = subprocess.run(TIERWISE + ["serve"], cwd=tmp_path, env=bare_env(tmp_path), capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2
    assert "server.port" in p.stderr and "tierwise.yaml" in p.stderr and "Traceback" not in p.stderr


def test_models_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["models"])
    assert r.exit_code == 0 and "claude-sonnet" in r.output


def test_serve_stops_cleanly_on_ctrl_c_and_fails_loudly_when_it_cannot_start(tmp_path):
    port = free_port()
    proc = subprocess.Popen(TIERWISE + ["serve", "--port", str(port)], cwd=tmp_path, env=bare_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        # A second gateway on the same port cannot start: a non-zero exit a supervisor can act on.
        taken = subprocess.run(TIERWISE + ["serve", "--port", str(port)], cwd=tmp_path, env=bare_env(tmp_path),
                               capture_output=True, text=True, timeout=60)
        assert taken.returncode == 3, taken.stdout + taken.stderr
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=20)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "Aborted" not in out and "Traceback" not in out


def test_serve_freezes_startup_objects_and_raises_the_gc_threshold_before_serving(tmp_path, monkeypatch):
    """The collector is tuned once the app is built, before the first request is served."""
    import gc

    import uvicorn
    from click.testing import CliRunner

    from tierwise.commands import serve
    from tierwise.server.build import SERVING_GC_THRESHOLDS

    seen: dict[str, object] = {}

    def fake_run(self, sockets=None):  # instead of serving: record the collector's state at that moment
        seen["threshold"], seen["frozen"] = gc.get_threshold(), gc.get_freeze_count()
        self.started = True
        for s in sockets or ():
            s.close()

    before = gc.get_threshold()
    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    (tmp_path / "tierwise.yaml").write_text("server: {port: 0}\n")
    try:
        result = CliRunner().invoke(serve.command, ["-c", str(tmp_path / "tierwise.yaml")])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert result.exit_code == 0, result.output
    assert seen["threshold"] == SERVING_GC_THRESHOLDS
    assert seen["frozen"] > 1000  # the imports and the config: tens of thousands of objects


def test_a_problem_found_only_when_building_the_routes_is_a_config_error_not_a_stack_trace(tmp_path, monkeypatch):
    # An ensemble route whose file is missing passes the schema; before, `doctor` said "valid" and
    # `serve` died with a traceback from building the gateway.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tierwise.yaml").write_text(
        "providers:\n  o: {kind: openai, base_url: 'http://127.0.0.1:9/v1', locality: local}\n"
        "models:\n  m: {provider: o, model: x}\nroutes:\n  e: {policy: ensemble, ensemble: nope.yaml}\n"
        "ledger: {enabled: false}\n")
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 1 and "✗ config: tierwise.yaml: route 'e'" in r.output and "nope.yaml" in r.output
    r = subprocess.run(TIERWISE + ["serve", "--port", "0"], cwd=tmp_path, env=bare_env(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "tierwise: config error: tierwise.yaml: route 'e'" in r.stderr and "ensemble file not found" in r.stderr
    # with worker processes: each says it once and the parent stops (was: tracebacks, respawned every second)
    r = subprocess.run(TIERWISE + ["serve", "--port", "0", "--workers", "2"], cwd=tmp_path, env=bare_env(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "starting another" not in r.stderr
    assert "tierwise: config error: tierwise.yaml: route 'e'" in r.stderr


def test_a_ledger_path_that_cannot_be_created_is_a_config_error_not_a_stack_trace(tmp_path):
    (tmp_path / "blocker").write_text("a file where the ledger's folder should be")
    (tmp_path / "tierwise.yaml").write_text("ledger: {path: blocker/ledger.db}\n")
    r = subprocess.run(TIERWISE + ["serve", "--port", "0"], cwd=tmp_path, env=bare_env(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "tierwise: config error: tierwise.yaml: ledger.path: cannot open the ledger at" in r.stderr
    assert "blocker/ledger.db" in r.stderr


def test_doctor_fails_on_a_config_that_serves_nothing(tmp_path, monkeypatch):
    # An empty tierwise.yaml is valid YAML: before, doctor said "is valid" and "All good." while the
    # gateway refused every request ("this gateway serves: nothing yet").
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tierwise.yaml").write_text("# nothing yet\n")
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 1, r.output
    assert "All good" not in r.output and "is valid" not in r.output
    assert "✗ config: tierwise.yaml: defines no models and no routes" in r.output and "tierwise init" in r.output
    assert "Nothing is reachable" not in r.output  # there is no provider to reach


def test_client_keys_named_but_not_set_are_reported_by_doctor_and_serve(tmp_path, monkeypatch):
    # Before: doctor said "All good." and serve said nothing, then refused every request with 401.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TW_TEST_GW_KEY", raising=False)
    (tmp_path / "tierwise.yaml").write_text(
        "server: {api_keys_env: [TW_TEST_GW_KEY]}\nledger: {enabled: false}\n"
        "providers:\n  o: {kind: openai, base_url: 'http://127.0.0.1:9/v1', locality: local}\n"
        "models:\n  m: {provider: o, model: x}\n")
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 1
    assert "✗ server.api_keys_env: TW_TEST_GW_KEY is not set: every request will be refused with 401" in r.output
    proc = subprocess.Popen(TIERWISE + ["serve", "--port", "0"], cwd=tmp_path, env=bare_env(tmp_path),
                            stderr=subprocess.PIPE, text=True)
    try:  # the first line it says, before "serving on"
        first = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert first.startswith("tierwise: warning: server.api_keys_env: TW_TEST_GW_KEY is not set"), first
    monkeypatch.setenv("TW_TEST_GW_KEY", "k")
    assert "api_keys_env" not in CliRunner().invoke(main, ["doctor"]).output


def test_serve_says_which_provider_key_is_not_set_before_serving(tmp_path, monkeypatch):
    """`tierwise serve -c examples/claude-code.yaml` without ANTHROPIC_API_KEY exported: the console
    says so at the start, not only `doctor`, instead of the first requests failing in silence."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tierwise.yaml").write_text(
        "ledger: {enabled: false}\n"
        "providers:\n  cloud: {kind: anthropic, base_url: 'http://127.0.0.1:9', api_key_env: TW_TEST_UPSTREAM_KEY}\n"
        "models:\n  big: {provider: cloud, model: x}\n  small: {provider: cloud, model: y}\n")
    env = bare_env(tmp_path)
    env.pop("TW_TEST_UPSTREAM_KEY", None)
    proc = subprocess.Popen(TIERWISE + ["serve", "--port", "0"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert first.startswith("tierwise: warning: provider cloud: TW_TEST_UPSTREAM_KEY is not set"), first
    assert "(big, small)" in first


def test_a_file_that_is_not_a_ledger_is_named_by_the_reading_commands(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tierwise.yaml").write_text("ledger: {path: notes.db}\n")
    (tmp_path / "notes.db").write_text("some notes, not a SQLite database " * 20)
    for cmd in (["report"], ["requests"], ["trace", "--last"], ["boundary"]):
        r = CliRunner().invoke(main, cmd)
        assert r.exit_code == 2, (cmd, r.output, r.exception)
        assert "ledger.path: cannot open the ledger at" in r.output and "notes.db" in r.output, cmd


def test_doctor_never_prints_a_base_url_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    port = free_port()  # nothing listens: doctor says it cannot connect, naming the URL
    (tmp_path / "tierwise.yaml").write_text(
        "providers:\n"
        f"  p: {{kind: anthropic, base_url: 'http://proxy:hunter2-url-pass@127.0.0.1:{port}', locality: local}}\n"
        "models:\n  m: {provider: p, model: x}\nroutes:\n  main: [m]\n")
    r = CliRunner().invoke(main, ["doctor"])
    assert f"127.0.0.1:{port}" in r.output and "cannot connect" in r.output
    assert "hunter2-url-pass" not in r.output


def test_listening_beyond_loopback_without_client_keys_is_warned_about(tmp_path, monkeypatch):
    """`--host 0.0.0.0` with no `server.api_keys_env` made an open proxy to the operator's frontier key,
    without a word."""
    from tierwise.commands.doctor import open_to_the_network
    from tierwise.config import parse_config

    open_cfg = parse_config("server: {host: 0.0.0.0}\n")
    assert "api_keys_env" in open_to_the_network(open_cfg)
    assert open_to_the_network(open_cfg, "127.0.0.1") is None and open_to_the_network(open_cfg, "::1") is None
    assert open_to_the_network(parse_config("server: {host: 0.0.0.0, api_keys_env: [K]}\n")) is None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tierwise.yaml").write_text("server: {host: 0.0.0.0}\nproviders:\n  p: {kind: openai, "
                                            f"base_url: 'http://127.0.0.1:{free_port()}/v1', locality: local}}\n"
                                            "models:\n  m: {provider: p, model: x}\nroutes:\n  main: [m]\n")
    r = CliRunner().invoke(main, ["doctor"])
    assert "listening on 0.0.0.0, beyond this machine, with no client keys" in r.output


def test_doctor_names_a_local_model_id_the_server_does_not_serve(tmp_path, monkeypatch):
    """An Ollama/vLLM/LM Studio server answers 404 for a model it does not have: `doctor` compares
    the configured ids with the server's list and says how to fix it."""
    import yaml

    from tests.doubles import OpenAIDouble

    monkeypatch.chdir(tmp_path)
    with OpenAIDouble(models=["qwen2.5:7b", "nomic-embed-text"]) as up:
        (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump({
            "providers": {"ollama": {"kind": "openai", "base_url": up.url + "/v1", "locality": "local"}},
            "models": {"have": {"provider": "ollama", "model": "qwen2.5:7b"},
                       "missing": {"provider": "ollama", "model": "llama3.1:8b"}}}))
        out = CliRunner().invoke(main, ["doctor"]).output
    [line] = [ln for ln in out.splitlines() if "is not among the models" in ln]
    assert line.startswith("! model missing:") and "ollama pull llama3.1:8b" in line and "qwen2.5:7b" in line
    assert "model have:" not in out


def test_init_with_only_an_openai_key_puts_openai_on_the_frontier_tier(tmp_path, monkeypatch):
    """A starter config whose frontier is Anthropic without an Anthropic key fails every frontier call;
    with only OPENAI_API_KEY set, OpenAI's models take that place and doctor finds no missing key."""
    import yaml

    from tierwise.config import load_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    r = CliRunner().invoke(main, ["init"])
    assert r.exit_code == 0 and "frontier tier: OpenAI" in r.output
    data = yaml.safe_load((tmp_path / "tierwise.yaml").read_text())
    assert "anthropic" not in data["providers"]
    remote = {m["provider"] for n, m in data["models"].items() if n != "local"}
    assert remote == {"openai"}
    cfg = load_config(str(tmp_path / "tierwise.yaml"))
    assert cfg.routes["frontier"].targets[0] == "gpt" and cfg.reference_model == "gpt"
    out = CliRunner().invoke(main, ["doctor"]).output
    assert "ANTHROPIC_API_KEY" not in out


def test_doctor_checks_the_redis_that_budgets_and_dispatch_need(tmp_path, monkeypatch):
    # Before: Redis down (or a wrong port) and doctor said "All good." while every request covered by
    # a budget got 503 "budget store unavailable" and every capability 503 "Redis ... unreachable".
    import yaml

    from tests.doubles.openai_double import OpenAIDouble

    port = free_port()
    with OpenAIDouble(models=["m"]) as up:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump({
            "providers": {"up": {"kind": "openai", "base_url": up.url + "/v1", "locality": "local"}},
            "models": {"m": {"provider": "up", "model": "m"}}, "routes": {"main": "m"},
            "server": {"port": free_port()},
            "budgets": {"store": {"backend": "redis", "redis_url": f"redis://u:hunter2secret@127.0.0.1:{port}/0"},
                        "limits": [{"name": "d", "usd": 1}]},
            "dispatch": {"redis_url": f"redis://127.0.0.1:{port}/0", "tenant": "acme"}}))
        r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 1 and "All good" not in r.output, r.output
    for users in ("budgets.store", "dispatch"):  # two URLs (other credentials): one line each
        assert f"✗ redis 127.0.0.1:{port} ({users}): unreachable" in r.output, r.output
    assert "hunter2secret" not in r.output


def test_serve_says_where_the_dashboard_is_when_it_is_on(tmp_path):
    # Before: `observability.dashboard.enabled: true` and nothing on the console said where to open it.
    (tmp_path / "tierwise.yaml").write_text(
        "ledger: {enabled: false}\nobservability: {dashboard: {enabled: true}}\n"
        "providers:\n  o: {kind: openai, base_url: 'http://127.0.0.1:9/v1', locality: local}\n"
        "models:\n  m: {provider: o, model: x}\n")
    proc = subprocess.Popen(TIERWISE + ["serve", "--port", "0"], cwd=tmp_path, env=bare_env(tmp_path),
                            stderr=subprocess.PIPE, text=True)
    try:  # (a warning that nothing listens at the provider's port comes first)
        while (serving := proc.stderr.readline()) and "serving on" not in serving:
            pass
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    port = serving.split("http://127.0.0.1:")[1].split(" ")[0]
    assert serving.rstrip().endswith(f"; dashboard: http://127.0.0.1:{port}/dashboard"), serving


def test_doctor_says_when_the_ledger_cannot_be_opened_before_serve_refuses_it(tmp_path, monkeypatch):
    # Before: doctor said "All good." for a ledger path serve then refused at start (a folder on the way that is a
    # file, a path that is a folder, a file that is not a database).
    import yaml

    from tests.doubles import OpenAIDouble

    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("a file where the ledger's folder should be")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "notes.txt").write_text("not a database, but long enough to have a header of its own" * 4)
    with OpenAIDouble(models=["qwen"]) as up:
        base = {"providers": {"llama": {"kind": "openai", "base_url": up.url + "/v1", "locality": "local"}},
                "models": {"qwen": {"provider": "llama", "model": "qwen"}}}
        outputs = {}
        for path in ("blocker/ledger.db", "a-folder", "notes.txt", "new/sub/ledger.db"):
            (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump({**base, "ledger": {"path": path}}))
            r = CliRunner().invoke(main, ["doctor"])
            outputs[path] = (r.exit_code, [ln for ln in r.output.splitlines() if "ledger" in ln])
    for bad in ("blocker/ledger.db", "a-folder", "notes.txt"):
        code, lines = outputs[bad]
        assert code == 1 and len(lines) == 1 and lines[0].startswith("✗ ledger: "), outputs[bad]
        assert "Fix: point ledger.path" in lines[0] or "point ledger.path at" in lines[0]
    assert "blocker is a file, not a folder" in outputs["blocker/ledger.db"][1][0]
    code, lines = outputs["new/sub/ledger.db"]
    assert code == 0 and lines == [f"✓ ledger: {tmp_path / 'new/sub/ledger.db'} (written from the first request)"]
    assert not (tmp_path / "new").exists()  # only probed: doctor creates nothing


def test_doctor_checks_a_workers_capabilities_as_tierwise_worker_does(tmp_path, monkeypatch):
    # docs/distributed.md's worker.yaml names `summarise.yaml`; without that file doctor said the config was valid,
    # then `tierwise worker` stopped at start. A capability naming an unknown model too.
    import yaml

    monkeypatch.chdir(tmp_path)
    base = {"providers": {"llama": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}},
            "models": {"qwen": {"provider": "llama", "model": "qwen"}},
            "dispatch": {"redis_url": "redis://127.0.0.1:9/0", "tenant": "acme", "worker": {"capabilities": {}}}}
    outs = {}
    for name, cap in (("ensemble", {"ensemble": "summarise.yaml"}), ("model", {"model": "qwne"})):
        base["dispatch"]["worker"]["capabilities"] = {"classify": {"model": "qwen"}, "docs": cap}
        (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(base))
        r = CliRunner().invoke(main, ["doctor"])
        outs[name] = (r.exit_code, [ln for ln in r.output.splitlines() if ln.startswith(("✓ config", "✗ config"))])
    assert outs["ensemble"] == (1, [f"✗ config: tierwise.yaml: dispatch.worker.capabilities.docs.ensemble: "
                                    f"{tmp_path / 'summarise.yaml'}: ensemble file not found"]), outs
    assert outs["model"][0] == 1 and outs["model"][1][0].startswith(
        "✗ config: tierwise.yaml: dispatch.worker.capabilities: capability 'docs': unknown model 'qwne'"), outs


def test_doctor_names_the_base_url_a_404_model_list_was_meant_to_be(tmp_path, monkeypatch):
    """Before: an OpenAI-compatible base_url without `/v1` (or with the endpoint pasted on), or an Anthropic
    one with `/v1`, got "✓ reached (HTTP 404 ...; chat may still work)" and "All good." while every call
    failed with 404. Now doctor tries the corrected URL and names it."""
    import yaml

    from tests.doubles import AnthropicDouble, OpenAIDouble

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TW_TEST_FRONTIER_KEY", "k-test")
    with OpenAIDouble(models=["qwen"]) as local, AnthropicDouble(api_key="k-test") as frontier:
        for kind, url, fixed in [("openai", local.url, local.url + "/v1"),
                                 ("openai", local.url + "/v1/chat/completions", local.url + "/v1"),
                                 ("anthropic", frontier.url + "/v1", frontier.url)]:
            prov: dict[str, str] = {"kind": kind, "base_url": url, "locality": "local"}
            if kind == "anthropic":
                prov["api_key_env"] = "TW_TEST_FRONTIER_KEY"
            (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump({
                "providers": {"p": prov}, "models": {"m": {"provider": "p", "model": "qwen"}},
                "routes": {"main": ["m"]}}))
            r = CliRunner().invoke(main, ["doctor"])
            [line] = [ln for ln in r.output.splitlines() if " provider p (" in ln]
            assert line.startswith("✗") and f"set base_url: {fixed} " in line, r.output
            assert "All good" not in r.output and r.exit_code != 0
        # a right base_url is still simply reached
        (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump({
            "providers": {"p": {"kind": "openai", "base_url": local.url + "/v1", "locality": "local"}},
            "models": {"m": {"provider": "p", "model": "qwen"}}, "routes": {"main": ["m"]}}))
        assert "set base_url" not in CliRunner().invoke(main, ["doctor"]).output


def test_doctor_warns_about_a_provider_on_this_machine_left_remote_by_default(tmp_path, monkeypatch):
    """Before: a llama.cpp/Ollama provider written without `locality:` was remote (the default) and doctor said
    "All good.": with `pii: local_only` every request holding an address was refused ("not sent to remote
    model 'local'"), and its calls were priced as frontier ones."""
    import yaml

    from tests.doubles import OpenAIDouble

    monkeypatch.chdir(tmp_path)
    with OpenAIDouble(models=["qwen"]) as up:
        for locality, warned in [(None, True), ("local", False), ("remote", False)]:
            prov = {"kind": "openai", "base_url": up.url + "/v1"}
            if locality:
                prov["locality"] = locality
            (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump({
                "providers": {"box": prov}, "models": {"m": {"provider": "box", "model": "qwen",
                                                              "price": {"input": 0, "output": 0}}},
                "routes": {"main": ["m"]}}))
            out = CliRunner().invoke(main, ["doctor"]).output
            lines = [ln for ln in out.splitlines() if "has no `locality:`" in ln]
            assert len(lines) == int(warned), out
            if warned:
                assert lines[0].startswith("! provider box is on this machine (127.0.0.1)")
                assert "Fix: `locality: local`" in lines[0]
