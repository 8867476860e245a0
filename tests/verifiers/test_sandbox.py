"""The code sandbox holds: no network, no files outside its temp dir, no processes, bounded
CPU, memory, wall time and output — and ordinary code still runs."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tierwise.verifiers.sandbox import SandboxLimits, _isolation, run_python

FAST = SandboxLimits(wall_s=20, cpu_s=2, memory_mb=256)


def need_layer(layer: str, why: str) -> None:
    """Skip where this machine cannot give `layer`; in CI a missing layer is a failure, not a skip."""
    if layer in _isolation().layers:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"sandbox layer {layer!r} is missing in CI: {why}")
    pytest.skip(why)


async def test_normal_code_runs_and_sees_its_files() -> None:
    code = "import json, collections, asyncio, subprocess\nfrom helper import VALUE\nprint(json.dumps({'v': VALUE}))\n"
    r = await run_python(code, files={"helper.py": "VALUE = 42\n"}, limits=FAST)
    assert r.ok, r.stderr
    assert r.stdout.strip() == '{"v": 42}'


async def test_code_may_write_inside_its_temp_dir() -> None:
    code = "open('out.txt', 'w').write('hello')\nimport os\nprint(open('out.txt').read(), os.listdir('.'))\n"
    r = await run_python(code, limits=FAST)
    assert r.ok, r.stderr
    assert "hello" in r.stdout and "out.txt" in r.stdout


async def test_environment_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERWISE_TEST_SECRET", "sk-should-not-leak")
    r = await run_python("import os\nprint(sorted(os.environ))\n", limits=FAST)
    assert r.ok, r.stderr
    assert "sk-should-not-leak" not in r.stdout
    # Nothing but what the interpreter sets itself (C locale coercion) reaches the code.
    assert set(eval(r.stdout)) <= {"LC_CTYPE"}, r.stdout  # noqa: S307 - our own printed list


async def test_cannot_open_a_socket() -> None:
    code = "import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 9))\nprint('CONNECTED')\n"
    r = await run_python(code, limits=FAST)
    assert not r.ok
    assert "CONNECTED" not in r.stdout
    assert "PermissionError" in r.stderr


async def _listener() -> tuple[asyncio.base_events.Server, int, list[bool]]:
    seen: list[bool] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(True)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


async def test_network_namespace_alone_blocks_loopback_connections() -> None:
    """With the audit hook off, the network namespace still keeps the code off the host's loopback."""
    need_layer("netns", "unshare cannot create a network namespace on this machine")
    server, port, seen = await _listener()
    async with server:
        code = ("import socket\ns = socket.socket()\ns.settimeout(3)\n"
                f"print('RC', s.connect_ex(('127.0.0.1', {port})))\n")
        r = await run_python(code, limits=FAST, audit_hook=False)
        await asyncio.sleep(0.2)
    assert "RC 0" not in r.stdout, r.stdout + r.stderr
    assert not seen


async def test_audit_hook_alone_blocks_loopback_connections() -> None:
    server, port, seen = await _listener()
    async with server:
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)\nprint('CONNECTED')\n"
        r = await run_python(code, limits=FAST)
        await asyncio.sleep(0.2)
    assert "CONNECTED" not in r.stdout
    assert not seen


@pytest.fixture
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("user-files") / "secret.txt"
    path.write_text("TOP-SECRET-CONTENT")
    path.chmod(0o644)
    return str(path)


@pytest.mark.parametrize("snippet", [
    "print(open({p!r}).read())",
    "import os\nfd = os.open({p!r}, os.O_RDONLY)\nprint(os.read(fd, 100))",
    "import pathlib\nprint(pathlib.Path({p!r}).read_text())",
    "import io\nprint(io.open({p!r}).read())",
    "import subprocess\nprint(subprocess.run(['cat', {p!r}], capture_output=True).stdout)",
    "import os\nos.system('cat ' + {p!r})",
])
async def test_cannot_read_a_file_outside_the_temp_dir(secret_file: str, snippet: str) -> None:
    r = await run_python(snippet.format(p=secret_file) + "\n", limits=FAST)
    assert not r.ok
    assert "TOP-SECRET-CONTENT" not in r.stdout + r.stderr


async def test_cannot_list_or_change_files_outside_the_temp_dir(secret_file: str) -> None:
    folder = os.path.dirname(secret_file)
    for snippet in (f"import os\nprint(os.listdir({folder!r}))",
                    f"import os\nos.remove({secret_file!r})",
                    f"open({folder + '/new.txt'!r}, 'w').write('x')",
                    f"import os\nos.rename({secret_file!r}, 'stolen.txt')",
                    "import ctypes\nctypes.CDLL(None).system(b'true')"):
        r = await run_python(snippet + "\n", limits=FAST)
        assert not r.ok, snippet
        assert "secret.txt" not in r.stdout
    assert os.listdir(folder) == ["secret.txt"]
    assert open(secret_file).read() == "TOP-SECRET-CONTENT"


async def test_cpu_limit_stops_a_busy_loop() -> None:
    r = await run_python("while True:\n    pass\n", limits=SandboxLimits(wall_s=60, cpu_s=1))
    assert not r.ok
    assert not r.timed_out  # the CPU limit, not the wall clock, ended it
    assert r.signal in ("SIGXCPU", "SIGKILL")


async def test_wall_clock_limit_kills_a_sleeper() -> None:
    r = await run_python("import time\nprint('start', flush=True)\ntime.sleep(120)\nprint('END')\n",
                         limits=SandboxLimits(wall_s=1, cpu_s=5))
    assert r.timed_out and not r.ok
    assert "END" not in r.stdout


async def test_fork_bomb_is_contained() -> None:
    code = "import os\nwhile True:\n    os.fork()\n"
    r = await run_python(code, limits=FAST)
    assert not r.ok
    assert "PermissionError" in r.stderr
    r = await run_python("import multiprocessing as m\nm.Process(target=print).start()\n", limits=FAST)
    assert not r.ok


async def test_fork_bomb_is_contained_by_the_process_limit_alone() -> None:
    if os.geteuid() == 0:
        need_layer("nobody", "root is exempt from RLIMIT_NPROC and cannot drop to nobody here")
    code = ("import os\nn = 0\ntry:\n    while n < 10000:\n        if os.fork() == 0:\n            os._exit(0)\n"
            "        n += 1\nexcept OSError:\n    print('LIMITED', n)\n")
    r = await run_python(code, limits=SandboxLimits(wall_s=20, cpu_s=5, max_processes=8), audit_hook=False)
    assert "LIMITED" in r.stdout or not r.ok


@pytest.mark.parametrize("audit_hook", [True, False])
async def test_memory_bomb_is_contained(audit_hook: bool) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 1024 * 1024))\n"
    r = await run_python(code, limits=SandboxLimits(wall_s=30, cpu_s=10, memory_mb=256), audit_hook=audit_hook)
    assert not r.ok
    assert "MemoryError" in r.stderr or r.signal is not None


async def test_output_flood_is_capped() -> None:
    r = await run_python("import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 65536)\n",
                         limits=SandboxLimits(wall_s=20, cpu_s=5, output_bytes=10_000))
    assert r.output_truncated
    assert len(r.stdout) <= 10_000


async def test_bad_file_names_are_refused() -> None:
    with pytest.raises(ValueError, match="plain names"):
        await run_python("pass", files={"../escape.py": ""})


@pytest.fixture
def shared_folder() -> Iterator[str]:
    """A folder anyone on the machine may read and write, holding a world-readable "ledger": what a
    gateway's data can look like to the unprivileged user the sandbox runs as."""
    folder = tempfile.mkdtemp(prefix="tierwise-test-shared-")
    os.chmod(folder, 0o777)
    path = os.path.join(folder, "ledger.db")
    with open(path, "w") as fh:
        fh.write("PROMPT-OF-ANOTHER-USER")
    os.chmod(path, 0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


async def test_filesystem_jail_alone_hides_the_rest_of_the_machine(shared_folder: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """With the audit hook off, code sees only the interpreter, system libraries and its own folder:
    no /etc, no home folders, no /proc (the gateway's environment), no world-readable ledger."""
    need_layer("fsjail", "unshare cannot build a mount namespace on this machine")
    iso = _isolation()
    ledger = os.path.join(shared_folder, "ledger.db")
    code = ("import os\nprint('ROOT', sorted(os.listdir('/')))\nprint('USR', sorted(os.listdir('/usr')))\n"
            f"for p in ('/etc/passwd', '/proc/1/environ', {ledger!r}):\n"
            "    try:\n        print('READ', open(p).read())\n    except OSError as e:\n        print('DENIED', p, type(e).__name__)\n"
            f"try:\n    open({shared_folder + '/dropped.txt'!r}, 'w').write('x')\n    print('WROTE')\n"
            "except OSError as e:\n    print('NOWRITE', type(e).__name__)\n")
    r = await run_python(code, limits=FAST, audit_hook=False)
    assert r.ok, r.stderr
    assert "fsjail" in r.layers
    assert "PROMPT-OF-ANOTHER-USER" not in r.stdout and "READ" not in r.stdout
    assert "WROTE" not in r.stdout and os.listdir(shared_folder) == ["ledger.db"]
    seen = eval(r.stdout.split("ROOT ", 1)[1].splitlines()[0])  # noqa: S307 - our own printed list
    assert not {"home", "root", "proc", "var", "opt", "srv", "run", "dev"} & set(seen), seen
    assert not any(os.path.realpath(shared_folder).startswith(f"/{top}/") for top in seen if top != "tmp"), seen
    # Only library folders of /usr: not /usr/src, /usr/sbin, /usr/local/bin, where applications live.
    usr = eval(r.stdout.split("USR ", 1)[1].splitlines()[0])  # noqa: S307 - our own printed list
    assert set(usr) <= {"bin", "lib", "lib64", "lib32", "libx32", "local", "share"}, usr

    # The same code without the jail reads the ledger and writes beside it: the jail is what stops it.
    monkeypatch.setattr("tierwise.verifiers.sandbox._isolation",
                        lambda: dataclasses.replace(iso, jail_args=(), jail_binds=()))
    r = await run_python(code, limits=FAST, audit_hook=False)
    assert "PROMPT-OF-ANOTHER-USER" in r.stdout and "WROTE" in r.stdout


async def test_jailed_code_keeps_the_standard_library_and_its_folder() -> None:
    need_layer("fsjail", "unshare cannot build a mount namespace on this machine")
    code = ("import decimal, fractions, hashlib, json, math, random, re, sqlite3, statistics, tempfile\n"
            "db = sqlite3.connect('t.db'); db.execute('create table t(x)'); db.commit()\n"
            "with tempfile.NamedTemporaryFile(dir='.') as f: f.write(b'x')\n"
            "import os\nprint(sorted(os.listdir('.')), hashlib.sha256(b'a').hexdigest()[:8], decimal.Decimal('1.10') * 2)\n")
    r = await run_python(code, files={"helper.py": "X = 1\n"}, limits=FAST)
    assert r.ok, r.stderr
    assert r.stdout.split() == ["['helper.py',", "'main.py',", "'t.db']", "ca978112", "2.20"]


def test_no_jail_when_a_bound_folder_would_show_the_gateways_own_folder(monkeypatch: pytest.MonkeyPatch,
                                                                              tmp_path) -> None:
    """A jail that binds /usr/lib cannot hide a gateway run from inside it: refuse it rather than pretend."""
    need_layer("fsjail", "unshare cannot build a mount namespace on this machine")
    iso = _isolation()
    from tierwise.verifiers.sandbox import _jail_binds

    monkeypatch.chdir(tmp_path)
    assert _jail_binds(iso.jail_args, iso.python, iso.drop_to) == iso.jail_binds
    inside = next(b for b in iso.jail_binds if os.path.isdir(b) and not os.path.islink(b))
    monkeypatch.chdir(inside)
    assert _jail_binds(iso.jail_args, iso.python, iso.drop_to) == ()
