"""Sandbox attack round 4 (session 23): runs against each other and against other processes of their
user, writes outside a weak run's folder, and the leftovers of the brief (terminals, descriptors,
personality, PR_SET_MM, core dumps, time, huge argv, POSIX IPC). Every attempt is model-written code
run through `run_python` with the OS layer alone (no audit hook) unless a row says "hook"; "weak" is the
weak sandbox (bubblewrap hidden, `allow_weak`). Needs a root gateway (this process) for the uid rows.

    PYTHONPATH=/work/main/src .venv/bin/python bench/sandbox_attack_round4.py   # before (main's sources)
    PYTHONPATH=src .venv/bin/python bench/sandbox_attack_round4.py              # after
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.security.sandbox_programs import attempt_prelude  # noqa: E402
from tierwise import sandbox  # noqa: E402
from tierwise.sandbox import SandboxLimits, backend, runner  # noqa: E402
from tierwise.sandbox import bwrap as bwrap_mod  # noqa: E402

LIMITS = SandboxLimits(wall_s=20, cpu_s=5, memory_mb=256)
_real_bwrap = bwrap_mod.bwrap_path


def mode(name: str, **cfg: object) -> bool:
    bwrap_mod.bwrap_path = (lambda: None) if name == "weak" else _real_bwrap
    sandbox.status.cache_clear()
    for cached in ("weak_run_as", "weak_read_only_host"):
        with contextlib.suppress(AttributeError):
            getattr(backend, cached).cache_clear()
    try:
        sandbox.configure(allow_weak=name == "weak", **cfg)  # type: ignore[arg-type]
    except TypeError:
        return False  # a key this tree does not have
    return True


VICTIM = """
import os, time
print(os.getpid(), os.path.dirname(os.path.abspath(__file__)), flush=True)
time.sleep(30)
"""
AGAINST = """
import os
""" + attempt_prelude("DONE") + """def plant():
    open(os.path.join(FOLDER, "planted"), "w").close()
attempt("read its tests", lambda: open(os.path.join(FOLDER, "tierwise_tests.py")).read())
attempt("write into its folder", plant)
attempt("open its memory rw", lambda: open(f"/proc/{PID}/mem", "r+b").close())
"""


async def cross(name: str, uid_range: str | None) -> None:
    cfg = {"run_as_range": uid_range} if uid_range else {}
    if not mode(name, **cfg):
        print(f"| cross | {name}, run_as_range {uid_range} | (no such setting) |")
        return
    async with runner.open_python(VICTIM, files={"tierwise_tests.py": "assert add(1, 2) == 3"}, limits=LIMITS,
                                  audit_hook=False) as other:
        assert other.proc is not None and other.proc.stdout is not None
        pid, folder = (await other.proc.stdout.readline()).decode().split()
        if name == "bwrap":
            pid, folder = str(other.proc.pid), f"/proc/{other.proc.pid}/root/work"
        r = await sandbox.run_python(f"PID = {pid}\nFOLDER = {folder!r}\n" + AGAINST, limits=LIMITS, audit_hook=False)
        other.kill()
    print(f"| cross | {name}, run_as_range {uid_range or '-'} | {'; '.join(r.stdout.strip().splitlines())} |")


SIGNALS = """
import ctypes, fcntl, os, signal
r, w = os.pipe()
try:
    fcntl.fcntl(r, fcntl.F_SETOWN, VICTIM)
    fcntl.fcntl(r, 10, signal.SIGKILL)
    fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)
    os.write(w, b"x")
    print("F_SETOWN+F_SETSIG(SIGKILL) set")
except OSError as e:
    print("F_SETOWN refused", e.errno)
"""
TGKILL = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.syscall(234, VICTIM, VICTIM, 19)
print("tgkill SIGSTOP", "sent" if rc == 0 else f"refused {ctypes.get_errno()}")
"""


async def signals(name: str) -> None:
    mode(name)
    user = backend.identity.target() if hasattr(backend, "identity") else None

    def become() -> None:
        if user is not None:
            os.setgroups([])
            os.setresgid(user.gid, user.gid, user.gid)
            os.setresuid(user.uid, user.uid, user.uid)

    for what, code in (("owner signal", SIGNALS), ("tgkill", TGKILL)):
        victim = subprocess.Popen(["sleep", "30"], preexec_fn=become)
        try:
            r = await sandbox.run_python(f"VICTIM = {victim.pid}\n" + code, limits=LIMITS, audit_hook=False)
            await asyncio.sleep(0.3)
            with open(f"/proc/{victim.pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
            fate = f"killed ({victim.returncode})" if victim.poll() is not None else \
                ("stopped" if state == "T" else "untouched")
            print(f"| signals | {name}: {what} | {r.stdout.strip() or r.summary()}; victim of the run's user {fate} |")
        finally:
            victim.kill()
            victim.wait()


OUTSIDE = """
import os
made = 0
try:
    import _posixshmem
    for i in range(8):
        fd = _posixshmem.shm_open(f"/tw-round4-{i}", os.O_CREAT | os.O_RDWR, 0o600)
        for _ in range(16):
            os.write(fd, b"x" * (1 << 20))
        os.close(fd)
        made += 16
except (OSError, ImportError) as e:
    print("shm stopped:", type(e).__name__, getattr(e, "errno", ""))
try:
    open(SHARED + "/dropped", "w").write("x")
    print("file dropped in a world-writable folder")
except OSError as e:
    print("drop refused", e.errno)
"""


async def outside(hook: bool) -> None:
    mode("weak")
    shared = tempfile.mkdtemp(prefix="tw-round4-", dir="/tmp")
    os.chmod(shared, 0o1777)
    try:
        r = await sandbox.run_python(f"SHARED = {shared!r}\n" + OUTSIDE, limits=LIMITS, audit_hook=hook)
        left = glob.glob("/dev/shm/tw-round4-*")
        mb = sum(os.path.getsize(f) for f in left) >> 20
        print(f"| outside | weak, hook {'on' if hook else 'off'} | {'; '.join(r.stdout.strip().splitlines())}; "
              f"left in /dev/shm after the run: {len(left)} files, {mb} MB; in the shared folder: {os.listdir(shared)} |")
    finally:
        for f in glob.glob("/dev/shm/tw-round4-*"):
            os.unlink(f)
        shutil.rmtree(shared)


MISC = r"""
import ctypes, os, resource, socket
libc = ctypes.CDLL(None, use_errno=True)
def c(rc):
    return "ok" if rc >= 0 else f"refused {ctypes.get_errno()}"
def e(fn):
    try:
        fn()
        return "ok"
    except OSError as x:
        return f"refused {x.errno}"
out = {}
out["abstract unix socket"] = e(lambda: socket.socket(socket.AF_UNIX).connect("\0tierwise-round4"))
out["ttys among 0-2"] = [os.isatty(i) for i in range(3)]
out["open /dev/tty"] = e(lambda: os.close(os.open("/dev/tty", os.O_RDWR)))
out["TIOCSTI on fd 0"] = c(libc.ioctl(0, 0x5412, ctypes.c_char_p(b"x")))
def fds():
    found = []
    for fd in range(3, 1024):
        try:
            os.fstat(fd)
            found.append(fd)
        except OSError:
            pass
    return found
out["descriptors beyond 0-2"] = fds()
out["personality(ADDR_NO_RANDOMIZE)"] = c(libc.personality(0x0040000))
out["prctl(PR_SET_MM, START_BRK)"] = c(libc.prctl(35, 6, 0, 0, 0))
out["RLIMIT_CORE"] = resource.getrlimit(resource.RLIMIT_CORE)
out["core_pattern readable"] = e(lambda: open("/proc/sys/kernel/core_pattern").read())
out["unshare(CLONE_NEWTIME)"] = c(libc.unshare(0x80))
class TS(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
out["clock_settime(REALTIME)"] = c(libc.clock_settime(0, ctypes.byref(TS(1, 0))))
out["mq_open"] = c(libc.syscall(240, b"/tw-round4", 0o100 | 2, 0o600, None))
def sem():
    import _multiprocessing
    _multiprocessing.SemLock(1, 1, 1, "/tw-round4-sem", False)
try:
    out["sem_open (POSIX semaphore)"] = e(sem)
except Exception as x:
    out["sem_open (POSIX semaphore)"] = type(x).__name__
def exec_huge():
    os.execv("/bin/true" if os.path.exists("/bin/true") else os.sys.executable, ["x", "A" * (64 << 20)])
out["execve with a 64 MB argv"] = e(exec_huge)
for k, v in out.items():
    print(f"{k}: {v}")
"""


async def misc(name: str) -> None:
    mode(name)
    r = await sandbox.run_python(MISC, limits=LIMITS, audit_hook=False)
    left = os.path.exists("/dev/shm/sem.tw-round4-sem")
    with contextlib.suppress(FileNotFoundError):
        os.unlink("/dev/shm/sem.tw-round4-sem")
    for line in (r.stdout.strip() or r.summary()).splitlines():
        print(f"| misc | {name}: {line.split(': ', 1)[0]} | {line.split(': ', 1)[-1]} |")
    print(f"| misc | {name}: semaphore file left in the host's /dev/shm | {left} |")


async def main(only: str | None) -> None:
    print("| group | attempt | outcome |\n|---|---|---|")
    if only in (None, "cross"):
        for name in ("weak", "bwrap"):
            for uid_range in (None, "61184-61199"):
                await cross(name, uid_range)
    if only in (None, "signals"):
        for name in ("weak", "bwrap"):
            await signals(name)
    if only in (None, "outside"):
        for hook in (True, False):
            await outside(hook)
    if only in (None, "misc"):
        for name in ("weak", "bwrap"):
            await misc(name)
    mode("bwrap")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["cross", "signals", "outside", "misc"])
    asyncio.run(main(ap.parse_args().only))
