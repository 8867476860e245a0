"""Session 29's attack round on the sandbox (bench/RESULTS.md, "Sandbox attack round 10"): what a weak run still read
of the host's network namespace through the socket pairs it keeps, and a split check that outlived its wall clock.
OS layer alone (no audit hook); each test failed before its fix."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from tests.harness import unavailable
from tests.security.sandbox_programs import attempt_prelude
from tests.security.test_sandbox_cross_run import mode  # noqa: F401 (the fixture: bwrap, weak)
from tierwise.sandbox import SandboxLimits, run_python
from tierwise.sandbox.backend import SandboxUnavailable
from tierwise.verifiers import checker

LIMITS = SandboxLimits(wall_s=30, cpu_s=5, memory_mb=256)

NETWORK_DEVICES = (
    """
import array, fcntl, socket, struct
"""
    + attempt_prelude("DONE")
    + """
a, b = socket.socketpair()
def interfaces():
    buf = array.array("B", bytes(4096))
    n = struct.unpack("iL", fcntl.ioctl(a.fileno(), 0x8912, struct.pack("iL", 4096, buf.buffer_info()[0])))[0]
    print("GOT-INTERFACES", [bytes(buf[i:i + 16]).split(b"\\0")[0].decode() for i in range(0, n, 40)])
def by_name(request, name):
    return lambda: print("GOT-ANSWER", fcntl.ioctl(a.fileno(), request, struct.pack("16s24s", name, bytes(24))).hex())
attempt("SIOCGIFCONF", interfaces)
attempt("SIOCGIFHWADDR lo", by_name(0x8927, b"lo"))
attempt("SIOCGIFFLAGS lo", by_name(0x8913, b"lo"))
attempt("SIOCGIFINDEX lo", by_name(0x8933, b"lo"))
attempt("SIOCGIFNAME 1", lambda: print("GOT-NAME", fcntl.ioctl(a.fileno(), 0x8910, struct.pack("16si20s", b"", 1, b""))))
attempt("wireless SIOCGIWNAME lo", by_name(0x8B01, b"lo"))
attempt("FIONREAD (stays)", lambda: fcntl.ioctl(a.fileno(), 0x541B, bytes(4)))
"""
)


async def test_a_run_reads_no_network_device_of_its_namespace(mode: str) -> None:  # noqa: F811
    """With `socket()` refused, a socket pair still took the socket ioctls, and the kernel answered them from the run's
    network namespace, the host's for a weak run: SIOCGIFCONF listed the host's interfaces with their IPv4 addresses
    (`eth0 192.0.2.2`), SIOCGIFHWADDR read their MAC addresses, SIOCGIFNAME enumerated them by index. Refused now
    (every 0x89xx and 0x8Bxx command); the ioctls Python makes on pipes and pairs stay."""
    r = await run_python(NETWORK_DEVICES, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    for request in (
        "SIOCGIFCONF",
        "SIOCGIFHWADDR lo",
        "SIOCGIFFLAGS lo",
        "SIOCGIFINDEX lo",
        "SIOCGIFNAME 1",
        "wireless SIOCGIWNAME lo",
    ):
        assert f"{request} refused" in r.stdout, r.stdout
    assert "GOT-" not in r.stdout, r.stdout
    assert "FIONREAD (stays) DONE" in r.stdout, r.stdout


@pytest.fixture
def host_abstract_listener() -> Iterator[bytes]:
    """An abstract unix socket of the host listening (a desktop bus, an X server, a container shim: each has one)."""
    name = b"\0tw-r10-" + os.urandom(6).hex().encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(name)
    s.listen(4)
    s.setblocking(False)
    yield name
    s.close()


CONNECT = (
    """
import socket
"""
    + attempt_prelude("CONNECTED")
    + """
a, b = socket.socketpair()
attempt("listening", lambda: a.connect(THERE))
attempt("missing", lambda: a.connect(THERE + b"-not"))
"""
)


async def test_a_run_cannot_tell_which_abstract_names_the_host_has(
    mode: str,  # noqa: F811
    host_abstract_listener: bytes,
) -> None:
    """`connect` on a (connected) socket pair looks the address up before it fails, and before Landlock's abstract-
    socket scope is asked: a weak run (the host's network namespace) got EISCONN for a name the host listens on and
    ECONNREFUSED for a free one, a probe of which services run. `connect` is refused now: the two answers are one."""
    r = await run_python(f"THERE = {host_abstract_listener!r}\n" + CONNECT, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    answers = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert answers["listening"] == answers["missing"], r.stdout
    assert "CONNECTED" not in r.stdout, r.stdout


# The operator's tests linger after their last line (an atexit handler here; the finalisation of what they kept does
# the same): until one second past the wall clock counted from the checker's own start, which is after the check's.
LINGERING_TESTS = """
import atexit, time
START = time.monotonic()
atexit.register(lambda: time.sleep(max(0.0, START + WALL + 1.0 - time.monotonic())))
time.sleep(3)
assert add(2, 3) == 5
"""


async def test_a_split_check_ends_at_its_wall_clock_after_the_tests_said_done() -> None:
    """After `done` the gateway waited for the checker's exit with a second whole `wall_s`: a check whose tests'
    process exited a second past its wall clock passed, two sandbox slots held up to twice the wall clock. One
    deadline now: the checker still running at the wall clock is killed and the check fails."""
    limits = SandboxLimits(wall_s=8, cpu_s=5, memory_mb=256)
    r = await checker.check(
        "def add(a, b):\n    return a + b\n", f"WALL = {limits.wall_s}\n" + LINGERING_TESTS, limits
    )
    assert not r.passed, r
    assert r.returncode is not None and r.returncode < 0, r


def _an_installed_file() -> str:
    """A file of the interpreter's installed packages (the base interpreter's, which the sandbox runs)."""
    packages = os.path.realpath(os.path.join(os.path.dirname(os.__file__), "site-packages"))
    for top, _, names in os.walk(packages):
        for name in names:
            path = os.path.join(top, name)
            if not os.path.islink(path):
                return path
    unavailable(f"no installed package in {packages} to read")
    raise AssertionError  # (unavailable raises)


async def test_a_run_under_landlock_alone_reads_no_installed_package(landlock_alone: None) -> None:
    """bubblewrap and the read-only host hide the interpreter's site-packages under an empty tmpfs; with Landlock alone
    (no mount namespace) the rule on the interpreter's installation covered it, and a run listed 224 installed
    packages and read their files. Now the rules go around it: the standard library reads, the packages' files do
    not (their names stay listed: the standard library's folder must be, to import from it)."""
    target = _an_installed_file()
    program = (
        attempt_prelude("READ") + f"attempt('installed', lambda: open({target!r}, 'rb').read())\n"
        "import json, sqlite3, ssl, zoneinfo\nprint('STDLIB', zoneinfo.ZoneInfo('UTC'))\n"
    )
    try:
        r = await run_python(program, limits=LIMITS, audit_hook=False)
    except SandboxUnavailable as e:
        unavailable(f"no weak sandbox with Landlock alone here: {e}")
    assert "landlock" in r.layers and "readonly_host" not in r.layers, r.layers
    assert "installed refused" in r.stdout and "READ" not in r.stdout, (r.stdout, r.stderr)
    assert "STDLIB UTC" in r.stdout, (r.stdout, r.stderr)


CLASSIC_BPF = (
    """
import ctypes, socket, struct
"""
    + attempt_prelude("LOADED")
    + """
libc = ctypes.CDLL(None, use_errno=True)
accept = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0xFFFF))  # ret #0xffff
allow = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0x7FFF0000))  # SECCOMP_RET_ALLOW
def fprog(insns):
    return struct.pack("HL", 1, ctypes.addressof(insns))  # struct sock_fprog
def checked(r):
    if r != 0:
        raise OSError(ctypes.get_errno(), "")
a, b = socket.socketpair()
attempt("socket filter", lambda: a.setsockopt(socket.SOL_SOCKET, 26, fprog(accept)))
attempt("eBPF socket filter", lambda: a.setsockopt(socket.SOL_SOCKET, 50, struct.pack("i", 3)))
checked(libc.prctl(38, 1, 0, 0, 0))  # no_new_privs (set already)
program = ctypes.create_string_buffer(fprog(allow), 16)
where = ctypes.c_void_p(ctypes.addressof(program))
attempt("seccomp()", lambda: checked(libc.syscall(317, 1, 0, where)))
attempt("prctl PR_SET_SECCOMP", lambda: checked(libc.prctl(22, 2, where, 0, 0)))
attempt("prctl PR_SET_SECCOMP, bit 32", lambda: checked(libc.syscall(157, ctypes.c_ulong(1 << 32 | 22), 2, where, 0, 0)))
"""
)


async def test_a_run_puts_no_program_of_its_own_through_the_kernel_s_bpf_jit(mode: str) -> None:  # noqa: F811
    """With bpf() refused (and unprivileged bpf() disabled on the host), a run still had the kernel compile classic BPF
    of its choosing: a socket filter on its socket pair and its own seccomp filters (3,504 stacked in one run), kernel
    code behind privilege escalations (CVE-2021-29154). Refused now; the run's own filter is loaded before its exec."""
    r = await run_python(CLASSIC_BPF, limits=LIMITS, audit_hook=False)
    assert r.returncode == 0, r.summary()
    assert "LOADED" not in r.stdout, r.stdout
    for what in ("socket filter", "seccomp()", "prctl PR_SET_SECCOMP", "prctl PR_SET_SECCOMP, bit 32"):
        assert f"{what} refused 1" in r.stdout, r.stdout


def _beside_the_interpreter() -> str:
    """A file of the interpreter's installation outside its library folder (a console script in its `bin`, a file of
    its `share` or `include`), not the interpreter itself."""
    import sys

    from tierwise.sandbox.bwrap import interpreter

    prefix = os.path.realpath(sys.base_prefix)
    for part in ("bin", "share", "include"):
        for top, _, names in os.walk(os.path.join(prefix, part)):
            for name in sorted(names):
                path = os.path.join(top, name)
                if not os.path.islink(path) and os.path.realpath(path) != interpreter():
                    return path
    unavailable(f"no file beside the interpreter in {prefix}")
    raise AssertionError  # (unavailable raises)


async def test_a_run_reads_nothing_of_the_installation_beside_the_interpreter(mode: str) -> None:  # noqa: F811
    """bubblewrap binds the interpreter's file and its library folder; a weak run's Landlock rule covered the whole
    installation: its `bin` (69 console scripts here), `share`, `include` (for Docker's Python, /usr/local whole) were
    listed and read. Now the rules follow bubblewrap's binds."""
    target = _beside_the_interpreter()
    program = attempt_prelude("READ") + f"attempt('beside', lambda: open({target!r}, 'rb').read())\n"
    r = await run_python(program, limits=LIMITS, audit_hook=False)
    assert "beside refused" in r.stdout, (target, r.stdout, r.stderr)
