"""What a first-time user meets when a file is broken or a command runs where nothing is set up yet: one
line naming the file, the line and what to fix, never a traceback (session 21's new-user round)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tierwise.cli import main as cli

BASE = {"providers": {"local": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "locality": "local"}},
        "models": {"qwen": {"provider": "local", "model": "qwen"}}, "routes": {"main": ["qwen"]}}


def _doctor(path: Path) -> str:
    res = CliRunner().invoke(cli, ["doctor", "-c", str(path)])
    assert res.exit_code != 0, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output, res.output
    return res.output.splitlines()[0]


def test_a_config_that_is_not_utf8_is_named_not_a_traceback(tmp_path: Path) -> None:
    # Before: UnicodeDecodeError escaped load_config and every command printed a traceback.
    path = tmp_path / "tierwise.yaml"
    path.write_bytes(b"server:\n  port: 4000\n  host: caf\xe9\n")
    line = _doctor(path)
    assert f"{path}: not UTF-8 text" in line and "save it as UTF-8" in line, line
    path.write_bytes("server:\n  port: 4000\n".encode("utf-16"))  # PowerShell's `>`
    line = _doctor(path)
    assert f"{path}: UTF-16 text" in line and "save it as UTF-8" in line, line


def test_a_tab_says_yaml_indents_with_spaces(tmp_path: Path) -> None:
    path = tmp_path / "tierwise.yaml"
    text = "server:\n  host: 127.0.0.1\n\tport: 4000\n"
    path.write_text(text)
    line = _doctor(path)
    assert f"{path}: line 3: not valid YAML" in line and "replace the tab with spaces" in line, line


def test_an_unclosed_brace_names_the_line_it_was_opened_on(tmp_path: Path) -> None:
    # PyYAML notices the missing `}` on the next line; the line to fix is the one that opened it.
    path = tmp_path / "tierwise.yaml"
    path.write_text("routes:\n  main:\n    policy: rules\n    rules:\n      - match: {images: true\n"
                    "        target: qwen\n    default: qwen\n")
    line = _doctor(path)
    assert "line 6: not valid YAML" in line and "starts on line 5" in line, line


def test_an_ensemble_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    import pytest

    from tierwise.ensembles.schema import load_ensemble
    from tierwise.errors import ConfigError

    path = tmp_path / "e.yaml"
    path.write_bytes(b"name: e\nagents: []\n# \xff\n")
    with pytest.raises(ConfigError) as e:
        load_ensemble(path)
    assert "not UTF-8 text" in e.value.message


def serve_lines(tmp_path: Path, config: str, until: str = "serving on") -> list[str]:
    """What `tierwise serve` (config `config`, no upstream keys, HOME in `tmp_path`) prints up to its start line
    `serving on ...` or the first line holding `until`, that line included."""
    import os
    import subprocess
    import sys

    (tmp_path / "tierwise.yaml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "TIERWISE_CONFIG"}
    env["HOME"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "tierwise.cli", "serve", "--port", "0"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        assert proc.stderr is not None
        while line := proc.stderr.readline():
            lines.append(line.strip())
            if "serving on" in line or until in line:
                break
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    return lines


def _serve_warnings(tmp_path: Path, config: str, until: str = "serving on") -> list[str]:
    """What `tierwise serve` prints before it says it serves (or, with `until`, up to the first line holding that
    text, the line included; `serving on` still ends it)."""
    lines = serve_lines(tmp_path, config, until)
    return lines[:-1] if lines and "serving on" in lines[-1] else lines


def test_serve_warns_that_an_empty_config_serves_nothing(tmp_path: Path) -> None:
    # Before: `doctor` said so, `serve` started in silence and refused every request.
    lines = _serve_warnings(tmp_path, "# nothing yet\n")
    assert any("tierwise.yaml defines no models and no routes" in ln for ln in lines), lines


def test_serve_warns_when_nothing_listens_where_a_local_provider_should_be(tmp_path: Path) -> None:
    # Before: with Ollama not started, `serve` said nothing and the first request failed (or fell back).
    import socket

    from tests.harness import free_port

    port = free_port()
    config = ("ledger: {enabled: false}\n"
              f"providers:\n  mine: {{kind: openai, base_url: 'http://127.0.0.1:{port}/v1', locality: local}}\n"
              "models:\n  small: {provider: mine, model: x}\nroutes:\n  main: [small]\n")
    lines = _serve_warnings(tmp_path, config)
    assert any(ln.startswith(f"tierwise: warning: provider mine: nothing listens at 127.0.0.1:{port} yet")
               and "(small)" in ln for ln in lines), lines
    with socket.create_server(("127.0.0.1", port)):  # now something listens there: no warning
        assert not any("nothing listens" in ln for ln in _serve_warnings(tmp_path, config))


def _claude_against(tmp_path: Path, monkeypatch: Any, key_set: bool, checkout: Path | None = None) -> Any:
    """`tierwise claude` against a running gateway whose only model is on a keyed remote provider."""
    import yaml

    from tests.doubles.anthropic_double import AnthropicDouble
    from tests.harness import GatewayServer, make_config

    monkeypatch.setenv("PATH", str(tmp_path))  # no claude here: past the checks, it says it is not installed
    monkeypatch.chdir(tmp_path)  # (nor in ./.tools/claude-code, where a checkout that ran scripts/test.sh has one)
    # nor in the checkout tierwise runs from (which has one after scripts/test.sh), unless the test gives one
    monkeypatch.setattr("tierwise.commands.claude.CHECKOUT_ROOT", checkout or tmp_path / "no-checkout")
    if key_set:
        monkeypatch.setenv("TW_TEST_CLOUD_KEY", "sk-test-cloud-key-0123456789")
    else:
        monkeypatch.delenv("TW_TEST_CLOUD_KEY", raising=False)
    with AnthropicDouble() as up:
        cfg = {"ledger": {"enabled": False},
               "providers": {"cloud": {"kind": "anthropic", "base_url": up.url, "api_key_env": "TW_TEST_CLOUD_KEY"}},
               "models": {"sonnet": {"provider": "cloud", "model": "claude-sonnet-4-5"}},
               "routes": {"main": ["sonnet"]}}
        (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
        g = GatewayServer(make_config(cfg, tmp_path)).start()
        try:
            return CliRunner().invoke(cli, ["claude", "-c", str(tmp_path / "tierwise.yaml"), "--url", g.url,
                                            "-p", "hi"]), up
        finally:
            g.stop()


def test_tierwise_claude_stops_when_every_route_of_the_gateway_is_down(tmp_path: Path, monkeypatch: Any) -> None:
    # Before: the gateway answered /health, so Claude Code was started and retried its 502s for minutes in
    # silence (the README's `tierwise serve` in one shell without ANTHROPIC_API_KEY exported there).
    res, up = _claude_against(tmp_path, monkeypatch, key_set=False)
    assert res.exit_code == 1, res.output
    assert "answers, but every route is down (unavailable: sonnet)" in res.output, res.output
    assert "tierwise doctor" in res.output and "not installed" not in res.output
    assert not up.requests


def test_tierwise_claude_goes_on_when_a_route_is_up(tmp_path: Path, monkeypatch: Any) -> None:
    res, _ = _claude_against(tmp_path, monkeypatch, key_set=True)
    assert "route is down" not in res.output and "`claude` CLI is not installed" in res.output, res.output
    assert "scripts/install-claude-code.sh" in res.output, res.output


def test_tierwise_claude_finds_the_cli_the_checkouts_script_installed(tmp_path: Path, monkeypatch: Any) -> None:
    # Before (newuser27): after `bash scripts/install-claude-code.sh` in the checkout (the README's editable
    # install), `tierwise claude` run from the user's own project folder said "not installed: npm install -g";
    # it looked only on PATH and in the current folder's .tools.
    import stat

    checkout = tmp_path / "checkout"
    bin_dir = checkout / ".tools" / "claude-code" / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True)
    seen = tmp_path / "seen-base-url"
    fake = bin_dir / "claude"
    fake.write_text(f"#!/bin/sh\nprintf '%s' \"$ANTHROPIC_BASE_URL\" > '{seen}'  # a shell builtin: PATH is empty\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    res, _ = _claude_against(tmp_path, monkeypatch, key_set=True, checkout=checkout)
    assert res.exit_code == 0 and "not installed" not in res.output, res.output
    assert seen.read_text().startswith("http://127.0.0.1:"), seen.read_text()


def test_tierwise_claude_does_not_run_a_cli_planted_in_the_current_folder(tmp_path: Path, monkeypatch: Any) -> None:
    # Before (review27b): `tierwise claude` run inside a project the user had just cloned ran that project's
    # `.tools/claude-code/node_modules/.bin/claude` when none was on PATH: any repository could ship one and
    # have it run, with the user's environment (their keys) and before Claude Code asks whether to trust the
    # folder. Only PATH and the checkout tierwise itself runs from are looked in.
    import stat

    planted = tmp_path / ".tools" / "claude-code" / "node_modules" / ".bin"
    planted.mkdir(parents=True)
    ran = tmp_path / "planted-ran"
    fake = planted / "claude"
    fake.write_text(f"#!/bin/sh\nprintf x > '{ran}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    res, _ = _claude_against(tmp_path, monkeypatch, key_set=True)  # (run from tmp_path, no checkout)
    assert not ran.exists(), res.output
    assert res.exit_code == 1 and "`claude` CLI is not installed" in res.output, res.output


def test_a_wheel_install_has_no_checkout_to_look_in() -> None:
    from tierwise.commands.claude import checkout_root

    assert checkout_root(Path("/venv/lib/python3.12/site-packages/tierwise/commands/claude.py")) is None
    assert checkout_root(Path("/home/u/tierwise/src/tierwise/commands/claude.py")) == Path("/home/u/tierwise")


def _eval_error(tmp_path: Path, monkeypatch: Any, name: str, content: str) -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(content)
    res = CliRunner().invoke(cli, ["eval", name, "-r", "linear", "--ci", "0"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    return res.output


def test_eval_of_a_csv_file_without_the_fields_says_what_its_header_needs(tmp_path: Path, monkeypatch: Any) -> None:
    # Before: "unknown benchmark 'data.csv'; choose one of: mmlu, ..." about a file that was right there. Since
    # session 24 a .csv with a header is read (tests/evaluation/test_jsonl_odd_files.py); one without `prompt` says so.
    out = _eval_error(tmp_path, monkeypatch, "data.csv", "question,gpt4,mixtral\nhi,1,0\n")
    assert "data.csv:1: the header row names question, gpt4, mixtral" in out and "`prompt`, `strong` and `weak`" in out
    out = _eval_error(tmp_path, monkeypatch, "data.jsonl", "prompt,strong,weak\nhi,1,0\n")
    assert "data.jsonl:1: not valid JSON" in out and "looks like CSV or TSV" in out and "one JSON object a line" in out


def test_eval_of_a_pretty_printed_json_file_says_one_object_a_line(tmp_path: Path, monkeypatch: Any) -> None:
    # A .json array is read since session 24 (tests/evaluation/test_jsonl_odd_files.py); under a .jsonl name it is
    # still named as one document spread over lines.
    out = _eval_error(tmp_path, monkeypatch, "data.jsonl", '[\n  {"prompt": "a", "strong": 1, "weak": 0}\n]\n')
    assert "data.jsonl:1: not valid JSON" in out and "one JSON document spread over lines" in out, out
    out = _eval_error(tmp_path, monkeypatch, "data.json", '{"rows": [{"prompt": "a", "strong": 1, "weak": 0}]}\n')
    assert "data.json:1: no `prompt`" in out, out  # one object, not an array: read as a JSONL row, as before


def test_eval_of_a_name_that_is_neither_a_benchmark_nor_a_file_says_both(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["eval", "mine"])
    assert res.exit_code == 2 and "no file of that name here" in res.output and "JSONL file" in res.output


def test_a_port_out_of_range_is_refused_not_wrapped(tmp_path: Path, monkeypatch: Any) -> None:
    # Before: `serve --port 99999` served on 34463 (the socket layer takes the port modulo 65536) and said so
    # as if nothing were wrong; `--port -5` failed with "Servname not supported for ai_socktype".
    import subprocess
    import sys

    for argv in (["serve", "--port", "99999"], ["serve", "--port", "-5"], ["mcp", "--transport", "http", "--port",
                 "70000"], ["replay-serve", "gsm8k", "--port", "65536"]):
        try:  # a process, so that a server that does start is stopped (by the timeout: a failure)
            p = subprocess.run([sys.executable, "-m", "tierwise.cli", *argv], cwd=tmp_path, capture_output=True,
                               text=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{argv}: started serving instead of refusing the port") from None
        assert p.returncode == 2 and "is not in the range 0<=x<=65535" in p.stderr, (argv, p.stderr)


def test_an_unknown_log_level_is_a_usage_error_not_a_traceback(tmp_path: Path, monkeypatch: Any) -> None:
    # Before: logging.basicConfig raised ValueError("Unknown level: 'FOO'") with a traceback.
    monkeypatch.chdir(tmp_path)
    for cmd in ("serve", "worker"):
        res = CliRunner().invoke(cli, [cmd, "--log-level", "foo"])
        assert res.exit_code == 2 and "Invalid value for '--log-level'" in res.output, (cmd, res.output)


def test_every_command_groups_help_lists_whole_summaries() -> None:
    # Before: only the top-level list was whole; `tierwise cache --help` cut `invalidate` at "(both:...".
    import click

    ctx = click.Context(cli)
    groups = [n for n in cli.list_commands(ctx) if isinstance(cli.get_command(ctx, n), click.Group)]
    assert {"approvals", "cache", "data", "ensemble", "flywheel"} <= set(groups)
    for name in groups:
        res = CliRunner().invoke(cli, [name, "--help"], terminal_width=80)
        assert res.exit_code == 0, res.output
        listing = res.output.split("Commands:", 1)[1]
        assert "..." not in listing, (name, listing)


def test_an_unknown_route_target_names_its_own_line_and_the_closest_name(tmp_path: Path) -> None:
    # Before: `line 1: routes.main: refers to unknown model or route 'qwn'`, the route's first line, however far
    # down the rule with the typo was, and no guess.
    path = tmp_path / "tierwise.yaml"
    path.write_text("providers:\n  local: {kind: openai, base_url: 'http://127.0.0.1:9/v1', locality: local}\n"
                    "models:\n  qwen: {provider: local, model: qwen}\n"
                    "routes:\n  main:\n    policy: rules\n    rules:\n      - name: long\n"
                    "        match: {min_input_tokens: 100}\n        target: qwn\n    default: qwen\n")
    line = _doctor(path)
    assert "line 11: routes.main.rules[0].target: refers to unknown model or route 'qwn'" in line, line
    assert "did you mean `qwen`?" in line, line


def test_ensemble_create_under_another_name_says_how_to_fix_it(tmp_path: Path, monkeypatch: Any) -> None:
    # Before: "the file says name 'code-review-swarm', not 'mine'", and nothing on what to do.
    monkeypatch.chdir(tmp_path)
    src = Path(__file__).resolve().parents[2] / "examples" / "ensembles" / "code-review-swarm.yaml"
    res = CliRunner().invoke(cli, ["ensemble", "create", "mine", "--from-file", str(src)])
    assert res.exit_code != 0 and "create it as 'code-review-swarm'" in res.output, res.output
    assert "change its `name:` to 'mine'" in res.output and not (tmp_path / ".tierwise" / "ensembles").exists()


def test_audit_prove_without_a_request_is_a_usage_error(tmp_path: Path, monkeypatch: Any) -> None:
    # Before: `--prove` alone was ignored and the by-route table printed, exit 0, as if proof had been given.
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["audit", "--prove"])
    assert res.exit_code == 2 and "--prove checks one request: add --request ID" in res.output, res.output


def test_init_path_in_a_folder_not_there_yet_writes_it_there(tmp_path: Path, monkeypatch: Any) -> None:
    # Before: FileNotFoundError with a traceback, although `tierwise serve -c configs/x.yaml` on a missing file
    # tells the user to run exactly `tierwise init --path configs/x.yaml`.
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["init", "--path", "configs/x.yaml"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "configs" / "x.yaml").is_file() and "`tierwise doctor -c configs/x.yaml`" in res.output


def test_init_path_that_is_a_folder_or_cannot_be_written_is_one_line(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    res = CliRunner().invoke(cli, ["init", "--path", "adir", "--force"])
    assert res.exit_code == 1 and "adir is a folder: name the file to write" in res.output, res.output
    (tmp_path / "afile").write_text("x")
    res = CliRunner().invoke(cli, ["init", "--path", "afile/tierwise.yaml"])
    assert res.exit_code == 1 and res.output.startswith("Error: cannot write afile/tierwise.yaml"), res.output


def test_doctor_does_not_tell_a_vllm_user_to_start_ollama(tmp_path: Path) -> None:
    # Before: every unreachable local provider got "start it (e.g. `ollama serve`)", vLLM on 8000 included.
    from tests.harness import free_port

    port = free_port()
    path = tmp_path / "tierwise.yaml"
    path.write_text(f"providers:\n  vllm: {{kind: openai, base_url: 'http://127.0.0.1:{port}/v1', locality: local}}\n"
                    "models:\n  m: {provider: vllm, model: x}\nroutes:\n  main: [m]\n")
    res = CliRunner().invoke(cli, ["doctor", "-c", str(path)])
    line = next(ln for ln in res.output.splitlines() if "provider vllm" in ln)
    assert "cannot connect" in line and "ollama" not in line and "start the model server it names" in line, line


def test_a_privacy_mapping_key_not_set_says_how_to_make_one(tmp_path: Path, monkeypatch: Any) -> None:
    # Before: "must hold 64 hex digits (an AES-256 key)", nothing on whether it was unset or how to make one.
    monkeypatch.delenv("TW_TEST_PRIVACY_KEY", raising=False)
    path = tmp_path / "tierwise.yaml"
    path.write_text("providers:\n  local: {kind: openai, base_url: 'http://127.0.0.1:9/v1', locality: local}\n"
                    "models:\n  qwen: {provider: local, model: qwen}\nroutes:\n  main: [qwen]\n"
                    "privacy:\n  mapping: {key_env: TW_TEST_PRIVACY_KEY}\n")
    line = _doctor(path)
    assert "TW_TEST_PRIVACY_KEY is not set" in line and "secrets.token_hex(32)" in line, line
    monkeypatch.setenv("TW_TEST_PRIVACY_KEY", "abc")
    line = _doctor(path)
    assert "TW_TEST_PRIVACY_KEY holds something else" in line and "abc" not in line.split(":", 1)[1], line


def test_serve_says_it_loads_the_ner_model_before_the_seconds_it_takes(tmp_path: Path) -> None:
    # Before: with a privacy section and the NER extra, `serve` printed nothing for ~10 s, then `serving on`.
    import importlib.util

    from tests.harness import unavailable

    if importlib.util.find_spec("spacy") is None:
        unavailable("the privacy-ner extra is not installed (scripts/test.sh installs it)")
    base = ("ledger: {enabled: false}\n"
            "providers: {up: {kind: anthropic, base_url: 'http://127.0.0.1:9', locality: remote}}\n"
            "models: {m: {provider: up, model: x}}\nroutes: {main: m}\n")
    # (read up to that line: `serve` prints it before loading the model, so the ~10 s load is not waited for)
    lines = _serve_warnings(tmp_path, base + "privacy: {classes: {pii: {}}, policy: {pii: redact}}\n",
                            until="NER model")
    assert any("loading the privacy detectors' NER model (en_core_web_sm" in ln for ln in lines), lines
    lines = _serve_warnings(tmp_path, base + "privacy: {classes: {pii: {}}, policy: {pii: redact}, ner: {enabled: false}}\n")
    assert not any("NER" in ln for ln in lines), lines


def test_a_client_that_connects_as_soon_as_serve_says_serving_is_answered(tmp_path: Path) -> None:
    # Before: `serving on` was printed while the socket was bound but not listening; a client (a script, `tierwise
    # claude`) that connected on that line was refused (curl: 000) until uvicorn had started, about a second later.
    import os
    import socket
    import subprocess
    import sys

    from tierwise.commands.serve import bind

    sock = bind("127.0.0.1", 0)
    with sock, socket.create_connection(sock.getsockname(), timeout=5):
        pass  # the socket `serve` holds when it says `serving on` already takes connections

    (tmp_path / "tierwise.yaml").write_text("ledger: {enabled: false}\n"
                                            "providers: {up: {kind: openai, base_url: 'http://127.0.0.1:9/v1'}}\n"
                                            "models: {m: {provider: up, model: x}}\nroutes: {main: m}\n")
    env = {k: v for k, v in os.environ.items() if k != "TIERWISE_CONFIG"}
    proc = subprocess.Popen([sys.executable, "-m", "tierwise.cli", "serve", "--port", "0"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        while (line := proc.stderr.readline()) and "serving on" not in line:
            pass
        port = int(line.split("http://127.0.0.1:")[1].split(" ")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:  # on that very line
            client.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert client.makefile("rb").readline().startswith(b"HTTP/1.1 200")
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_a_privacy_mapping_key_not_set_stops_serve_before_the_ner_model_loads(tmp_path: Path) -> None:
    # Before: `serve` announced and loaded the NER model (10-30 s on 2 cores), and only then said the key was unset.
    import importlib.util

    from tests.harness import unavailable

    if importlib.util.find_spec("spacy") is None:
        unavailable("the privacy-ner extra is not installed (scripts/test.sh installs it)")
    config = ("ledger: {enabled: false}\n"
              "providers: {up: {kind: anthropic, base_url: 'http://127.0.0.1:9', locality: remote}}\n"
              "models: {m: {provider: up, model: x}}\nroutes: {main: m}\n"
              "privacy: {classes: {pii: {}}, mapping: {key_env: TW_TEST_UNSET_PRIVACY_KEY}}\n")
    lines = _serve_warnings(tmp_path, config)
    assert any("config error" in ln and "TW_TEST_UNSET_PRIVACY_KEY is not set" in ln for ln in lines), lines
    assert not any("NER" in ln for ln in lines), lines



def test_serve_with_workers_stops_on_sigterm_sent_while_the_workers_start(tmp_path: Path) -> None:
    # Before: the workers were forked with the parent's SIGTERM handler (it only marks the parent as stopping), so a
    # SIGTERM before uvicorn had put in its own (a supervisor stopping a gateway that had just started) was
    # swallowed: each such worker served on until the parent SIGKILLed it 30 s later.
    import os
    import subprocess
    import sys

    (tmp_path / "tierwise.yaml").write_text("ledger: {enabled: false}\n"
                                            "providers: {up: {kind: openai, base_url: 'http://127.0.0.1:9/v1'}}\n"
                                            "models: {m: {provider: up, model: x}}\nroutes: {main: m}\n")
    env = {k: v for k, v in os.environ.items() if k != "TIERWISE_CONFIG"}
    proc = subprocess.Popen([sys.executable, "-m", "tierwise.cli", "serve", "--workers", "2", "--port", "0"],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    while (line := proc.stderr.readline()) and "serving on" not in line:  # type: ignore[union-attr]
        pass
    proc.terminate()  # the workers are being forked, or building their apps
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 0 and "did not stop" not in err, err


def test_tierwise_claude_stops_when_the_gateway_refuses_its_key(tmp_path: Path, monkeypatch: Any) -> None:
    # Before: with the client key exported in the shell of `tierwise claude` but not (or another value) in the one
    # that ran `tierwise serve`, /health answered, Claude Code started and retried its 401s in silence for minutes.
    import yaml

    from tests.doubles.anthropic_double import AnthropicDouble
    from tests.harness import GatewayServer, make_config

    monkeypatch.setenv("PATH", str(tmp_path))  # no claude here: past the checks, it says it is not installed
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tierwise.commands.claude.CHECKOUT_ROOT", tmp_path / "no-checkout")
    monkeypatch.setenv("TW_TEST_GATEWAY_KEY", "tw-key-the-gateway-started-with")
    with AnthropicDouble() as up:
        cfg = {"ledger": {"enabled": False}, "server": {"api_keys_env": ["TW_TEST_GATEWAY_KEY"]},
               "providers": {"cloud": {"kind": "anthropic", "base_url": up.url}},
               "models": {"sonnet": {"provider": "cloud", "model": "claude-sonnet-4-5"}},
               "routes": {"main": ["sonnet"]}}
        (tmp_path / "tierwise.yaml").write_text(yaml.safe_dump(cfg))
        g = GatewayServer(make_config(cfg, tmp_path)).start()
        try:
            command = ["claude", "-c", str(tmp_path / "tierwise.yaml"), "--url", g.url, "-p", "hi"]
            monkeypatch.setenv("TW_TEST_GATEWAY_KEY", "tw-another-key-set-in-this-shell")
            refused = CliRunner().invoke(cli, command)
            monkeypatch.setenv("TW_TEST_GATEWAY_KEY", "tw-key-the-gateway-started-with")
            accepted = CliRunner().invoke(cli, command)
        finally:
            g.stop()
    assert refused.exit_code == 1 and "refuses the client key set here (HTTP 401)" in refused.output, refused.output
    assert "tw-another-key" not in refused.output and "not installed" not in refused.output
    assert "refuses" not in accepted.output and "`claude` CLI is not installed" in accepted.output, accepted.output


def test_boundary_without_a_learning_route_says_how_to_get_one(tmp_path: Path) -> None:
    # Before (newuser27): "no reflective or learned routes in this config" and nothing more; a newcomer trying
    # the README's `tierwise boundary` on `tierwise init`'s config did not learn what would give it a boundary.
    (tmp_path / "tierwise.yaml").write_text(
        "ledger: {enabled: false}\n"
        "providers:\n  mine: {kind: openai, base_url: 'http://127.0.0.1:9/v1', locality: local}\n"
        "models:\n  small: {provider: mine, model: x}\nroutes:\n  main: [small]\n")
    res = CliRunner().invoke(cli, ["boundary", "-c", str(tmp_path / "tierwise.yaml")])
    assert res.exit_code == 0, res.output
    assert "no reflective or learned routes" in res.output, res.output
    assert "policy: reflective" in res.output and "docs/learning.md" in res.output, res.output


def test_serve_says_which_routes_no_target_can_answer(tmp_path: Path) -> None:
    # Before: each provider's line said "routes fall back to other targets", also when none could answer
    # (the starter config with neither Ollama running nor a key set): every request then failed with 503.
    import socket

    from tests.harness import free_port

    dead, up = free_port(), socket.create_server(("127.0.0.1", 0))
    with up:
        config = ("ledger: {enabled: false}\n"
                  "providers:\n"
                  f"  mine: {{kind: openai, base_url: 'http://127.0.0.1:{dead}/v1', locality: local}}\n"
                  f"  live: {{kind: openai, base_url: 'http://127.0.0.1:{up.getsockname()[1]}/v1', locality: local}}\n"
                  "  cloud: {kind: anthropic, base_url: 'https://api.anthropic.com', api_key_env: NU27B_API_KEY}\n"
                  "models:\n  small: {provider: mine, model: x}\n  big: {provider: cloud, model: y}\n"
                  "  other: {provider: live, model: z}\n"
                  "routes:\n  main: [small, big]\n  spare: [small, other]\n")
        lines = _serve_warnings(tmp_path, config)
    assert not any("routes fall back to other targets" in ln for ln in lines), lines
    assert any(ln.startswith("tierwise: warning: route main: no target can answer") and "503" in ln
               for ln in lines), lines
    # A key not set is no outage: those requests get a 502 the SDKs do not retry (session 29; the line said 503).
    assert any(ln.startswith("tierwise: warning: route main: no target can answer") and "502, not retried" in ln
               for ln in lines), lines
    assert any(ln.startswith("tierwise: warning: route spare: falls back to its other targets") for ln in lines), lines


def test_every_option_of_every_command_has_help_text() -> None:
    # Before: 16 options (`init --path`, `requests --limit`, `report --by`, `serve --log-level`, …) showed only
    # their default in `--help`: nothing said what they do.
    import click

    missing = []

    def walk(cmd: click.Command, path: list[str], ctx: click.Context) -> None:
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, [*path, name], click.Context(sub, parent=ctx, info_name=name))
        missing.extend(f"{' '.join(path)} {p.opts[0]}" for p in cmd.params
                       if isinstance(p, click.Option) and not p.hidden and not p.help)

    walk(cli, ["tierwise"], click.Context(cli, info_name="tierwise"))
    assert not missing, missing
