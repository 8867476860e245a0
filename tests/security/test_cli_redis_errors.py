"""Every CLI command that reads a Redis URL from the config, against a Redis that refuses the password (a real
redis-server with `requirepass`, started here), one that is not there, and URLs whose password does not parse:
the password (or token) never reaches the output, and the answer is one line naming host:port, not a traceback
(session 25, secrets25). Before: `budgets` printed redis-py's text as it came, `cache` printed a traceback, and a
password holding an unencoded `/` came out in part (`Port could not be cast to integer value as 'Frag7Secret'`)
from `budgets`, and in tracebacks from `cache`, `doctor` and `worker --list`."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.harness import free_port, one_model_config, serve_stderr
from tierwise.cli import main

RIGHT = "Right-pass-of-the-server-91"
COMMANDS = {"budgets": ["budgets"], "cache stats": ["cache", "stats"], "cache clear": ["cache", "clear"],
            "cache invalidate": ["cache", "invalidate", "--route", "main"], "worker --list": ["worker", "--list"],
            "doctor": ["doctor"]}


@pytest.fixture(scope="module")
def auth_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    import redis

    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    folder = tmp_path_factory.mktemp("authredis")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                             "--save", "", "--appendonly", "no", "--requirepass", RIGHT],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            if redis.Redis(port=port, password=RIGHT, socket_connect_timeout=0.2).ping():
                break
        except redis.exceptions.RedisError:
            pass
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield port
    proc.kill()
    proc.wait(10)


def write_config(folder: Path, url: str) -> Path:
    return one_model_config(folder, f"""\
cache: {{enabled: true, backend: redis, redis_url: "{url}", all_routes: true}}
budgets:
  store: {{backend: redis, redis_url: "{url}"}}
  limits: [{{name: day, usd: 10}}]
dispatch: {{redis_url: "{url}"}}
""")


def run_all(folder: Path, url: str, *secrets: str) -> dict[str, str]:
    path = write_config(folder, url)
    outs = {}
    for name, args in COMMANDS.items():
        result = CliRunner().invoke(main, [*args, "-c", str(path)])
        out = result.output + (f"\n{result.exception!r}" if not isinstance(result.exception, SystemExit | None)
                               else "")
        for s in secrets:
            assert s not in out, (name, s, out)
        assert result.exception is None or isinstance(result.exception, SystemExit), (name, out)  # no traceback
        assert result.exit_code != 0 or name == "doctor", (name, out)
        outs[name] = out
    return outs


@pytest.mark.parametrize("userinfo,secret", [
    (":Wr0ng-pass-secrets25", "Wr0ng-pass-secrets25"),
    ("someuser:Us3r-pass-secrets25", "Us3r-pass-secrets25"),
    ("Tok3nAsUserNameSecrets25", "Tok3nAsUserNameSecrets25"),  # a token as the whole userinfo
])
def test_a_refused_password_is_one_line_without_it(tmp_path, monkeypatch, auth_redis, userinfo, secret):
    monkeypatch.chdir(tmp_path)
    outs = run_all(tmp_path, f"redis://{userinfo}@127.0.0.1:{auth_redis}/14", secret, RIGHT)
    for name in ("budgets", "cache stats", "cache clear", "cache invalidate"):
        assert f"from Redis at 127.0.0.1:{auth_redis} (AuthenticationError" in outs[name], outs[name]
        assert outs[name].count("\n") <= 2, outs[name]
    assert "AuthenticationError" in outs["worker --list"] and "AuthenticationError" in outs["doctor"]


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
def test_an_unreachable_redis_is_one_line_without_the_password(tmp_path, monkeypatch, scheme):
    monkeypatch.chdir(tmp_path)
    port = free_port()
    outs = run_all(tmp_path, f"{scheme}://tls-user:D0wn-pass-secrets25@127.0.0.1:{port}/14", "D0wn-pass-secrets25")
    for name in ("budgets", "cache stats", "cache clear"):
        assert f"from Redis at 127.0.0.1:{port} (ConnectionError" in outs[name], outs[name]


def test_a_slow_tls_setup_does_not_make_a_refused_redis_a_timeout(tmp_path, monkeypatch):
    """Session 31: redis-py builds a `rediss://` client's TLS context (the CA bundle loaded) on its first connect,
    inside the connect timeout (`budgets.store.timeout`, `cache.redis_timeout`: 0.5 s); on a loaded machine that
    build alone passed it, and a Redis that refused the connection read `TimeoutError: Timeout connecting to
    server`. The second of sleep stands for that machine."""
    import ssl

    real = ssl.create_default_context

    def slowed(*args: object, **kw: object) -> ssl.SSLContext:
        time.sleep(1.0)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", slowed)
    monkeypatch.chdir(tmp_path)
    port = free_port()
    path = write_config(tmp_path, f"rediss://127.0.0.1:{port}/14")
    for name in ("budgets", "cache stats", "cache clear"):
        out = CliRunner().invoke(main, [*COMMANDS[name], "-c", str(path)]).output
        assert f"from Redis at 127.0.0.1:{port} (ConnectionError" in out, (name, out)


@pytest.mark.parametrize("userinfo,fragment", [
    (":Frag7Secret/rest-of-it", "Frag7Secret"),    # the part before `/` was read as the port, and printed
    (":Frag8Secret?rest-of-it", "Frag8Secret"),
    (":Frag9Secret#rest-of-it", "Frag9Secret"),
    (":00404/rest-of-it", "00404"),  # a numeric start is a port that parses: redis-py dialled localhost:404
])
def test_a_password_that_breaks_the_url_is_refused_at_load_without_repeating_it(tmp_path, monkeypatch, auth_redis,
                                                                              userinfo, fragment):
    monkeypatch.chdir(tmp_path)
    outs = run_all(tmp_path, f"redis://{userinfo}@127.0.0.1:{auth_redis}/14", fragment, "rest-of-it")
    for name, out in outs.items():
        # (`worker --list` reads only the dispatch and blackboard sections since session 38: it names dispatch's URL)
        field = "dispatch.redis_url" if name == "worker --list" else "cache.redis_url"
        assert field in out and "percent-encoded" in out, (name, out)


def test_a_percent_encoded_password_still_works(tmp_path, monkeypatch, auth_redis):
    """The refusal above asks for %2F: such a URL loads and reaches the server (wrong password: refused there)."""
    monkeypatch.chdir(tmp_path)
    out = run_all(tmp_path, f"redis://:Enc%2Fpass-secrets25@127.0.0.1:{auth_redis}/14", "Enc/pass-secrets25",
                  "Enc%2Fpass-secrets25")["budgets"]
    assert "AuthenticationError" in out


def _serve_argv(tmp_path, redis_url: str) -> list[str]:
    """`tierwise serve` of a one-route config in distributed mode on `redis_url`."""
    import sys

    path = one_model_config(tmp_path, f"""\
ledger: {{enabled: false}}
dispatch: {{redis_url: "{redis_url}", tenant: acme}}
""", route="{capability: classify}")
    return [sys.executable, "-m", "tierwise.cli", "serve", "--port", "0", "-c", str(path)]


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "TIERWISE_CONFIG"}


@pytest.mark.parametrize("userinfo,secret", [(":Wr0ng-serve-secrets26", "Wr0ng-serve-secrets26"),
                                             ("someuser:Us3r-serve-secrets26", "Us3r-serve-secrets26")])
def test_serve_with_a_refused_password_stops_at_start_in_one_line_without_it(tmp_path, auth_redis, userinfo, secret):
    """Before (session 26's leftovers): `serve` in distributed mode with a wrong password started silently, /health
    said ok and every capability request said "no worker serves capability" (redis-py's AuthenticationError is a
    ConnectionError: the dispatcher waited for a Redis "away" that was answering)."""
    r = subprocess.run(_serve_argv(tmp_path, f"redis://{userinfo}@127.0.0.1:{auth_redis}/14"), cwd=tmp_path,
                       env=_env(), capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert secret not in out and RIGHT not in out and "Traceback" not in out and "serving on" not in out, out
    line = next(x for x in out.splitlines() if "refused the credentials" in x)
    assert f"Redis at 127.0.0.1:{auth_redis} (dispatch)" in line and "AuthenticationError" in line, line
    assert "dispatch.redis_url" in line, line


def test_serve_warns_of_an_unreachable_redis_and_still_starts(tmp_path):
    """Not reachable is an outage distributed mode rides out: a warning, the gateway serves."""

    port = free_port()
    out = serve_stderr(_serve_argv(tmp_path, f"redis://:D0wn-serve-secrets26@127.0.0.1:{port}/14"), tmp_path, _env())
    assert "serving on" in out, out
    assert f"warning: Redis at 127.0.0.1:{port} (dispatch) is not reachable" in out, out
    assert "D0wn-serve-secrets26" not in out
