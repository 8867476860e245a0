"""Runs against each other, and against other processes of their own user (session 23).

Every sandboxed run of a root gateway is the same host user (`sandbox.run_as`); a gateway that is
not root runs the weak sandbox's code as itself. What one run's code can do to another process of
that user (another run; the gateway) is tried here with the OS layer alone and, where the hook has
a say, with it on: signals that need no kill() (an owner set on a descriptor, tgkill with a guessed
PID) and, between two concurrent weak runs, the other run's folder and memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tierwise import sandbox
from tierwise.errors import ConfigError
from tierwise.sandbox import SandboxLimits, backend, identity, run_python, runner
from tierwise.sandbox import bwrap as bwrap_mod

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)
BOTH = pytest.mark.parametrize("audit_hook", [True, False], ids=["hook", "os-only"])


@pytest.fixture(params=["bwrap", "weak"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    sandbox.status.cache_clear()
    backend.weak_run_as.cache_clear()
    if request.param == "weak":
        monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)
        sandbox.configure(allow_weak=True)
    else:
        sandbox.configure()
        assert sandbox.status().strong, sandbox.status().problem
    yield request.param
    sandbox.status.cache_clear()
    backend.weak_run_as.cache_clear()
    sandbox.configure()


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """A process of the user the sandboxed code runs as: another run, or a gateway that is not root."""
    user = identity.target()

    def become() -> None:
        if user is not None:
            os.setgroups([])
            os.setresgid(user.gid, user.gid, user.gid)
            os.setresuid(user.uid, user.uid, user.uid)

    proc = subprocess.Popen(["sleep", "60"], preexec_fn=become)
    yield proc
    proc.kill()
    proc.wait()


OWNER_SIGNALS = """
import fcntl, os, signal, socket, struct
""" + attempt_prelude("SENT") + """def pipe_owner():
    r, w = os.pipe()
    fcntl.fcntl(r, fcntl.F_SETOWN, VICTIM)
    fcntl.fcntl(r, 10, signal.SIGKILL)  # F_SETSIG
    fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)
    os.write(w, b"x")
def pipe_owner_ex():
    r, w = os.pipe()
    fcntl.fcntl(r, 15, struct.pack("ii", 1, VICTIM))  # F_SETOWN_EX, F_OWNER_PID
    fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)
    os.write(w, b"x")
def socket_owner():
    a, b = socket.socketpair()
    fcntl.ioctl(a, 0x8901, struct.pack("i", VICTIM))  # FIOSETOWN
    fcntl.fcntl(a, fcntl.F_SETFL, fcntl.fcntl(a, fcntl.F_GETFL) | os.O_ASYNC)
    b.send(b"x")
attempt("setown", pipe_owner)
attempt("setown_ex", pipe_owner_ex)
attempt("fiosetown", socket_owner)
if not HOOK:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.syscall(234, VICTIM, VICTIM, signal.SIGSTOP)  # tgkill
    print("tgkill", "SENT" if rc == 0 else f"refused {ctypes.get_errno()}")
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
signal.raise_signal(signal.SIGUSR1)  # tgkill to its own thread group: still allowed
print("own signal", got)
"""


@BOTH
async def test_no_signal_reaches_another_process_of_the_code_s_user(
        mode: str, audit_hook: bool, victim: subprocess.Popen[bytes]) -> None:
    """An owner set on a pipe or socket (F_SETOWN, F_SETOWN_EX, FIOSETOWN) with F_SETSIG = SIGKILL made
    the kernel kill a process of the code's own user when the pipe became readable, hook on or off
    (os.kill is the filter's and the hook's, fcntl is neither's); tgkill with a guessed PID stopped it.
    Weak sandbox only: bubblewrap's PID namespace shows no other process (ESRCH)."""
    code = f"VICTIM = {victim.pid}\nHOOK = {audit_hook}\n" + OWNER_SIGNALS
    r = await run_python(code, limits=LIMITS, audit_hook=audit_hook)
    await asyncio.sleep(0.2)  # a signal in flight lands by now
    with open(f"/proc/{victim.pid}/stat") as fh:
        state = fh.read().rsplit(")", 1)[1].split()[0]
    assert victim.poll() is None and state != "T", (victim.returncode, state, r.stdout)
    assert r.ok, r.stderr
    assert "SENT" not in r.stdout, r.stdout
    assert "own signal [1]" in r.stdout, r.stdout


VICTIM_RUN = """
import os, sys, time
print(os.getpid(), os.path.dirname(os.path.abspath(__file__)), flush=True)
secret = "VICTIM-HEAP-" + "S" * 64  # in its memory while it runs
time.sleep(30)
"""
AGAINST_THE_OTHER_RUN = """
import os
def attempt(name, fn):
    try:
        print(name, "DONE", repr(fn())[:80])
    except OSError as e:
        print(name, "refused", e.errno)
def memory():
    with open(f"/proc/{PID}/maps") as fh:
        heap = next(line for line in fh if "[heap]" in line)
    lo, hi = (int(x, 16) for x in heap.split()[0].split("-"))
    with open(f"/proc/{PID}/mem", "r+b") as fh:
        fh.seek(lo)
        return b"VICTIM-HEAP" in fh.read(hi - lo)
def plant():
    with open(os.path.join(FOLDER, "planted.py"), "w") as fh:
        fh.write("x")
attempt("list", lambda: os.listdir(FOLDER))
attempt("tests", lambda: open(os.path.join(FOLDER, "tierwise_tests.py")).read())
attempt("plant", plant)
attempt("memory", memory)
attempt("environ", lambda: open(f"/proc/{PID}/environ", "rb").read())
"""


async def test_a_run_cannot_reach_another_run_in_progress(mode: str) -> None:
    """Two runs at once, OS layer alone. With one uid for every run (`run_as`), a weak run listed
    and read the other run's folder (its tests), wrote into it, and opened its memory for writing
    through /proc/<pid>/mem (no ptrace call: the filter is not asked). With `run_as_range` each
    run is a uid of its own, and the kernel refuses all of it (EACCES). In bubblewrap nothing of
    the other run is in sight (no /proc, its folder in its own mount namespace)."""
    sandbox.configure(allow_weak=mode == "weak", run_as_range="61184-61199")
    sandbox.status.cache_clear()
    secret = "assert add(1, 2) == 3  # THE-OTHER-RUN-S-TESTS"
    async with runner.open_python(VICTIM_RUN, files={"tierwise_tests.py": secret}, limits=LIMITS,
                                  audit_hook=False) as other:
        assert other.proc is not None and other.proc.stdout is not None
        pid, folder = (await other.proc.stdout.readline()).decode().split()
        if mode == "bwrap":  # what they are outside (its /work is in its own mount namespace)
            pid = str(other.proc.pid)
            folder = f"/proc/{pid}/root/work"
        r = await run_python(f"PID = {pid}\nFOLDER = {folder!r}\n" + AGAINST_THE_OTHER_RUN, limits=LIMITS,
                             audit_hook=False)
        other.kill()
    assert r.ok, r.stderr
    assert "DONE" not in r.stdout, r.stdout
    assert r.stdout.count("refused") == 5, r.stdout
    assert "own_uid" in r.layers, r.layers


@pytest.mark.parametrize("mode", ["weak"], indirect=True)  # bubblewrap: its /work in its own mount namespace (above)
async def test_without_a_range_a_weak_run_cannot_read_the_files_of_another_run(mode: str) -> None:
    """The default, one uid for every run: a root gateway's weak run gets copies of its files in a tmpfs of its
    own, but they were also written into its folder on the host, where every run of that uid could read them
    (another split check's tests, by an answer running at the same time: `tests DONE`). Now the host folder is
    an empty mount point, and the run has no /proc: through it the other run's memory was read (`read memory DONE`:
    what a checker holds includes its tests)."""
    secret = "assert add(1, 2) == 3  # THE-OTHER-RUN-S-TESTS"
    async with runner.open_python(VICTIM_RUN, files={"tierwise_tests.py": secret}, limits=LIMITS,
                                  audit_hook=False) as other:
        assert other.proc is not None and other.proc.stdout is not None
        pid, folder = (await other.proc.stdout.readline()).decode().split()
        r = await run_python(f"PID = {pid}\nFOLDER = {folder!r}\n" + AGAINST_THE_OTHER_RUN + READ_ITS_MEMORY,
                             limits=LIMITS, audit_hook=False)
        other.kill()
    if "readonly_host" not in r.layers:
        unavailable("the weak run's folder is a tmpfs only for a root gateway that can make a mount namespace")
    assert r.ok, r.stderr
    assert "THE-OTHER-RUN" not in r.stdout and "tests refused 2" in r.stdout, r.stdout
    for name in ("memory", "environ", "read memory"):  # no /proc (as in bubblewrap)
        assert f"{name} refused 2" in r.stdout, r.stdout


READ_ITS_MEMORY = """
def read_memory():
    with open(f"/proc/{PID}/maps") as fh:
        heap = next(line for line in fh if "[heap]" in line)
    lo, hi = (int(x, 16) for x in heap.split()[0].split("-"))
    with open(f"/proc/{PID}/mem", "rb") as fh:
        fh.seek(lo)
        return b"VICTIM-HEAP" in fh.read(hi - lo)
attempt("read memory", read_memory)
"""


OUTSIDE_ITS_FOLDER = """
import os
""" + attempt_prelude("MADE") + """def shared_memory():
    import _posixshmem  # opens under /dev/shm in C: no `open` event for the hook
    fd = _posixshmem.shm_open(SHM, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.write(fd, b"x" * (1 << 20))  # host memory, kept after the run
def drop():
    with open(os.path.join(SHARED, "dropped"), "w") as fh:
        fh.write("for the next run of this uid")
attempt("shm", shared_memory)
if not HOOK:
    attempt("drop", drop)
with open("mine.txt", "w") as fh:
    fh.write("ok")
print("own folder", open("mine.txt").read())
"""


@BOTH
async def test_a_weak_run_writes_nothing_outside_its_folder(audit_hook: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A weak run of a root gateway (which can make it a mount namespace) sees the host read-only
    but for its own folder. Before: `_posixshmem.shm_open` put 16 MB files in the host's /dev/shm
    (memory no limit of the run counts, left there after it: 128 MB in 8 files in the bench) with the
    hook on, and with it off the code wrote into any world-writable folder (/tmp), where the next run
    given the same uid finds it."""
    if os.geteuid() != 0:
        pytest.fail("needs a root gateway (CI runs as root): only root makes the run a mount namespace")
    monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)
    sandbox.status.cache_clear()
    backend.weak_run_as.cache_clear()
    sandbox.configure(allow_weak=True)
    shared = tempfile.mkdtemp(prefix="tierwise-test-shared-", dir="/tmp")
    os.chmod(shared, 0o1777)
    shm = f"/tierwise-test-{os.getpid()}-{audit_hook}"
    try:
        r = await run_python(f"SHARED = {shared!r}\nSHM = {shm!r}\nHOOK = {audit_hook}\n" + OUTSIDE_ITS_FOLDER,
                             limits=LIMITS, audit_hook=audit_hook)
        left = os.listdir(shared), os.path.exists(f"/dev/shm{shm}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"/dev/shm{shm}")
        shutil.rmtree(shared)
        sandbox.status.cache_clear()
        backend.weak_run_as.cache_clear()
    assert r.ok, r.stderr
    # (since session 37 the run has a /dev/shm of its own, 4 MB in its memory cgroup, gone with it: shm_open makes
    # its file there, never in the host's)
    assert "drop MADE" not in r.stdout and left == ([], False), (r.stdout, left)
    assert "own folder ok" in r.stdout
    assert "readonly_host" in r.layers, r.layers


async def test_where_the_host_cannot_be_read_only_the_hook_refuses_shared_memory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A gateway that is not root (or cannot make a mount namespace) leaves the weak run the host as
    its user sees it; `_posixshmem` then put files in /dev/shm with the hook on (no `open` event):
    the weak sandbox's hook refuses the module, as it does `_sqlite3`."""
    monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)
    sandbox.status.cache_clear()
    sandbox.configure(allow_weak=True)
    monkeypatch.setattr(backend, "weak_read_only_host", lambda: False)
    shm = f"/tierwise-test-{os.getpid()}-hook-only"
    try:
        r = await run_python(f"SHARED = '/nonexistent'\nSHM = {shm!r}\nHOOK = True\n" + OUTSIDE_ITS_FOLDER,
                             limits=LIMITS)
        made = os.path.exists(f"/dev/shm{shm}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"/dev/shm{shm}")
        monkeypatch.undo()
        sandbox.status.cache_clear()
        sandbox.configure()
    assert not made and "readonly_host" not in r.layers, (r.stdout, r.layers)
    assert "own folder ok" in r.stdout, r.stderr


def test_a_range_smaller_than_the_runs_at_once_is_refused() -> None:
    """Each run in progress needs a uid of its own: a split check is two runs even with
    `max_concurrent: 1` (they share the slot), so one uid left every split check "sandbox busy"."""
    with pytest.raises(ConfigError, match="run_as_range"):
        sandbox.configure(max_concurrent=1, run_as_range="61184-61184")
    with pytest.raises(ConfigError, match="run_as_range"):
        sandbox.configure(max_concurrent=4, run_as_range="61184-61186")
    sandbox.configure(max_concurrent=1, run_as_range="61184-61185")
    sandbox.configure()


FILL_ITS_FOLDER = """
import os
written = 0
try:
    for i in range(24):
        with open(f"fill-{i}", "wb") as fh:
            fh.write(b"x" * (1 << 20))
        written += 1
except OSError as e:
    print("stopped", e.errno)
print("MB", written)
print("own files", sorted(n for n in os.listdir(".") if not n.startswith("fill-")))
"""


async def test_a_weak_run_s_folder_is_bounded_like_bubblewrap_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """The weak run's folder was a folder of the host's disk: bounded per file (`file_size_mb`) and by
    time only (320 MB in 2 s in the bench; every run at once the same, beside the gateway's ledger).
    A root gateway's weak run now writes into a tmpfs of `work_mb` over it, as bubblewrap's `/work`."""
    if os.geteuid() != 0:
        pytest.fail("needs a root gateway (CI runs as root): only root makes the run a mount namespace")
    monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)
    sandbox.status.cache_clear()
    sandbox.configure(allow_weak=True)
    try:
        r = await run_python(FILL_ITS_FOLDER, files={"data.txt": "kept"}, limits=SandboxLimits(wall_s=30, work_mb=8),
                             audit_hook=False)
    finally:
        sandbox.status.cache_clear()
        sandbox.configure()
    assert r.ok, r.stderr
    assert "stopped 28" in r.stdout, r.stdout  # ENOSPC
    written = int(r.stdout.split("MB ")[1].split()[0])
    assert written <= 8, r.stdout
    assert "own files ['data.txt', 'main.py']" in r.stdout, r.stdout


REWRITE_ITS_FILES = """
import os
with open("data.txt", "a") as fh:
    fh.write("+more")
print("data", open("data.txt").read())
with open("main.py", "w") as fh:
    fh.write("# rewritten")
os.replace("data.txt", "moved.txt")
os.unlink("moved.txt")
print("left", sorted(os.listdir(".")))
"""


@BOTH
async def test_a_run_may_rewrite_move_and_delete_the_files_it_was_given(mode: str, audit_hook: bool) -> None:
    """The run's files are its own in either sandbox, as bubblewrap's `/work` copies are. The weak run of a
    root gateway (the host read-only but for its folder, session 23) had them bound in from the host folder
    and left read-only by the host's read-only remount: writing one failed with EROFS (30), and moving or
    deleting one with EBUSY, where bubblewrap's run did all three."""
    r = await run_python(REWRITE_ITS_FILES, files={"data.txt": "kept"}, limits=LIMITS, audit_hook=audit_hook)
    assert r.ok, r.stderr
    assert "data kept+more" in r.stdout and "left ['main.py']" in r.stdout, (r.stdout, r.stderr)
    if mode == "weak" and os.geteuid() == 0:
        assert "readonly_host" in r.layers, r.layers


def test_worker_processes_never_hand_out_the_same_uid(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --workers N` (and `tierwise mcp` beside `serve`) are processes with a uid pool each over the same
    `run_as_range`: every one of them handed its first run the range's first uid, so two runs of two workers
    were one user again (the other's folder, /proc/<pid>/mem, signals). A uid is now taken with a lock every
    process on the machine sees (flock on a file per uid, released by the kernel when the holder dies)."""
    if os.geteuid() != 0:
        pytest.fail("needs a root gateway (CI runs as root): only root switches users")
    monkeypatch.setattr(identity, "LOCK_DIR", str(tmp_path / "run-uids"), raising=False)
    sandbox.configure(run_as_range="61184-61187")
    try:
        first_worker = identity.pool()
        identity.pool.cache_clear()  # the next call builds what a second worker process builds
        second_worker = identity.pool()
        assert first_worker is not None and second_worker is not None and first_worker is not second_worker
        a = [first_worker.take(), first_worker.take()]
        b = [second_worker.take(), second_worker.take()]
        assert None not in a + b
        assert len({u.uid for u in a + b}) == 4, (a, b)  # type: ignore[union-attr]
        assert first_worker.take() is None and second_worker.take() is None  # every uid of the range in use
        first_worker.give_back(a[0])  # type: ignore[arg-type]
        assert second_worker.take() == a[0]  # back for any process once its run is over
    finally:
        sandbox.configure()


async def test_files_larger_than_the_folder_are_a_result_not_an_exception(mode: str) -> None:
    """Files that do not fit the run's folder (`work_mb`): bubblewrap's run fails to place them and says so; the
    weak run (whose files are now copied into its tmpfs between fork and exec) says so too, never raises."""
    r = await run_python("print('ran')", files={"big.txt": "x" * (3 << 20)}, limits=SandboxLimits(wall_s=30, work_mb=2))
    assert not r.ok and "ran" not in r.stdout
    assert "space" in r.stderr or "do not fit" in r.stderr, r.stderr


GATEWAY_WITH_A_WEAK_RUN = """
import asyncio, sys
from tierwise import sandbox
from tierwise.sandbox import bwrap, run_python, SandboxLimits
bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
asyncio.run(run_python("import time\\ntime.sleep(120)", limits=SandboxLimits(wall_s=300, cpu_s=300)))
"""


def _children(pid: int) -> list[int]:
    """The processes below `pid` (at any depth: a weak run is the grandchild of the gateway's child since session 36,
    tierwise.sandbox.pidns), once the run itself is among them (the read-only probe's process is not)."""
    parents: dict[int, int] = {}
    commands: dict[int, bytes] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as fh:
                parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as cmd:
                    commands[int(entry)] = cmd.read()
    below, grown = {pid}, True
    while grown:
        more = {p for p, parent in parents.items() if parent in below} - below
        below |= more
        grown = bool(more)
    below.discard(pid)
    found = sorted(below)
    return found if any(b"tierwise-sandbox-" in commands.get(p, b"") for p in found) else []


def test_a_weak_run_does_not_outlive_its_gateway_process() -> None:
    """A gateway process killed outright (a worker's OOM kill, `kill -9`) left its weak runs running, reparented,
    unbounded by any wall clock (its supervisor was that process), and as the same user as the next runs: the
    kernel releases the dead process's `run_as_range` uid locks, so another worker handed the orphan's uid to a
    new run. bubblewrap's runs die with their parent (`--die-with-parent`); a weak run now does as well
    (PR_SET_PDEATHSIG, set after the switch of user, which clears it)."""
    place = tempfile.mkdtemp(prefix="r-outlive-", dir="/tmp")  # its folders, left by the kill: removed below
    os.chmod(place, 0o1777)
    gw = subprocess.Popen([sys.executable, "-c", GATEWAY_WITH_A_WEAK_RUN], env={**os.environ, "TMPDIR": place})
    run: list[int] = []
    try:
        for _ in range(600):  # until the run has started (at most a minute on a loaded machine)
            run = _children(gw.pid)
            if run:
                break
            time.sleep(0.1)
        assert run, "the weak run did not start"
        gw.kill()
        gw.wait()
        gone = False
        for _ in range(300):
            if not any(os.path.exists(f"/proc/{p}") and _state(p) != "Z" for p in run):
                gone = True
                break
            time.sleep(0.1)
        assert gone, f"the weak run {run} outlived its gateway"
    finally:
        gw.kill()
        for p in run:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        shutil.rmtree(place, ignore_errors=True)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
