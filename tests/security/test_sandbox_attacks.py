"""Attacks on the code sandbox through its public entry point (`run_python`), with the OS layer
alone (no audit hook): kernel memory the run's limits did not count, and system calls newer than
the filter's names. Each test failed before its fix (docs/security/sandbox.md)."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.harness import unavailable
from tests.verifiers.kernel_memory_attacks import RAW_THREADS
from tests.verifiers.test_sandbox import need_layer
from tierwise.sandbox import SandboxLimits, backend, cgroup, run_python
from tierwise.sandbox.bwrap import layout

LIMITS = SandboxLimits(wall_s=30, cpu_s=10, memory_mb=256)

# Extended attributes on the run's tmpfs are kernel memory that neither RLIMIT_AS nor the tmpfs
# size counts: 64 KB values on fresh files, at most 200 of them (12 MB) here; unbounded, one run
# held 3 GB of unreclaimable slab in 10 s.
XATTRS = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class XattrArgs(ctypes.Structure):
    _fields_ = [("value", ctypes.c_uint64), ("size", ctypes.c_uint32), ("flags", ctypes.c_uint32)]
value = b"v" * 60000
buf = ctypes.create_string_buffer(value)
args = XattrArgs(ctypes.addressof(buf), len(value), 0)
def by_name(path):
    os.setxattr(path, "user.a", value)
def by_fd(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.setxattr(fd, "user.a", value)
    finally:
        os.close(fd)
def by_number(path):  # setxattrat (Linux 6.13): the same number on every architecture
    if libc.syscall(ctypes.c_long(463), ctypes.c_int(-100), path.encode(), ctypes.c_uint(0), b"user.a",
                    ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args))) != 0:
        raise OSError(ctypes.get_errno(), "setxattrat")
how = {"name": by_name, "fd": by_fd, "number": by_number}[sys.argv[1] if len(sys.argv) > 1 else "name"]
stored = 0
for n in range(200):
    path = f"/work/f{n}"
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    try:
        how(path)
    except OSError as e:
        print("refused", e.errno)
        break
    stored += len(value)
print("XATTR_KB", stored // 1024, flush=True)
"""


@pytest.mark.parametrize("how", ["name", "fd", "number"])
async def test_extended_attributes_cannot_hold_kernel_memory(how: str) -> None:
    need_layer("seccomp", "no system call filter here")
    code = XATTRS.replace('sys.argv[1] if len(sys.argv) > 1 else "name"', repr(how))
    r = await run_python(code, limits=LIMITS, audit_hook=False)
    assert "XATTR_KB" in r.stdout, r.stderr
    assert int(r.stdout.split("XATTR_KB")[1].split()[0]) == 0, r.stdout


async def test_system_calls_newer_than_the_filter_are_refused() -> None:
    """A deny list names system calls; those newer than the libseccomp that built it have no name
    it knows and went through (mseal, listmount, setxattrat... on Linux 6.18). They answer ENOSYS."""
    need_layer("seccomp", "no system call filter here")
    code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nseen = []\n"
            "for number in (457, 458, 462, 463, 469, 500, 1000):\n"
            "    libc.syscall(ctypes.c_long(number), 0, 0, 0, 0, 0, 0)\n"
            "    seen.append(ctypes.get_errno())\nprint('ERRNOS', seen)\n")
    r = await run_python(code, limits=LIMITS, audit_hook=False)
    assert "ERRNOS" in r.stdout, r.stderr
    assert r.stdout.split("ERRNOS")[1].strip() == str([38] * 7), r.stdout  # ENOSYS


# Empty folders in the run's tmpfs: ~1 KB of kernel memory each (inode + dentry) that neither
# RLIMIT_AS nor the tmpfs size counts. Before the run's cgroup, 1,050,000 of them in one 10 s run.
FOLDERS = """
import os
n = 0
try:
    while n < 500_000:
        os.mkdir(str(n))
        n += 1
        if n % 10_000 == 0:
            print("FOLDERS", n, flush=True)
    print("DONE", flush=True)
except OSError as e:
    print("FOLDERS", n, "stopped:", e, flush=True)
"""


def _run_cgroups() -> list[str]:
    return [os.path.join(place.parent, name) for place in cgroup.places()[0] for name in os.listdir(place.parent)
            if name.startswith(f"tierwise-{os.getpid()}-")]


async def test_kernel_memory_for_inodes_is_bounded_by_the_runs_cgroup() -> None:
    need_layer("cgroup_memory", "no memory cgroup can be made for a run here")
    limits = SandboxLimits(wall_s=60, cpu_s=30, memory_mb=128, work_mb=8)
    r = await run_python(FOLDERS, limits=limits, audit_hook=False)
    made = [int(line.split()[1]) for line in r.stdout.splitlines() if line.startswith("FOLDERS")]
    assert made, r.stderr
    # memory_mb + work_mb + cgroup.KERNEL_MB = 168 MB in total: well under 300,000 folders.
    assert "DONE" not in r.stdout and max(made) < 300_000, r.stdout[-300:]
    assert "cgroup_memory" in r.layers and r.out_of_memory and "memory limit" in r.summary()
    assert _run_cgroups() == []  # removed with the run, killed or not


async def test_threads_a_caller_allows_are_bounded_by_the_runs_cgroup() -> None:
    """`threads=True` let seccomp pass thread clones, and nothing counted them: 300 of 300 raw
    clones sharing one small stack, each a host PID and a kernel stack. pids.max bounds them."""
    need_layer("cgroup_pids", "no pids cgroup can be made for a run here")
    r = await run_python(RAW_THREADS, limits=SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256, threads=True),
                         audit_hook=False)
    assert "THREADS" in r.stdout, r.stderr
    assert int(r.stdout.split("THREADS")[1].split()[0]) < cgroup.TASKS + cgroup.THREADS, r.stdout
    assert "cgroup_pids" in r.layers and _run_cgroups() == []


async def test_without_a_cgroup_runs_go_on_and_doctor_says_why(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from tierwise.cli import main

    need_layer("seccomp", "no system call filter here")
    monkeypatch.setattr(cgroup, "places", lambda: ((), "memory: no cgroup v2 mount; pids: no cgroup v1 pids hierarchy"))
    monkeypatch.setattr(cgroup, "runs_cpu", lambda: None)  # (nor the runs' shared cpu cgroup: review31a)
    backend.status.cache_clear()
    try:
        r = await run_python("print('ran')", limits=LIMITS)
        assert r.stdout.strip() == "ran" and not any(la.startswith("cgroup_") for la in r.layers), r.stderr
        assert "bounded only by the CPU and wall limits" in (backend.status().cgroup_problem or "")
        (tmp_path / "tierwise.yaml").write_text(
            "providers: {p: {kind: openai, base_url: 'http://127.0.0.1:9/v1', locality: local}}\n"
            "models: {m: {provider: p, model: x}}\nroutes: {main: {policy: fallback, targets: [m]}}\n")
        monkeypatch.chdir(tmp_path)
        # In a thread: doctor runs its own event loop (in this test's loop, asyncio.run refused and doctor
        # stopped before its provider checks, leaving a coroutine never awaited)
        res = await asyncio.to_thread(CliRunner().invoke, main, ["doctor", "-c", "tierwise.yaml"])
        out = res.output
        assert "no cgroup per run (memory: no cgroup v2 mount" in out, out
        assert "provider p (openai, local)" in out, out  # doctor ran to its provider checks
    finally:
        backend.status.cache_clear()


async def test_the_folders_hidden_under_a_tmpfs_are_read_only() -> None:
    """site-packages (and the gateway's folder or home where a bound folder holds them) is hidden
    under an empty tmpfs, which bubblewrap makes owned by the sandbox's user with the kernel's
    default size (half the RAM): it was a second writable folder outside `work_mb` (12 GB here)."""
    need_layer("fsroot", "no bubblewrap root here")
    masks = layout().masks
    if not masks:
        unavailable("no folder of this layout is hidden under a tmpfs")
    code = ("import os, sys\nfor folder in sys.argv[1:]:\n    try:\n"
            "        os.close(os.open(folder + '/x', os.O_CREAT | os.O_WRONLY, 0o600))\n        print('WROTE', folder)\n"
            "    except OSError as e:\n        print('REFUSED', e.errno)\n")
    r = await run_python(code.replace("sys.argv[1:]", repr(list(masks))), limits=LIMITS, audit_hook=False)
    assert r.stdout.split() == ["REFUSED", "30"] * len(masks), r.stdout + r.stderr  # EROFS


async def test_a_run_whose_cgroup_cannot_be_made_does_not_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cgroups found at start are where every run goes: one that cannot be made then is a
    failed run (the verifier's check fails), never a run without its bounds nor an exception."""
    need_layer("seccomp", "no system call filter here")
    gone = cgroup.Place("memory", str(tmp_path / "gone"), True)
    monkeypatch.setattr(cgroup, "places", lambda: ((gone,), None))
    r = await run_python("print('ran')", limits=LIMITS)
    assert not r.ok and r.stdout == "" and "cgroup cannot be made" in r.summary(), r


async def test_a_run_takes_none_of_the_machines_asynchronous_io_contexts() -> None:
    """Linux AIO contexts are counted against fs.aio-max-nr for the whole machine (65,536 events):
    one run took all of them, and the host's own programs could start no asynchronous I/O."""
    need_layer("seccomp", "no system call filter here")
    code = ("import ctypes, platform\nlibc = ctypes.CDLL(None, use_errno=True)\nevents = 0\n"
            "io_setup = {'x86_64': 206, 'aarch64': 0}[platform.machine()]\n"
            "for size in (4096, 512, 64, 8, 1):\n    ctx = ctypes.c_ulong(0)\n"
            "    while events < 200_000 and libc.syscall(io_setup, size, ctypes.byref(ctx)) == 0:\n"
            "        events += size\n        ctx = ctypes.c_ulong(0)\n"
            "print('EVENTS', events)\n")
    r = await run_python(code, limits=LIMITS, audit_hook=False)
    assert "EVENTS" in r.stdout, r.stderr
    assert int(r.stdout.split("EVENTS")[1].split()[0]) == 0, r.stdout


def test_cgroups_left_by_a_gateway_that_died_are_removed_at_start() -> None:
    """A gateway killed mid-run leaves its runs' cgroups behind (empty: their tasks died with it);
    the next gateway removes them when it looks for its own place."""
    import subprocess
    import sys

    found = cgroup.places()[0]
    if not found:
        unavailable("no cgroup can be made for a run here")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    left = [os.path.join(place.parent, f"tierwise-{dead}-0") for place in found]
    for folder in left:
        os.mkdir(folder)
    try:
        cgroup.places.cache_clear()
        assert cgroup.places()[0] == found
        assert [f for f in left if os.path.exists(f)] == []
    finally:
        for folder in left:
            if os.path.exists(folder):
                os.rmdir(folder)


# Forgeries of a `python_code` pass by a wrong answer (docs/security/sandbox.md, "The tests and the
# answer"). Each passes with the tests in the answer's own process (`isolation: shared`, the old and
# only way before) and fails with the tests in a checker process that never runs the answer.
FRAME_WALK = """
import os, sys
def add(a, b):
    return a - b
frame = sys._getframe()
while frame is not None:  # up to the harness's frame: it holds the pass token
    if "token" in frame.f_locals:
        token = frame.f_locals["token"]
        os.write(1, b"\\n" + (token if isinstance(token, bytes) else str(token).encode()) + b"\\n")
        os._exit(0)
    frame = frame.f_back
"""
EQUAL_TO_ALL = """
class Anything:
    def __eq__(self, other):
        return True
def add(a, b):
    return Anything()
"""
REBOUND_BUILTIN = """
import builtins
def add(a, b):
    return [a - b]
builtins.len = lambda value: 5  # what the tests call, rebound
"""
SHADOWED_BUILTIN = """
def add(a, b):
    return [a - b]
def len(value):  # `from solution import *` puts it in the tests' globals
    return 5
"""
PATCHED_ASSERT = """
import sys
def add(a, b):
    return a - b
frame = sys._getframe()
while frame is not None:  # the tests' own globals: swap what their assert compares
    if "__name__" in frame.f_globals and frame.f_globals is not globals():
        frame.f_globals["__builtins__"] = dict(vars(__builtins__) if hasattr(__builtins__, "__dict__") else __builtins__,
                                               AssertionError=type("Quiet", (Exception,), {}))
    frame = frame.f_back
import builtins
builtins.AssertionError = type("Quiet", (Exception,), {})
sys.excepthook = lambda *a: None
"""
STOP_ITERATION = """
def is_even(n):
    raise StopIteration  # ends the `map` the tests iterate: all() of nothing is True
"""
FORGERY_TESTS = {
    "stop_iteration": (STOP_ITERATION, "assert all(map(is_even, [2, 4, 6]))"),
    "frame_walk": (FRAME_WALK, "assert add(2, 3) == 5"),
    "equal_to_all": (EQUAL_TO_ALL, "assert add(2, 3) == 5"),
    "rebound_builtin": (REBOUND_BUILTIN, "assert len(add(2, 3)) == 5"),
    "shadowed_builtin": (SHADOWED_BUILTIN, "assert len(add(2, 3)) == 5"),
}


def _code_verifier(tests: str, isolation: str, **limits: float) -> object:
    from tierwise.verifiers.code import PythonCodeVerifier

    return PythonCodeVerifier(tests=tests, limits=SandboxLimits(**{"wall_s": 20, "cpu_s": 5, **limits}),
                              isolation=isolation)


async def _verdict(code: str, tests: str, isolation: str = "split", **limits: float):  # type: ignore[no-untyped-def]
    from tests.verifiers.helpers import req, resp
    from tierwise.verifiers.base import VerifyContext

    return await _code_verifier(tests, isolation, **limits)(req(), resp(f"```python\n{code}\n```"),  # type: ignore[operator]
                                                            VerifyContext())


@pytest.mark.parametrize("attack", sorted(FORGERY_TESTS))
async def test_a_wrong_answer_cannot_forge_a_pass_of_the_tests(attack: str) -> None:
    need_layer("seccomp", "no sandbox here")
    code, tests = FORGERY_TESTS[attack]
    shared = await _verdict(code, tests, "shared")
    assert shared.passed, shared.reason  # the forgery works where answer and tests share a process
    split = await _verdict(code, tests)
    assert not split.passed and split.reason.startswith("tests failed"), split.reason
    assert split.detail["isolation"] == "split"


async def test_patching_assertion_error_does_not_pass_a_wrong_answer() -> None:
    need_layer("seccomp", "no sandbox here")
    for isolation in ("shared", "split"):  # `assert` raises the interpreter's own AssertionError either way
        verdict = await _verdict(PATCHED_ASSERT, "assert add(2, 3) == 5", isolation)
        assert not verdict.passed, (isolation, verdict.reason)


# The answer writes lines of the protocol itself, on every descriptor it has: a forged "done"
# with a guessed token, a reply for a call never made, and garbage.
FORGED_LINES = """
import os
def add(a, b):
    return a - b
for fd in range(3, 64):
    for line in (b'{"done":"0"}\\n', b'{"value":{"i":"5"}}\\n', b'not json\\n'):
        try:
            os.write(fd, line)
        except OSError:
            pass
"""


async def test_the_answer_cannot_write_the_checkers_lines() -> None:
    need_layer("seccomp", "no sandbox here")
    verdict = await _verdict(FORGED_LINES, "assert add(2, 3) == 5")
    assert not verdict.passed, verdict.reason
    # The gateway relays the answer's lines as bytes; the checker reads them and fails the check.
    assert any(why in verdict.reason for why in ("malformed", "AssertionError", "the answer cannot be checked")), \
        verdict.reason


async def test_an_oversized_line_from_the_answer_fails_clearly() -> None:
    need_layer("seccomp", "no sandbox here")
    code = ("import os, sys\ndef add(a, b):\n    return a + b\nframe = sys._getframe()\n"
            "while 'proto' not in frame.f_locals:\n    frame = frame.f_back\n"
            "os.write(frame.f_locals['proto'], b'[' * 3_000_000 + b'\\n')\n")
    verdict = await _verdict(code, "assert add(2, 3) == 5", memory_mb=256)
    assert not verdict.passed and "over 1000000 bytes" in verdict.reason, verdict.reason
