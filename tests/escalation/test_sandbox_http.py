"""Prompt-injected model code against the `python_code` verifier of a cascade route, through the
real gateway over loopback HTTP: each escape would turn the local model's wrong answer into a
pass; none does, so the route escalates to the frontier model. A full sandbox escalates too, and
a gateway whose code verifier would run without bubblewrap does not start."""

from __future__ import annotations

import concurrent.futures
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doubles import Reply
from tests.gateway.conftest import oai
from tests.harness import make_config, two_tier_config
from tests.verifiers.test_sandbox import need_layer
from tierwise import sandbox
from tierwise.errors import ConfigError
from tierwise.sandbox import bwrap as bwrap_mod
from tierwise.server.build import build_gateway

TESTS = "assert add(2, 3) == 5"
RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"
# Right only when the escape worked: the wrong answer then passes its tests.
RIGHT_IF_ESCAPED = "def add(a, b):\n    return a + b if ESCAPED else a - b\n"
MSG = [{"role": "user", "content": "Write add(a, b) in Python."}]

# Each escape raises unless it reached what it was after. The answer tries it in a child interpreter
# started with _posixsubprocess.fork_exec (not audited in 3.11: no hook there), then in its own
# process (under the audit hook); if either worked, `add` turns right and the tests pass.
# A chroot inside the jail, then up: out of a jail built with chroot (not pivot_root).
CHROOT_OUT = "import os\nos.mkdir('j')\nos.chroot('j')\nfor _ in range(64):\n    os.chdir('..')\nos.chroot('.')\n"
ESCAPES = {
    "chroot": CHROOT_OUT + "assert 'root:' in open('/etc/passwd').read()\n",
    "dir_fd": "import os\nfd = os.open('/', os.O_RDONLY)\nassert b'root:' in os.read(os.open('etc/passwd', os.O_RDONLY, dir_fd=fd), 99)\n",
    "ledger": "open(LEDGER, 'rb').read(1)\n",
    "postgres": CHROOT_OUT + "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('/var/run/postgresql/.s.PGSQL.5432')\n",
    "redis": "import socket\ns = socket.create_connection(('127.0.0.1', 6379), timeout=2)\ns.sendall(b'PING\\r\\n')\n"
             "assert b'PONG' in s.recv(64)\n",
    "ctypes_fork": "import os, ctypes\npid = ctypes.CDLL(None).fork()\nif pid == 0:\n    os._exit(0)\nassert pid > 0\n",
}
ATTEMPT = """import os, sys
ESCAPE = {escape!r}
def _attempt():
    try:
        import _posixsubprocess
        r, w = os.pipe()
        args = [sys.executable.encode(), b'-c', ESCAPE.encode()]
        pid = _posixsubprocess.fork_exec(args, [args[0]], True, (w,), None, None, -1, -1, -1, -1, -1, -1, r, w,
                                         True, False, -1, None, None, None, -1, None, False)
        os.close(w)
        if os.waitpid(pid, 0)[1] == 0:
            return True
    except BaseException:
        pass
    try:
        exec(ESCAPE, {{}})
        return True
    except BaseException:
        return False
ESCAPED = _attempt()
"""


def test_control_an_escape_would_pass_the_check(gateway, openai_up, anthropic_up) -> None:
    """What each escape aims for: with ESCAPED true the answer passes its tests (hence the
    escalations above are the escapes failing, not the mechanism)."""
    g = gateway(_config(openai_up.url, anthropic_up.url))
    answer = f"```python\nESCAPED = True\n{RIGHT_IF_ESCAPED}```"
    openai_up.script(Reply(text=answer))
    r = oai(g).chat.completions.create(model="main", messages=MSG)
    assert r.choices[0].message.content == answer and not anthropic_up.requests


@pytest.fixture(autouse=True)
def default_sandbox() -> Iterator[None]:
    need_layer("seccomp", "bubblewrap with seccomp is not available here")
    yield
    sandbox.configure()


def _config(openai_url: str, anthropic_url: str, **sandbox_cfg: object) -> dict:
    routes = {"main": {"policy": "cascade", "tiers": ["local", "frontier"],
                       "verifiers": [{"type": "python_code", "tests": TESTS, "timeout_s": 20}]}}
    cfg = two_tier_config(openai_url, anthropic_url, routes=routes)
    if sandbox_cfg:
        cfg["sandbox"] = sandbox_cfg
    return cfg


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_an_escaping_answer_fails_its_check_and_escalates(escape, gateway, openai_up, anthropic_up,
                                                          tmp_path: Path) -> None:
    g = gateway(_config(openai_up.url, anthropic_up.url))
    code = ATTEMPT.format(escape=ESCAPES[escape].replace("LEDGER", repr(str(tmp_path / "ledger.db"))))
    openai_up.script(Reply(text=f"```python\n{code}{RIGHT_IF_ESCAPED}```"))
    anthropic_up.script(Reply(text=RIGHT))
    r = oai(g).chat.completions.with_raw_response.create(model="main", messages=MSG)
    answer = r.parse()
    assert answer.choices[0].message.content == RIGHT
    assert len(anthropic_up.requests) == 1
    g.flush()
    row = g.ledger.get(r.headers["x-tierwise-request-id"])
    assert row is not None and "root:x" not in repr(row)


def test_a_full_sandbox_escalates_instead_of_failing_the_request(gateway, openai_up, anthropic_up) -> None:
    g = gateway(_config(openai_up.url, anthropic_up.url, max_concurrent=1, max_waiting=0))
    slow_right = "```python\nimport time\ntime.sleep(3)\ndef add(a, b):\n    return a + b\n```"
    openai_up.script(Reply(text=slow_right), Reply(text=slow_right))
    anthropic_up.script(Reply(text=RIGHT))
    client = oai(g)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: client.chat.completions.create(model="main", messages=MSG), range(2)))
    assert sorted(a.choices[0].message.content for a in answers) == sorted([slow_right, RIGHT])
    assert len(anthropic_up.requests) == 1


def test_without_bubblewrap_the_gateway_does_not_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)
    sandbox.status.cache_clear()
    try:
        cfg = make_config(_config("http://127.0.0.1:9", "http://127.0.0.1:9"), tmp_path)
        with pytest.raises(ConfigError, match="bubblewrap"):
            build_gateway(cfg)
        cfg = make_config(_config("http://127.0.0.1:9", "http://127.0.0.1:9", allow_weak=True), tmp_path)
        build_gateway(cfg)
    finally:
        sandbox.status.cache_clear()


def test_concurrent_checks_each_run_as_a_uid_of_their_own(gateway, openai_up, anthropic_up) -> None:
    """Two requests at once through the gateway, each a split check (two sandboxes): with
    `sandbox.run_as_range` the four processes are four users, and each verdict's record says which
    (`runs_as`); with one `run_as` every run was uid 65534 (tests/security/test_sandbox_cross_run.py
    shows what one weak run did to another then)."""
    if os.geteuid() != 0:
        pytest.fail("this check needs a root gateway (CI runs as root): only root switches users")
    g = gateway(_config(openai_up.url, anthropic_up.url, max_concurrent=4, run_as_range="61184-61191"))
    slow_right = "```python\nimport time\ntime.sleep(2)\ndef add(a, b):\n    return a + b\n```"
    openai_up.script(Reply(text=slow_right), Reply(text=slow_right))
    client = oai(g).chat.completions.with_raw_response
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        raws = list(pool.map(lambda _: client.create(model="main", messages=MSG), range(2)))
    assert not anthropic_up.requests
    g.flush()
    seen = []
    for raw in raws:
        row = g.ledger.get(raw.headers["x-tierwise-request-id"])
        assert row is not None
        detail = next(s["detail"] for s in row.steps if s.get("detail", {}).get("isolation") == "split")
        assert "own_uid" in detail["layers"], detail
        seen.append(detail["runs_as"])
    uids = [int(u) for text in seen for u in re.findall(r"uid (\d+)", text)]
    assert len(uids) == 4 and len(set(uids)) == 4 and all(61184 <= u <= 61191 for u in uids), seen
