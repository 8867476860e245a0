"""Session 32's sandbox attack round (bench/RESULTS.md "Sandbox attack round 13"): what a hostile run does in each
mode, OS layer alone (no audit hook). Not a test: it prints what it saw.

    PYTHONPATH=src .venv/bin/python bench/sandbox_attack_round13.py [--mode bwrap|weak|landlock ...] [--only NAME ...]

Modes as bench/sandbox_attack_round11.py's. Attacks: `notify` (a run watches the standard library's `email` folders
with dnotify for six seconds: alone, then while another run imports `email.message`; how many reads it was told of),
`workers` (two forked processes of the gateway, as `serve --workers 2` forks its workers, each start a run that spins
beside the gateway's own spinning over the same six seconds: each run's CPU / the gateway's), `v2` (the same two runs
from one process with the runs' shared cpu cgroup off, as on cgroup v2 where it is not made), `locks` (POSIX
record locks on the run's own files until its CPU limit: how many, and the kernel's `file_lock_cache` objects at the
peak, read from /proc/slabinfo).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sandbox_attack_round11 import command_line, run_attacks  # noqa: E402 (one way to pick a mode)
from bench.sandbox_spin import SPIN, cpu_of, limits, spin, spin_beside  # noqa: E402

WATCH = """
import fcntl, os, signal, time
told = 0
def on_read(*_):
    global told
    told += 1
signal.signal(signal.SIGIO, on_read)
package = os.path.join(os.path.dirname(os.__file__), "email")
try:
    for folder in (package, os.path.join(package, "__pycache__")):
        fcntl.fcntl(os.open(folder, os.O_RDONLY), fcntl.F_NOTIFY, fcntl.DN_ACCESS | fcntl.DN_MULTISHOT)
except OSError as e:
    print("dnotify refused:", e.strerror)
    raise SystemExit
end = time.time() + 6
while time.time() < end:
    time.sleep(0.05)
print("told of", told, "reads")
"""

LOCKS = """
import os, fcntl, time
fds = [os.open(f"f{i}", os.O_CREAT | os.O_RDWR, 0o600) for i in range(56)]
n = 0
try:
    for fd in fds:
        for k in range(4000, 0, -1):
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 2 * k)
            n += 1
        print(n, flush=True)
except OSError as e:
    print("stopped:", e.strerror, flush=True)
print(n, "locks held", flush=True)
time.sleep(3)
"""


async def _notify() -> str:
    from tierwise.sandbox import run_python

    await run_python("pass", limits=limits())
    alone = await run_python(WATCH, limits=limits(), audit_hook=False)
    watcher = asyncio.create_task(run_python(WATCH, limits=limits(), audit_hook=False))
    await asyncio.sleep(2.5)
    other = await run_python("import email.message, email.parser\nprint('imported')", limits=limits(),
                             audit_hook=False)
    beside = await watcher
    return (f"alone: {alone.stdout.strip() or alone.summary()}; while another run imported email "
            f"({other.stdout.strip() or other.summary()}): {beside.stdout.strip() or beside.summary()}")


def _worker(t0: float, t1: float, said: multiprocessing.connection.Connection) -> None:
    from tierwise.sandbox import run_python

    r = asyncio.run(run_python(SPIN.format(t0=t0, t1=t1), limits=limits(), audit_hook=False))
    said.send(float(r.stdout.strip() or 0))


async def _workers() -> str:
    from tierwise.sandbox import run_python

    await run_python("pass", limits=limits())  # (probed before the fork: each worker starts at once)
    t0 = time.time() + 4.0
    t1 = t0 + 6.0
    ctx = multiprocessing.get_context("fork")
    pipes = [ctx.Pipe() for _ in range(2)]
    workers = [ctx.Process(target=_worker, args=(t0, t1, theirs)) for _, theirs in pipes]
    for w in workers:
        w.start()
    own = spin(t0, t1)
    got = [ours.recv() for ours, _ in pipes]
    for w in workers:
        w.join()
    return (f"gateway {own:.2f} s CPU, the workers' runs {', '.join(f'{g:.2f}' for g in got)} s in the same 6 s: "
            f"each {sum(got) / len(got) / own:.2f}x the gateway's")


async def _v2() -> str:
    from tierwise.sandbox import cgroup, run_python

    real = cgroup.runs_cpu
    cgroup.runs_cpu = lambda: None  # type: ignore[assignment]  # (as on cgroup v2: not made)
    try:
        await run_python("pass", limits=limits())
        own, results = await spin_beside(2)
        got = [cpu_of(r) for r in results]
    finally:
        cgroup.runs_cpu = real  # type: ignore[assignment]
    return (f"no shared cpu cgroup: gateway {own:.2f} s CPU, runs {', '.join(f'{g:.2f}' for g in got)} s: each "
            f"{sum(got) / len(got) / own:.2f}x the gateway's")


def _slab() -> tuple[int, int]:
    with open("/proc/slabinfo") as fh:
        for line in fh:
            if line.startswith("file_lock_cache "):
                fields = line.split()
                return int(fields[1]), int(fields[3])
    return 0, 0


async def _locks() -> str:
    from tierwise.sandbox import run_python

    await run_python("pass", limits=limits())
    before = _slab()[0]
    task = asyncio.create_task(run_python(LOCKS, limits=limits(cpu_s=5), audit_hook=False))
    peak, size = before, 0
    while not task.done():
        await asyncio.sleep(0.25)
        now, size = _slab()
        peak = max(peak, now)
    r = task.result()
    held = r.stdout.strip().splitlines()[-1:] or [r.summary()]
    return (f"{held[0]} ({r.summary()}); file_lock_cache {before} -> peak {peak} objects of {size} bytes: "
            f"{(peak - before) * size / 1e6:.1f} MB")


ATTACKS = {"notify": _notify, "workers": _workers, "v2": _v2, "locks": _locks}


if __name__ == "__main__":
    asyncio.run(run_attacks(*command_line(__doc__, ATTACKS), ATTACKS))
