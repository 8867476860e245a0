"""Session 28's attack round on the sandbox (bench/RESULTS.md, "Sandbox attack round 9"): what a run still reached
through the one kind of socket it keeps (socket pairs) and a kernel interface Python never uses. OS layer alone (no
audit hook); each test failed before its fix."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, backend, run_python
from tierwise.sandbox.backend import SandboxUnavailable

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

DATAGRAMS = """
import socket
""" + attempt_prelude("SENT") + """
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
attempt("sendto a host socket", lambda: a.sendto(b"FORGED-sendto", TARGET))
attempt("sendmsg to a host socket", lambda: a.sendmsg([b"FORGED-sendmsg"], [], 0, TARGET))
"""


@pytest.fixture
def host_datagram_socket() -> Iterator[tuple[socket.socket, str]]:
    """A unix datagram socket of the host anyone may write to, as /dev/log (syslog) and
    /run/systemd/journal/socket (the journal) are."""
    folder = tempfile.mkdtemp(prefix="tw-r9-sock-")
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "log")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    s.setblocking(False)
    yield s, path
    s.close()
    os.unlink(path)
    os.rmdir(folder)


async def test_a_weak_run_under_landlock_alone_sends_no_datagram_to_a_host_socket(
        landlock_alone: None, host_datagram_socket: tuple[socket.socket, str]) -> None:
    """Landlock checks what is opened, not where a datagram goes: with `socket()` refused, a datagram socket pair
    sent to any unix socket of the host by its path (both `sendto` and `sendmsg`): lines forged into syslog's
    /dev/log or the journal's socket. Only stream socket pairs are allowed now (connected: a stream socket takes no
    address, EISCONN), and the host socket gets nothing."""
    listener, path = host_datagram_socket
    try:
        r = await run_python(f"TARGET = {path!r}\n" + DATAGRAMS, limits=LIMITS, audit_hook=False)
    except SandboxUnavailable as e:
        unavailable(f"no weak sandbox with Landlock alone here: {e}")
    assert "landlock" in r.layers and "readonly_host" not in r.layers, r.layers
    got = []
    while True:
        try:
            got.append(listener.recv(100))
        except BlockingIOError:
            break
    assert got == [], (got, r.stdout, r.stderr)
    assert "SENT" not in r.stdout, r.stdout


SOCKET_PAIRS = """
import socket
""" + attempt_prelude("DONE") + """
attempt("datagram pair", lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM))
attempt("seqpacket pair", lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET))
attempt("datagram pair, flags", lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC))
a, b = socket.socketpair()
attempt("bind an abstract name", lambda: a.bind(b"\\0tw-r9-" + NAME))
attempt("bind a name in its folder", lambda: b.bind("here.sock"))
def talk():
    a.sendall(b"ping")
    assert b.recv(4) == b"ping"
attempt("stream pair", talk)
import asyncio
attempt("asyncio loop", lambda: asyncio.run(asyncio.sleep(0)))
"""


async def test_a_run_keeps_only_stream_socket_pairs_and_binds_no_name(mode: str) -> None:  # noqa: F811
    """A socket pair could be bound to a name: in the weak sandbox (the host's network namespace) a run held an
    abstract name of the host while it ran (a host service starting then got EADDRINUSE), and a datagram pair sent to
    host sockets (the test above). `bind` is refused, and socket pairs are stream ones only; asyncio's self-pipe (a
    stream pair) works."""
    name = f"{os.getpid()}-{mode}"
    r = await run_python(f"NAME = {name.encode()!r}\n" + SOCKET_PAIRS, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    for line in ("datagram pair refused 1", "seqpacket pair refused 1", "datagram pair, flags refused 1",
                 "bind an abstract name refused 1", "bind a name in its folder refused 1", "stream pair DONE",
                 "asyncio loop DONE"):
        assert line in r.stdout, r.stdout


LDT = """
import ctypes
""" + attempt_prelude("DONE") + """
libc = ctypes.CDLL(None, use_errno=True)
def modify_ldt(func, ptr, count):
    def go():
        if libc.syscall(154, func, ptr, count) < 0:
            raise OSError(ctypes.get_errno(), "refused")
    return go
entry = (ctypes.c_uint32 * 4)(0, 0, 0xfffff, 0x51)  # a 32-bit data segment in slot 0
attempt("modify_ldt write", modify_ldt(1, ctypes.byref(entry), 16))
attempt("modify_ldt read", modify_ldt(0, ctypes.create_string_buffer(64), 64))
"""


async def test_a_run_cannot_write_its_local_descriptor_table(mode: str) -> None:  # noqa: F811
    """`modify_ldt` installs 16-bit and 32-bit segments in the run's own local descriptor table: kernel code no
    program of a 64-bit Python needs, behind several privilege escalations (CVE-2015-5157, CVE-2017-17053), and
    refused by Docker's default profile. It answered in every mode; now EPERM."""
    r = await run_python(LDT, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    assert "modify_ldt write refused 1" in r.stdout and "modify_ldt read refused 1" in r.stdout, r.stdout


QUIET_THEN_ON = """
import os, time
time.sleep(2)
os.close(1)
os.close(2)
time.sleep(2.5)
"""


async def test_a_run_that_closes_its_output_still_ends_at_its_wall_clock(mode: str) -> None:  # noqa: F811
    """The supervisor waited for the output with the wall clock, then for the exit with a second whole wall clock: a
    weak run (no bubblewrap process holding its pipes) that closed stdout and stderr just before its deadline lived
    up to twice its `wall_s` (here: a 3 s clock, output closed at 2 s, exit 0 at 4.5 s: it ran to its end, the second clock ending at 5 s). One
    deadline now covers both; the run is killed at it."""
    r = await run_python(QUIET_THEN_ON, limits=SandboxLimits(wall_s=3, cpu_s=5, memory_mb=256), audit_hook=False)
    assert r.timed_out and r.returncode != 0, (r.returncode, r.timed_out, r.signal)


def test_a_gateway_in_a_leaf_of_a_delegated_cgroup_v2_puts_its_runs_beside_the_leaf(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cgroup v2 enables a controller for a cgroup's children only while that cgroup holds no process (EBUSY), and
    the runs' cgroups went below the gateway's own, which holds the gateway: the documented advice (a leaf below a
    delegated cgroup, what `systemd-run --scope -p Delegate=yes` gives) ended in the same refusal, and no run got a
    memory cgroup. A leaf named `tierwise-gateway` now puts the runs in the delegated cgroup above it. (This machine
    has memory and pids on cgroup v1 only: the kernel's rule is played by the fake tree's writes.)"""
    from tierwise.sandbox import cgroup

    delegated = tmp_path / "user.slice" / "tw.scope"
    for folder in (delegated, delegated / cgroup.LEAF):
        folder.mkdir(parents=True)
        (folder / "cgroup.controllers").write_text("memory pids\n")
        (folder / "cgroup.subtree_control").write_text("\n")
    real_write = cgroup._write

    def write(path: str, value: str) -> None:  # the kernel's rule: no controller for the children of a busy cgroup
        if path == str(delegated / cgroup.LEAF / "cgroup.subtree_control"):
            raise OSError(16, "Device or resource busy")
        real_write(path, value)

    monkeypatch.setattr(cgroup, "_write", write)
    mounts = [("/", str(tmp_path), "cgroup2", "rw")]
    place = cgroup._v2_place("memory", f"/user.slice/tw.scope/{cgroup.LEAF}", mounts)
    assert place == cgroup.Place("memory", str(delegated), True), place
    assert (delegated / "cgroup.subtree_control").read_text() == "+memory"
    # Any other cgroup of the gateway's keeps its runs below itself (and says why not, when it cannot).
    place = cgroup._v2_place("memory", "/user.slice/tw.scope", mounts)
    assert place == cgroup.Place("memory", str(delegated), True), place


TOUCH = """
import os
""" + attempt_prelude("TOUCHED") + """
attempt("utime", lambda: os.utime(TARGET))
"""


@pytest.fixture
def world_writable_file() -> Iterator[str]:
    """A file anyone may write, in a folder anyone may search (as in /tmp)."""
    folder = tempfile.mkdtemp(prefix="tw-r9-touch-")
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "shared.txt")
    with open(path, "w") as fh:
        fh.write("x")
    os.chmod(path, 0o666)
    os.utime(path, (0, 0))
    yield path
    os.unlink(path)
    os.rmdir(folder)


async def test_doctor_says_what_a_run_under_landlock_alone_may_still_touch(landlock_alone: None,
                                                                           world_writable_file: str) -> None:
    """Not fixed (docs/security/sandbox.md): under Landlock alone a run that is a user of its own sets a
    world-writable file's times to now by its path (write permission is enough; Landlock has no right for it, and
    refusing `utimensat` by path breaks shutil.copy2). What the run did is what doctor now says."""
    from tierwise.commands.doctor import sandbox_report
    from tierwise.config import Config

    target = world_writable_file
    try:
        r = await run_python(f"TARGET = {target!r}\n" + TOUCH, limits=LIMITS, audit_hook=False)
    except SandboxUnavailable as e:
        unavailable(f"no weak sandbox with Landlock alone here: {e}")
    good, message = sandbox_report(Config.model_validate({"sandbox": {"allow_weak": True}}))
    if backend.weak_run_as() is None:  # the gateway's own user: every metadata call by path is refused
        assert "utime refused 1" in r.stdout and "times can be set" not in message, (r.stdout, message)
        return
    assert "utime TOUCHED" in r.stdout and os.stat(target).st_mtime > 0, r.stdout
    assert good and "a world-writable file's times can be set to now" in message, message


SCHED_CORE = """
import ctypes
""" + attempt_prelude("ANSWERED") + """
libc = ctypes.CDLL(None, use_errno=True)
def sched_core(command, pid):
    def go():
        cookie = ctypes.c_ulong()
        if libc.prctl(62, command, pid, 0, ctypes.byref(cookie)) != 0:
            raise OSError(ctypes.get_errno(), "refused")
    return go
attempt("get the gateway's core cookie", sched_core(0, GATEWAY))  # PR_SCHED_CORE_GET, PIDTYPE_PID
attempt("push its cookie to the gateway", sched_core(2, GATEWAY))  # PR_SCHED_CORE_SHARE_TO
attempt("a cookie of its own", sched_core(1, 0))  # PR_SCHED_CORE_CREATE
"""


async def test_a_run_has_no_say_in_core_scheduling(mode: str) -> None:  # noqa: F811
    """`prctl(PR_SCHED_CORE)` (Linux 5.14, CONFIG_SCHED_CORE: most distributions' kernels) reads a process's
    core-scheduling cookie by PID (an existence probe: ESRCH for a free PID) and pushes or pulls cookies to and from
    processes it may trace (tasks with different cookies never share an SMT core: a run could pin another run's
    scheduling). This kernel has no CONFIG_SCHED_CORE (EINVAL for all: round 8 left it); refused now whatever the
    kernel (EPERM). Python never calls it."""
    r = await run_python(f"GATEWAY = {os.getpid()}\n" + SCHED_CORE, limits=LIMITS, audit_hook=False)
    assert r.ok, r.stderr
    for what in ("get the gateway's core cookie", "push its cookie to the gateway", "a cookie of its own"):
        assert f"{what} refused 1" in r.stdout, r.stdout
