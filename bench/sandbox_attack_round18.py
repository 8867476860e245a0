"""Session 37's sandbox attack round (bench/RESULTS.md "Sandbox round 18"): what a hostile run does in each mode, OS
layer alone (no audit hook). Not a test: it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_attack_round18.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

- `hostpids`: what a run learns of and reaches in the host's processes: its own and its parent's PID, the living PIDs
  it tells by `stat` of /proc/<pid> (and their owners), what it opens or reads in /proc, signals and ptrace.
- `keeper`: `kill(0, SIGUSR1)` with a handler of its own, at the Landlock ABI of this kernel and as if it were 5 (no
  signal scope): does the signal reach a process of ours outside the run (the run's end says so)?
- `ordinary`: programs a model writes: /dev/stdout, /dev/fd/N, multiprocessing.Pool, ProcessPoolExecutor, flock.
- `exhaust`: resources a run takes: processes, pipes, socket pairs, eventfds/timerfds, inotify, /dev/shm, its folder.
- `reach`: abstract unix sockets, TCP to loopback (the gateway, Redis), the gateway's files.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import command_line, run_attacks  # noqa: E402 (one way to pick a mode)

HOSTPIDS = """
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
me, parent = os.getpid(), os.getppid()
print("getpid", me, "getppid", parent)
alive, owners = 0, {}
for pid in range(1, 70000):
    try:
        st = os.stat(f"/proc/{pid}")
    except OSError:
        continue
    alive += 1
    owners[st.st_uid] = owners.get(st.st_uid, 0) + 1
print("stat /proc/<pid>: alive", alive, "owners", sorted(owners.items()))
def attempt(name, fn):
    try:
        r = fn()
        print(name, "ok", repr(r)[:60])
    except OSError as e:
        print(name, "refused", e.errno)
attempt("listdir /proc", lambda: len(os.listdir("/proc")))
attempt("read /proc/self/status", lambda: open("/proc/self/status").read(20))
attempt("read /proc/<parent>/cmdline", lambda: open(f"/proc/{parent}/cmdline").read(60))
attempt("read /proc/<parent>/environ", lambda: open(f"/proc/{parent}/environ").read(60))
attempt("readlink /proc/<parent>/exe", lambda: os.readlink(f"/proc/{parent}/exe"))
attempt("readlink /proc/<parent>/cwd", lambda: os.readlink(f"/proc/{parent}/cwd"))
attempt("readlink /proc/1/exe", lambda: os.readlink("/proc/1/exe"))
attempt("readlink /proc/self/exe", lambda: os.readlink("/proc/self/exe"))
attempt("kill(parent, 0)", lambda: os.kill(parent, 0))
attempt("kill(-1, 0)", lambda: os.kill(-1, 0))
attempt("kill(0, 0)", lambda: os.kill(0, 0))
def ptrace():
    if libc.ptrace(16, parent, 0, 0) != 0:  # PTRACE_ATTACH
        raise OSError(ctypes.get_errno(), "ptrace")
attempt("ptrace(ATTACH, parent)", ptrace)
def pidfd():
    r = libc.syscall(434, parent, 0)
    if r < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open")
attempt("pidfd_open(parent)", pidfd)
def vm():
    buf = ctypes.create_string_buffer(8)
    local = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 8)
    remote = (ctypes.c_void_p * 2)(0x400000, 8)
    if libc.syscall(310, parent, local, 1, remote, 1, 0) < 0:
        raise OSError(ctypes.get_errno(), "process_vm_readv")
attempt("process_vm_readv(parent)", vm)
attempt("getpgid(parent)", lambda: os.getpgid(parent))
"""

KEEPER = """
import ctypes, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
def tgkill(tgid, tid, sig):
    if libc.syscall(234, tgid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")
got = []
signal.signal(signal.SIGUSR1, lambda *_: got.append(1))
for name, fn in (("kill(0, SIGUSR1)", lambda: os.kill(0, signal.SIGUSR1)),
                 ("kill(getpid(), SIGUSR1)", lambda: os.kill(os.getpid(), signal.SIGUSR1)),
                 ("kill(1, SIGUSR1)", lambda: os.kill(1, signal.SIGUSR1)),
                 ("tgkill(1, 1, SIGUSR1)", lambda: tgkill(1, 1, signal.SIGUSR1))):
    try:
        fn()
        time.sleep(0.2)
        print(name, "ok, handled", len(got))
    except (OSError, ProcessLookupError) as e:
        print(name, "refused", e.errno)
print("still here")
"""


async def _run(code: str, threads: bool = False, cpu_s: int = 5) -> str:
    from tierwise.sandbox import SandboxLimits, run_python

    r = await run_python(code, limits=SandboxLimits(wall_s=60, cpu_s=cpu_s, memory_mb=256, threads=threads),
                         audit_hook=False)
    said = r.stdout.strip() or r.summary()
    if r.returncode != 0:
        said += f" | exit {r.returncode}: {r.summary()[:200]}"
    return f"{said} [layers: {', '.join(r.layers)}] (gateway {os.getpid()})"


async def _hostpids() -> str:
    return await _run(HOSTPIDS)


async def _keeper() -> str:
    from tierwise.sandbox import landlock

    said = [f"abi {landlock.abi()}: " + await _run(KEEPER)]
    real = landlock.abi
    landlock.abi = lambda: min(5, real())  # type: ignore[assignment]  # as on a kernel before Linux 6.12
    try:
        said.append("abi 5: " + await _run(KEEPER))
    finally:
        landlock.abi = real  # type: ignore[assignment]
    return " || ".join(said)


ATTACKS = {"hostpids": _hostpids, "keeper": _keeper}

if __name__ == "__main__":
    modes, only = command_line(__doc__ or "", ATTACKS)
    asyncio.run(run_attacks(modes, only, ATTACKS, one_line=False))
