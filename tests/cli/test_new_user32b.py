"""A team operator's Redis mistakes, as `doctor` and `serve` say them (session 32, newuser32b). Before: `doctor`
said `unreachable (ResponseError)` for a database number the server does not have (`/99`: Redis answers "DB index
is out of range") and `unreachable (AuthenticationError)` for a refused password, naming neither the cause nor the
setting; `serve` called the first `not reachable`. Both now say what Redis answered (scrubbed) and which setting
to fix, never the password."""

from __future__ import annotations

import sys

from click.testing import CliRunner

from tests.harness import one_model_config, serve_stderr
from tests.security.test_cli_redis_errors import RIGHT, auth_redis  # noqa: F401 - the fixture: a redis-server
from tierwise.cli import main

SECRET = "Team0perator-secret-32b"


def budgets_config(folder, url: str):
    return one_model_config(folder, f"""\
ledger: {{enabled: false}}
budgets:
  store: {{backend: redis, redis_url: "{url}"}}
  limits: [{{name: per-team-key, per: key, usd: 5, window: day}}]
""")


def doctor(path) -> str:
    result = CliRunner().invoke(main, ["doctor", "-c", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.output


def test_doctor_names_a_database_the_server_does_not_have(tmp_path, auth_redis):  # noqa: F811
    out = doctor(budgets_config(tmp_path, f"redis://:{RIGHT}@127.0.0.1:{auth_redis}/99"))
    line = next(x for x in out.splitlines() if x.startswith("✗ redis"))
    assert "DB index is out of range" in line and "fix budgets.store.redis_url" in line, line
    assert "unreachable" not in line and RIGHT not in out, out


def test_doctor_says_a_refused_password_is_one_and_where_to_fix_it(tmp_path, auth_redis):  # noqa: F811
    out = doctor(budgets_config(tmp_path, f"redis://someuser:{SECRET}@127.0.0.1:{auth_redis}/9"))
    line = next(x for x in out.splitlines() if x.startswith("✗ redis"))
    assert "refused the credentials" in line and "budgets.store.redis_url" in line, line
    assert SECRET not in out and RIGHT not in out, out


def test_serve_does_not_call_a_redis_that_answered_unreachable(tmp_path, auth_redis):  # noqa: F811
    import os

    path = budgets_config(tmp_path, f"redis://:{RIGHT}@127.0.0.1:{auth_redis}/99")
    env = {k: v for k, v in os.environ.items() if k != "TIERWISE_CONFIG"}
    out = serve_stderr([sys.executable, "-m", "tierwise.cli", "serve", "--port", "0", "-c", str(path)], tmp_path, env)
    line = next(x for x in out.splitlines() if "Redis at" in x)
    assert "DB index is out of range" in line and "budgets.store.redis_url" in line, line
    assert "not reachable" not in line and RIGHT not in out, out


def test_doctor_warns_of_a_per_key_budget_that_matches_no_key(tmp_path, monkeypatch):
    """`match: [team-alice]` where the key's name is its variable's, TEAM_ALICE_KEY: the budget covered no request
    and doctor said nothing (`No check failed`); the team's daily cap capped nothing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEAM_ALICE_KEY", "alice-key-of-the-team")
    rest = """\
ledger: {enabled: false}
server: {api_keys_env: [TEAM_ALICE_KEY, {env: TEAM_BOB_KEY, name: bob}]}
budgets:
  limits:
    - {name: alice-day, per: key, match: [team-alice], usd: 5, window: day}
    - {name: bob-day, per: key, match: [bob], usd: 5, window: day}
    - {name: all-day, per: key, match: ["TEAM_*"], usd: 5, window: day}
rate_limits:
  limits: [{name: alice-rpm, per: key, match: [alice], requests_per_minute: 60}]
"""
    out = doctor(one_model_config(tmp_path, rest))
    warned = [x for x in out.splitlines() if "matches no gateway key" in x]
    assert len(warned) == 2, out
    assert "budgets.limits alice-day" in warned[0] and "TEAM_ALICE_KEY, bob" in warned[0], warned
    assert "rate_limits.limits alice-rpm" in warned[1], warned
    assert "alice-key-of-the-team" not in out


def test_doctor_warns_when_no_otlp_receiver_listens(tmp_path, monkeypatch):
    """Tracing on, no collector: doctor said nothing, serve logged export failures and dropped every span."""
    import socket

    from tests.harness import free_port

    monkeypatch.chdir(tmp_path)
    port = free_port()
    rest = f"""\
ledger: {{enabled: false}}
observability: {{tracing: {{endpoint: "http://otlp-user:Otlp-token-32b@127.0.0.1:{port}/v1/traces"}}}}
"""
    out = doctor(one_model_config(tmp_path, rest))
    line = next((x for x in out.splitlines() if "observability.tracing.endpoint" in x), "")
    assert line.startswith("! ") and f"nothing answers at 127.0.0.1:{port}" in line, out
    assert "Otlp-token-32b" not in out and "otlp-user" not in out, out
    with socket.create_server(("127.0.0.1", 0)) as listening:  # a receiver: no warning
        rest = rest.replace(str(port), str(listening.getsockname()[1]))
        out = doctor(one_model_config(tmp_path, rest))
    assert "observability.tracing.endpoint" not in out, out


def test_tierwise_claude_waits_for_a_gateway_still_starting(monkeypatch):
    """`serve` listens before its start-up ends; on a loaded machine `/health` was answered after more than 3 s and
    `tierwise claude` said "no gateway answers ... (TimeoutError): start it first" of a gateway that was running.
    Here the "gateway" takes connections but answers none until the client's second try: a wait, not a refusal."""
    import socket
    import threading

    import click
    import pytest

    from tierwise import no_redirects
    from tierwise.commands import claude

    started = threading.Event()
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    held = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            if not started.is_set():
                held.append(conn)  # still starting: the connection is taken, nothing is answered
                continue
            with conn:
                conn.recv(65536)
                body = b'{"status": "ok"}'
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (len(body), body))

    threading.Thread(target=serve, daemon=True).start()
    real = no_redirects.urlopen
    calls = []

    def counted(req, timeout):
        calls.append(timeout)
        if len(calls) == 2:
            started.set()
        return real(req, timeout=timeout)

    monkeypatch.setattr(no_redirects, "urlopen", counted)
    try:
        claude._check_gateway(f"http://127.0.0.1:{port}", "tw.yaml")  # returns: it waited and got its answer
    except click.ClickException as e:
        pytest.fail(e.message)
    finally:
        started.set()
        server.close()
        for conn in held:
            conn.close()
    assert len(calls) == 2
