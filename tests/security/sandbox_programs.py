"""Pieces of the programs the sandbox attack tests (and benches) run inside the sandbox, and the fixture that makes
their runs weak ones (no bubblewrap)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

import pytest

from tierwise import sandbox
from tierwise.sandbox import bwrap as bwrap_mod

# A gateway process on a kernel (or under a container's seccomp profile) that allows the mount namespace but refuses
# CLONE_NEWPID: its own seccomp filter answers EPERM to unshare and clone with that flag (review36a).
REFUSE_PID_NAMESPACES = """
import errno
import pyseccomp as sc
f = sc.SyscallFilter(sc.ALLOW)
for name in ("unshare", "clone"):
    f.add_rule(sc.ERRNO(errno.EPERM), name, sc.Arg(0, sc.MASKED_EQ, 0x20000000, 0x20000000))
f.load()
"""

# The start of a gateway program whose sandbox runs are weak ones (bubblewrap hidden, `allow_weak` on).
WEAK_GATEWAY = """
from tierwise import sandbox
from tierwise.sandbox import SandboxLimits, backend, bwrap, run_python
bwrap.bwrap_path = lambda: None
sandbox.configure(allow_weak=True)
"""


@pytest.fixture(autouse=True)
def weak_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every run of the module importing this is a weak one (bubblewrap hidden, `allow_weak` on)."""
    monkeypatch.setattr(bwrap_mod, "bwrap_path", lambda: None)
    sandbox.status.cache_clear()
    sandbox.configure(allow_weak=True)
    yield
    sandbox.status.cache_clear()
    sandbox.configure()


def attempt_prelude(word: str) -> str:
    """`attempt(name, fn)` for a sandboxed program: prints `name <word>` when `fn()` worked, `name refused <errno>`
    when the kernel refused it (an OSError)."""
    return (f"def attempt(name, fn):\n    try:\n        fn()\n        print(name, {word!r})\n"
            "    except OSError as e:\n        print(name, \"refused\", e.errno)\n")


# flock between two runs with threads allowed (`.format(start=<time.time() the first bit starts>)`): the sender holds
# or drops LOCK_EX on the standard library's os.py a bit a second (10110100), the receiver asks with LOCK_NB half a
# second into each and prints the bits it saw: 0 granted, 1 held by another, - refused (session 35: ENOSYS with
# threads).
FLOCK_SENDER = """
import fcntl, os, time
fd = os.open(os.__file__, os.O_RDONLY)
start = {start}
for i, b in enumerate("10110100"):
    while time.time() < start + i:
        time.sleep(0.01)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if b == "1" else fcntl.LOCK_UN)
    except OSError:
        pass
time.sleep(1)
"""
FLOCK_RECEIVER = """
import fcntl, os, time
start = {start}
got = ""
for i in range(8):
    while time.time() < start + i + 0.5:
        time.sleep(0.01)
    other = os.open(os.__file__, os.O_RDONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        got += "0"
    except BlockingIOError:
        got += "1"
    except OSError:
        got += "-"
    os.close(other)
print(got)
"""


def threads_program(count: int, stack: int = 0, sleep_s: float = 2) -> str:
    """A program that starts `count` sleeping threads with stacks of `stack` bytes (0: the default), each allocating
    (glibc gives such a thread a malloc arena); prints the error that stopped it, if any, then `STARTED <n>`."""
    return f"""
import threading, time
{f"threading.stack_size({stack})" if stack else ""}
started = 0
def work():
    kept = [bytes(1000) for _ in range(100)]  # (an allocation in the thread: glibc gives it an arena)
    time.sleep({sleep_s})
try:
    for _ in range({count}):
        threading.Thread(target=work, daemon=True).start()
        started += 1
except RuntimeError as e:
    print(e)
print("STARTED", started)
"""


def processes_below(root: int) -> list[int]:
    """Every process below `root`, at any depth (from /proc/<pid>/stat's parent ids)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as fh:
                parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
    below, grown = {root}, True
    while grown:
        more = {p for p, parent in parents.items() if parent in below} - below
        below |= more
        grown = bool(more)
    return sorted(below - {root})


def host_file(prefix: str, content: str = '{"host": "state"}', name: str = "state.json") -> str:
    """A host program's world-writable file (a 0666 log, lock or state file) in a fresh 0755 folder of /tmp: the path;
    the caller removes its folder."""
    folder = tempfile.mkdtemp(prefix=prefix)
    os.chmod(folder, 0o755)
    path = os.path.join(folder, name)
    with open(path, "w") as fh:
        fh.write(content)
    os.chmod(path, 0o666)
    return path


# A run with a handler of its own for SIGUSR1 signals its process group, itself, PID 1 and PID 1's thread 1: each
# line says how many signals its handler got (`sent N`) or the errno of the refusal; the run prints STILL HERE if
# it was not killed (session 37, sandbox18: `kill(0, sig)` reached processes of ours outside the run).
SIGNALS = """
import ctypes, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
def tgkill(tgid, tid, sig):
    if libc.syscall(234, tgid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")
got = []
signal.signal(signal.SIGUSR1, lambda *_: got.append(1))
for name, fn in (("group", lambda: os.kill(0, signal.SIGUSR1)),
                 ("itself", lambda: os.kill(os.getpid(), signal.SIGUSR1)),
                 ("init", lambda: os.kill(1, signal.SIGUSR1)),
                 ("init-thread", lambda: tgkill(1, 1, signal.SIGUSR1))):
    before = len(got)
    try:
        fn()
        time.sleep(0.2)
        print(name, "sent", len(got) - before)
    except OSError as e:
        print(name, "refused", e.errno)
print("STILL HERE")
"""

# A run (CROSS_VICTIM) that says its PID and sleeps 6 s, and one (CROSS_ATTACK) that looks for processes of its own
# user by `stat` of /proc/<pid> and opens their /proc/<pid>/fd/0-2 (its pipes; a written line would be a forged verdict
# in the other run's output): Landlock alone (session 37).
CROSS_VICTIM = "import os, time\nprint('VICTIM', os.getpid(), flush=True)\ntime.sleep(6)\nprint('victim done')"
CROSS_ATTACK = """
import os
me, found = os.getpid(), []
for p in range(1, 1 << 16):
    try:
        if p != me and os.stat(f'/proc/{p}').st_uid == os.getuid():
            found.append(p)
    except OSError:
        pass
print('same-user pids', found)
for p in found:
    for fd, mode in ((1, 'w'), (0, 'r'), (2, 'w')):
        try:
            with open(f'/proc/{p}/fd/{fd}', mode) as fh:
                if mode == 'w':
                    fh.write('FORGED by another run\\n')
            print('opened', p, fd)
        except OSError as e:
            print('refused', p, fd, e.errno)
"""


# The head of a program calling futex(2) on a word of libc's code (a page every run maps from one file, hence a
# process-shared futex two runs can meet at): `call(nr, *args)` answers (result, errno) (review37c, round 19,
# bench/review38a_threads.py).
FUTEX_HEAD = r"""
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L, P = ctypes.c_long, ctypes.c_void_p
addr = ctypes.cast(libc.getpid, P).value & ~3  # a word of libc's code: a page every run maps from one file
word = ctypes.c_uint32.from_address(addr).value
class TS(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
def call(*args):
    ctypes.set_errno(0)
    r = libc.syscall(*args)
    return r, ctypes.get_errno() if r < 0 else 0
"""
